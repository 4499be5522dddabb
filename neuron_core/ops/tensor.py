"""Tensor ops that cut, join, pad and index data: Concat, Split, Slice, Pad, Gather, GatherElements,
GatherND, DepthToSpace, SpaceToDepth."""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from ._movement import DATA, Movement, ints, norm_axes, norm_axis, static_dim
from .registry import INDEX, register_op


@register_op("Concat")
class Concat(Movement):
    """The inputs joined along `axis`; the other dims must agree."""

    input_dtypes = (DATA,)

    def infer(self, node, types):
        if "axis" not in node.attrs:
            raise ValueError("Concat needs the `axis` attribute")
        rank = types[0].rank
        if any(t.rank != rank for t in types):
            raise ValueError(f"inputs of ranks {[t.rank for t in types]} cannot be joined")
        axis = norm_axis(node.attrs["axis"], rank)
        shape = []
        for i, dims in enumerate(zip(*(t.shape for t in types))):
            if i == axis:
                shape.append(sum(static_dim(d, f"concat axis {axis}") for d in dims))
                continue
            known = {d for d in dims if not isinstance(d, str)} or set(dims)
            if len(known) > 1:
                raise ValueError(f"inputs differ in dim {i} ({list(dims)}) off the concat axis")
            shape.append(known.pop())
        return [TensorType(shape, types[0].dtype)]

    def reference(self, *xs, axis):
        return np.concatenate(xs, axis=axis)


