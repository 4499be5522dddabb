"""Elementwise arithmetic: elemwise_*/broadcast_* binaries, the *_scalar family, add_n, unary math,
clip, comparisons (MXNet returns 0/1 in the input dtype) and casts."""
from __future__ import annotations

from neuron_core.bridge import Unsupported
from neuron_core.dtypes import ONNX_CODES

from . import TABLE
from ._attrs import Attrs
from .nn import FLOAT_INDEX_REASON

#: ONNX TensorProto dtype codes of the MXNet dtypes a cast may produce
_ONNX_DTYPE = {name: ONNX_CODES[name] for name in ("float32", "uint8", "int8", "int32", "int64",
                                                    "bool", "float16")}

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
#: core op -> MXNet ops computing op(x, scalar); comparisons give 0/1 in x's dtype
_SCALAR = {
    "Add": ("_plus_scalar", "_PlusScalar"), "Sub": ("_minus_scalar", "_MinusScalar"),
    "Mul": ("_mul_scalar", "_MulScalar"), "Div": ("_div_scalar", "_DivScalar"),
    "Pow": ("_power_scalar", "_PowerScalar"), "Max": ("_maximum_scalar", "_MaximumScalar"),
    "Min": ("_minimum_scalar", "_MinimumScalar"),
    "Equal": ("_equal_scalar",), "Greater": ("_greater_scalar",), "Less": ("_lesser_scalar",),
    "GreaterOrEqual": ("_greater_equal_scalar",), "LessOrEqual": ("_lesser_equal_scalar",),
}
#: core op -> MXNet ops computing op(scalar, x)
_RSCALAR = {"Sub": ("_rminus_scalar", "_RMinusScalar"), "Div": ("_rdiv_scalar", "_RDivScalar"),
            "Pow": ("_rpower_scalar", "_RPowerScalar")}
_UNARY = {
    "Relu": ("relu",), "Sigmoid": ("sigmoid",), "Tanh": ("tanh",), "Exp": ("exp",),
    "Log": ("log",), "Sqrt": ("sqrt",), "Abs": ("abs",), "Neg": ("negative",),
    "Reciprocal": ("reciprocal",), "Erf": ("erf",), "Softplus": ("softrelu",),
    "Identity": ("_copy", "identity", "BlockGrad", "stop_gradient", "make_loss"),
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


def _scalar(core: str, left: bool = False):
    def rule(cv, a: Attrs, x):
        s = cv.const(a.float("scalar", 0.0), like=x)
        y = cv.op(core, [s, x] if left else [x, s])
        return _as_input_dtype(cv, y, x) if core in _COMPARE else y
    return rule


def _rscalar(core: str):
    return _scalar(core, left=True)


def _unary(core: str):
    def rule(cv, a: Attrs, x):
        return cv.op(core, [x])
    return rule


# every table above maps a core op to the MXNet ops one rule serves
for _names_by_core, _make_rule in ((_BINARY, _binary), (_COMPARE, _compare), (_SCALAR, _scalar),
                                   (_RSCALAR, _rscalar), (_UNARY, _unary)):
    for _core, _names in _names_by_core.items():
        TABLE.register(*_names)(_make_rule(_core))


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
