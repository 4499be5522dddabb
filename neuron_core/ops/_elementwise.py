"""Shared bases of the elementwise families: Unary (one input, same shape), Binary and Variadic
(numpy/ONNX multidirectional broadcasting)."""
from __future__ import annotations

import numpy as np

from .. import dtypes
from ..errors import ShapeInferenceError
from ..ir import TensorType
from .registry import SCALAR_ENGINE, VECTOR_ENGINE, Op


def broadcast_shapes(*shapes) -> tuple:
    """ONNX multidirectional broadcasting; symbolic dims broadcast with 1 or with themselves."""
    rank = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (rank - len(s)) + tuple(s) for s in shapes]):
        known = {d for d in dims if d != 1}
        if len(known) > 1:
            raise ShapeInferenceError(f"shapes {', '.join(str(list(s)) for s in shapes)} do not "
                                      "broadcast")
        out.append(known.pop() if known else 1)
    return tuple(out)


class Unary(Op):
    """One float input, one output of the same type."""

    engine = SCALAR_ENGINE

    def infer(self, node, types):
        return [types[0]]


class Binary(Op):
    """Two inputs broadcast together; the output has the inputs' dtype."""

    engine = VECTOR_ENGINE

    def infer(self, node, types):
        a, b = types[0], types[1]
        return [TensorType(broadcast_shapes(a.shape, b.shape), a.dtype)]


class Compare(Binary):
    """Two inputs broadcast together; the output is a boolean mask."""

    input_dtypes = (("float32", "float16", "bfloat16", "int64", "int32"),)

    def infer(self, node, types):
        a, b = types[0], types[1]
        return [TensorType(broadcast_shapes(a.shape, b.shape), "bool")]


class Variadic(Op):
    """Any number of inputs broadcast together (Sum, Mean, Max, Min)."""

    engine = VECTOR_ENGINE

    def infer(self, node, types):
        return [TensorType(broadcast_shapes(*(t.shape for t in types)), types[0].dtype)]


def f32(x):
    """Compute in float32 whatever the container; integers stay integers."""
    return x if x.dtype != np.float64 else x.astype(np.float32)


#: below this many elements a function is cheaper to evaluate than its table is to look up
TABLE_MIN_SIZE = 4096
_TABLES: dict = {}


def via_bf16_table(fn, x: np.ndarray, key=None) -> np.ndarray:
    """`fn(x)` for an elementwise float32 function, read from a table of `fn` over all 65536
    bfloat16 bit patterns when every element of `x` is exactly a bfloat16 value (as activations
    stored in BF16 are). Bit-identical to `fn(x)`; the table is built once per `key` (default:
    `fn` itself), which must name the function and every parameter it depends on."""
    if x.dtype != np.float32 or x.size < TABLE_MIN_SIZE:
        return fn(x)
    key = fn if key is None else key
    table = _TABLES.get(key)
    if table is None:
        with np.errstate(all="ignore"):
            table = np.asarray(fn((np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32)),
                               np.float32)
        _TABLES[key] = table
    found = dtypes.bf16_lookup(x, table)
    return fn(x) if found is None else found
