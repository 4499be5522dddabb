"""Matrix products on the TensorEngine: MatMul (numpy semantics) and Gemm."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeInferenceError
from ..ir import TensorType
from ._elementwise import broadcast_shapes
from .registry import TENSOR_ENGINE, Cost, Op, io_bytes, register_op, to_f32


def _contract(a, b) -> tuple:
    """(batch, m, k, n) of a @ b for numpy matmul shapes (1-D operands are promoted)."""
    a2 = (1, a[0]) if len(a) == 1 else tuple(a)
    b2 = (b[0], 1) if len(b) == 1 else tuple(b)
    ka, kb = a2[-1], b2[-2]
    if isinstance(ka, int) and isinstance(kb, int) and ka != kb:
        raise ShapeInferenceError(f"matmul of {list(a)} by {list(b)}: inner dimensions "
                                  f"{ka} != {kb}")
    return broadcast_shapes(a2[:-2], b2[:-2]), a2[-2], ka, b2[-1]


@register_op("MatMul")
class MatMul(Op):
    """Matrix product with numpy semantics: 1-D operands promoted, batch dims broadcast."""

    fast_kernels = ("gemm", "session")
    graph_kernel = "summed"
    engine = TENSOR_ENGINE

    def infer(self, node, types):
        a, b = types[0], types[1]
        batch, m, _, n = _contract(a.shape, b.shape)
        shape = batch + ((m,) if a.rank > 1 else ()) + ((n,) if b.rank > 1 else ())
        return [TensorType(shape, a.dtype)]

    def shares_stationary(self, attrs, stationary_shape):
        return len(stationary_shape) <= 2  # a weight matrix: every batch row meets the same one

    def reference(self, a, b):
        return np.matmul(to_f32(a), to_f32(b)).astype(a.dtype, copy=False)

    def cost(self, node):
        batch, m, k, n = _contract(node.inputs[0].type.shape, node.inputs[1].type.shape)
        count = math.prod(batch)
        return Cost(2 * count * m * k * n, io_bytes(node), (count, m, k, n))


@register_op("Gemm")
class Gemm(Op):
    """alpha * A' @ B' + beta * C for 2-D A, B (optionally transposed) and broadcast C."""

    fast_kernels = ("session",)
    graph_kernel = "summed"
    engine = TENSOR_ENGINE
    defaults = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}

    def _mkn(self, node) -> tuple:
        attrs = self.attrs(node)
        a, b = node.inputs[0].type.shape, node.inputs[1].type.shape
        m, ka = (a[1], a[0]) if attrs["transA"] else a
        kb, n = (b[1], b[0]) if attrs["transB"] else b
        if isinstance(ka, int) and isinstance(kb, int) and ka != kb:
            raise ShapeInferenceError(f"Gemm of {list(a)} by {list(b)} (transA={attrs['transA']}, "
                                      f"transB={attrs['transB']}): inner dimensions {ka} != {kb}")
        return m, ka, n

    def infer(self, node, types):
        m, _, n = self._mkn(node)
        if types[2:3] and types[2] is not None:
            broadcast_shapes((m, n), types[2].shape)
        return [TensorType((m, n), types[0].dtype)]

    def reference(self, a, b, c=None, *, alpha=1.0, beta=1.0, transA=0, transB=0):
        a32, b32 = to_f32(a), to_f32(b)
        y = np.matmul(a32.T if transA else a32, b32.T if transB else b32)
        if alpha != 1.0:
            y *= np.float32(alpha)
        if c is not None and beta != 0.0:
            y += to_f32(c) if beta == 1.0 else np.float32(beta) * to_f32(c)
        return y.astype(a.dtype, copy=False)

    def cost(self, node):
        m, k, n = self._mkn(node)
        return Cost(2 * m * k * n, io_bytes(node), (1, m, k, n))
