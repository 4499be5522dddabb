"""Reductions over a set of axes (opset 18: `axes` is the optional constant input 1), on the
VectorEngine."""
from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

from ..ir import TensorType
from .registry import FLOATS, INDEX, Cost, Op, const_value, io_bytes, register_op


class _Reduce(Op):
    """Shared base: axes from input 1 (absent or empty = all axes, or none with
    noop_with_empty_axes=1), keepdims keeps the reduced axes as size 1."""

    defaults = {"keepdims": 1, "noop_with_empty_axes": 0}
    static_inputs = (1,)
    #: the numpy reduction, called as fn(x, axis=axes, keepdims=keepdims)
    fn: ClassVar[Callable]

    @staticmethod
    def _axes(axes, rank: int, noop_with_empty_axes: int) -> tuple:
        if axes is None or len(axes) == 0:
            return () if noop_with_empty_axes else tuple(range(rank))
        axes = [int(a) for a in np.ravel(axes)]
        if any(not -rank <= a < rank for a in axes):
            raise ValueError(f"axes {axes} are out of range for rank {rank}")
        return tuple(sorted({a % rank for a in axes}))

    def infer(self, node, types):
        attrs = self.attrs(node)
        x = types[0]
        axes = self._axes(const_value(node, 1), x.rank, attrs["noop_with_empty_axes"])
        if attrs["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return [TensorType(shape, x.dtype)]

    def reference(self, x, axes=None, keepdims=1, noop_with_empty_axes=0):
        axes = self._axes(axes, x.ndim, noop_with_empty_axes)
        if not axes:
            return x
        return self.fn(x, axis=axes, keepdims=bool(keepdims))

    def cost(self, node):
        # a reduction works on every input element, not on each (fewer) output element
        x = node.inputs[0].type
        return Cost(self.flops_per_element * x.numel if x.is_static else 0, io_bytes(node))


@register_op("ReduceSum")
class ReduceSum(_Reduce):
    """Sum over `axes`."""

    graph_kernel = "summed"
    input_dtypes = (FLOATS + INDEX,)
    fn = staticmethod(np.sum)


@register_op("ReduceMean")
class ReduceMean(_Reduce):
    """Mean over `axes`."""

    graph_kernel = "summed"
    fn = staticmethod(np.mean)


def _bound(dtype: np.dtype, high: bool):
    """The identity of max (high=False) or min (high=True) for `dtype`: what an empty set gives."""
    if dtype.kind == "b":
        return high
    if dtype.kind == "f":
        return np.inf if high else -np.inf
    info = np.iinfo(dtype)
    return info.max if high else info.min


def _extremum(fn, high: bool):
    def reduce(x, axis, keepdims):
        if x.size == 0:  # ONNX: an empty set reduces to the identity, not an error
            return fn(x, axis=axis, keepdims=keepdims, initial=_bound(x.dtype, high))
        return fn(x, axis=axis, keepdims=keepdims)
    return staticmethod(reduce)


@register_op("ReduceMax")
class ReduceMax(_Reduce):
    """Maximum over `axes`."""

    input_dtypes = (FLOATS + INDEX,)
    fn = _extremum(np.max, high=False)


@register_op("ReduceMin")
class ReduceMin(_Reduce):
    """Minimum over `axes`."""

    input_dtypes = (FLOATS + INDEX,)
    fn = _extremum(np.min, high=True)


@register_op("ReduceProd")
class ReduceProd(_Reduce):
    """Product over `axes`."""

    fn = staticmethod(np.prod)


@register_op("ReduceL2")
class ReduceL2(_Reduce):
    """sqrt(sum(x^2)) over `axes`."""

    flops_per_element = 2

    @staticmethod
    def fn(x, axis, keepdims):
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
