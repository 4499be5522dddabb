"""Shared base of the data-movement families (shape.py, tensor.py): ops that move or view data
without arithmetic, exact on every dtype, placed on the DMA queues.

Shape helpers here raise ValueError; `infer_node` turns it into a ShapeInferenceError that names the
node, and at run time it is the natural error of a bad shape.
"""
from __future__ import annotations

import math

import numpy as np

from ..ir import TensorType
from .registry import DMA, FLOATS, INDEX, Op, const_value

#: dtypes a data input of a movement op accepts
DATA = FLOATS + INDEX + ("bool",)


def ints(array) -> list[int]:
    """A constant shape parameter (any int array or scalar) as Python ints."""
    return [int(v) for v in np.ravel(array)]


def norm_axis(axis, rank: int) -> int:
    """`axis` in [0, rank); ONNX negative axes count from the end."""
    axis = int(axis)
    if not -rank <= axis < rank:
        raise ValueError(f"axis {axis} is out of range for a rank-{rank} tensor")
    return axis % rank


def norm_axes(axes, rank: int) -> list[int]:
    """Several axes normalized by `norm_axis`; a repeated axis is an error."""
    out = [norm_axis(a, rank) for a in ints(axes)]
    if len(set(out)) != len(out):
        raise ValueError(f"axes {ints(axes)} repeat an axis of a rank-{rank} tensor")
    return out


def dim_product(dims) -> int | str:
    """The product of dims; with one symbolic dim "N" it is "N" or "N*k", more is too complex."""
    symbols = [d for d in dims if isinstance(d, str)]
    k = math.prod(d for d in dims if not isinstance(d, str))
    if not symbols or k == 0:
        return k
    if len(symbols) > 1:
        raise ValueError(f"the product of symbolic dims {symbols} is not supported; give static "
                         "input shapes with --io-config or example inputs")
    return symbols[0] if k == 1 else f"{symbols[0]}*{k}"


def static_dim(dim, what: str) -> int:
    """`dim` when it is known; a symbolic dim cannot be cut, split or padded."""
    if isinstance(dim, str):
        raise ValueError(f"{what} has the symbolic size {dim!r}; give static input shapes with "
                         "--io-config or example inputs")
    return dim


class Movement(Op):
    """Data movement: exact, dtype-preserving; the output shape follows from the first input's
    shape, the constant shape-parameter inputs (`static_inputs`) and the attributes."""

    graph_kernel = "exact"
    engine = DMA
    arithmetic = False
    exact = True
    input_dtypes = (DATA, None)

    def params(self, node) -> list:
        """The constant arrays at the static input positions (None where absent)."""
        return [const_value(node, i) for i in self.static_inputs]

    def out_shape(self, shape: tuple, *params, **attrs) -> tuple:
        raise NotImplementedError(f"{self.name} does not define out_shape()")

    def infer(self, node, types):
        shape = self.out_shape(types[0].shape, *self.params(node), **self.attrs(node))
        return [TensorType(shape, types[0].dtype)]


class View(Movement):
    """A reshape of the data: the elements keep their order, only the shape changes."""

    timing = "view"

    def reference(self, x, *params, **attrs):
        return x.reshape(self.out_shape(x.shape, *params, **attrs))
