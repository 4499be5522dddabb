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

_VERDICTS: dict = {}


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
    if key not in _VERDICTS:
        _VERDICTS[key] = _probe(op_type, attrs, constants, storage, to)
        log.debug("graph kernel of %s %s on %s inputs: %s", op_type, attrs, storage,
                  "matches the reference" if _VERDICTS[key] else "differs; the reference runs it")
    return _VERDICTS[key]


def _probe(op_type: str, attrs: dict, constants: list, storage: str, to: str) -> bool:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from ..ops import get_op
    from .graph import OPSET, Builder
    x = stored_values(storage)
    b = Builder(None, [], None)
    inputs = ["x"] + [b.const(np.asarray(c, np.float32), "k") for c in constants]
    out, = get_op(op_type).graph(b, inputs, attrs, 1)
    from .kernels import _external
    graph = helper.make_graph(
        b.nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [x.size])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [_external(n, a) for n, a in b.weights.items()] + b.embedded)
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
