"""Helpers the TensorFlow conversion rules share: attributes, constants, and the NHWC <-> NCHW
layout bookkeeping.

TensorFlow's CPU graphs are NHWC; the core ops follow ONNX and are NCHW. Converting each spatial op
with a transpose on both sides would put two transposes between every pair of convolutions, so the
converter remembers, for each NHWC value a spatial op produced, the NCHW value it came from
(`TFConverter.nchw`). Layout-neutral ops (elementwise, BiasAdd, channel Concat, Pad, ...) work on
that NCHW form and publish an NCHW result in turn. The NHWC transpose of each result is still
emitted, because TensorFlow code outside a compiled region may read it; when nothing reads it, the
graph pruning removes it.
"""
from __future__ import annotations

import functools

import numpy as np

from neuron_core.bridge import Converter, Unsupported
from neuron_core.dtypes import ONNX_CODES
from neuron_core.ir import Value

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)
#: NHWC axis -> NCHW axis
NHWC_AXIS = (0, 2, 3, 1)


class TFConverter(Converter):
    """A Converter that also tracks the NCHW form of NHWC image values."""

    def __init__(self, table, graph_name: str = "main"):
        super().__init__(table, graph_name)
        self.nchw: dict[int, tuple[Value, Value]] = {}   # id(NHWC value) -> (NHWC, NCHW)


def rule(table, *names: str):
    """Register a rule under `names`; its inputs must have static shapes (else it stays on TF),
    and errors from malformed graphs become host fallbacks with the reason."""
    def deco(fn):
        @functools.wraps(fn)
        def wrapped(cv, *args, **kwargs):
            for i, a in enumerate(args):
                if isinstance(a, Value) and (a.type is None or not a.type.is_static):
                    raise Unsupported(f"input {i} ({a.name}) has no static shape; give static "
                                      "input shapes (model_shape_feed_dict / example inputs)")
            try:
                return fn(cv, *args, **kwargs)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise Unsupported(f"cannot convert: {type(exc).__name__}: {exc}") from None
        table.register(*names)(wrapped)
        return wrapped
    return deco


def attr(cv, name: str, default=None):
    """Attribute `name` of the TF op being converted (bytes decoded to str)."""
    try:
        value = cv.node.get_attr(name)
    except ValueError:
        return default
    if isinstance(value, bytes):
        return value.decode()
    return value


def data_format(cv) -> str:
    fmt = attr(cv, "data_format", "NHWC")
    if fmt not in ("NHWC", "NCHW"):
        raise Unsupported(f"data_format={fmt!r} is not supported (NHWC or NCHW)")
    return fmt


def const(v: Value, what: str = "input") -> np.ndarray:
    """The constant array behind `v`, or Unsupported naming what had to be constant."""
    if not isinstance(v, Value) or not v.is_const:
        raise Unsupported(f"{what} must be a constant (after folding) to run on Neuron")
    return v.const


def ints(cv, values, dtype=np.int64) -> Value:
    return cv.const(np.asarray(list(values), dtype=dtype))


def onnx_dtype(tf_dtype) -> int:
    """The ONNX dtype code (Cast's `to`) of a tf.DType."""
    name = np.dtype(tf_dtype.as_numpy_dtype).name if hasattr(tf_dtype, "as_numpy_dtype") \
        else str(tf_dtype)
    if tf_dtype.name == "bfloat16":
        name = "bfloat16"
    if name not in ONNX_CODES:
        raise Unsupported(f"dtype {name} has no NeuronCore form")
    return ONNX_CODES[name]


# -- layout -----------------------------------------------------------------------------------------
def has_nchw(cv, v) -> bool:
    entry = cv.nchw.get(id(v)) if isinstance(v, Value) else None
    return entry is not None and entry[0] is v


def nchw(cv, v: Value) -> Value:
    """The NCHW form of a rank-4 NHWC value (its producer's, or a transpose)."""
    if has_nchw(cv, v):
        return cv.nchw[id(v)][1]
    return cv.op("Transpose", [v], {"perm": list(TO_NCHW)})


def publish(cv, y: Value) -> Value:
    """The NHWC value TensorFlow sees for an NCHW result `y`, remembering `y` as its NCHW form."""
    out = cv.op("Transpose", [y], {"perm": list(TO_NHWC)})
    cv.nchw[id(out)] = (out, y)
    return out


def const_nchw(cv, v: Value) -> Value:
    """A constant operand broadcast against an NHWC rank-4 value, moved to NCHW."""
    arr = const(v)
    if arr.ndim > 4:
        raise Unsupported("operand of rank > 4 against an image value")
    arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape)
    return cv.const(np.ascontiguousarray(np.transpose(arr, TO_NCHW)))


def spatial_pads(in_hw, kernel, strides, dilations, padding: str, explicit=None) -> list:
    """ONNX pads [top, left, bottom, right] for TF padding SAME / VALID / EXPLICIT."""
    if padding == "VALID":
        return [0, 0, 0, 0]
    if padding == "EXPLICIT":
        e = list(explicit)
        return [e[0], e[2], e[1], e[3]]
    if padding != "SAME":
        raise Unsupported(f"padding={padding!r} is not supported")
    lo, hi = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        lo.append(total // 2)
        hi.append(total - total // 2)
    return lo + hi


def spatial(values, fmt: str) -> list:
    """The H and W entries of a 4-entry TF attribute (strides, ksize, dilations)."""
    values = list(values)
    return values[1:3] if fmt == "NHWC" else values[2:4]
