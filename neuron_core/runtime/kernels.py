"""The per-instruction fast kernels (`NEURON_SIM_KERNELS=instruction`, and what profiles run):
TensorEngine instructions (Conv, ConvTranspose, MatMul, Gemm) and the row reductions Softmax and
LayerNormalization on onnxruntime's kernels, activations kept in its blocked layout between
convolutions, and one fused pass for the common elementwise instructions. The default kernel set,
"fast", lowers the whole program to onnxruntime graphs instead (runtime/graph.py); the blocked
layout's helpers here serve both.

The functional model of a matmul or convolution is "fp32 products of the stored operands, summed in
fp32" (bf16 x bf16 and fp16 x fp16 products are exact in fp32). Any fp32 GEMM computes that, up to
summation order; what differs is speed. NumPy's BLAS sees the weights anew at every call, while
onnxruntime's CPU kernels pack a constant weight once into the layout its GEMM and convolution loops
want. So each TensorEngine instruction runs as a one-node onnxruntime session: its weights, as
stored on the device, are initializers; its other operands (an attention matmul's two activations)
are inputs. Keeping every matmul off NumPy also keeps OpenBLAS's threads, which spin after each
call, from taking a core from the sessions' pools.

Softmax and LayerNormalization sum in another order too, and Softmax's exp is onnxruntime's
(within a few float32 ulps of NumPy's; a result below float32's normal range comes out as 0, where
NumPy gives the subnormal). Once rounded to bf16 that is at most one ulp apart.

The bias add and a Relu that open the epilogue go with it (onnxruntime computes them in fp32, as the
executor does). Every other epilogue op, and the rounding to the output's storage dtype, stays with
the executor, so the cast points are the same as with the reference kernels.

Elementwise Add, Sub, Mul, Div and Relu (vector_kernel) compute, round and apply a fused Relu in one
compiled pass instead of one NumPy pass per step: bit for bit the references' result.

`NEURON_SIM_KERNELS=reference` (or `runtime.load(..., kernels="reference")`) runs every instruction on
the ops' own NumPy references instead: the independent oracle the other kernel sets are tested
against.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from .. import dtypes
from ..errors import NeuronError
from . import probe

log = logging.getLogger("Neuron")

KERNELS = ("fast", "instruction", "reference")

#: the instructions onnxruntime's kernels compute with the same (ONNX) semantics in fp32: the
#: TensorEngine's, and the row reductions of the Vector engine (their fp32 sums in another order)
_SESSION_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm", "Softmax",
                          "LayerNormalization"})
#: epilogue ops onnxruntime computes exactly as the executor does (fp32 add, max with 0)
_EXACT_EPILOGUE = frozenset({"Add", "Relu"})
_OPSET = 17


def choose(kernels: str | None) -> str:
    """The kernel set to use: the argument, else $NEURON_SIM_KERNELS, else "fast"."""
    kernels = kernels or os.environ.get("NEURON_SIM_KERNELS", "fast")
    if kernels not in KERNELS:
        raise NeuronError(f"kernels {kernels!r} is not valid; choose from {', '.join(KERNELS)} "
                          "(argument kernels= or $NEURON_SIM_KERNELS)")
    return kernels


#: intra-op threads per kernel session: every session has its own pool (a process-wide one would
#: make onnxruntime refuse every other session in the process that keeps the default options), so a
#: model holds (threads - 1) x instructions idle threads; more than 4 rarely pays for a single op
MAX_THREADS = 4


def _session_options(ort):
    """Each kernel session has its own pool of intra-op threads that sleep when idle: a spinning pool
    would hold a core for a while after every call and slow down the next kernel's pool."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = min(len(os.sched_getaffinity(0)), MAX_THREADS)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _attribute(name: str, value):
    from onnx import helper
    if isinstance(value, dict):  # a tagged array: not an attribute a kernel op takes
        raise ValueError(name)
    return helper.make_attribute(name, value)


def _external(name: str, array: np.ndarray):
    """An initializer whose data the session takes from an OrtValue (no protobuf copy)."""
    from onnx import TensorProto, helper
    tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                         dims=array.shape, data_location=TensorProto.EXTERNAL)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", name
    return tensor


