"""Pooling on the VectorEngine: MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool.

The windowed pools reduce tap by tap over strided views of the padded input (one elementwise pass
per kernel tap, no Python loop over pixels or channels)."""
from __future__ import annotations

import math

import numpy as np

from ..ir import TensorType
from ._window import (WINDOW_DEFAULTS, Window, infer_window, kernel_of, outer, pad, resolve, taps,
                      window_counts, windows)
from .registry import VECTOR_ENGINE, Cost, Op, io_bytes, register_op, to_f32


class _Pool(Op):
    """A windowed pool: output (N, C, *out); cost = output elements x window size."""

    engine = VECTOR_ENGINE
    timing = "window"
    defaults = {**WINDOW_DEFAULTS, "ceil_mode": 0, "kernel_shape": None}

    def window(self, attrs: dict, x_shape) -> Window:
        return resolve(tuple(x_shape[2:]), kernel_of(attrs), attrs, bool(attrs["ceil_mode"]))

    def infer(self, node, types):
        x = types[0]
        return infer_window(x, x.shape[1], self.window(self.attrs(node), x.shape))

    def cost(self, node):
        kernel = kernel_of(self.attrs(node))
        return Cost(node.outputs[0].type.numel * math.prod(kernel), io_bytes(node))

    def reduce(self, x: np.ndarray, win: Window, fill: float, ufunc) -> np.ndarray:
        """Combine the kernel taps of the padded input with `ufunc` (np.maximum, np.add)."""
        y = None
        for _, tap in taps(windows(pad(x, win, fill), win), len(win.kernel)):
            if y is None:
                y = np.array(tap, dtype=np.float32)
            else:
                ufunc(y, tap, out=y)
        return y


def separable_max(xp: np.ndarray, win: Window) -> np.ndarray:
    """The window maximum one spatial axis at a time (max is exact, so the order is free): k1 + k2
    strided passes instead of k1 * k2."""
    n = len(win.kernel)
    y = xp
    for axis in range(n):
        ax = y.ndim - n + axis
        k, d, s, o = win.kernel[axis], win.dilations[axis], win.strides[axis], win.out[axis]
        acc = None
        for t in range(k):
            index = [slice(None)] * y.ndim
            index[ax] = slice(t * d, t * d + (o - 1) * s + 1, s)
            tap = y[tuple(index)]
            if acc is None:
                acc = np.array(tap, dtype=np.float32)
            else:
                np.maximum(acc, tap, out=acc)
        y = acc
    return y


@register_op("MaxPool")
class MaxPool(_Pool):
    """Maximum over each window (padding never wins)."""

    fast_kernels = ("blocked-pool",)
    graph_kernel = "exact"
    exact = True

    defaults = {**_Pool.defaults, "storage_order": 0}

    def infer(self, node, types):
        values = super().infer(node, types)
        if len(node.outputs) > 1:  # the Indices output: typed so the verdict can explain it
            values.append(TensorType(values[0].shape, "int64"))
        return values

    def check_attrs(self, node, attrs):
        if len(node.outputs) > 1:
            return "MaxPool with the Indices output is not supported; use the Values output only"
        if attrs["storage_order"]:
            return "MaxPool storage_order=1 (column-major indices) is not supported"
        return None

    def reference(self, x, **attrs):
        win = self.window(attrs, x.shape)
        return separable_max(pad(to_f32(x), win, -np.inf), win).astype(x.dtype, copy=False)


@register_op("AveragePool")
class AveragePool(_Pool):
    """Mean over each window; count_include_pad chooses whether padding counts in the divisor."""

    graph_kernel = "summed"
    defaults = {**_Pool.defaults, "count_include_pad": 0}

    def reference(self, x, **attrs):
        win = self.window(attrs, x.shape)
        y = self.reduce(to_f32(x), win, 0.0, np.add)
        spatial = x.shape[2:]
        # divisor per output position, separable over axes: the taps inside the input, or inside
        # the input and its explicit padding (ceil_mode overhang never counts)
        counts = []
        for i, size in enumerate(spatial):
            lo, hi = (-win.lo[i], size + win.hi[i]) if attrs["count_include_pad"] else (0, size)
            counts.append(window_counts(win, i, lo, hi))
        if all((c == k).all() for c, k in zip(counts, win.kernel)):
            y *= np.float32(1.0 / math.prod(win.kernel))
        else:
            y /= outer(counts)
        return y.astype(x.dtype, copy=False)


class _GlobalPool(Op):
    """Reduce every spatial axis to 1: output (N, C, 1, ...)."""

    engine = VECTOR_ENGINE
    timing = "window"

    def infer(self, node, types):
        x = types[0]
        return [TensorType(tuple(x.shape[:2]) + (1,) * (x.rank - 2), x.dtype)]

    def cost(self, node):
        return Cost(node.inputs[0].type.numel, io_bytes(node))

    def pooled(self, x: np.ndarray, how) -> np.ndarray:
        y = how(to_f32(x).reshape(x.shape[0], x.shape[1], -1), axis=-1)
        return y.reshape(x.shape[:2] + (1,) * (x.ndim - 2)).astype(x.dtype, copy=False)


@register_op("GlobalAveragePool")
class GlobalAveragePool(_GlobalPool):
    """Mean over all spatial positions."""

    graph_kernel = "summed"

    def reference(self, x):
        return self.pooled(x, np.mean)


@register_op("GlobalMaxPool")
class GlobalMaxPool(_GlobalPool):
    """Maximum over all spatial positions."""

    def reference(self, x):
        return self.pooled(x, np.max)
