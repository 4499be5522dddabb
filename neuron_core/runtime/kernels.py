"""Host kernels for TensorEngine instructions (Conv, ConvTranspose, MatMul, Gemm).

The functional model of a matmul or convolution is "fp32 products of the stored operands, summed in
fp32" (bf16 x bf16 and fp16 x fp16 products are exact in fp32). Any fp32 GEMM computes that, up to
summation order; what differs is speed. NumPy's BLAS sees the weights anew at every call, while
onnxruntime's CPU kernels pack a constant weight once into the layout its GEMM and convolution loops
want. So each TensorEngine instruction runs as a one-node onnxruntime session: its weights, as
stored on the device, are initializers; its other operands (an attention matmul's two activations)
are inputs. Keeping every matmul off NumPy also keeps OpenBLAS's threads, which spin after each
call, from taking a core from the sessions' pools.

The bias add and a Relu that open the epilogue go with it (onnxruntime computes them in fp32, as the
executor does). Every other epilogue op, and the rounding to the output's storage dtype, stays with
the executor, so the cast points are the same as with the reference kernels.

`NEURON_SIM_KERNELS=reference` (or `runtime.load(..., kernels="reference")`) runs every instruction on
the ops' own NumPy references instead: the independent oracle the fast kernels are tested against.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from .. import dtypes
from ..errors import NeuronError

log = logging.getLogger("Neuron")

KERNELS = ("fast", "reference")

#: the TensorEngine instructions onnxruntime's kernels compute with the same (ONNX) semantics
_PE_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
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


def pe_kernel(instr, buffers: list, constants: list):
    """A fast kernel for TensorEngine instruction `instr`, or None (onnxruntime absent, an operand
    that is not float32, or a case its kernels do not take).

    Returns (run, absorbed): `run(args)` gives the instruction's fp32 result after its first
    `absorbed` epilogue ops, or None when an argument is not a float32 array (the reference then
    runs it). `constants[i]` is buffer i's array on the device if it is a weight, else None; weights
    become initializers, every other operand an input of the session.
    """
    if instr.op not in _PE_OPS:
        return None
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
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    options = _session_options(ort)
    values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) for a in weights.values()]
    if weights:
        options.add_external_initializers(list(weights), values)
    try:
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # a case the kernel library does not take: the reference runs it
        log.debug("no fast kernel for %s (%s): %s", instr.op, instr.node, exc)
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
