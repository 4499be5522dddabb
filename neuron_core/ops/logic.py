"""Comparisons, boolean masks, float tests (IsNaN, IsInf) and selection, run on the VectorEngine."""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..ir import TensorType
from ._elementwise import Binary, Compare, Unary, broadcast_shapes
from .registry import FLOATS, INDEX, VECTOR_ENGINE, register_op

BOOL = ("bool",)


@register_op("Where")
class Where(Binary):
    """x where cond else y, all three broadcast together."""

    graph_kernel = "exact"
    exact = True
    input_dtypes = (BOOL, FLOATS + INDEX)

    def infer(self, node, types):
        cond, x, y = types
        return [TensorType(broadcast_shapes(cond.shape, x.shape, y.shape), x.dtype)]

    def reference(self, cond, x, y):
        return np.where(cond, x, y)


class _Mask(Compare):
    """A boolean mask from two broadcast inputs by exactly one numpy ufunc."""

    graph_kernel = "exact"
    fn: ClassVar[np.ufunc]

    def reference(self, a, b):
        return self.fn(a, b)


@register_op("Equal")
class Equal(_Mask):
    """a == b, broadcast, as a boolean mask."""

    input_dtypes = (FLOATS + INDEX + BOOL,)
    fn = np.equal


@register_op("Less")
class Less(_Mask):
    """a < b, broadcast, as a boolean mask."""

    fn = np.less


@register_op("Greater")
class Greater(_Mask):
    """a > b, broadcast, as a boolean mask."""

    fn = np.greater


@register_op("LessOrEqual")
class LessOrEqual(_Mask):
    """a <= b, broadcast, as a boolean mask."""

    fn = np.less_equal


@register_op("GreaterOrEqual")
class GreaterOrEqual(_Mask):
    """a >= b, broadcast, as a boolean mask."""

    fn = np.greater_equal


@register_op("Not")
class Not(Unary):
    """Logical not of a boolean mask."""

    graph_kernel = "exact"
    engine = VECTOR_ENGINE
    input_dtypes = (BOOL,)

    def reference(self, x):
        return np.logical_not(x)


@register_op("And")
class And(_Mask):
    """Logical and of two boolean masks, broadcast."""

    input_dtypes = (BOOL,)
    fn = np.logical_and


@register_op("Or")
class Or(_Mask):
    """Logical or of two boolean masks, broadcast."""

    input_dtypes = (BOOL,)
    fn = np.logical_or


class _FloatTest(Unary):
    """A boolean mask of the float elements that pass a test."""

    graph_kernel = "exact"
    engine = VECTOR_ENGINE
    input_dtypes = (FLOATS,)

    def infer(self, node, types):
        return [TensorType(types[0].shape, "bool")]


@register_op("IsNaN")
class IsNaN(_FloatTest):
    """Whether each element is NaN (exporters write it into masked attention)."""

    def reference(self, x):
        return np.isnan(x)


@register_op("IsInf")
class IsInf(_FloatTest):
    """Whether each element is +inf (unless detect_positive=0) or -inf (unless
    detect_negative=0)."""

    defaults = {"detect_negative": 1, "detect_positive": 1}

    def reference(self, x, detect_negative=1, detect_positive=1):
        return (np.isposinf(x) & bool(detect_positive)) | (np.isneginf(x) & bool(detect_negative))
