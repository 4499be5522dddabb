"""Scans along one axis, on the VectorEngine: CumSum."""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from ._movement import norm_axis
from .registry import (FLOATS, INDEX, VECTOR_ENGINE, Cost, Op, const_value, io_bytes,
                       register_op)


@register_op("CumSum")
class CumSum(Op):
    """Running sum of x along the constant `axis` input; `exclusive` leaves out the element itself,
    `reverse` sums from the end."""

    engine = VECTOR_ENGINE
    defaults = {"exclusive": 0, "reverse": 0}
    input_dtypes = (FLOATS + INDEX, INDEX)
    static_inputs = (1,)

    def infer(self, node, types):
        if const_value(node, 1) is None:
            raise ValueError("CumSum needs a constant axis input")
        norm_axis(np.ravel(const_value(node, 1))[0], types[0].rank)
        return [TensorType(types[0].shape, types[0].dtype)]

    def reference(self, x, axis, exclusive=0, reverse=0):
        a = norm_axis(np.ravel(axis)[0], x.ndim)
        y = np.flip(x, a) if reverse else x
        out = np.cumsum(y, axis=a, dtype=x.dtype)
        if exclusive:
            out = np.concatenate([np.zeros_like(np.take(out, [0], axis=a)),
                                  np.take(out, np.arange(x.shape[a] - 1), axis=a)], axis=a)
        return np.ascontiguousarray(np.flip(out, a) if reverse else out)

    def cost(self, node):
        x = node.inputs[0].type
        return Cost(x.numel if x.is_static else 0, io_bytes(node))