def session_kernel(instr, buffers: list, constants: list, block: int | None = None,
                   blocked_input: bool = False):
    """A fast kernel for instruction `instr` (a TensorEngine op, Softmax or LayerNormalization with
    one output), or None (onnxruntime absent, an operand that is not float32, or a case its
    kernels do not take).

    Returns (run, absorbed): `run(args)` gives the instruction's fp32 result after its first
    `absorbed` epilogue ops, or None when an argument is not a float32 array (the reference then
    runs it). `constants[i]` is buffer i's array on the device if it is a weight, else None; weights
    become initializers, every other operand an input of the session.

    With a `block` (see nchwc_block), a Conv the blocked kernels take (see _nchwc_conv) instead
    gives its result in the blocked layout (see to_blocked), the epilogue ops after `absorbed` left
    for the executor to run on it, and reads its input blocked when `blocked_input`; such a kernel
    has `run.blocked = True` and never returns None. Any other instruction gets the plain kernel.
    """
    if instr.op not in _SESSION_OPS or len(instr.outputs) != 1:
        return None
    if block and instr.op == "Conv":
        found = _nchwc_conv(instr, buffers, constants, block, blocked_input)
        if found is not None:
            return found
    if instr.op == "MatMul":
        found = _matmul_as_gemm(instr, buffers, constants)
        if found is not None:
            return found
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    names, weights, feeds = [], {}, []
    for k, bid in enumerate(instr.inputs):
        if bid is None:
            names.append("")
        elif constants[bid] is not None:
            if constants[bid].dtype != np.float32:
                return None
            names.append(f"w{k}")
            weights[f"w{k}"] = constants[bid]
        elif buffers[bid].dtype == dtypes.FP32:
            names.append(f"x{k}")
            feeds.append((k, f"x{k}", [d if isinstance(d, int) else None
                                      for d in buffers[bid].shape]))
        else:
            return None
    nodes = [helper.make_node(instr.op, names, ["y0"])]
    try:
        nodes[0].attribute.extend(_attribute(k, v) for k, v in instr.attrs.items() if v is not None)
    except (ValueError, TypeError):
        return None
    absorbed = 0
    for p in instr.post:
        others = [i for i in p["inputs"] if i != -1]
        if (p["op"] not in _EXACT_EPILOGUE or p["attrs"] or any(
                i is None or constants[i] is None or constants[i].dtype != np.float32
                for i in others)):
            break
        args = []
        for i in p["inputs"]:
            if i == -1:
                args.append(f"y{absorbed}")
            else:
                args.append(f"c{absorbed}")
                weights[f"c{absorbed}"] = constants[i]
        absorbed += 1
        nodes.append(helper.make_node(p["op"], args, [f"y{absorbed}"]))
    graph = helper.make_graph(
        nodes, f"pe_{instr.op}",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for _, name, shape in feeds],
        [helper.make_tensor_value_info(f"y{absorbed}", TensorProto.FLOAT, None)],
        [_external(n, a) for n, a in weights.items()])
    session, values = _session(graph, weights, f"{instr.op} ({instr.node})")
    if session is None:
        return None
    output = [f"y{absorbed}"]
    fed = [(k, name) for k, name, _ in feeds]

    def run(args):
        feed = {}
        for k, name in fed:
            if not isinstance(args[k], np.ndarray) or args[k].dtype != np.float32:
                return None
            feed[name] = args[k]
        return session.run(output, feed)[0]
    run.keep = values  # the session reads the initializers' memory
    return run, absorbed


