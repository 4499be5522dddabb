"""Ops that compute nothing: dtype conversion, identity moves, shapes and constants (Range)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..dtypes import ONNX_DTYPES
from ..ir import TensorType
from ._elementwise import Unary
from .registry import DMA, FLOATS, INDEX, Op, const_value, register_op



class _Move(Op):
    """Data movement without compute: any dtype, no arithmetic."""

    engine = DMA
    arithmetic = False
    input_dtypes = None


@register_op("Cast")
class Cast(Op):
    """x converted to the dtype `to`; float to integer truncates toward zero."""

    graph_kernel = "exact"
    arithmetic = False
    input_dtypes = (FLOATS + INDEX + ("int8", "uint8", "bool"),)

    def infer(self, node, types):
        return [TensorType(types[0].shape, ONNX_DTYPES[node.attrs["to"]])]

    def check_attrs(self, node, attrs):
        to = attrs.get("to")
        if to not in ONNX_DTYPES:
            return (f"Cast to={to!r} is not a supported data type; supported: "
                    + ", ".join(f"{k} ({v})" for k, v in ONNX_DTYPES.items() if v != "float64"))
        if ONNX_DTYPES[to] == "float64":
            return "Cast to float64 (to=11): the NeuronCore has no float64; cast to float32 instead"
        return None

    def reference(self, x, to, **_):
        target = ONNX_DTYPES[to]
        if target in (dtypes.FP16, dtypes.BF16):
            # reduced-precision values live in float32 containers, rounded like the hardware
            return dtypes.round_to(x.astype(np.float32, copy=False), target)
        with np.errstate(invalid="ignore"):   # NaN and out-of-range floats to int: as in C
            return x.astype(dtypes.to_numpy(target), copy=False)

    def graph(self, b, inputs, attrs, outputs):
        from onnx import TensorProto
        target = ONNX_DTYPES[attrs["to"]]
        if target in (dtypes.FP16, dtypes.BF16):  # rounded, in a float32 container
            low, = b.node("Cast", inputs, attrs)
            return b.node("Cast", [low], {"to": TensorProto.FLOAT})
        if dtypes.is_float(target):
            return b.node("Cast", inputs, {"to": TensorProto.FLOAT})
        return b.node("Cast", inputs, attrs)


@register_op("Identity")
class Identity(_Move, Unary):
    """The input, unchanged."""

    pass_through = True
    graph_kernel = "exact"
    exact = True

    def reference(self, x):
        return x


@register_op("Dropout")
class Dropout(_Move):
    """Inference-mode dropout: the input unchanged, and an all-true mask as optional output 1."""

    pass_through = True
    graph_kernel = "exact"

    def infer(self, node, types):
        mask = TensorType(types[0].shape, "bool")
        return [types[0], mask][:len(node.outputs)]

    def check_attrs(self, node, attrs):
        mode = node.input(2)
        if mode is not None and (not mode.is_const or bool(mode.const)):
            return (f"Dropout %{node.name} in training mode (training_mode input %{mode.name} is "
                    "not a constant false) is not supported; export the model in eval mode")
        return None

    def reference(self, x, ratio=None, training_mode=None, seed=None):
        return x, np.broadcast_to(np.True_, x.shape)


@register_op("Shape")
class Shape(_Move):
    """The input's shape as int64, sliced by `start` and `end` (opset 15)."""

    graph_kernel = "exact"
    defaults = {"start": 0, "end": None}

    def infer(self, node, types):
        attrs = self.attrs(node)
        dims = range(types[0].rank)[attrs["start"]:attrs["end"]]
        return [TensorType((len(dims),), "int64")]

    def reference(self, x, start, end):
        return np.array(x.shape[start:end], dtype=np.int64)


def _constant_array(attrs: dict) -> np.ndarray:
    """The value of a Constant from whichever of its value attributes is set."""
    if "value" in attrs:
        return np.asarray(attrs["value"])
    if "value_float" in attrs:
        return np.array(attrs["value_float"], dtype=np.float32)
    if "value_floats" in attrs:
        return np.array(attrs["value_floats"], dtype=np.float32)
    if "value_int" in attrs:
        return np.array(attrs["value_int"], dtype=np.int64)
    if "value_ints" in attrs:
        return np.array(attrs["value_ints"], dtype=np.int64)
    raise KeyError(f"Constant has none of the attributes value, value_float(s), value_int(s); "
                   f"it has {sorted(attrs)}")


@register_op("Constant")
class Constant(_Move):
    """A tensor given by one of the attributes value, value_float(s), value_int(s)."""

    def infer(self, node, types):
        value = _constant_array(node.attrs)
        return [TensorType(value.shape, value.dtype)]

    def check_attrs(self, node, attrs):
        for name in ("sparse_value", "value_string", "value_strings"):
            if name in attrs:
                return f"Constant with attribute {name!r} is not supported; give a numeric value"
        return None

    def reference(self, **attrs):
        return _constant_array(attrs)


@register_op("ConstantOfShape")
class ConstantOfShape(_Move):
    """A tensor of the constant input shape filled with the one-element `value` (float32 0)."""

    defaults = {"value": np.zeros(1, dtype=np.float32)}
    static_inputs = (0,)

    def infer(self, node, types):
        shape = tuple(int(d) for d in const_value(node, 0))
        return [TensorType(shape, np.asarray(self.attrs(node)["value"]).dtype)]

    def reference(self, shape, value):
        value = np.asarray(value)
        return np.full(tuple(int(d) for d in shape), value.reshape(-1)[0], dtype=value.dtype)


@register_op("Range")
class Range(_Move):
    """start, start + delta, ... up to (not including) limit, from three constant scalars."""

    static_inputs = (0, 1, 2)

    def infer(self, node, types):
        start, limit, delta = (const_value(node, i) for i in range(3))
        return [TensorType((_range_length(start, limit, delta),), types[0].dtype)]

    def reference(self, start, limit, delta):
        n = _range_length(start, limit, delta)
        start, delta = np.ravel(start)[0], np.ravel(delta)[0]
        return (start + np.arange(n, dtype=np.asarray(delta).dtype) * delta).astype(start.dtype)


def _range_length(start, limit, delta) -> int:
    start, limit, delta = (np.ravel(v)[0] for v in (start, limit, delta))
    if delta == 0:
        raise ValueError("Range delta is 0")
    return max(int(np.ceil((limit - start) / delta)), 0)
