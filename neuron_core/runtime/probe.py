"""What this machine's onnxruntime computes, found by running it: whether a "probed" op's kernel
gives the reference's bits on every value a stored input can hold.

An activation stored in bfloat16 (or float16) holds one of 65,536 bit patterns, so one run over all
of them decides, for this CPU and this onnxruntime, whether the graph kernel of an elementwise
function can stand for the reference: they must agree on every rounded output (a NaN may be any
NaN: its sign and payload are not part of the numerics). onnxruntime's vectorised functions differ
between instruction sets (AVX2, AVX-512), hence a probe rather than a list.
"""
from __future__ import annotations

import json
import logging

import numpy as np

from .. import dtypes

log = logging.getLogger("Neuron")


def _verdicts() -> dict:
    """What the probes found on this CPU, kept by the process's runtime (runtime/context.py)."""
    from .context import default
    return default().memo("probe.verdicts")


def stored_values(storage: str) -> np.ndarray:
    """Every value of `storage` (bfloat16 or float16), as float32."""
    bits = np.arange(1 << 16, dtype=np.uint32)
    if storage == dtypes.BF16:
        return (bits << 16).view(np.float32)
    return bits.astype(np.uint16).view(np.float16).astype(np.float32)


def same_numbers(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: the same bits, or both NaN."""
    return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))


def matches_reference(op_type: str, attrs: dict, constants: list, storage: str, to: str) -> bool:
    """Whether onnxruntime's `op_type` with `attrs` (and single-value operands `constants` after the
    first input) gives the reference's result on every `storage` value, both rounded to `to`."""
    key = (op_type, json.dumps(attrs, sort_keys=True, default=str),
           tuple(float(c.reshape(-1)[0]) for c in constants), storage, to)
    verdicts = _verdicts()
    if key not in verdicts:
        verdicts[key] = _probe(op_type, attrs, constants, storage, to)
        log.debug("graph kernel of %s %s on %s inputs: %s", op_type, attrs, storage,
                  "matches the reference" if verdicts[key] else "differs; the reference runs it")
    return verdicts[key]


