"""Elementwise ATen ops: arithmetic, comparisons, activations, casts."""
from __future__ import annotations

import math

from neuron_core.bridge import Unsupported
from neuron_core.ir import Value

from . import TABLE
from ._util import first_tensor, onnx_dtype, operand

_UNARY = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "log": "Log",
          "neg": "Neg", "abs": "Abs", "sqrt": "Sqrt", "reciprocal": "Reciprocal", "erf": "Erf",
          "hardswish": "HardSwish", "logical_not": "Not"}
for _name, _core in _UNARY.items():
    TABLE.register(f"aten.{_name}.default")(
        lambda cv, x, _core=_core: cv.op(_core, [x]))

_BINARY = {"mul": "Mul", "div": "Div", "maximum": "Max", "minimum": "Min", "pow": "Pow",
           "eq": "Equal", "lt": "Less", "le": "LessOrEqual", "gt": "Greater",
           "ge": "GreaterOrEqual", "logical_and": "And", "logical_or": "Or",
           "bitwise_and": "And", "bitwise_or": "Or"}


def _binary(core):
    def rule(cv, a, b):
        like = first_tensor(a, b)
        return cv.op(core, [operand(cv, a, like), operand(cv, b, like)])
    return rule


for _name, _core in _BINARY.items():
    for _overload in ("Tensor", "Scalar", "default", "Tensor_Scalar", "Tensor_Tensor"):
        TABLE.rules.setdefault(f"aten.{_name}.{_overload}", _binary(_core))


@TABLE.register("aten.add.Tensor", "aten.add.Scalar", "aten.sub.Tensor", "aten.sub.Scalar")
def _add_sub(cv, a, b, alpha=1):
    like = first_tensor(a, b)
    b = operand(cv, b, like)
    if alpha != 1:
        b = cv.op("Mul", [b, cv.const(alpha, like)])
    core = "Sub" if ".sub." in cv._op else "Add"
    return cv.op(core, [operand(cv, a, like), b])


@TABLE.register("aten.rsub.Scalar", "aten.rsub.Tensor")
def _rsub(cv, a, b, alpha=1):
    like = first_tensor(a, b)
    a = operand(cv, a, like)
    if alpha != 1:
        a = cv.op("Mul", [a, cv.const(alpha, like)])
    return cv.op("Sub", [operand(cv, b, like), a])


@TABLE.register("aten.ne.Tensor", "aten.ne.Scalar")
def _ne(cv, a, b):
    like = first_tensor(a, b)
    return cv.op("Not", [cv.op("Equal", [operand(cv, a, like), operand(cv, b, like)])])


@TABLE.register("aten.div.Tensor_mode", "aten.div.Scalar_mode")
def _div_mode(cv, a, b, rounding_mode=None):
    if rounding_mode is not None:
        raise Unsupported(f"division with rounding_mode={rounding_mode!r} has no Neuron lowering")
    return _binary("Div")(cv, a, b)


@TABLE.register("aten.rsqrt.default")
def _rsqrt(cv, x):
    return cv.op("Reciprocal", [cv.op("Sqrt", [x])])


@TABLE.register("aten.silu.default")
def _silu(cv, x):
    return cv.op("Mul", [x, cv.op("Sigmoid", [x])])


@TABLE.register("aten.gelu.default")
def _gelu(cv, x, approximate="none"):
    return cv.op("Gelu", [x], {"approximate": approximate})


@TABLE.register("aten.leaky_relu.default")
def _leaky_relu(cv, x, negative_slope=0.01):
    return cv.op("LeakyRelu", [x], {"alpha": float(negative_slope)})


@TABLE.register("aten.elu.default")
def _elu(cv, x, alpha=1.0, scale=1.0, input_scale=1.0):
    if scale != 1 or input_scale != 1:
        if not (math.isclose(scale, 1.0507009873554805) and input_scale == 1):
            raise Unsupported(f"elu with scale={scale}, input_scale={input_scale}")
        return cv.op("Selu", [x], {"alpha": float(alpha), "gamma": float(scale)})
    return cv.op("Elu", [x], {"alpha": float(alpha)})


@TABLE.register("aten.hardsigmoid.default")
def _hardsigmoid(cv, x):
    return cv.op("HardSigmoid", [x], {"alpha": 1 / 6, "beta": 0.5})


@TABLE.register("aten.softplus.default")
def _softplus(cv, x, beta=1, threshold=20):
    if beta != 1:
        raise Unsupported(f"softplus with beta={beta}")
    return cv.op("Softplus", [x])


@TABLE.register("aten.hardtanh.default", "aten.clamp.default", "aten.clamp.Tensor")
def _clip(cv, x, lo=None, hi=None):
    if ".hardtanh." in cv._op:
        lo = -1.0 if lo is None else lo
        hi = 1.0 if hi is None else hi
    return cv.op("Clip", [x, None if lo is None else operand(cv, lo, x),
                          None if hi is None else operand(cv, hi, x)])


@TABLE.register("aten.clamp_min.default")
def _clamp_min(cv, x, lo):
    return cv.op("Clip", [x, operand(cv, lo, x)])


@TABLE.register("aten.clamp_max.default")
def _clamp_max(cv, x, hi):
    return cv.op("Clip", [x, None, operand(cv, hi, x)])


@TABLE.register("aten.where.self", "aten.where.ScalarSelf", "aten.where.ScalarOther",
                "aten.where.Scalar")
def _where(cv, cond, a, b):
    like = next((v for v in (a, b) if isinstance(v, Value)), None)
    if like is None:
        like = cv.const(a if isinstance(a, float) or isinstance(b, float) else 0.0 * a)
    return cv.op("Where", [cond, operand(cv, a, like), operand(cv, b, like)])


@TABLE.register("aten.masked_fill.Scalar", "aten.masked_fill.Tensor")
def _masked_fill(cv, x, mask, value):
    return cv.op("Where", [mask, operand(cv, value, x), x])


@TABLE.register("aten._to_copy.default")
def _to_copy(cv, x, dtype=None, **_):
    if dtype is None or str(dtype).replace("torch.", "") == x.type.dtype:
        return x
    return cv.op("Cast", [x], {"to": onnx_dtype(dtype)})


@TABLE.register("aten.clone.default", "aten.alias.default", "aten.detach.default",
                "aten.lift_fresh_copy.default", "aten.contiguous.default")
def _alias(cv, x, **_):
    return x


@TABLE.register("aten._prelu_kernel.default")
def _prelu(cv, x, weight):
    if weight.type.rank == 1 and x.type.rank > 1 and weight.type.shape[0] != 1:
        shape = [weight.type.shape[0]] + [1] * (x.type.rank - 2)
        weight = cv.op("Reshape", [weight, cv.const(shape, dtype="int64")])
    return cv.op("PRelu", [x, weight])
