"""Rules for TensorFlow's shape and data-movement ops. Shape arithmetic on static shapes folds to
constants here, as grappler's constant folding would."""
from __future__ import annotations

import numpy as np

from neuron_core.bridge import Unsupported

from . import TABLE
from ._util import TO_NCHW, attr, const, has_nchw, ints, nchw, publish, rule

PASS_THROUGH = ("Identity", "StopGradient", "PreventGradient", "Snapshot", "EnsureShape",
                "CheckNumerics", "PlaceholderWithDefault")


@rule(TABLE, *PASS_THROUGH)
def _identity(cv, x, *_):
    return x


@rule(TABLE, "IdentityN")
def _identity_n(cv, *xs):
    return list(xs)


@rule(TABLE, "Reshape")
def _reshape(cv, x, shape):
    target = [int(d) for d in const(shape, "Reshape's shape")]
    y = cv.op("Reshape", [x, ints(cv, target)])
    shape = y.type.shape
    # (N, C) -> (N, 1, 1, C) (a squeeze-excite gate): the NCHW form is the same data
    if len(shape) == 4 and shape[1] == shape[2] == 1 and not y.is_const:
        cv.nchw[id(y)] = (y, cv.op("Reshape", [x, ints(cv, [shape[0], shape[3], 1, 1])]))
    return y


@rule(TABLE, "Squeeze")
def _squeeze(cv, x):
    dims = attr(cv, "squeeze_dims", []) or [i for i, d in enumerate(x.type.shape) if d == 1]
    return cv.op("Squeeze", [x, ints(cv, [d % x.type.rank for d in dims])])


@rule(TABLE, "ExpandDims")
def _expand_dims(cv, x, axis):
    a = int(const(axis, "ExpandDims' axis"))
    return cv.op("Unsqueeze", [x, ints(cv, [a % (x.type.rank + 1)])])


@rule(TABLE, "Transpose")
def _transpose(cv, x, perm):
    perm = [int(p) for p in const(perm, "Transpose's perm")]
    if has_nchw(cv, x) and perm == list(TO_NCHW):
        return nchw(cv, x)
    return cv.op("Transpose", [x], {"perm": perm})


@rule(TABLE, "ConcatV2")
def _concat(cv, *xs):
    xs, axis = xs[:-1], int(const(xs[-1], "ConcatV2's axis"))
    rank = xs[0].type.rank
    axis %= rank
    if rank == 4 and axis == 3 and all(has_nchw(cv, x) for x in xs):
        return publish(cv, cv.op("Concat", [nchw(cv, x) for x in xs], {"axis": 1}))
    return cv.op("Concat", list(xs), {"axis": axis})


@rule(TABLE, "Pack")
def _pack(cv, *xs):
    axis = int(attr(cv, "axis", 0)) % (xs[0].type.rank + 1)
    parts = [cv.op("Unsqueeze", [x, ints(cv, [axis])]) for x in xs]
    return parts[0] if len(parts) == 1 else cv.op("Concat", parts, {"axis": axis})


@rule(TABLE, "Unpack")
def _unpack(cv, x):
    axis = int(attr(cv, "axis", 0)) % x.type.rank
    n = x.type.shape[axis]
    parts = cv.op("Split", [x], {"axis": axis}, outputs=n) if n > 1 else [x]
    return [cv.op("Squeeze", [p, ints(cv, [axis])]) for p in parts]


def _pad_rows(cv, x, paddings):
    rows = np.asarray(const(paddings, "paddings"), np.int64).reshape(-1, 2)
    if has_nchw(cv, x):
        rows = rows[list(TO_NCHW)]
        return nchw(cv, x), rows, True
    return x, rows, False


@rule(TABLE, "Pad", "PadV2", "MirrorPad")
def _pad(cv, x, paddings, value=None):
    src, rows, image = _pad_rows(cv, x, paddings)
    attrs = {"mode": "constant"}
    if cv.node.type == "MirrorPad":
        mode = attr(cv, "mode")
        if mode != "REFLECT":
            raise Unsupported(f"MirrorPad mode={mode!r} (only REFLECT is lowered)")
        attrs["mode"] = "reflect"
    ins = [src, ints(cv, list(rows[:, 0]) + list(rows[:, 1]))]
    if value is not None:
        ins.append(value)
    y = cv.op("Pad", ins, attrs)
    return publish(cv, y) if image else y


@rule(TABLE, "Slice")
def _slice(cv, x, begin, size):
    begin = [int(b) for b in const(begin, "Slice's begin")]
    size = [int(s) for s in const(size, "Slice's size")]
    end = [d if s == -1 else b + s for b, s, d in zip(begin, size, x.type.shape)]
    return cv.op("Slice", [x, ints(cv, begin), ints(cv, end), ints(cv, range(len(begin)))])