def _matmul_as_gemm(instr, buffers: list, constants: list):
    """A kernel for MatMul `instr` of an activation [..., K] by a constant [K, N] weight, with the
    bias Add (a constant [N] vector, leading 1s allowed) and Relu that may open its epilogue, as one
    Gemm over the activation's rows: as session_kernel gives them (run, absorbed), or None for any
    other MatMul. The bias initialises the sums instead of a pass of its own over the result, as in
    onnxruntime's own graphs (the transformer layers' projections)."""
    from onnx import TensorProto, helper
    if len(instr.inputs) != 2 or None in instr.inputs:
        return None
    x_id, w_id = instr.inputs
    w = constants[w_id]
    shape = buffers[x_id].shape
    if (constants[x_id] is not None or buffers[x_id].dtype != dtypes.FP32 or w is None
            or w.dtype != np.float32 or w.ndim != 2 or len(shape) < 2
            or shape[-1] != w.shape[0] or not isinstance(shape[-1], int)):
        return None
    k, n = w.shape
    weights, names, absorbed = {"w": w}, ["x", "w"], 0
    post = instr.post
    if post and post[0]["op"] == "Add" and not post[0]["attrs"] and len(post[0]["inputs"]) == 2:
        bias_id = [i for i in post[0]["inputs"] if i != -1]
        bias = constants[bias_id[0]] if len(bias_id) == 1 and bias_id[0] is not None else None
        if (bias is not None and bias.dtype == np.float32 and bias.size == n and bias.ndim >= 1
                and bias.shape[-1] == n and bias.ndim <= len(shape)):
            weights["b"], absorbed = bias.reshape(n), 1
            names.append("b")
    nodes = [helper.make_node("Gemm", names, ["y0"])]
    if len(post) > absorbed and (post[absorbed]["op"], post[absorbed]["attrs"],
                                 post[absorbed]["inputs"]) == ("Relu", {}, [-1]):
        nodes.append(helper.make_node("Relu", ["y0"], ["y1"]))
        absorbed += 1
    graph = helper.make_graph(
        nodes, "pe_MatMul_gemm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, k])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [_external(name, a) for name, a in weights.items()])
    session, values = _session(graph, weights, f"MatMul ({instr.node}) as Gemm")
    if session is None:
        return None
    output = [nodes[-1].output[0]]

    def run(args):
        x = args[0]
        if not isinstance(x, np.ndarray) or x.dtype != np.float32:
            return None
        y = session.run(output, {"x": x.reshape(-1, k)})[0]
        return y.reshape(*x.shape[:-1], n)
    run.keep = values
    return run, absorbed


def _session(graph, weights: dict, what: str):
    """An onnxruntime session running `graph` with `weights` as external initializers, and the
    OrtValues it reads them from (to be kept alive with it); (None, None) if it takes no such
    graph (`what` names it in the debug log)."""
    import onnxruntime as ort
    from onnx import helper
    domains = {node.domain for node in graph.node} - {""}
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)] + [
        helper.make_opsetid(d, 1) for d in domains])
    options = _session_options(ort)
    values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) for a in weights.values()]
    if weights:
        options.add_external_initializers(list(weights), values)
    try:
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # a case the kernel library does not take: the reference runs it
        log.debug("no fast kernel for %s: %s", what, exc)
        return None, None
    return session, values


#: VectorEngine ops the fused elementwise kernel computes (float32 operands of one shape, or one
#: of them a single value)
_BINARY = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3}


def vector_kernel(instr, rounds: list):
    """A fast kernel for elementwise instruction `instr` (Add, Sub, Mul or Div, or Relu, each with
    an optional fused Relu) whose output is rounded to `rounds[0]` (None, or bfloat16), or None
    for any other instruction and while the compiled kernels are not loaded (dtypes.jit).

    Returns `run(args, out)`: the rounded result, written into `out` (an array the caller owns,
    which may be one of the arguments) or a new array when `out` is None or not of the result's
    shape; or None when the arguments are not C-contiguous float32 arrays of one shape, or one
    shape and a single value (the reference then runs it). One pass over memory instead of the
    reference's one per op and one for the rounding.
    """
    if len(instr.outputs) != 1 or rounds[0] not in (None, dtypes.BF16):
        return None
    if instr.op == "Relu":
        binary, operands = -1, 1
    elif instr.op in _BINARY:
        binary, operands = _BINARY[instr.op], 2
    else:
        return None
    post = [p["op"] for p in instr.post]
    if post not in ([], ["Relu"]) or (instr.post and instr.post[0]["attrs"]):
        return None
    relu = instr.op == "Relu" or bool(post)
    compiled = dtypes.jit()
    if compiled is None:
        return None
    kernel = compiled.fused_elementwise
    bf16 = rounds[0] == dtypes.BF16

    def run(args, out):
        if len(args) != operands or not all(_plain_f32(a) for a in args):
            return None
        a, b = args[0], args[-1]
        if a.size == 0 or b.size == 0:
            return None
        shape = a.shape
        if b.shape != shape:
            try:
                shape = np.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                return None
            if shape not in (a.shape, b.shape) or min(a.size, b.size) != 1:
                return None
        if out is None or out.shape != shape:
            out = np.empty(shape, np.float32)
        kernel(a.reshape(-1), b.reshape(-1), out.reshape(-1), binary, bf16, relu)
        return out
    return run


