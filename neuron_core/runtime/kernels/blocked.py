"""The blocked (NCHWc) layout of onnxruntime's convolutions, and the kernels that keep activations
in it: a blocked Conv (its leading Relu fused where the probe allows) and a blocked MaxPool."""
from __future__ import annotations

import logging

import numpy as np

from ... import dtypes
from ...ops import instruction_op
from .. import probe
from .gemm import leading_relu
from .record import Kernel
from .session import external, session

log = logging.getLogger("Neuron")

# -- the blocked (NCHWc) layout -------------------------------------------------------------------
# onnxruntime's convolutions run on activations blocked by channels: [N, C/b, H, W, b]. A plain
# NCHW Conv session reorders its input into that layout and its result back, at every call;
# ResNet-50 spent a tenth of its convolution time so. With the fast kernels the executor therefore
# keeps activations blocked from one convolution to the next: a blocked array is a 5-d float32
# [N, C/b, H, W, b], so that no op can take it for a 4-d NCHW one. Elementwise instructions over
# blocked operands of one shape give a blocked result (the layout does not matter to them); MaxPool
# has a blocked kernel; every other reader gets it back in NCHW (see Executor).

NCHWC = "com.microsoft.nchwc"
_CONV_ATTRS = frozenset({"group", "kernel_shape", "pads", "strides", "dilations", "auto_pad"})
_POOL_ATTRS = frozenset({"kernel_shape", "pads", "strides", "dilations", "auto_pad", "ceil_mode"})



def nchwc_block() -> int | None:
    """The channel block of onnxruntime's blocked convolutions on this CPU (8 with AVX2, 16 with
    AVX-512), or None where it has none. Found once by running a small blocked convolution against
    NumPy, so a CPU that blocks differently can never get a silently wrong layout."""
    from ..context import default
    memo = default().memo("kernels.nchwc_block")
    if "block" not in memo:
        memo["block"] = _probe_block()
        log.debug("blocked convolution layout: %s", memo["block"] and f"{memo['block']} channels")
    return memo["block"]


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
        filt = block_filter(w, block, 1)
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["y"], domain=NCHWC)], "probe",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [external("w", filt)])
        found, keep = session(graph, {"w": filt}, "the layout probe")
        if found is None:
            return None
        try:
            got = found.run(None, {"x": _as_4d(to_blocked(x, block))})[0]
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


def block_filter(w: np.ndarray, block: int, group: int) -> np.ndarray:
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
    relu = leading_relu(instr.post, 0) and probe.fused_relu_holds(block)
    if set(attrs) - _CONV_ATTRS or not all(  # the executor runs the rest on the blocked result
            instruction_op(p["op"]).layout_free and all(
                i == -1 or i is not None and constants[i] is not None and constants[i].size == 1
                for i in p["inputs"])
            for p in instr.post[int(relu):]):
        return None
    out_c, in_c = w.shape[0], buffers[x_id].shape[1]
    group = attrs.get("group", 1)
    depthwise = group == in_c == out_c and w.shape[1] == 1 and group > 1
    if (out_c % block or (group != 1 and not depthwise) or not isinstance(in_c, int)
            or (in_c % block and (in_c >= block or depthwise or blocked_input))):
        return None
    return attrs, relu, in_c < block


def conv_kernel(instr, buffers: list, constants: list, block: int, blocked_input: bool):
    """A blocked-layout kernel for Conv `instr` (a Kernel), or None when it is not one the
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
    weights = {"w": block_filter(w, block, group)}
    names = ["x", "w"]
    if bias is not None:
        weights["b"] = bias
        names.append("b")
    try:
        node = helper.make_node("Conv", names, ["y"], domain=NCHWC, **attrs)
    except (ValueError, TypeError):
        return None
    if relu:
        node.attribute.append(helper.make_attribute("activation", "Relu"))
    graph = helper.make_graph(
        [node], "pe_Conv_nchwc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [
            d if isinstance(d, int) else None for d in buffers[x_id].shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [external(n, a) for n, a in weights.items()])
    found, values = session(graph, weights, f"Conv ({instr.node}), blocked")
    if found is None:
        return None

    def run(args):
        x = np.asarray(args[0], np.float32)
        if x.ndim == 4 and not plain_input:
            x = to_blocked(x, block)
        if x.ndim == 5:
            x = _as_4d(x)
        return _blocked_result(found.run(None, {"x": x})[0], block)
    return Kernel(run, int(relu), blocked=True, keep=values)


def nchwc_pool_attrs(instr) -> dict | None:
    """The attributes of MaxPool `instr` for the blocked kernel, or None when it takes no such
    pool (an epilogue, a second output, a storage order)."""
    if ("blocked-pool" not in instruction_op(instr.op).fast_kernels or instr.post
            or len(instr.outputs) != 1):
        return None
    attrs = {k: v for k, v in instr.attrs.items() if v is not None}
    if attrs.pop("storage_order", 0) or set(attrs) - _POOL_ATTRS:
        return None
    return attrs


def pool_kernel(instr, block: int | None):
    """A blocked-layout kernel (a Kernel) for a MaxPool of blocked input, or None. The maximum is
    exact, so it is the reference's result bit for bit; but onnxruntime's blocked maximum drops
    NaN, so an input holding one goes to the reference (NaN wins, as in np.maximum)."""
    attrs = nchwc_pool_attrs(instr) if block else None
    if attrs is None:
        return None
    from onnx import TensorProto, helper
    try:
        node = helper.make_node("MaxPool", ["x"], ["y"], domain=NCHWC, **attrs)
    except (ValueError, TypeError):
        return None
    graph = helper.make_graph(
        [node], "pool_nchwc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * 4)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    found, _ = session(graph, {}, f"MaxPool ({instr.node}), blocked")
    if found is None:
        return None
    reference = instruction_op(instr.op)
    reference_attrs = {**reference.defaults, **attrs}

    def run(args):
        x = np.asarray(args[0], np.float32)
        if x.ndim == 4:
            x = to_blocked(x, block)
        if np.isnan(x.max(initial=-np.inf)):
            return to_blocked(reference.reference(to_plain(x), **reference_attrs), block)
        return _blocked_result(found.run(None, {"x": _as_4d(x)})[0], block)
    return Kernel(run, 0, blocked=True)


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
    return (instruction_op(instr.op).layout_free
            and all(instruction_op(p["op"]).layout_free for p in instr.post)
            and len(instr.outputs) == 1 and all(
                i is not None and i in blocked
                and buffers[i].shape == buffers[instr.outputs[0]].shape for i in reads))
