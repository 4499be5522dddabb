"""Activations: elementwise functions run on the ScalarEngine."""
from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ._elementwise import Binary, Unary, via_bf16_table
from .registry import FLOATS, INDEX, SCALAR_ENGINE, VECTOR_ENGINE, register_op


class _Ufunc(Unary):
    """A unary op that is exactly one numpy ufunc."""

    fn: ClassVar[np.ufunc]

    def reference(self, x):
        return self.fn(x)


@register_op("Relu")
class Relu(Unary):
    """max(x, 0), elementwise."""

    epilogue = "unary"
    layout_free = True
    vector_code = -1
    session_epilogue = True
    fused_activation = "Relu"
    graph_kernel = "exact"
    exact = True
    writes_out = True

    def reference(self, x, out=None):
        return np.maximum(x, 0, out=out).astype(x.dtype, copy=False)

    def graph(self, b, inputs, attrs, outputs):
        # onnxruntime's Relu keeps -0 where np.maximum gives +0; its Max(x, 0) gives these bits
        return b.node("Max", [inputs[0], b.const(np.zeros((), np.float32), "zero")])


@register_op("LeakyRelu")
class LeakyRelu(Unary):
    """x if x >= 0 else alpha * x."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    defaults = {"alpha": 0.01}
    flops_per_element = 2

    def reference(self, x, alpha):
        return np.where(x >= 0, x, x * np.float32(alpha))


@register_op("PRelu")
class PRelu(Binary):
    """x if x >= 0 else slope * x, the slope broadcast to x."""

    engine = SCALAR_ENGINE
    flops_per_element = 2

    def reference(self, x, slope):
        return np.where(x >= 0, x, x * slope)


@register_op("Elu")
class Elu(Unary):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    defaults = {"alpha": 1.0}
    flops_per_element = 4

    def reference(self, x, alpha):
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * np.float32(alpha))


@register_op("Selu")
class Selu(Unary):
    """gamma * x if x > 0 else gamma * alpha * (exp(x) - 1)."""

    graph_kernel = "probed"
    defaults = {"alpha": 1.67326319217681884765625, "gamma": 1.05070102214813232421875}
    flops_per_element = 5

    def reference(self, x, alpha, gamma):
        neg = np.exp(np.minimum(x, 0)) * np.float32(alpha) - np.float32(alpha)
        return np.where(x > 0, x, neg) * np.float32(gamma)


@register_op("Sigmoid")
class Sigmoid(Unary):
    """1 / (1 + exp(-x))."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    flops_per_element = 4

    def reference(self, x):
        return via_bf16_table(_sigmoid, x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))   # never overflows, for either sign of x
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@register_op("Tanh")
class Tanh(_Ufunc):
    """tanh(x)."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    flops_per_element = 4
    fn = np.tanh

    def reference(self, x):
        return via_bf16_table(np.tanh, x)


def _erf(x: np.ndarray) -> np.ndarray:
    """erf(x) in the input's float type (scipy's float32 loop for float32, by table on BF16).
    scipy is imported here, on first use: loading a model needs the ops' facts, not erf."""
    from scipy import special
    return via_bf16_table(special.erf, x)


@register_op("Erf")
class Erf(Unary):
    """The error function erf(x)."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    flops_per_element = 8

    def reference(self, x):
        return _erf(x)


@register_op("Gelu")
class Gelu(Unary):
    """x * Phi(x); approximate='tanh' uses 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    defaults = {"approximate": "none"}
    flops_per_element = 8

    def check_attrs(self, node, attrs):
        if attrs["approximate"] not in ("none", "tanh"):
            return f"Gelu approximate={attrs['approximate']!r} is not one of 'none', 'tanh'"
        return None

    def reference(self, x, approximate):
        return via_bf16_table(_GELU[approximate], x, key=("Gelu", approximate))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    inner = (x + np.float32(0.044715) * x * x * x) * np.float32(math.sqrt(2 / math.pi))
    return np.float32(0.5) * x * (1 + np.tanh(inner))


def _gelu_erf(x: np.ndarray) -> np.ndarray:
    return np.float32(0.5) * x * (1 + _erf(x * np.float32(1 / math.sqrt(2))))