def _plain_f32(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous


# -- the blocked (NCHWc) layout -------------------------------------------------------------------
# onnxruntime's convolutions run on activations blocked by channels: [N, C/b, H, W, b]. A plain
# NCHW Conv session reorders its input into that layout and its result back, at every call;
# ResNet-50 spent a tenth of its convolution time so. With the fast kernels the executor therefore
# keeps activations blocked from one convolution to the next: a blocked array is a 5-d float32
# [N, C/b, H, W, b], so that no op can take it for a 4-d NCHW one. Elementwise instructions over
# blocked operands of one shape give a blocked result (the layout does not matter to them); MaxPool
# has a blocked kernel; every other reader gets it back in NCHW (see Executor).

_NCHWC = "com.microsoft.nchwc"
#: elementwise ops (and the executor's casts): each output element depends on the same element of
#: each input alone, so with every operand blocked alike the result is blocked alike
LAYOUT_FREE = frozenset({
    "_cast", "Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Erf", "Gelu", "HardSigmoid",
    "HardSwish", "Sqrt", "Reciprocal", "Exp", "Log", "Neg", "Abs", "Add", "Sub", "Mul", "Div",
    "Max", "Min", "Sum", "Mean", "Clip", "Pow"})
_CONV_ATTRS = frozenset({"group", "kernel_shape", "pads", "strides", "dilations", "auto_pad"})
_POOL_ATTRS = frozenset({"kernel_shape", "pads", "strides", "dilations", "auto_pad", "ceil_mode"})

_BLOCK: list = []


def nchwc_block() -> int | None:
    """The channel block of onnxruntime's blocked convolutions on this CPU (8 with AVX2, 16 with
    AVX-512), or None where it has none. Found once by running a small blocked convolution against
    NumPy, so a CPU that blocks differently can never get a silently wrong layout."""
    if not _BLOCK:
        _BLOCK.append(_probe_block())
        log.debug("blocked convolution layout: %s", _BLOCK[0] and f"{_BLOCK[0]} channels")
    return _BLOCK[0]


def _probe_block() -> int | None:
    try:
        import onnxruntime  # noqa: F401
        from onnx import TensorProto, helper
    except ImportError:
        return None
    rng = np.random.default_rng(0)
    channels = 32
    x = rng.standard_normal((1, channels, 3, 3)).astype(np.float32)
    w = rng.standard_normal((channels, channels, 1, 1)).astype(np.float32)
    expected = np.einsum("oi,nihw->nohw", w[:, :, 0, 0], x)
    for block in (8, 16):
        filt = _block_filter(w, block, 1)
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], domain=_NCHWC)], "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [_external("w", filt)])
        session, keep = _session(graph, {"w": filt}, "the layout probe")
        if session is None:
            return None
        try:
            got = session.run(None, {"x": _as_4d(to_blocked(x, block))})[0]
        except Exception:  # noqa: BLE001 - a layout it refuses is not its layout
            continue
        if np.allclose(to_plain(_blocked_result(got, block)), expected, rtol=1e-4, atol=1e-4):
            return block
    return None