def _strided_index(shape, begin, end, strides, masks) -> list:
    """A TF StridedSlice spec as a numpy index: slices, ints, None (new axis)."""
    begin_m, end_m, ellipsis_m, new_m, shrink_m = masks
    index: list = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        if ellipsis_m & bit:
            index.append(Ellipsis)
        elif new_m & bit:
            index.append(None)
        elif shrink_m & bit:
            index.append(int(b))
        else:
            index.append(slice(None if begin_m & bit else int(b), None if end_m & bit else int(e),
                               int(s)))
    return index


@rule(TABLE, "StridedSlice")
def _strided_slice(cv, x, begin, end, strides):
    masks = [int(attr(cv, k, 0)) for k in ("begin_mask", "end_mask", "ellipsis_mask",
                                           "new_axis_mask", "shrink_axis_mask")]
    index = _strided_index(x.type.shape, const(begin, "begin"), const(end, "end"),
                           const(strides, "strides"), masks)
    out_shape = np.empty(x.type.shape, np.bool_)[tuple(index)].shape
    if Ellipsis in index:   # expand the ellipsis to full slices
        k = index.index(Ellipsis)
        real = sum(1 for i in index if i is not None and i is not Ellipsis)
        index[k:k + 1] = [slice(None)] * (x.type.rank - real)
    starts, ends, axes, steps = [], [], [], []
    axis = 0
    for item in index:
        if item is None:
            continue
        dim = x.type.shape[axis]
        if isinstance(item, int):
            item = slice(item % dim, item % dim + 1, 1)
        start, stop, step = item.indices(dim)
        if (start, stop, step) != (0, dim, 1):
            starts.append(start)
            ends.append(stop if stop >= 0 else -(2 ** 31))   # negative step down to index 0
            axes.append(axis)
            steps.append(step)
        axis += 1
    y = x
    if axes:
        y = cv.op("Slice", [x, ints(cv, starts), ints(cv, ends), ints(cv, axes), ints(cv, steps)])
    if tuple(y.type.shape) != tuple(out_shape):
        y = cv.op("Reshape", [y, ints(cv, out_shape)])
    return y


@rule(TABLE, "GatherV2")
def _gather(cv, x, indices, axis):
    if int(attr(cv, "batch_dims", 0)):
        raise Unsupported("GatherV2 with batch_dims != 0")
    a = int(const(axis, "GatherV2's axis")) % x.type.rank
    return cv.op("Gather", [x, indices], {"axis": a})


@rule(TABLE, "Shape")
def _shape(cv, x):
    out = attr(cv, "out_type")
    return cv.const(np.asarray(x.type.shape, dtype=out.as_numpy_dtype))


@rule(TABLE, "Size")
def _size(cv, x):
    return cv.const(np.asarray(int(np.prod(x.type.shape)), attr(cv, "out_type").as_numpy_dtype))


@rule(TABLE, "Rank")
def _rank(cv, x):
    return cv.const(np.int32(x.type.rank))


@rule(TABLE, "Fill")
def _fill(cv, dims, value):
    return cv.const(np.full([int(d) for d in const(dims, "Fill's dims")], const(value, "value")))


@rule(TABLE, "ZerosLike", "OnesLike")
def _like(cv, x):
    fill = 0 if cv.node.type == "ZerosLike" else 1
    return cv.const(np.full(x.type.shape, fill, dtype=x.const.dtype if x.is_const else None),
                    like=x)


@rule(TABLE, "Range")
def _range(cv, start, limit, delta):
    return cv.const(np.arange(const(start), const(limit), const(delta),
                              dtype=attr(cv, "Tidx").as_numpy_dtype))


@rule(TABLE, "Split")
def _split(cv, axis, x):
    a = int(const(axis, "Split's axis")) % x.type.rank
    n = int(attr(cv, "num_split"))
    return cv.op("Split", [x], {"axis": a}, outputs=n) if n > 1 else [x]


@rule(TABLE, "SplitV")
def _split_v(cv, x, sizes, axis):
    a = int(const(axis, "SplitV's axis")) % x.type.rank
    sizes = [int(s) for s in const(sizes, "SplitV's size_splits")]
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.type.shape[a] - (sum(sizes) + 1)
    if len(sizes) == 1:
        return [x]
    return cv.op("Split", [x, ints(cv, sizes)], {"axis": a}, outputs=len(sizes))


@rule(TABLE, "Tile")
def _tile(cv, x, multiples):
    reps = [int(m) for m in const(multiples, "Tile's multiples")]
    return cv.op("Tile", [x, ints(cv, reps)])


@rule(TABLE, "BroadcastTo")
def _broadcast_to(cv, x, shape):
    return cv.op("Expand", [x, ints(cv, [int(d) for d in const(shape, "shape")])])

