"""Shared helpers of the sliding-window ops (Conv, ConvTranspose, MaxPool, AveragePool): attribute
resolution (kernel, strides, dilations, pads, auto_pad, ceil_mode), output sizes, padding, and
strided window views for im2col and for tap-by-tap accumulation."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import ShapeInferenceError
from ..ir import TensorType

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
#: attribute defaults shared by every windowed op (ONNX: absent lists mean 1s / 0s)
WINDOW_DEFAULTS = {"auto_pad": "NOTSET", "strides": None, "dilations": None, "pads": None}


@dataclass(frozen=True, slots=True)
class Window:
    """A resolved sliding window over the spatial axes: per-axis kernel, stride, dilation, padding
    (begin, end) and output size. `extra` is padding past `end` that ceil_mode windows read."""

    kernel: tuple
    strides: tuple
    dilations: tuple
    lo: tuple
    hi: tuple
    out: tuple
    extra: tuple


def per_axis(value, n: int, fill: int) -> tuple:
    """An ints attribute as a tuple of n values; absent or empty means `fill` on every axis."""
    return tuple(int(v) for v in value) if value is not None and len(value) else (fill,) * n


def resolve(spatial, kernel, attrs: dict, ceil_mode: bool = False) -> Window:
    """Resolve auto_pad/pads/strides/dilations against the input's spatial shape (ints, or str for
    symbolic dims, whose output size is then symbolic too)."""
    n = len(kernel)
    if len(spatial) != n:
        raise ShapeInferenceError(f"kernel_shape {list(kernel)} has {n} axes but the input has "
                                  f"{len(spatial)} spatial axes")
    strides = per_axis(attrs.get("strides"), n, 1)
    dilations = per_axis(attrs.get("dilations"), n, 1)
    pads = per_axis(attrs.get("pads"), 2 * n, 0)
    for name, values, want in (("strides", strides, n), ("dilations", dilations, n),
                               ("pads", pads, 2 * n)):
        if len(values) != want:
            raise ShapeInferenceError(f"{name} {list(values)} has {len(values)} values; a window "
                                      f"over {n} spatial axes takes {want}")
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad not in AUTO_PADS:
        raise ShapeInferenceError(f"auto_pad {auto_pad!r} is not one of {AUTO_PADS}")
    lo, hi, out, extra = [], [], [], []
    for i, (size, k, s, d) in enumerate(zip(spatial, kernel, strides, dilations)):
        span = (k - 1) * d + 1
        if isinstance(size, str):
            lo.append(pads[i]), hi.append(pads[n + i]), out.append(f"{size}'"), extra.append(0)
            continue
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-size // s)
            total = max(0, (o - 1) * s + span - size)
            b = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            e = total - b
        else:
            b, e = (0, 0) if auto_pad == "VALID" else (pads[i], pads[n + i])
            room = size + b + e - span
            if ceil_mode:
                o = -(-room // s) + 1
                if (o - 1) * s >= size + b:  # the last window must start inside input or left pad
                    o -= 1
            else:
                o = room // s + 1
        if o < 1:
            raise ShapeInferenceError(f"window of extent {span} (kernel {k}, dilation {d}) does "
                                      f"not fit spatial size {size} padded by ({b}, {e})")
        lo.append(b), hi.append(e), out.append(o)
        extra.append(max(0, (o - 1) * s + span - (size + b + e)))
    return Window(tuple(kernel), strides, dilations, tuple(lo), tuple(hi), tuple(out), tuple(extra))


def kernel_of(attrs: dict, weight_shape=None) -> tuple:
    """kernel_shape from the attribute, else from the weight's trailing dims."""
    k = attrs.get("kernel_shape")
    if k is not None and len(k):
        return per_axis(k, len(k), 1)
    if weight_shape is None:
        raise ShapeInferenceError("kernel_shape is required")
    return tuple(int(v) for v in weight_shape[2:])


def infer_window(x: TensorType, channels, win: Window) -> list[TensorType]:
    """Output type (N, channels, *out) of a windowed op."""
    return [TensorType((x.shape[0], channels, *win.out), x.dtype)]


def pad(x: np.ndarray, win: Window, value: float = 0.0) -> np.ndarray:
    """x padded on its spatial axes by the window's pads and ceil_mode overhang (`value` fills)."""
    n = len(win.kernel)
    lo = win.lo
    hi = [a + b for a, b in zip(win.hi, win.extra)]
    if not any(lo) and not any(hi):
        return x
    shape = x.shape[:-n] + tuple(s + a + b for s, a, b in zip(x.shape[-n:], lo, hi))
    xp = np.full(shape, value, dtype=x.dtype) if value else np.zeros(shape, dtype=x.dtype)
    xp[(Ellipsis,) + tuple(slice(a, a + s) for a, s in zip(lo, x.shape[-n:]))] = x
    return xp


def windows(xp: np.ndarray, win: Window) -> np.ndarray:
    """Read-only strided view (..., *kernel, *out) of padded `xp`: element [..., t, o] is the input
    that kernel tap t meets at output position o."""
    n = len(win.kernel)
    st = xp.strides[-n:]
    shape = xp.shape[:-n] + win.kernel + win.out
    strides = (xp.strides[:-n] + tuple(a * d for a, d in zip(st, win.dilations))
               + tuple(a * s for a, s in zip(st, win.strides)))
    return as_strided(xp, shape, strides, writeable=False)


def taps(view: np.ndarray, n: int) -> Iterator[tuple[tuple, np.ndarray]]:
    """(tap index, strided (..., *out) view) for each kernel tap of a `windows` view."""
    kernel = view.shape[-2 * n:-n]
    for t in np.ndindex(*kernel):
        yield t, view[(Ellipsis,) + t + (slice(None),) * n]


def window_counts(win: Window, axis: int, lo: int, hi: int) -> np.ndarray:
    """Per output position along one axis: how many window taps fall in [lo, hi) of the input's
    coordinates (0 = first real element)."""
    start = np.arange(win.out[axis]) * win.strides[axis] - win.lo[axis]
    pos = start[:, None] + np.arange(win.kernel[axis]) * win.dilations[axis]
    return ((pos >= lo) & (pos < hi)).sum(axis=1)


def outer(vectors) -> np.ndarray:
    """Outer product of per-axis float32 vectors: the separable grid they span."""
    grid = np.ones((), np.float32)
    for v in vectors:
        grid = np.multiply.outer(grid, v.astype(np.float32))
    return grid
