"""Normalizations (inference form), on the VectorEngine."""
from __future__ import annotations

import numpy as np

from ..ir import TensorType
from .registry import Op, register_op


def _per_channel(v: np.ndarray, ndim: int) -> np.ndarray:
    """A per-channel (axis 1) vector shaped to broadcast against an (N, C, ...) tensor."""
    return v.reshape((-1,) + (1,) * (ndim - 2))


def _standardize(x: np.ndarray, axes: tuple, epsilon: float) -> np.ndarray:
    """(x - mean) / sqrt(var + epsilon) over `axes`."""
    centered = x - np.mean(x, axis=axes, keepdims=True)
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    return centered / np.sqrt(var + np.float32(epsilon))


def _extra_outputs(node, what: str) -> str | None:
    """The reason a node that asks for more than its output 0 is not supported."""
    if len(node.outputs) > 1:
        return (f"{node.op_type} %{node.name} asks for {what} as extra outputs; only output 0 "
                "(inference) is supported")
    return None


@register_op("BatchNormalization")
class BatchNormalization(Op):
    """Inference batch norm: (x - mean) / sqrt(var + epsilon) * scale + B, per channel (axis 1)."""

    defaults = {"epsilon": 1e-5, "momentum": 0.9, "training_mode": 0}
    flops_per_element = 2   # folds to one multiply-add per element

    def infer(self, node, types):
        return [types[0], types[3], types[4]][:len(node.outputs)]

    def check_attrs(self, node, attrs):
        if attrs["training_mode"]:
            return (f"BatchNormalization %{node.name} has training_mode=1; only inference is "
                    "supported: export the model in eval mode")
        return _extra_outputs(node, "running_mean/running_var")

    def reference(self, x, scale, bias, mean, var, epsilon, momentum=None, training_mode=0):
        factor = scale / np.sqrt(var + np.float32(epsilon))
        centered = x - _per_channel(mean, x.ndim)
        return centered * _per_channel(factor, x.ndim) + _per_channel(bias, x.ndim)


@register_op("LayerNormalization")
class LayerNormalization(Op):
    """Standardize over the axes from `axis` on, then * Scale + B (B optional)."""

    fast_kernels = ("session",)
    graph_kernel = "summed"
    defaults = {"axis": -1, "epsilon": 1e-5, "stash_type": 1}
    flops_per_element = 8

    def infer(self, node, types):
        x, axis = types[0], self.attrs(node)["axis"]
        if not -x.rank <= axis < x.rank:
            raise ValueError(f"axis {axis} is out of range for rank {x.rank}")
        axis %= x.rank
        stats = TensorType(x.shape[:axis] + (1,) * (x.rank - axis), "float32")
        return [x, stats, stats][:len(node.outputs)]

    def check_attrs(self, node, attrs):
        if attrs["stash_type"] != 1:
            return (f"LayerNormalization stash_type={attrs['stash_type']} is not supported; the "
                    "statistics are computed in float32 (stash_type=1)")
        return None

    def reference(self, x, scale, bias=None, axis=-1, epsilon=1e-5, stash_type=1):
        """Returns (Y, Mean, InvStdDev); nodes with fewer outputs use the first ones."""
        axes = tuple(range(axis % x.ndim, x.ndim))
        mean = np.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        inv_std = 1 / np.sqrt(np.mean(centered * centered, axis=axes, keepdims=True)
                              + np.float32(epsilon))
        y = centered * inv_std
        if scale.dtype != y.dtype or (bias is not None and bias.dtype != y.dtype):
            y = y * scale
            return (y if bias is None else y + bias), mean, inv_std
        y *= scale  # in place: same values, one allocation less
        if bias is not None:
            y += bias
        return y, mean, inv_std


@register_op("InstanceNormalization")
class InstanceNormalization(Op):
    """Standardize each (sample, channel) over its spatial axes, then * scale + B per channel."""

    defaults = {"epsilon": 1e-5}
    flops_per_element = 8

    def infer(self, node, types):
        return [types[0]]

    def reference(self, x, scale, bias, epsilon):
        y = _standardize(x, tuple(range(2, x.ndim)), epsilon)
        return y * _per_channel(scale, x.ndim) + _per_channel(bias, x.ndim)


@register_op("LRN")
class LRN(Op):
    """Local response normalization across channels:
    x / (bias + alpha / size * sum of x^2 over `size` neighbouring channels) ** beta."""

    defaults = {"alpha": 1e-4, "beta": 0.75, "bias": 1.0}
    flops_per_element = 10

    def infer(self, node, types):
        return [types[0]]

    def check_attrs(self, node, attrs):
        if "size" not in attrs:
            return f"LRN %{node.name} has no `size` attribute, which is required"
        return None

    def reference(self, x, size, alpha, beta, bias):
        channels = x.shape[1]
        before = (size - 1) // 2   # the window is c - floor((size-1)/2) .. c + ceil((size-1)/2)
        pad = [(0, 0)] * x.ndim
        pad[1] = (before, size - 1 - before)
        squares = np.pad(x * x, pad)
        window = sum(squares[:, k:k + channels] for k in range(size))
        return x / (np.float32(bias) + np.float32(alpha / size) * window) ** np.float32(beta)
