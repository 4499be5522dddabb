"""Convolutions on the TensorEngine: Conv (N-D, grouped, depthwise, dilated, strided, padded) and
ConvTranspose. Kernels are float32 im2col + BLAS matmul, with fast paths for 1x1 and depthwise."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ShapeInferenceError
from ..ir import TensorType
from ._window import (WINDOW_DEFAULTS, Window, infer_window, kernel_of, pad, per_axis, resolve,
                      taps, windows)
from .registry import TENSOR_ENGINE, Cost, Op, io_bytes, register_op, to_f32


def _check_groups(x: TensorType, channels, group: int) -> None:
    c = x.shape[1]
    if isinstance(c, int) and c != channels * group:
        raise ShapeInferenceError(f"input has {c} channels but the weight expects "
                                  f"{channels} x group {group} = {channels * group}")


def _check_bias(types: list, channels) -> None:
    b = types[2] if len(types) > 2 else None
    if b is not None and isinstance(channels, int) and tuple(b.shape) != (channels,):
        raise ShapeInferenceError(f"the bias has shape {list(b.shape)}; a convolution with "
                                  f"{channels} output channels takes a bias of [{channels}]")


def _bias(y: np.ndarray, b) -> np.ndarray:
    if b is not None:
        y += to_f32(b).reshape((-1,) + (1,) * (y.ndim - 2))
    return y


def _conv(x: np.ndarray, w: np.ndarray, win: Window, group: int) -> np.ndarray:
    """float32 convolution of (N, C, *in) by (M, C/group, *kernel) -> (N, M, *out)."""
    n_batch, c = x.shape[:2]
    m = w.shape[0]
    if group == c and group > 1 and w.shape[1] == 1:
        return _depthwise(x, w, win)
    xp = pad(x, win)
    if all(k == 1 for k in win.kernel):  # 1x1: a plain matmul on the (strided) input
        cols = xp[(Ellipsis,) + tuple(slice(0, (o - 1) * s + 1, s)
                                      for o, s in zip(win.out, win.strides))]
    else:  # im2col: one copy of the strided window view, laid out (C, *kernel, *out)
        cols = windows(xp, win)
    p = math.prod(win.out)
    if group == 1:
        y = np.matmul(w.reshape(m, -1), cols.reshape(n_batch, -1, p))
    else:
        y = np.matmul(w.reshape(group, m // group, -1), cols.reshape(n_batch, group, -1, p))
    return y.reshape((n_batch, m) + win.out)


def _depthwise(x: np.ndarray, w: np.ndarray, win: Window) -> np.ndarray:
    """groups == C: accumulate kernel taps with elementwise multiply-add (no matmul)."""
    n_batch, c = x.shape[:2]
    mult, n = w.shape[0] // c, len(win.kernel)
    wt = w.reshape((c, mult) + win.kernel)
    y = np.empty((n_batch, c, mult) + win.out, np.float32)
    tmp = np.empty_like(y)
    for i, (t, tap) in enumerate(taps(windows(pad(x, win), win), n)):
        wk = wt[(slice(None), slice(None)) + t].reshape((c, mult) + (1,) * n)
        np.multiply(tap[:, :, None], wk, out=tmp if i else y)
        if i:
            y += tmp
    return y.reshape((n_batch, c * mult) + win.out)


@register_op("Conv")
class Conv(Op):
    """N-D convolution (cross-correlation) with groups, strides, dilations and padding."""

    timing = "window"
    fast_kernels = ("blocked-conv", "session")
    graph_kernel = "summed"
    engine = TENSOR_ENGINE
    defaults = {**WINDOW_DEFAULTS, "group": 1, "kernel_shape": None}

    def window(self, attrs: dict, x_shape, w_shape) -> Window:
        return resolve(tuple(x_shape[2:]), kernel_of(attrs, w_shape), attrs)

    def shares_stationary(self, attrs, stationary_shape):
        return int(attrs.get("group", 1)) == 1  # every image meets the whole filter

    def infer(self, node, types):
        x, w = types[0], types[1]
        attrs = self.attrs(node)
        _check_groups(x, w.shape[1], attrs["group"])
        _check_bias(types, w.shape[0])
        return infer_window(x, w.shape[0], self.window(attrs, x.shape, w.shape))

    def reference(self, x, w, b=None, **attrs):
        win = self.window(attrs, x.shape, w.shape)
        y = _conv(to_f32(x), to_f32(w), win, int(attrs["group"]))
        return _bias(y, b).astype(x.dtype, copy=False)

    def cost(self, node):
        x, w, y = node.inputs[0].type, node.inputs[1].type, node.outputs[0].type
        g = self.attrs(node)["group"]
        count, m = x.shape[0] * g, math.prod(y.shape[2:])
        k, n = w.shape[1] * math.prod(w.shape[2:]), w.shape[0] // g
        return Cost(2 * count * m * k * n, io_bytes(node), (count, m, k, n))


def transpose_window(spatial, kernel, attrs: dict) -> Window:
    """ConvTranspose geometry: `lo` is the crop at the start of the full scatter, `out` the output
    size, `extra` the output_padding (ONNX: output_shape, else auto_pad SAME_* -> in * stride)."""
    n = len(kernel)
    strides = per_axis(attrs.get("strides"), n, 1)
    dilations = per_axis(attrs.get("dilations"), n, 1)
    out_pad = per_axis(attrs.get("output_padding"), n, 0)
    pads = per_axis(attrs.get("pads"), 2 * n, 0)
    shape = attrs.get("output_shape")
    auto_pad = attrs.get("auto_pad", "NOTSET")
    lo, out = [], []
    for i, (size, k, s, d, a) in enumerate(zip(spatial, kernel, strides, dilations, out_pad)):
        full = s * (size - 1) + a + (k - 1) * d + 1
        target = (shape[len(shape) - n + i] if shape is not None and len(shape)
                  else size * s if auto_pad in ("SAME_UPPER", "SAME_LOWER") else None)
        if target is None:
            b, e = (0, 0) if auto_pad == "VALID" else (pads[i], pads[n + i])
        else:
            total = full - target  # negative: the output extends past the scatter with zeros
            b = total // 2 if auto_pad == "SAME_UPPER" else total - total // 2
            e = total - b
        lo.append(b), out.append(full - b - e)
    return Window(tuple(kernel), strides, dilations, tuple(lo), (), tuple(out), out_pad)


@register_op("ConvTranspose")
class ConvTranspose(Op):
    """N-D transposed convolution (gradient of Conv) with groups, output_padding, output_shape."""

    timing = "window"
    fast_kernels = ("session",)
    graph_kernel = "summed"
    engine = TENSOR_ENGINE
    defaults = {**WINDOW_DEFAULTS, "group": 1, "kernel_shape": None, "output_padding": None,
                "output_shape": None}

    def window(self, attrs: dict, x_shape, w_shape) -> Window:
        return transpose_window(tuple(x_shape[2:]), kernel_of(attrs, w_shape), attrs)

    def infer(self, node, types):
        x, w = types[0], types[1]
        attrs = self.attrs(node)
        _check_groups(x, w.shape[0] // attrs["group"], attrs["group"])
        _check_bias(types, w.shape[1] * attrs["group"])
        return infer_window(x, w.shape[1] * attrs["group"], self.window(attrs, x.shape, w.shape))

    def reference(self, x, w, b=None, **attrs):
        win = self.window(attrs, x.shape, w.shape)
        x32, w32, group = to_f32(x), to_f32(w), int(attrs["group"])
        n_batch, spatial = x.shape[0], x.shape[2:]
        mg, cg = w.shape[1], x.shape[1] // group
        # one matmul gives every tap's contribution: (G, Mg*K, Cg) @ (N, G, Cg, P_in)
        wg = w32.reshape(group, cg, -1).transpose(0, 2, 1)
        cols = np.matmul(wg, x32.reshape(n_batch, group, cg, -1))
        cols = cols.reshape((n_batch, group * mg) + win.kernel + spatial)
        # col2im: scatter-add each tap into the strided output grid, then crop the pads
        full = tuple((i - 1) * s + (k - 1) * d + 1 + a for i, s, k, d, a in
                     zip(spatial, win.strides, win.kernel, win.dilations, win.extra))
        y = np.zeros((n_batch, group * mg) + full, np.float32)
        for t in np.ndindex(*win.kernel):
            dst = tuple(slice(ti * d, ti * d + (i - 1) * s + 1, s) for ti, d, i, s in
                        zip(t, win.dilations, spatial, win.strides))
            y[(slice(None), slice(None)) + dst] += cols[(slice(None), slice(None)) + t]
        grow = [(max(0, -lo), max(0, lo + o - f)) for lo, o, f in zip(win.lo, win.out, full)]
        if any(b or e for b, e in grow):  # output_shape beyond the full scatter: zeros there
            y = np.pad(y, [(0, 0), (0, 0)] + grow)
            full = y.shape[2:]
        crop = tuple(slice(lo + b, lo + b + o) for lo, o, (b, _) in zip(win.lo, win.out, grow))
        if crop != tuple(slice(0, f) for f in full):
            y = np.ascontiguousarray(y[(slice(None), slice(None)) + crop])
        return _bias(y, b).astype(x.dtype, copy=False)

    def cost(self, node):
        x, w = node.inputs[0].type, node.inputs[1].type
        g = self.attrs(node)["group"]
        count, m = x.shape[0] * g, math.prod(x.shape[2:])
        k, n = w.shape[0] // g, w.shape[1] * math.prod(w.shape[2:])
        return Cost(2 * count * m * k * n, io_bytes(node), (count, m, k, n))