def to_blocked(x: np.ndarray, block: int) -> np.ndarray:
    """NCHW -> the blocked [N, C/b, H, W, b] (a new C-contiguous array); C must divide by b."""
    n, c, h, w = x.shape
    return np.ascontiguousarray(x.reshape(n, c // block, block, h, w).transpose(0, 1, 3, 4, 2))


def to_plain(x):
    """A blocked array back in NCHW (C-contiguous: a copy, or a view when H x W is 1); anything
    else as it is."""
    if not isinstance(x, np.ndarray) or x.ndim != 5:
        return x
    n, cb, h, w, block = x.shape
    return np.ascontiguousarray(x.transpose(0, 1, 4, 2, 3)).reshape(n, cb * block, h, w)


def _block_filter(w: np.ndarray, block: int, group: int) -> np.ndarray:
    """A Conv filter [O, I, kh, kw] in the order onnxruntime's blocked kernels read it: [O/b, I/b,
    kh, kw, b_in, b_out] for a convolution of blocked input, [O/b, I, kh, kw, b_out] for a
    depthwise one or one of NCHW input (fewer than b input channels). Shape unchanged."""
    o, i, kh, kw = w.shape
    if group == 1 and i % block == 0:
        order = w.reshape(o // block, block, i // block, block, kh, kw).transpose(0, 2, 4, 5, 3, 1)
    else:
        order = w.reshape(o // block, block, i, kh, kw).transpose(0, 2, 3, 4, 1)
    return np.ascontiguousarray(order).reshape(w.shape)


def nchwc_conv_plan(instr, buffers: list, constants: list, block: int, blocked_input: bool):
    """How the blocked kernels take Conv `instr`: (its ONNX attributes, whether the kernel runs the
    Relu that opens its epilogue (only where its fused Relu gives np.maximum's bits on this CPU,
    see probe.fused_relu_holds), whether it reads its input in NCHW), or None when they do not
    take it: 2-d, float32
    constant filter and bias, output channels a multiple of the block, input channels too (or
    fewer than the block, read in NCHW), group 1 or depthwise, and an epilogue of elementwise ops
    whose other operands are scalars (run on the blocked result)."""
    x_id, w_id = instr.inputs[0], instr.inputs[1]
    b_id = instr.inputs[2] if len(instr.inputs) > 2 else None
    w = constants[w_id] if w_id is not None else None
    bias = constants[b_id] if b_id is not None else None
    if (x_id is None or constants[x_id] is not None or buffers[x_id].dtype != dtypes.FP32
            or w is None or w.dtype != np.float32 or w.ndim != 4
            or (b_id is not None and (bias is None or bias.dtype != np.float32))):
        return None
    attrs = {k: v for k, v in instr.attrs.items() if v is not None}
    relu = bool(instr.post) and (instr.post[0]["op"], instr.post[0]["attrs"],
                                 instr.post[0]["inputs"]) == ("Relu", {}, [-1]) \
        and probe.fused_relu_holds(block)
    if set(attrs) - _CONV_ATTRS or not all(  # the executor runs the rest on the blocked result
            p["op"] in LAYOUT_FREE and all(i == -1 or i is not None and constants[i] is not None
                                           and constants[i].size == 1 for i in p["inputs"])
            for p in instr.post[int(relu):]):
        return None
    out_c, in_c = w.shape[0], buffers[x_id].shape[1]
    group = attrs.get("group", 1)
    depthwise = group == in_c == out_c and w.shape[1] == 1 and group > 1
    if (out_c % block or (group != 1 and not depthwise) or not isinstance(in_c, int)
            or (in_c % block and (in_c >= block or depthwise or blocked_input))):
        return None
    return attrs, relu, in_c < block


def _nchwc_conv(instr, buffers: list, constants: list, block: int, blocked_input: bool):
    """A blocked-layout kernel for Conv `instr` (see session_kernel), or None when it is not one the
    blocked kernels take (see nchwc_conv_plan): a leading Relu runs in the kernel, the rest of the
    epilogue in the executor, on the blocked result."""
    from onnx import TensorProto, helper
    found = nchwc_conv_plan(instr, buffers, constants, block, blocked_input)
    if found is None:
        return None
    attrs, relu, plain_input = found
    x_id, w_id = instr.inputs[0], instr.inputs[1]
    b_id = instr.inputs[2] if len(instr.inputs) > 2 else None
    w, group = constants[w_id], attrs.get("group", 1)
    bias = constants[b_id] if b_id is not None else None
    weights = {"w": _block_filter(w, block, group)}
    names = ["x", "w"]
    if bias is not None:
        weights["b"] = bias
        names.append("b")
    try:
        node = helper.make_node("Conv", names, ["y"], domain=_NCHWC, **attrs)
    except (ValueError, TypeError):
        return None
    if relu:
        node.attribute.append(helper.make_attribute("activation", "Relu"))
    graph = helper.make_graph(
        [node], "pe_Conv_nchwc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [
            d if isinstance(d, int) else None for d in buffers[x_id].shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [_external(n, a) for n, a in weights.items()])
    session, values = _session(graph, weights, f"Conv ({instr.node}), blocked")
    if session is None:
        return None

    def run(args):
        x = np.asarray(args[0], np.float32)
        if x.ndim == 4 and not plain_input:
            x = to_blocked(x, block)
        if x.ndim == 5:
            x = _as_4d(x)
        return _blocked_result(session.run(None, {"x": x})[0], block)
    run.keep, run.blocked = values, True
    return run, int(relu)


def nchwc_pool_attrs(instr) -> dict | None:
    """The attributes of MaxPool `instr` for the blocked kernel, or None when it takes no such
    pool (an epilogue, a second output, a storage order)."""
    if instr.op != "MaxPool" or instr.post or len(instr.outputs) != 1:
        return None
    attrs = {k: v for k, v in instr.attrs.items() if v is not None}
    if attrs.pop("storage_order", 0) or set(attrs) - _POOL_ATTRS:
        return None
    return attrs


def nchwc_pool(instr, block: int | None):
    """A blocked-layout kernel for a MaxPool of blocked input, as session_kernel gives them (run,
    absorbed), or None. The maximum is exact, so it is the reference's result bit for bit; but
    onnxruntime's blocked maximum drops NaN, so an input holding one goes to the reference (NaN
    wins, as in np.maximum)."""
    attrs = nchwc_pool_attrs(instr) if block else None
    if attrs is None:
        return None
    from onnx import TensorProto, helper
    try:
        node = helper.make_node("MaxPool", ["x"], ["y"], domain=_NCHWC, **attrs)
    except (ValueError, TypeError):
        return None
    graph = helper.make_graph(
        [node], "pool_nchwc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * 4)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    session, _ = _session(graph, {}, f"MaxPool ({instr.node}), blocked")
    if session is None:
        return None

    from ..ops import get_op
    reference = get_op("MaxPool")
    reference_attrs = {**reference.defaults, **attrs}

    def run(args):
        x = np.asarray(args[0], np.float32)
        if x.ndim == 4:
            x = to_blocked(x, block)
        if np.isnan(x.max(initial=-np.inf)):
            return to_blocked(reference.reference(to_plain(x), **reference_attrs), block)
        return _blocked_result(session.run(None, {"x": _as_4d(x)})[0], block)
    run.blocked = True
    return run, 0


def _as_4d(x: np.ndarray) -> np.ndarray:
    """A blocked array as the 4-d [N, C, H, W] onnxruntime's blocked kernels take (a view)."""
    n, cb, h, w, block = x.shape
    return x.reshape(n, cb * block, h, w)


def _blocked_result(y: np.ndarray, block: int) -> np.ndarray:
    """A blocked kernel's 4-d result as the executor's 5-d blocked array (a view)."""
    n, c, h, w = y.shape
    return y.reshape(n, c // block, h, w, block)


def layout_free(instr, buffers: list, blocked: set) -> bool:
    """Whether elementwise instruction `instr` reads only blocked buffers of its output's shape (its
    result is then blocked too)."""
    reads = [i for i in instr.inputs] + [i for p in instr.post for i in p["inputs"] if i != -1]
    return (instr.op in LAYOUT_FREE and all(p["op"] in LAYOUT_FREE for p in instr.post)
            and len(instr.outputs) == 1 and all(
                i is not None and i in blocked
                and buffers[i].shape == buffers[instr.outputs[0]].shape for i in reads))
