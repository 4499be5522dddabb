"""Elementwise arithmetic: elemwise_*/broadcast_* binaries, the *_scalar family, add_n, unary math,
clip, comparisons (MXNet returns 0/1 in the input dtype) and casts."""
from __future__ import annotations

from neuron_core.bridge import Unsupported

from . import TABLE
from ._attrs import Attrs
from .nn import FLOAT_INDEX_REASON

#: ONNX TensorProto dtype codes for MXNet's dtype names
_ONNX_DTYPE = {"float32": 1, "uint8": 2, "int8": 3, "int32": 6, "int64": 7, "bool": 9,
               "float16": 10}

_BINARY = {
    "Add": ("elemwise_add", "broadcast_add", "broadcast_plus", "_plus", "_Plus", "_add"),
    "Sub": ("elemwise_sub", "broadcast_sub", "broadcast_minus", "_minus", "_Minus", "_sub"),
    "Mul": ("elemwise_mul", "broadcast_mul", "_mul", "_Mul"),
    "Div": ("elemwise_div", "broadcast_div", "_div", "_Div"),
    "Max": ("broadcast_maximum", "_maximum", "_Maximum"),
    "Min": ("broadcast_minimum", "_minimum", "_Minimum"),
    "Pow": ("broadcast_power", "_power", "_Power"),
}
_COMPARE = {
    "Equal": ("broadcast_equal", "_equal"), "Greater": ("broadcast_greater", "_greater"),
    "Less": ("broadcast_lesser", "_lesser"),
    "GreaterOrEqual": ("broadcast_greater_equal", "_greater_equal"),
    "LessOrEqual": ("broadcast_lesser_equal", "_lesser_equal"),
}
#: scalar op -> (core op, scalar on the left)
_SCALAR = {
    "_plus_scalar": ("Add", False), "_PlusScalar": ("Add", False),
    "_minus_scalar": ("Sub", False), "_MinusScalar": ("Sub", False),
    "_rminus_scalar": ("Sub", True), "_RMinusScalar": ("Sub", True),
    "_mul_scalar": ("Mul", False), "_MulScalar": ("Mul", False),
    "_div_scalar": ("Div", False), "_DivScalar": ("Div", False),
    "_rdiv_scalar": ("Div", True), "_RDivScalar": ("Div", True),
    "_power_scalar": ("Pow", False), "_PowerScalar": ("Pow", False),
    "_rpower_scalar": ("Pow", True), "_RPowerScalar": ("Pow", True),
    "_maximum_scalar": ("Max", False), "_MaximumScalar": ("Max", False),
    "_minimum_scalar": ("Min", False), "_MinimumScalar": ("Min", False),
    "_equal_scalar": ("Equal", False), "_greater_scalar": ("Greater", False),
    "_lesser_scalar": ("Less", False), "_greater_equal_scalar": ("GreaterOrEqual", False),
    "_lesser_equal_scalar": ("LessOrEqual", False),
}
_UNARY = {
    "relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "exp": "Exp", "log": "Log",
    "sqrt": "Sqrt", "abs": "Abs", "negative": "Neg", "reciprocal": "Reciprocal", "erf": "Erf",
    "softrelu": "Softplus", "_copy": "Identity", "identity": "Identity", "BlockGrad": "Identity",
    "stop_gradient": "Identity", "make_loss": "Identity",
}


def _as_input_dtype(cv, y, like):
    """MXNet comparisons return 0/1 in the operands' dtype, not booleans."""
    return cv.op("Cast", [y], {"to": _ONNX_DTYPE.get(like.type.dtype, 1)})


def _binary(core: str):
    def rule(cv, a: Attrs, x, y):
        return cv.op(core, [x, y])
    return rule


def _compare(core: str):
    def rule(cv, a: Attrs, x, y):
        return _as_input_dtype(cv, cv.op(core, [x, y]), x)
    return rule


def _scalar(core: str, left: bool):
    def rule(cv, a: Attrs, x):
        s = cv.const(a.float("scalar", 0.0), like=x)
        y = cv.op(core, [s, x] if left else [x, s])
        return _as_input_dtype(cv, y, x) if core in _COMPARE else y
    return rule


def _unary(core: str):
    def rule(cv, a: Attrs, x):
        return cv.op(core, [x])
    return rule


for _core, _names in _BINARY.items():
    TABLE.register(*_names)(_binary(_core))
for _core, _names in _COMPARE.items():
    TABLE.register(*_names)(_compare(_core))
for _name, (_core, _left) in _SCALAR.items():
    TABLE.register(_name)(_scalar(_core, _left))
for _name, _core in _UNARY.items():
    TABLE.register(_name)(_unary(_core))


@TABLE.register("add_n", "ElementWiseSum", "_internal._add_n")
def _add_n(cv, a: Attrs, *xs):
    return cv.op("Sum", list(xs)) if len(xs) > 1 else cv.op("Identity", [xs[0]])


@TABLE.register("rsqrt")
def _rsqrt(cv, a: Attrs, x):
    return cv.op("Reciprocal", [cv.op("Sqrt", [x])])


@TABLE.register("square")
def _square(cv, a: Attrs, x):
    return cv.op("Mul", [x, x])


@TABLE.register("softsign")
def _softsign(cv, a: Attrs, x):
    return cv.op("Div", [x, cv.op("Add", [cv.op("Abs", [x]), cv.const(1.0, like=x)])])


@TABLE.register("hard_sigmoid")
def _hard_sigmoid(cv, a: Attrs, x):
    return cv.op("HardSigmoid", [x], {"alpha": a.float("alpha", 0.2),
                                      "beta": a.float("beta", 0.5)})


@TABLE.register("clip")
def _clip(cv, a: Attrs, x):
    lo, hi = cv.const(a.float("a_min"), like=x), cv.const(a.float("a_max"), like=x)
    return cv.op("Clip", [x, lo, hi])


@TABLE.register("Cast", "cast", "amp_cast")
def _cast(cv, a: Attrs, x):
    dtype = a.str("dtype")
    if dtype not in _ONNX_DTYPE:
        raise Unsupported(f"Cast to dtype={dtype!r} is not lowered; supported: "
                          f"{', '.join(_ONNX_DTYPE)}")
    if dtype in ("int32", "int64", "int8", "uint8") and x.type.dtype in ("float32", "float16"):
        reason = FLOAT_INDEX_REASON.split(": ", 1)[1]
        raise Unsupported(f"Cast of {x.type.dtype} to {dtype}: {reason}")
    return cv.op("Cast", [x], {"to": _ONNX_DTYPE[dtype]})


@TABLE.register("where")
def _where(cv, a: Attrs, cond, x, y):
    # MXNet's condition is numeric: any non-zero value selects x
    if cond.type.dtype != "bool":
        cond = cv.op("Not", [cv.op("Equal", [cond, cv.const(0, like=cond)])])
    return cv.op("Where", [cond, x, y])


@TABLE.register("_contrib_div_sqrt_dim")
def _div_sqrt_dim(cv, a: Attrs, x):
    return cv.op("Div", [x, cv.const(float(x.type.shape[-1]) ** 0.5, like=x)])
