"""Rules for TensorFlow's elementwise math, comparisons and reductions."""
from __future__ import annotations

import numpy as np

from neuron_core.ir import Value

from . import TABLE
from ._util import (NHWC_AXIS, attr, const, const_nchw, has_nchw, ints, nchw, publish, rule)

#: TF op -> core op, one input, layout-neutral
UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Elu": "Elu", "Selu": "Selu",
         "Softplus": "Softplus", "Exp": "Exp", "Log": "Log", "Sqrt": "Sqrt", "Neg": "Neg",
         "Abs": "Abs", "Reciprocal": "Reciprocal", "Inv": "Reciprocal", "Erf": "Erf",
         "LogicalNot": "Not"}
#: TF op -> core op, two inputs with numpy broadcasting
BINARY = {"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div",
          "Div": "Div", "Maximum": "Max", "Minimum": "Min", "Pow": "Pow", "Equal": "Equal",
          "Less": "Less", "Greater": "Greater", "LessEqual": "LessOrEqual",
          "GreaterEqual": "GreaterOrEqual", "LogicalAnd": "And", "LogicalOr": "Or"}
#: TF reduction -> core op
REDUCE = {"Mean": "ReduceMean", "Sum": "ReduceSum", "Max": "ReduceMax", "Min": "ReduceMin",
          "Prod": "ReduceProd"}


def unary(cv, op_type: str, x: Value, attrs: dict | None = None, extra: list = ()) -> Value:
    """`op_type` on x, in x's NCHW form when it has one."""
    if has_nchw(cv, x):
        return publish(cv, cv.op(op_type, [nchw(cv, x), *extra], attrs))
    return cv.op(op_type, [x, *extra], attrs)


def binary(cv, op_type: str, a: Value, b: Value) -> Value:
    """`op_type` on (a, b), in NCHW when an operand has an NCHW form and the other can follow."""
    image = [v for v in (a, b) if has_nchw(cv, v)]
    if image:
        ok = all(has_nchw(cv, v) or (v.is_const and v.type.rank <= 4) or v.type.rank == 4
                 for v in (a, b))
        out_rank = max(a.type.rank, b.type.rank)
        if ok and out_rank == 4:
            args = [nchw(cv, v) if has_nchw(cv, v) or not v.is_const else const_nchw(cv, v)
                    for v in (a, b)]
            return publish(cv, cv.op(op_type, args))
    return cv.op(op_type, [a, b])


def _register_unary(tf_op, core_op):
    rule(TABLE, tf_op)(lambda cv, x: unary(cv, core_op, x))


def _register_binary(tf_op, core_op):
    rule(TABLE, tf_op)(lambda cv, a, b: binary(cv, core_op, a, b))


for _tf, _core in UNARY.items():
    _register_unary(_tf, _core)
for _tf, _core in BINARY.items():
    _register_binary(_tf, _core)


@rule(TABLE, "Relu6")
def _relu6(cv, x):
    return unary(cv, "Clip", x, None, [cv.const(0.0, x), cv.const(6.0, x)])


@rule(TABLE, "LeakyRelu")
def _leaky(cv, x):
    return unary(cv, "LeakyRelu", x, {"alpha": float(attr(cv, "alpha", 0.2))})


@rule(TABLE, "Rsqrt")
def _rsqrt(cv, x):
    return unary(cv, "Reciprocal", unary(cv, "Sqrt", x))


@rule(TABLE, "Square")
def _square(cv, x):
    return binary(cv, "Mul", x, x)


@rule(TABLE, "SquaredDifference")
def _sqdiff(cv, a, b):
    d = binary(cv, "Sub", a, b)
    return binary(cv, "Mul", d, d)


@rule(TABLE, "Erfc")
def _erfc(cv, x):
    return binary(cv, "Sub", cv.const(1.0, x), unary(cv, "Erf", x))


@rule(TABLE, "Gelu")
def _gelu(cv, x):
    approx = "tanh" if attr(cv, "approximate", False) else "none"
    return unary(cv, "Gelu", x, {"approximate": approx})


@rule(TABLE, "AddN")
def _addn(cv, *xs):
    out = xs[0]
    for x in xs[1:]:
        out = binary(cv, "Add", out, x)
    return out


@rule(TABLE, "Select", "SelectV2")
def _select(cv, c, a, b):
    if cv.node.type == "Select" and c.type.rank == 1 and a.type.rank > 1:
        c = cv.op("Reshape", [c, ints(cv, [-1] + [1] * (a.type.rank - 1))])
    return cv.op("Where", [c, a, b])


@rule(TABLE, "Cast")
def _cast(cv, x):
    from ._util import onnx_dtype
    to = onnx_dtype(attr(cv, "DstT"))
    return unary(cv, "Cast", x, {"to": to})


def _reduce(cv, x, axes):
    op_type = REDUCE[cv.node.type]
    axes = [int(a) % max(x.type.rank, 1) for a in np.atleast_1d(const(axes, "reduction axes"))]
    keep = bool(attr(cv, "keep_dims", False))
    if not axes:
        return x
    if has_nchw(cv, x):
        moved = [NHWC_AXIS[a] for a in axes]
        kept = [NHWC_AXIS[a] for a in range(4) if a not in axes]
        if keep or kept == sorted(kept):   # the result's axes keep their order
            y = cv.op(op_type, [nchw(cv, x), ints(cv, moved)], {"keepdims": int(keep)})
            return publish(cv, y) if keep else y
    return cv.op(op_type, [x, ints(cv, axes)], {"keepdims": int(keep)})


for _tf in REDUCE:
    rule(TABLE, _tf)(_reduce)