_GELU = {"tanh": _gelu_tanh, "none": _gelu_erf}


class _Softmax(Unary):
    """Shared base of Softmax and LogSoftmax over one axis (opset 13)."""

    defaults = {"axis": -1}
    flops_per_element = 5

    def check_attrs(self, node, attrs):
        rank = node.inputs[0].type.rank
        if not -rank <= attrs["axis"] < rank:
            return f"{self.name} axis={attrs['axis']} is out of range for rank {rank}"
        return None


@register_op("Softmax")
class Softmax(_Softmax):
    """exp(x) / sum(exp(x)) along `axis`."""

    fast_kernels = ("session",)
    graph_kernel = "summed"

    def reference(self, x, axis):
        # a row of -inf only (every key masked) gives NaN, as in onnxruntime; the graphs that
        # build such rows replace them afterwards, so numpy need not warn about it
        with np.errstate(invalid="ignore"):
            e = np.subtract(x, np.max(x, axis=axis, keepdims=True))
            np.exp(e, out=e)
            e /= np.sum(e, axis=axis, keepdims=True)
        return e


@register_op("LogSoftmax")
class LogSoftmax(_Softmax):
    """x - log(sum(exp(x))) along `axis`."""

    def reference(self, x, axis):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


@register_op("Clip")
class Clip(Unary):
    """min(max(x, min), max); min and max are optional scalar inputs."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    exact = True
    input_dtypes = (FLOATS + INDEX,)
    flops_per_element = 2

    def reference(self, x, lo=None, hi=None):
        if lo is not None:
            x = np.maximum(x, lo.astype(x.dtype))
        if hi is not None:
            x = np.minimum(x, hi.astype(x.dtype))
        return x


@register_op("HardSigmoid")
class HardSigmoid(Unary):
    """max(0, min(1, alpha * x + beta))."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    defaults = {"alpha": 0.2, "beta": 0.5}
    flops_per_element = 4

    def reference(self, x, alpha, beta):
        return np.clip(x * np.float32(alpha) + np.float32(beta), 0, 1).astype(x.dtype, copy=False)


@register_op("HardSwish")
class HardSwish(Unary):
    """x * max(0, min(1, x / 6 + 0.5))."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    flops_per_element = 5

    def reference(self, x):
        gate = np.clip(x * np.float32(1 / 6) + np.float32(0.5), 0, 1).astype(x.dtype, copy=False)
        return x * gate


@register_op("Softplus")
class Softplus(Unary):
    """log(exp(x) + 1)."""

    epilogue = "unary"
    layout_free = True
    graph_kernel = "probed"
    flops_per_element = 4

    def reference(self, x):
        return np.logaddexp(x, np.float32(0))


@register_op("Sqrt")
class Sqrt(_Ufunc):
    """sqrt(x)."""

    layout_free = True
    graph_kernel = "exact"
    fn = np.sqrt


@register_op("Reciprocal")
class Reciprocal(_Ufunc):
    """1 / x."""

    layout_free = True
    graph_kernel = "exact"
    fn = np.reciprocal


@register_op("Exp")
class Exp(_Ufunc):
    """exp(x)."""

    layout_free = True
    graph_kernel = "probed"
    flops_per_element = 4
    fn = np.exp


@register_op("Log")
class Log(_Ufunc):
    """Natural logarithm log(x)."""

    layout_free = True
    graph_kernel = "probed"
    flops_per_element = 4
    fn = np.log


@register_op("Neg")
class Neg(_Ufunc):
    """-x; also on integers, so it runs on the VectorEngine."""

    layout_free = True
    graph_kernel = "exact"
    engine = VECTOR_ENGINE
    exact = True
    input_dtypes = (FLOATS + INDEX,)
    fn = np.negative


@register_op("Abs")
class Abs(_Ufunc):
    """|x|; also on integers, so it runs on the VectorEngine."""

    layout_free = True
    graph_kernel = "exact"
    engine = VECTOR_ENGINE
    exact = True
    input_dtypes = (FLOATS + INDEX,)
    fn = np.abs