@register_op("Split")
class Split(Movement):
    """The input cut along `axis` into parts of sizes input `split`, or `num_outputs` parts of
    ceil(dim/num_outputs) (the last smaller), or, with neither, as many equal parts as outputs."""

    defaults = {"axis": 0}
    static_inputs = (1,)

    def infer(self, node, types):
        attrs = self.attrs(node)
        split = self.params(node)[0]
        if split is None and attrs.get("num_outputs") is None:
            # the kernel sees no node: name the output count as the latest opset does
            node.attrs["num_outputs"] = len(node.outputs)
            attrs["num_outputs"] = len(node.outputs)
            dim = types[0].shape[norm_axis(attrs["axis"], types[0].rank)]
            if isinstance(dim, int) and dim % len(node.outputs):
                raise ValueError(f"dim {dim} does not split evenly into {len(node.outputs)} outputs")
        shape = list(types[0].shape)
        axis = norm_axis(attrs["axis"], len(shape))
        sizes = _split_sizes(static_dim(shape[axis], f"split axis {axis}"), split,
                             attrs.get("num_outputs"))
        if len(sizes) != len(node.outputs):
            raise ValueError(f"{len(sizes)} parts {sizes} for {len(node.outputs)} outputs")
        return [TensorType(shape[:axis] + [n] + shape[axis + 1:], types[0].dtype) for n in sizes]

    def reference(self, x, split=None, axis=0, num_outputs=None):
        sizes = _split_sizes(x.shape[axis], split, num_outputs)
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _split_sizes(dim: int, split, num_outputs) -> list[int]:
    if split is not None:
        if num_outputs is not None:
            raise ValueError("give either input `split` or attribute `num_outputs`, not both")
        sizes = ints(split)
        if sum(sizes) != dim or min(sizes, default=0) < 0:
            raise ValueError(f"split sizes {sizes} do not add up to the dim {dim}")
        return sizes
    if num_outputs is None:
        raise ValueError("Split needs input `split` or attribute `num_outputs`")
    chunk = -(-dim // num_outputs)
    return [min(chunk, max(dim - i * chunk, 0)) for i in range(num_outputs)]


@register_op("Slice")
class Slice(Movement):
    """data[starts:ends:steps] on `axes` (all leading axes by default), ends clamped as ONNX."""

    static_inputs = (1, 2, 3, 4)

    def out_shape(self, shape, starts, ends, axes=None, steps=None, **_):
        cuts = _slices(shape, starts, ends, axes, steps)
        return tuple(d if s == slice(None) else len(range(d)[s]) for d, s in zip(shape, cuts))

    def reference(self, x, starts, ends, axes=None, steps=None):
        return x[_slices(x.shape, starts, ends, axes, steps)]


def _slices(shape, starts, ends, axes, steps) -> tuple:
    """One Python slice an axis, with ONNX clamping: start in [0, d] (step > 0) or [0, d-1]
    (step < 0), end in [0, d] or [-1, d-1], where -1 means "past the front" (None)."""
    starts, ends = ints(starts), ints(ends)
    axes = list(range(len(starts))) if axes is None else norm_axes(axes, len(shape))
    steps = [1] * len(starts) if steps is None else ints(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ValueError(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in "
                         "length")
    cuts = [slice(None)] * len(shape)
    for axis, start, end, step in zip(axes, starts, ends, steps):
        if step == 0:
            raise ValueError(f"slice step on axis {axis} is 0")
        d = static_dim(shape[axis], f"sliced axis {axis}")
        start, end = (v + d if v < 0 else v for v in (start, end))
        if step > 0:
            start, end = min(max(start, 0), d), min(max(end, 0), d)
        else:
            start, end = min(max(start, 0), d - 1), min(max(end, -1), d - 1)
        cuts[axis] = slice(start, None if end < 0 else end, step)
    return tuple(cuts)


@register_op("Pad")
class Pad(Movement):
    """The data padded (or cropped, by negative pads) on `axes`: constant, reflect, edge or wrap."""

    defaults = {"mode": "constant"}
    static_inputs = (1, 3)  # pads and axes shape the output; constant_value may be computed
    MODES = ("constant", "reflect", "edge", "wrap")

    def check_attrs(self, node, attrs):
        if attrs["mode"] not in self.MODES:
            return f"Pad mode {attrs['mode']!r} is not supported; use one of {', '.join(self.MODES)}"
        return None

    def out_shape(self, shape, pads, axes=None, mode="constant", **_):
        widths = _pad_widths(len(shape), pads, axes)
        for i, (d, (b, e)) in enumerate(zip(shape, widths)):
            if mode == "reflect" and isinstance(d, int) and max(b, e) >= d:
                raise ValueError(f"reflect pads {(b, e)} of axis {i} must be under its size {d}")
        return tuple(d if b == e == 0 else static_dim(d, f"padded axis {i}") + b + e
                     for i, (d, (b, e)) in enumerate(zip(shape, widths)))

    def reference(self, x, pads, value=None, axes=None, mode="constant"):
        widths = _pad_widths(x.ndim, pads, axes)
        x = x[tuple(slice(max(-b, 0), d - max(-e, 0)) for d, (b, e) in zip(x.shape, widths))]
        widths = [(max(b, 0), max(e, 0)) for b, e in widths]
        if mode != "constant":
            return np.pad(x, widths, mode=mode)
        fill = 0 if value is None or np.size(value) == 0 else np.ravel(value)[0]
        return np.pad(x, widths, mode="constant", constant_values=fill)


def _pad_widths(rank: int, pads, axes) -> list[tuple[int, int]]:
    """(begin, end) an axis from ONNX pads [x1_begin, x2_begin, ..., x1_end, x2_end, ...]."""
    axes = list(range(rank)) if axes is None else norm_axes(axes, rank)
    pads = ints(pads)
    if len(pads) != 2 * len(axes):
        raise ValueError(f"pads {pads} must hold 2 values for each of the axes {axes}")
    widths = [(0, 0)] * rank
    for i, axis in enumerate(axes):
        widths[axis] = (pads[i], pads[i + len(axes)])
    return widths


class _Indexing(Movement):
    """Data picked by an index tensor (int64 or int32, negatives wrap) along `axis`."""

    defaults = {"axis": 0}
    input_dtypes = (DATA, INDEX)

    def indexed_shape(self, data: tuple, indices: tuple, axis: int) -> tuple:
        raise NotImplementedError(f"{self.name} does not define indexed_shape()")

    def infer(self, node, types):
        data, idx = types[0], types[1]
        axis = norm_axis(self.attrs(node)["axis"], data.rank)
        return [TensorType(self.indexed_shape(data.shape, idx.shape, axis), data.dtype)]


@register_op("Gather")
class Gather(_Indexing):
    """data.take(indices, axis): the indices' shape replaces the axis (a scalar index drops it)."""

    timing = "gather"
    def indexed_shape(self, data, indices, axis):
        return data[:axis] + indices + data[axis + 1:]

    def reference(self, data, indices, axis=0):
        return np.take(data, indices, axis=axis)


@register_op("GatherElements")
class GatherElements(_Indexing):
    """out[i][j] = data[indices[i][j]][j] (for axis 0): indices pick elements along `axis`."""

    timing = "gather"
    def indexed_shape(self, data, indices, axis):
        if len(data) != len(indices):
            raise ValueError(f"indices of rank {len(indices)} for data of rank {len(data)}")
        return indices

    def reference(self, data, indices, axis=0):
        axis = norm_axis(axis, data.ndim)
        data = data[tuple(slice(None) if i == axis else slice(0, n)
                          for i, n in enumerate(indices.shape))]
        indices = np.where(indices < 0, indices + data.shape[axis], indices)
        return np.take_along_axis(data, indices, axis=axis)


@register_op("GatherND")
class GatherND(Movement):
    """Slices of data picked by index tuples along the last dim of `indices`, after the first
    `batch_dims` dims that data and indices share."""

    defaults = {"batch_dims": 0}
    input_dtypes = (DATA, ("int64",))
    timing = "gather"

    def infer(self, node, types):
        data, idx = types[0].shape, types[1].shape
        b = self.attrs(node)["batch_dims"]
        k = static_dim(idx[-1], "the index depth of GatherND") if idx else 0
        if not idx or b + k > len(data) or data[:b] != idx[:b]:
            raise ValueError(f"GatherND indices {list(idx)} with batch_dims={b} do not index data "
                             f"{list(data)}")
        return [TensorType(data[:b] + idx[b:-1] + data[b + k:], types[0].dtype)]

    def reference(self, data, indices, batch_dims=0):
        b = batch_dims
        batch = data.shape[:b]
        rows = data.reshape((-1,) + data.shape[b:])
        picks = indices.reshape((len(rows), -1, indices.shape[-1]))
        picks = np.where(picks < 0, picks + np.asarray(data.shape[b:b + picks.shape[-1]]), picks)
        out = np.stack([row[tuple(p.T)] for row, p in zip(rows, picks)])
        return out.reshape(batch + indices.shape[b:-1] + data.shape[b + indices.shape[-1]:])


@register_op("DepthToSpace")
class DepthToSpace(Movement):
    """NCHW channels moved into blocksize x blocksize spatial blocks (mode DCR or CRD)."""

    defaults = {"mode": "DCR"}

    def check_attrs(self, node, attrs):
        if attrs["mode"] not in ("DCR", "CRD"):
            return f"DepthToSpace mode {attrs['mode']!r} is not supported; use DCR or CRD"
        return None

    def out_shape(self, shape, blocksize, **_):
        n, c, h, w = _nchw(shape)
        if c % (blocksize * blocksize):
            raise ValueError(f"{c} channels do not divide into {blocksize}x{blocksize} blocks")
        return n, c // blocksize ** 2, h * blocksize, w * blocksize

    def reference(self, x, blocksize, mode="DCR"):
        n, c, h, w = x.shape
        b = blocksize
        if mode == "DCR":
            y = x.reshape(n, b, b, c // b ** 2, h, w).transpose(0, 3, 4, 1, 5, 2)
        else:
            y = x.reshape(n, c // b ** 2, b, b, h, w).transpose(0, 1, 4, 2, 5, 3)
        return y.reshape(self.out_shape(x.shape, b))


@register_op("SpaceToDepth")
class SpaceToDepth(Movement):
    """NCHW blocksize x blocksize spatial blocks moved into channels."""

    defaults = {"mode": "DCR"}

    def check_attrs(self, node, attrs):
        if attrs["mode"] not in ("DCR", "CRD"):
            return f"SpaceToDepth mode {attrs['mode']!r} is not one of 'DCR', 'CRD'"
        return None

    def out_shape(self, shape, blocksize, **_):
        n, c, h, w = _nchw(shape)
        if h % blocksize or w % blocksize:
            raise ValueError(f"spatial dims {h}x{w} do not divide into {blocksize}-blocks")
        return n, c * blocksize ** 2, h // blocksize, w // blocksize

    def graph_takes(self, attrs):
        return attrs.get("mode", "DCR") == "DCR"  # onnxruntime's SpaceToDepth has no CRD mode

    def graph(self, b, inputs, attrs, outputs):
        return b.node("SpaceToDepth", inputs, {"blocksize": attrs["blocksize"]})

    def reference(self, x, blocksize, mode="DCR"):
        n, c, h, w = x.shape
        b = blocksize
        # DCR puts the block offsets before the channels, CRD after them (opset 28)
        perm = (0, 3, 5, 1, 2, 4) if mode == "DCR" else (0, 1, 3, 5, 2, 4)
        y = x.reshape(n, c, h // b, b, w // b, b).transpose(perm)
        return y.reshape(self.out_shape(x.shape, b))


def _nchw(shape) -> tuple:
    """N, C, H, W of a 4-D shape; N may be symbolic, the others must be known."""
    if len(shape) != 4:
        raise ValueError(f"expected an NCHW tensor, got rank {len(shape)}")
    return shape[0], *(static_dim(d, "a C, H or W dim") for d in shape[1:])
