"""Shape and data movement (Reshape with MXNet's codes, Flatten, transpose, Concat, stack, split,
slices, broadcast, tile, pad), reductions, and the products batch_dot and dot.

Reshape-like ops take the output shape MXNet inferred for the node, so MXNet's special codes
(0, -1, -2, -3, -4 and `reverse`) are resolved by MXNet itself and never re-implemented here."""
from __future__ import annotations

import numpy as np

from neuron_core.bridge import Unsupported

from . import TABLE
from ._attrs import Attrs


def _i64(cv, values):
    return cv.const(np.asarray(list(values), np.int64), dtype="int64")


def _reshape(cv, x, shape):
    if tuple(x.type.shape) == tuple(shape):
        return cv.op("Identity", [x])
    return cv.op("Reshape", [x, _i64(cv, shape)])


@TABLE.register("Reshape", "reshape", "Flatten", "flatten", "expand_dims", "squeeze",
                "reshape_like", "_npx_reshape")
def _reshape_op(cv, a: Attrs, x, *like):
    return _reshape(cv, x, a.shape(0))


@TABLE.register("transpose")
def _transpose(cv, a: Attrs, x):
    axes = a.ints("axes", ())
    perm = list(axes) if axes else list(range(x.type.rank))[::-1]
    return cv.op("Transpose", [x], {"perm": [p % x.type.rank for p in perm]})


@TABLE.register("SwapAxis", "swapaxes")
def _swap_axis(cv, a: Attrs, x):
    perm = list(range(x.type.rank))
    d1, d2 = a.int("dim1", 0) % x.type.rank, a.int("dim2", 0) % x.type.rank
    perm[d1], perm[d2] = perm[d2], perm[d1]
    return cv.op("Transpose", [x], {"perm": perm})


@TABLE.register("Concat", "concat")
def _concat(cv, a: Attrs, *xs):
    return cv.op("Concat", list(xs), {"axis": a.int("dim", 1)})


@TABLE.register("stack")
def _stack(cv, a: Attrs, *xs):
    axis = a.int("axis", 0) % (xs[0].type.rank + 1)
    parts = [cv.op("Unsqueeze", [x, _i64(cv, [axis])]) for x in xs]
    return cv.op("Concat", parts, {"axis": axis})