def _probe(op_type: str, attrs: dict, constants: list, storage: str, to: str) -> bool:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from ..ops import get_op
    from .graph import OPSET, Builder
    x = stored_values(storage)
    b = Builder(None, [], None)
    inputs = ["x"] + [b.const(np.asarray(c, np.float32), "k") for c in constants]
    out, = get_op(op_type).graph(b, inputs, attrs, 1)
    from .kernels.session import external
    graph = helper.make_graph(
        b.nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [external(n, a) for n, a in b.weights.items()] + b.embedded)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    values = [ort.OrtValue.ortvalue_from_numpy(a) for a in b.weights.values()]
    if b.weights:
        options.add_external_initializers(list(b.weights), values)
    try:
        session = ort.InferenceSession(model.SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        got = np.asarray(session.run(None, {"x": x})[0], np.float32)
    except Exception as exc:  # noqa: BLE001 - a kernel it does not have cannot stand in
        log.debug("no graph kernel for %s: %s", op_type, exc)
        return False
    op = get_op(op_type)
    with np.errstate(all="ignore"):
        expected = np.asarray(op.run(attrs, [x.copy()] + [np.asarray(c) for c in constants])[0],
                              np.float32)
        got, expected = _round(got, to), _round(expected, to)
    return got.shape == expected.shape and bool(same_numbers(got, expected).all())


def _round(x: np.ndarray, to: str) -> np.ndarray:
    import ml_dtypes
    narrow = ml_dtypes.bfloat16 if to == dtypes.BF16 else np.float16
    return x.astype(narrow).astype(np.float32)


#: the values whose Relu distinguishes one max from another: NaNs of both signs and of other
#: payloads, signed zeros, subnormals, normals, the largest finite values and infinities
SPECIAL = np.array([np.nan, -np.nan, -0.0, 0.0, 1e-40, -1e-40, 0.5, -0.5, 7.0, -7.0, 3.4e38,
                    -3.4e38, np.inf, -np.inf], np.float32)
SPECIAL_BITS = np.array([0x7FC00001, 0xFFFFFFFF, 0x7F800001, 0x7FBFFFFF], np.uint32)


def fused_relu_holds(block: int) -> bool:
    """Whether the Relu that onnxruntime's blocked convolutions apply in their kernel gives
    np.maximum(x, 0)'s bits (a NaN stays a NaN, -0 and negatives become +0) in each of their
    kernels on this CPU: NCHW input, pointwise, 3x3 and depthwise. The kernels are written per
    instruction set, and a SIMD max returns its second operand when the first is a NaN, so the
    order of the operands decides; hence a probe."""
    key = ("fused relu", block)
    verdicts = _verdicts()
    if key not in verdicts:
        try:
            verdicts[key] = _probe_fused_relu(block)
        except Exception as exc:  # noqa: BLE001 - a kernel that cannot be built cannot be used
            log.debug("fused Relu probe failed: %s", exc)
            verdicts[key] = False
        log.debug("blocked convolutions' fused Relu %s", "matches np.maximum"
                  if verdicts[key] else "differs; a Relu of its own runs after them")
    return verdicts[key]


def _probe_fused_relu(block: int, activation: str = "Relu", params: list | None = None) -> bool:
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from .kernels.blocked import NCHWC, block_filter
    fused = {"activation": activation}
    if params is not None:
        fused["activation_params"] = params
    values = np.concatenate([SPECIAL, SPECIAL_BITS.view(np.float32)])
    n = values.size
    # the values sit in channel 0, three columns apart (zeros between, zero in the other
    # channels), so that every filter below gives back exactly the value at a window's centre
    width = 3 * n
    x = np.zeros((1, block, 1, width), np.float32)
    x[0, 0, 0, 1::3] = values
    centre = np.zeros((block, block, 1, 3), np.float32)
    centre[np.arange(block), np.arange(block), 0, 1] = 1
    filters = {"pointwise": (np.eye(block, dtype=np.float32).reshape(block, block, 1, 1), 1, {}),
               "direct": (centre, 1, {"kernel_shape": [1, 3], "pads": [0, 1, 0, 1]}),
               "depthwise": (np.ones((block, 1, 1, 3), np.float32) * centre[:1, :1], block,
                             {"kernel_shape": [1, 3], "pads": [0, 1, 0, 1], "group": block})}
    nodes = [helper.make_node("ReorderInput", ["x"], ["xb"], domain=NCHWC)]
    weights, outputs = {}, []
    for name, (w, group, attrs) in filters.items():
        weights[f"w_{name}"] = block_filter(w, block, group)
        nodes += [helper.make_node("Conv", ["xb", f"w_{name}"], [f"{name}_b"], domain=NCHWC,
                                   **fused, **attrs),
                  helper.make_node("ReorderOutput", [f"{name}_b"], [name], domain=NCHWC,
                                   channels=block)]
        outputs.append(name)
    # NCHW input (fewer channels than a block): the filter reads channel 0 of 3
    weights["w_nchw"] = block_filter(centre[:, :3].copy(), block, 1)
    nodes += [helper.make_node("Conv", ["x3", "w_nchw"], ["nchw_b"], domain=NCHWC,
                               **fused, kernel_shape=[1, 3], pads=[0, 1, 0, 1]),
              helper.make_node("ReorderOutput", ["nchw_b"], ["nchw"], domain=NCHWC,
                               channels=block)]
    outputs.append("nchw")
    x3 = np.ascontiguousarray(x[:, :3])
    graph = helper.make_graph(
        nodes, "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape)),
         helper.make_tensor_value_info("x3", TensorProto.FLOAT, list(x3.shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(a, k) for k, a in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(NCHWC, 1)])
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    expected = np.maximum(values, np.float32(0))
    for got in session.run(None, {"x": x, "x3": x3}):
        if not same_numbers(np.asarray(got, np.float32)[0, 0, 0, 1::3], expected).all():
            return False
    return True
