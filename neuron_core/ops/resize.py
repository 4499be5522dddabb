"""Resize on the VectorEngine: nearest, N-D separable linear and cubic interpolation.

Each resized axis becomes a small gather + weight table (out_len x taps), applied one axis at a
time; the coordinate arithmetic is float32 like onnxruntime's, so nearest ties round the same
way."""
from __future__ import annotations

import numpy as np

from ..errors import ShapeInferenceError
from ..ir import TensorType
from .registry import (FLOATS, VECTOR_ENGINE, Cost, Op, const_value, io_bytes, register_op,
                       to_f32)

MODES = ("nearest", "linear", "cubic")
TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
              "asymmetric")
NEAREST = {
    "round_prefer_floor": lambda x: np.ceil(x - np.float32(0.5)),
    "round_prefer_ceil": lambda x: np.floor(x + np.float32(0.5)),
    "floor": np.floor,
    "ceil": np.ceil,
}
POLICIES = ("stretch", "not_larger", "not_smaller")


def _given(a) -> np.ndarray | None:
    return None if a is None or np.size(a) == 0 else np.asarray(a)


def plan(shape, scales, sizes, attrs: dict) -> tuple[tuple, list]:
    """Output shape and per-axis float32 scale (1 for axes not resized)."""
    rank = len(shape)
    axes = attrs.get("axes")
    axes = [int(a) % rank for a in axes] if axes is not None and len(axes) else list(range(rank))
    out, scale = list(shape), [np.float32(1.0)] * rank
    scales, sizes = _given(scales), _given(sizes)
    if sizes is not None:
        if len(sizes) != len(axes):
            raise ShapeInferenceError(f"Resize sizes {sizes.tolist()} do not match axes {axes}")
        ratios = [np.float32(s) / np.float32(shape[a]) for s, a in zip(sizes, axes)]
        policy = attrs.get("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            common = min(ratios) if policy == "not_larger" else max(ratios)
            ratios = [common] * len(axes)
            sizes = [int(np.floor(common * np.float32(shape[a]) + np.float32(0.5))) for a in axes]
        for a, s, r in zip(axes, sizes, ratios):
            out[a], scale[a] = int(s), np.float32(r)
    elif scales is not None:
        if len(scales) != len(axes):
            raise ShapeInferenceError(f"Resize scales {scales.tolist()} do not match axes {axes}")
        for a, s in zip(axes, scales):
            if isinstance(shape[a], str) and s == 1:
                continue  # a symbolic (batch) axis that is not resized
            scale[a] = np.float32(s)
            out[a] = int(np.float32(shape[a]) * scale[a])
    else:
        raise ShapeInferenceError("Resize needs one of scales or sizes")
    return tuple(out), scale


def source_coords(n_out: int, n_in: int, scale, mode: str) -> np.ndarray:
    """Input coordinate of each output position (float32), per coordinate_transformation_mode."""
    x = np.arange(n_out, dtype=np.float32)
    half = np.float32(0.5)
    if mode == "asymmetric":
        return x / scale
    if mode == "align_corners":
        # the integer output length, as onnxruntime and PyTorch do (the ONNX reference evaluator
        # divides by n_in * scale instead; the two differ only when scales give a fraction)
        return (x * np.float32(n_in - 1) / np.float32(n_out - 1) if n_out > 1
                else np.zeros_like(x))
    if mode == "pytorch_half_pixel" and n_out <= 1:
        return np.zeros_like(x)
    if mode == "half_pixel_symmetric":  # same float32 association as onnxruntime
        adjust = np.float32(n_out) / (scale * np.float32(n_in))
        offset = np.float32(n_in) / np.float32(2) * (np.float32(1) - adjust)
        return offset + (x + half) / scale - half
    return (x + half) / scale - half


def taps(n_out: int, n_in: int, scale, attrs: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """Gather indices (n_out, T) and float32 weights (None for nearest) along one axis."""
    coords = source_coords(n_out, n_in, scale, attrs["coordinate_transformation_mode"])
    mode = attrs["mode"]
    if mode == "nearest":
        idx = NEAREST[attrs["nearest_mode"]](coords).astype(np.int64)
        return np.clip(idx, 0, n_in - 1)[:, None], None
    if mode == "linear":
        coords = np.clip(coords, 0, n_in - 1)
        base = np.floor(coords)
        frac = coords - base
        idx = base.astype(np.int64)[:, None] + np.arange(2)
        weights = np.stack([1 - frac, frac], axis=1)
    else:  # cubic: Keys kernel with coefficient a over 4 taps
        base = np.floor(coords)
        s = coords - base
        idx = base.astype(np.int64)[:, None] + np.arange(-1, 3)
        dist = np.abs(np.stack([s + 1, s, 1 - s, 2 - s], axis=1))
        a = np.float32(attrs["cubic_coeff_a"])
        near = ((a + 2) * dist - (a + 3)) * dist * dist + 1
        far = ((a * dist - 5 * a) * dist + 8 * a) * dist - 4 * a
        weights = np.where(dist <= 1, near, far).astype(np.float32)
        if attrs["exclude_outside"]:
            weights[(idx < 0) | (idx >= n_in)] = 0
            weights /= weights.sum(axis=1, keepdims=True)
    return np.clip(idx, 0, n_in - 1), weights.astype(np.float32, copy=False)


def _along(x: np.ndarray, axis: int, idx: np.ndarray, weights) -> np.ndarray:
    """Weighted gather of `x` along `axis`: y[.., o, ..] = sum_t w[o, t] * x[.., idx[o, t], ..]."""
    bshape = [1] * x.ndim
    bshape[axis] = -1
    y = None
    for t in range(idx.shape[1]):
        part = np.take(x, idx[:, t], axis=axis)
        if weights is not None:
            part *= weights[:, t].reshape(bshape)
        y = part if y is None else np.add(y, part, out=y)
    return y


@register_op("Resize")
class Resize(Op):
    """Resize by scales or sizes with nearest, linear or cubic interpolation."""

    timing = "window"
    engine = VECTOR_ENGINE
    input_dtypes = (FLOATS,)
    static_inputs = (1, 2, 3)
    defaults = {"antialias": 0, "axes": None, "coordinate_transformation_mode": "half_pixel",
                "cubic_coeff_a": -0.75, "exclude_outside": 0, "extrapolation_value": 0.0,
                "keep_aspect_ratio_policy": "stretch", "mode": "nearest",
                "nearest_mode": "round_prefer_floor"}

    def infer(self, node, types):
        x = types[0]
        out, _ = plan(x.shape, const_value(node, 2), const_value(node, 3), self.attrs(node))
        return [TensorType(out, x.dtype)]

    def check_attrs(self, node, attrs):
        choices = (("mode", MODES), ("coordinate_transformation_mode", TRANSFORMS),
                   ("nearest_mode", tuple(NEAREST)), ("keep_aspect_ratio_policy", POLICIES))
        for name, allowed in choices:
            if attrs[name] not in allowed:
                return (f"Resize {name}={attrs[name]!r} is not supported; supported: "
                        f"{', '.join(allowed)}")
        if attrs["antialias"]:
            return "Resize antialias=1 is not supported; use antialias=0"
        return None

    def reference(self, x, roi=None, scales=None, sizes=None, **attrs):
        out, scale = plan(x.shape, scales, sizes, attrs)
        y = to_f32(x)
        # resize the shrinking axes first, so the later gathers touch fewer elements
        for axis in sorted(range(x.ndim), key=lambda a: out[a] / max(x.shape[a], 1)):
            if out[axis] == x.shape[axis] and scale[axis] == 1:
                continue
            idx, weights = taps(out[axis], x.shape[axis], scale[axis], attrs)
            y = _along(y, axis, idx, weights)
        if y is x:
            y = y.copy()
        return y.astype(x.dtype, copy=False)

    def cost(self, node):
        x, y = node.inputs[0].type, node.outputs[0].type
        resized = sum(a != b for a, b in zip(x.shape, y.shape)) or 1
        n_taps = {"nearest": 1, "linear": 2, "cubic": 4}.get(self.attrs(node)["mode"], 1)
        return Cost(y.numel * resized * (2 * n_taps - 1), io_bytes(node))