@TABLE.register("SliceChannel", "split")
def _split(cv, a: Attrs, x):
    n = a.int("num_outputs")
    axis = a.int("axis", 1) % x.type.rank
    size = x.type.shape[axis]
    if size % n:
        raise Unsupported(f"SliceChannel of {size} by {n} outputs does not divide evenly")
    parts = cv.op("Split", [x, _i64(cv, [size // n] * n)], {"axis": axis}, outputs=n)
    parts = parts if isinstance(parts, list) else [parts]
    if a.bool("squeeze_axis"):
        parts = [_reshape(cv, p, a.shape(i)) for i, p in enumerate(parts)]
    return parts


@TABLE.register("slice_axis")
def _slice_axis(cv, a: Attrs, x):
    axis = a.int("axis") % x.type.rank
    begin = a.int("begin", 0)
    end = a.int("end", x.type.shape[axis])
    return cv.op("Slice", [x, _i64(cv, [begin]), _i64(cv, [end]), _i64(cv, [axis])])


@TABLE.register("slice", "crop")
def _slice(cv, a: Attrs, x):
    begin, end = a.ints("begin", ()), a.ints("end", ())
    step = a.ints("step", ()) or (None,) * len(begin)
    starts, ends, axes, steps = [], [], [], []
    for axis, (b, e, s) in enumerate(zip(begin, end, step)):
        s = 1 if s is None else s
        big = np.iinfo(np.int64).max
        starts.append(b if b is not None else (0 if s > 0 else -1))
        ends.append(e if e is not None else (big if s > 0 else -big))
        axes.append(axis), steps.append(s)
    return cv.op("Slice", [x, _i64(cv, starts), _i64(cv, ends), _i64(cv, axes), _i64(cv, steps)])


@TABLE.register("broadcast_to", "broadcast_like", "broadcast_axis", "broadcast_axes")
def _broadcast(cv, a: Attrs, x, *like):
    return cv.op("Expand", [x, _i64(cv, a.shape(0))])


@TABLE.register("tile")
def _tile(cv, a: Attrs, x):
    reps = list(a.ints("reps"))
    if len(reps) > x.type.rank:   # MXNet prepends axes of size 1 to the input
        x = _reshape(cv, x, (1,) * (len(reps) - x.type.rank) + tuple(x.type.shape))
    reps = [1] * (x.type.rank - len(reps)) + reps
    return cv.op("Tile", [x, _i64(cv, reps)])


@TABLE.register("Pad", "pad")
def _pad(cv, a: Attrs, x):
    mode = a.require("mode", ("constant", "edge", "reflect"), "constant")
    width = a.ints("pad_width")
    pads = list(width[0::2]) + list(width[1::2])
    ins = [x, _i64(cv, pads)]
    if mode == "constant":
        ins.append(cv.const(a.float("constant_value", 0.0), like=x))
    return cv.op("Pad", ins, {"mode": mode})


_REDUCE = {"sum": "ReduceSum", "sum_axis": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax",
           "max_axis": "ReduceMax", "min": "ReduceMin", "min_axis": "ReduceMin",
           "prod": "ReduceProd"}


def _reduce(core: str):
    def rule(cv, a: Attrs, x):
        axes = a.ints("axis", ())
        rank = x.type.rank
        axes = [ax % rank for ax in axes] if axes else list(range(rank))
        if a.bool("exclude"):
            axes = [ax for ax in range(rank) if ax not in axes]
        y = cv.op(core, [x, _i64(cv, axes)], {"keepdims": int(a.bool("keepdims"))})
        return _reshape(cv, y, a.shape(0)) if not y.type.shape else y
    return rule


for _name, _core in _REDUCE.items():
    TABLE.register(_name)(_reduce(_core))


@TABLE.register("norm")
def _norm(cv, a: Attrs, x):
    if a.int("ord", 2) != 2:
        raise Unsupported(f"norm ord={a.int('ord')} is not lowered; only ord=2")
    return _reduce("ReduceL2")(cv, a, x)


def _swap_last(cv, x):
    perm = list(range(x.type.rank))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return cv.op("Transpose", [x], {"perm": perm})


@TABLE.register("batch_dot")
def _batch_dot(cv, a: Attrs, x, y):
    if a.bool("transpose_a"):
        x = _swap_last(cv, x)
    if a.bool("transpose_b"):
        y = _swap_last(cv, y)
    return cv.op("MatMul", [x, y])


@TABLE.register("dot")
def _dot(cv, a: Attrs, x, y):
    """MXNet dot contracts x's last axis with y's first (after the optional transposes, which
    reverse all axes)."""
    if a.bool("transpose_a"):
        x = cv.op("Transpose", [x], {"perm": list(range(x.type.rank))[::-1]})
    if a.bool("transpose_b"):
        y = cv.op("Transpose", [y], {"perm": list(range(y.type.rank))[::-1]})
    if x.type.rank <= 2 and y.type.rank <= 2:
        return cv.op("MatMul", [x, y])
    k = x.type.shape[-1]
    x2 = _reshape(cv, x, (-1, k)) if x.type.rank != 2 else x
    y2 = _reshape(cv, y, (k, -1)) if y.type.rank != 2 else y
    return _reshape(cv, cv.op("MatMul", [x2, y2]), a.shape(0))


@TABLE.register("zeros_like", "ones_like")
def _fill_like(cv, a: Attrs, x):
    fill = 0.0 if a.op == "zeros_like" else 1.0
    return cv.const(np.full(x.type.shape, fill, np.float32), like=x)


@TABLE.register("slice_like")
def _slice_like(cv, a: Attrs, x, like):
    out = a.shape(0)
    axes = [i for i, (s, o) in enumerate(zip(x.type.shape, out)) if s != o]
    if not axes:
        return cv.op("Identity", [x])
    return cv.op("Slice", [x, _i64(cv, [0] * len(axes)), _i64(cv, [out[i] for i in axes]),
                           _i64(cv, axes)])
