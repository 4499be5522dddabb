"""Rewrites of older-opset ONNX nodes into the latest-opset form the IR uses.

Each upgrader takes (attrs, inputs, opset, graph) and returns (op_type, inputs, attrs). Attributes
that later opsets turned into inputs become constant inputs here, so one op implementation serves
opsets 9 to current.
"""
from __future__ import annotations

import numpy as np

_UPGRADERS: dict = {}


def upgrader(*op_types: str):
    def wrap(fn):
        for op in op_types:
            _UPGRADERS[op] = fn
        return fn
    return wrap


def _axes_to_input(graph, attrs, inputs):
    if "axes" in attrs:
        return [inputs[0], graph.add_const("axes", np.asarray(attrs.pop("axes"), np.int64))]
    return inputs


@upgrader("Squeeze", "Unsqueeze")
def _squeeze(attrs, inputs, opset, graph, op_type):
    if opset < 13:
        inputs = _axes_to_input(graph, attrs, inputs)
    return op_type, inputs, attrs


@upgrader("ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSum")
def _reduce(attrs, inputs, opset, graph, op_type):
    if (op_type == "ReduceSum" and opset < 13) or (op_type != "ReduceSum" and opset < 18):
        inputs = _axes_to_input(graph, attrs, inputs)
    return op_type, inputs, attrs


@upgrader("Split")
def _split(attrs, inputs, opset, graph, op_type):
    if opset < 13 and "split" in attrs:
        inputs = [inputs[0], graph.add_const("split", np.asarray(attrs.pop("split"), np.int64))]
    return op_type, inputs, attrs


@upgrader("Clip")
def _clip(attrs, inputs, opset, graph, op_type):
    if opset < 11:
        lo = attrs.pop("min", float(np.finfo(np.float32).min))
        hi = attrs.pop("max", float(np.finfo(np.float32).max))
        inputs = [inputs[0], graph.add_const("clip_min", np.float32(lo)),
                  graph.add_const("clip_max", np.float32(hi))]
    return op_type, inputs, attrs


@upgrader("Pad")
def _pad(attrs, inputs, opset, graph, op_type):
    if opset < 11:
        pads = attrs.pop("pads", attrs.pop("paddings", None))
        value = attrs.pop("value", 0.0)
        inputs = [inputs[0], graph.add_const("pads", np.asarray(pads, np.int64)),
                  graph.add_const("pad_value", np.asarray(value, np.float32))]
    return op_type, inputs, attrs


@upgrader("Slice")
def _slice(attrs, inputs, opset, graph, op_type):
    if opset < 10:
        extra = [graph.add_const(k, np.asarray(attrs.pop(k), np.int64)) if k in attrs else None
                 for k in ("starts", "ends", "axes")]
        inputs = [inputs[0], *extra]
        while inputs[-1] is None:
            inputs.pop()
    return op_type, inputs, attrs


@upgrader("Reshape")
def _reshape(attrs, inputs, opset, graph, op_type):
    if "shape" in attrs:
        inputs = [inputs[0], graph.add_const("shape", np.asarray(attrs.pop("shape"), np.int64))]
    return op_type, inputs, attrs


@upgrader("Upsample")
def _upsample(attrs, inputs, opset, graph, op_type):
    mode = attrs.pop("mode", "nearest")
    mode = "linear" if mode in ("linear", "bilinear") else mode
    if "scales" in attrs:
        scales = graph.add_const("scales", np.asarray(attrs.pop("scales"), np.float32))
    else:
        scales = inputs[1]
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}
    return "Resize", [inputs[0], None, scales], attrs


@upgrader("Resize")
def _resize(attrs, inputs, opset, graph, op_type):
    if opset < 11:  # opset 10: (X, scales) with Upsample semantics
        return _upsample(attrs, inputs, opset, graph, "Upsample")
    return op_type, inputs, attrs


@upgrader("Softmax", "LogSoftmax")
def _softmax(attrs, inputs, opset, graph, op_type):
    # before opset 13 the input was coerced to 2-D at `axis` (default 1); the frontend expands
    # that into Flatten -> op(axis=-1) -> Reshape when the axis is not the last one
    if opset < 13:
        attrs.setdefault("axis", 1)
        attrs["_coerce_2d"] = True
    return op_type, inputs, attrs


@upgrader("BatchNormalization")
def _batchnorm(attrs, inputs, opset, graph, op_type):
    attrs.pop("spatial", None)
    attrs.pop("is_test", None)
    attrs.pop("consumed_inputs", None)
    return op_type, inputs, attrs


@upgrader("Dropout")
def _dropout(attrs, inputs, opset, graph, op_type):
    if opset < 12:
        attrs.pop("ratio", None)
        attrs.pop("is_test", None)
    return op_type, inputs, attrs


@upgrader("Gemm")
def _gemm(attrs, inputs, opset, graph, op_type):
    attrs.pop("broadcast", None)
    return op_type, inputs, attrs


def upgrade(op_type: str, attrs: dict, inputs: list, opset: int, graph):
    """Return (op_type, inputs, attrs) in the latest-opset form."""
    attrs.pop("consumed_inputs", None)
    fn = _UPGRADERS.get(op_type)
    if fn is None:
        return op_type, inputs, attrs
    return fn(attrs, inputs, opset, graph, op_type)
