"""Elementwise arithmetic with broadcasting, run on the VectorEngine."""
from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np

from ._elementwise import Binary, Variadic
from .registry import FLOATS, INDEX, SCALAR_ENGINE, register_op


class _IndexArith(Binary):
    """Binary arithmetic that also serves integer shape computations: one numpy ufunc."""

    graph_kernel = "exact"
    input_dtypes = (FLOATS + INDEX,)
    writes_out = True
    fn: ClassVar[np.ufunc]

    def reference(self, a, b, out=None):
        return self.fn(a, b, out=out)


@register_op("Add")
class Add(_IndexArith):
    """a + b, broadcast."""

    epilogue = "binary"
    layout_free = True
    vector_code = 0
    gemm_bias = True
    session_epilogue = True
    fn = np.add


@register_op("Sub")
class Sub(_IndexArith):
    """a - b, broadcast."""

    epilogue = "binary"
    layout_free = True
    vector_code = 1
    fn = np.subtract


@register_op("Mul")
class Mul(_IndexArith):
    """a * b, broadcast."""

    epilogue = "binary"
    layout_free = True
    vector_code = 2
    fn = np.multiply


@register_op("Div")
class Div(_IndexArith):
    """a / b, broadcast; integer division truncates toward zero, as in onnxruntime."""

    epilogue = "binary"
    layout_free = True
    vector_code = 3
    def reference(self, a, b, out=None):
        if a.dtype.kind != "i":
            return np.divide(a, b, out=out)
        with np.errstate(divide="ignore"):
            q = np.floor_divide(a, b)
        # floor and truncation differ where the division is inexact and the signs differ
        return q + ((q * b != a) & ((a < 0) != (b < 0))).astype(q.dtype)


@register_op("Mod")
class Mod(_IndexArith):
    """a mod b, broadcast: with the divisor's sign (fmod=0, as Python's %), or with the
    dividend's, as C's fmod (fmod=1)."""

    defaults = {"fmod": 0}
    writes_out = False
    graph_kernel = None   # onnxruntime takes float fmod=0 only from opset 28, above the graphs'

    def reference(self, a, b, fmod=0):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.fmod(a, b) if fmod else np.mod(a, b)


@register_op("Pow")
class Pow(Binary):
    """a ** b, broadcast; the result has the base's dtype whatever the exponent's."""

    layout_free = True
    engine = SCALAR_ENGINE
    input_dtypes = (FLOATS, FLOATS + INDEX)
    flops_per_element = 8

    def reference(self, a, b):
        return np.power(a, b.astype(a.dtype, copy=False))


class _Fold(Variadic):
    """Variadic op that folds a binary ufunc over its broadcast inputs."""

    fold: ClassVar[np.ufunc]

    def reference(self, *xs):
        return functools.reduce(self.fold, xs)


@register_op("Max")
class Max(_Fold):
    """Elementwise maximum of all inputs, broadcast."""

    layout_free = True
    graph_kernel = "exact"
    exact = True
    input_dtypes = (FLOATS + INDEX,)
    fold = np.maximum


@register_op("Min")
class Min(_Fold):
    """Elementwise minimum of all inputs, broadcast."""

    layout_free = True
    graph_kernel = "exact"
    exact = True
    input_dtypes = (FLOATS + INDEX,)
    fold = np.minimum


@register_op("Sum")
class Sum(_Fold):
    """Elementwise sum of all inputs, broadcast."""

    layout_free = True
    fold = np.add


@register_op("Mean")
class Mean(_Fold):
    """Elementwise mean of all inputs, broadcast."""

    layout_free = True
    fold = np.add

    def reference(self, *xs):
        return super().reference(*xs) / np.float32(len(xs))
