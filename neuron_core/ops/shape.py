"""Shape ops: reshapes and views (Reshape, Flatten, Squeeze, Unsqueeze), Transpose, Expand, Tile."""
from __future__ import annotations

import math

import numpy as np

from ._elementwise import broadcast_shapes
from ._movement import Movement, View, dim_product, ints, norm_axes
from .registry import PE_TRANSPOSE, register_op


@register_op("Reshape")
class Reshape(View):
    """The data in a new shape: 0 copies the input dim (unless allowzero=1), -1 is inferred."""

    defaults = {"allowzero": 0}
    static_inputs = (1,)

    def out_shape(self, shape, target, allowzero=0, **_):
        target = ints(target)
        if target.count(-1) > 1:
            raise ValueError(f"shape {target} has more than one -1")
        if allowzero and 0 in target and -1 in target:
            raise ValueError(f"shape {target} has both 0 and -1 with allowzero=1")
        if not allowzero and any(d == 0 and i >= len(shape) for i, d in enumerate(target)):
            raise ValueError(f"shape {target} copies (0) a dim beyond the input rank {len(shape)}")
        out = [shape[i] if d == 0 and not allowzero else d for i, d in enumerate(target)]
        if -1 in out:
            out[out.index(-1)] = _fill_dim(shape, [d for d in out if d != -1], target)
        elif all(isinstance(d, int) for d in (*shape, *out)) and math.prod(shape) != math.prod(out):
            raise ValueError(f"cannot reshape {list(shape)} ({math.prod(shape)} elements) to {out}")
        return tuple(out)


def _fill_dim(shape, known, target):
    """The size of the -1 dim: the input's elements over the known output dims; a symbolic input
    dim either reappears (copied) in the output or goes into the -1 dim."""
    symbols = [d for d in shape if isinstance(d, str)]
    for d in known:
        if isinstance(d, str):
            if d not in symbols:
                raise ValueError(f"cannot infer -1 in {target}: symbolic dim {d!r} not in the input")
            symbols.remove(d)
    total = math.prod(d for d in shape if isinstance(d, int))
    part = math.prod(d for d in known if isinstance(d, int))
    if part == 0 or total % part:
        raise ValueError(f"cannot reshape {list(shape)} to {target}: {total} elements do not "
                         f"divide into dims of product {part}")
    return dim_product([*symbols, total // part])


@register_op("Flatten")
class Flatten(View):
    """The data as a matrix: dims before `axis` make the rows, the rest the columns."""

    defaults = {"axis": 1}

    def out_shape(self, shape, axis=1, **_):
        rank = len(shape)
        if not -rank <= axis <= rank:
            raise ValueError(f"axis {axis} is out of range [-{rank}, {rank}]")
        axis = axis + rank if axis < 0 else axis
        return dim_product(shape[:axis]), dim_product(shape[axis:])


@register_op("Squeeze")
class Squeeze(View):
    """The data without the size-1 dims listed in input `axes` (all of them when absent)."""

    static_inputs = (1,)

    def out_shape(self, shape, axes=None, **_):
        if axes is None:
            if any(isinstance(d, str) for d in shape):
                raise ValueError(f"cannot tell which dims of {list(shape)} are 1; give the axes")
            return tuple(d for d in shape if d != 1)
        axes = norm_axes(axes, len(shape))
        for a in axes:
            if shape[a] != 1:
                raise ValueError(f"cannot squeeze axis {a} of size {shape[a]!r} (must be 1)")
        return tuple(d for i, d in enumerate(shape) if i not in axes)


@register_op("Unsqueeze")
class Unsqueeze(View):
    """The data with size-1 dims inserted at input `axes` (relative to the output rank)."""

    static_inputs = (1,)

    def out_shape(self, shape, axes, **_):
        axes = set(norm_axes(axes, len(shape) + len(ints(axes))))
        rest = iter(shape)
        return tuple(1 if i in axes else next(rest) for i in range(len(shape) + len(axes)))


@register_op("Transpose")
class Transpose(Movement):
    """The data with its dims permuted by `perm` (reversed by default)."""

    engine = PE_TRANSPOSE

    def out_shape(self, shape, perm=None, **_):
        perm = _perm(perm, len(shape))
        return tuple(shape[p] for p in perm)

    def reference(self, x, perm=None):
        return np.transpose(x, _perm(perm, x.ndim))


def _perm(perm, rank: int) -> list[int]:
    if perm is None:
        return list(range(rank))[::-1]
    perm = ints(perm)
    if sorted(perm) != list(range(rank)):
        raise ValueError(f"perm {perm} is not a permutation of the {rank} dims")
    return perm


@register_op("Expand")
class Expand(Movement):
    """The data broadcast (both ways, as in numpy) with the input `shape`."""

    static_inputs = (1,)

    def out_shape(self, shape, target, **_):
        return broadcast_shapes(shape, tuple(ints(target)))

    def reference(self, x, target):
        return np.broadcast_to(x, self.out_shape(x.shape, target))


@register_op("Tile")
class Tile(Movement):
    """The data repeated `repeats[i]` times along each dim i."""

    static_inputs = (1,)

    def out_shape(self, shape, repeats, **_):
        repeats = ints(repeats)
        if len(repeats) != len(shape) or min(repeats, default=0) < 0:
            raise ValueError(f"repeats {repeats} must be {len(shape)} non-negative counts, one a dim")
        return tuple(dim_product([d, r]) for d, r in zip(shape, repeats))

    def reference(self, x, repeats):
        self.out_shape(x.shape, repeats)
        return np.tile(x, ints(repeats))
