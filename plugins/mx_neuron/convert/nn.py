"""Layers: Convolution, Deconvolution, FullyConnected, BatchNorm, LayerNorm, InstanceNorm, LRN,
Pooling, Activation, LeakyReLU, the softmax family, Dropout and Embedding."""
from __future__ import annotations

import math

import numpy as np

from neuron_core.bridge import Unsupported

from . import TABLE
from ._attrs import Attrs

_CHANNEL_FIRST = (None, "NCW", "NCHW", "NCDHW")
#: why float token ids are turned into indices on the host
FLOAT_INDEX_REASON = ("float32 indices stay on MXNet: under --fast-math the NeuronCore reads a "
                      "float tensor in bf16, which holds integers exactly only up to 256; feed "
                      "int32 ids to run the lookup on Neuron")


def _window(a: Attrs, rank: int) -> dict:
    """ONNX window attributes from MXNet's kernel/stride/dilate/pad."""
    n = rank - 2
    if a.str("layout") not in _CHANNEL_FIRST:
        raise Unsupported(f"{a.op} layout={a.str('layout')!r} is not lowered; only channel-first "
                          "layouts (NCW, NCHW, NCDHW) are")
    kernel = a.ints("kernel", ())
    pad = a.ints("pad", ()) or (0,) * n
    return {"kernel_shape": list(kernel), "strides": list(a.ints("stride", ()) or (1,) * n),
            "pads": list(pad) + list(pad)}


def _check_shape(cv, a: Attrs, y):
    """Unsupported if the core op's output shape differs from the one MXNet inferred."""
    got, want = tuple(y.type.shape), a.shape(0)
    if got != want:
        raise Unsupported(f"{a.op} {a.name!r} gives shape {want} in MXNet but {got} with the ONNX "
                          "window rules (pooling_convention/padding variant not lowered)")
    return y


@TABLE.register("Convolution")
def _convolution(cv, a: Attrs, x, w, b=None):
    attrs = _window(a, x.type.rank)
    attrs["dilations"] = list(a.ints("dilate", ()) or (1,) * (x.type.rank - 2))
    attrs["group"] = a.int("num_group", 1)
    ins = [x, w] if a.bool("no_bias") or b is None else [x, w, b]
    return _check_shape(cv, a, cv.op("Conv", ins, attrs))


@TABLE.register("Deconvolution")
def _deconvolution(cv, a: Attrs, x, w, b=None):
    if a.has("target_shape") and any(a.ints("target_shape")):
        raise Unsupported("Deconvolution with target_shape is not lowered; give pad/adj instead")
    attrs = _window(a, x.type.rank)
    n = x.type.rank - 2
    attrs["dilations"] = list(a.ints("dilate", ()) or (1,) * n)
    attrs["output_padding"] = list(a.ints("adj", ()) or (0,) * n)
    attrs["group"] = a.int("num_group", 1)
    ins = [x, w] if a.bool("no_bias", True) or b is None else [x, w, b]
    return _check_shape(cv, a, cv.op("ConvTranspose", ins, attrs))


@TABLE.register("FullyConnected")
def _fully_connected(cv, a: Attrs, x, w, b=None):
    bias = None if a.bool("no_bias") else b
    if a.bool("flatten", True):
        if x.type.rank != 2:
            x = cv.op("Flatten", [x], {"axis": 1})
        return cv.op("Gemm", [x, w] + ([bias] if bias is not None else []), {"transB": 1})
    y = cv.op("MatMul", [x, cv.op("Transpose", [w], {"perm": [1, 0]})])
    return cv.op("Add", [y, bias]) if bias is not None else y


@TABLE.register("BatchNorm")
def _batch_norm(cv, a: Attrs, x, gamma, beta, mean, var):
    if a.int("axis", 1) % x.type.rank != 1:
        raise Unsupported(f"BatchNorm axis={a.int('axis')} is not lowered; only the channel axis 1")
    if a.bool("output_mean_var"):
        raise Unsupported("BatchNorm output_mean_var=True (training statistics) is not lowered")
    if a.bool("fix_gamma", True):   # MXNet ignores gamma and uses 1 when fix_gamma is set
        gamma = cv.const(np.ones(x.type.shape[1], np.float32), like=x)
    return cv.op("BatchNormalization", [x, gamma, beta, mean, var],
                 {"epsilon": a.float("eps", 1e-3)})


@TABLE.register("LayerNorm")
def _layer_norm(cv, a: Attrs, x, gamma, beta):
    axis = a.int("axis", -1) % x.type.rank
    if axis != x.type.rank - 1:
        # ONNX normalizes over every axis from `axis` on; MXNet over that one axis only
        raise Unsupported(f"LayerNorm axis={a.int('axis')} (not the last axis) is not lowered")
    return cv.op("LayerNormalization", [x, gamma, beta], {"axis": -1,
                                                          "epsilon": a.float("eps", 1e-5)})


@TABLE.register("InstanceNorm")
def _instance_norm(cv, a: Attrs, x, gamma, beta):
    return cv.op("InstanceNormalization", [x, gamma, beta], {"epsilon": a.float("eps", 1e-3)})


@TABLE.register("LRN")
def _lrn(cv, a: Attrs, x):
    return cv.op("LRN", [x], {"size": a.int("nsize"), "alpha": a.float("alpha", 1e-4),
                              "beta": a.float("beta", 0.75), "bias": a.float("knorm", 2.0)})


@TABLE.register("Pooling")
def _pooling(cv, a: Attrs, x):
    kind = a.require("pool_type", ("max", "avg", "sum"), "max")
    if a.bool("global_pool"):
        y = cv.op("GlobalMaxPool" if kind == "max" else "GlobalAveragePool", [x])
        if kind == "sum":
            y = cv.op("Mul", [y, cv.const(float(math.prod(x.type.shape[2:])), like=x)])
        return y
    convention = a.require("pooling_convention", ("valid", "full"), "valid")
    attrs = _window(a, x.type.rank)
    attrs["ceil_mode"] = int(convention == "full")
    if kind == "max":
        return _check_shape(cv, a, cv.op("MaxPool", [x], attrs))
    if kind == "sum" and convention == "full":
        raise Unsupported("Pooling pool_type='sum' with pooling_convention='full' is not lowered")
    attrs["count_include_pad"] = int(a.bool("count_include_pad", True) or kind == "sum")
    y = _check_shape(cv, a, cv.op("AveragePool", [x], attrs))
    if kind == "sum":
        y = cv.op("Mul", [y, cv.const(float(math.prod(attrs["kernel_shape"])), like=x)])
    return y


def _activation(cv, kind: str, x):
    if kind == "relu":
        return cv.op("Relu", [x])
    if kind == "sigmoid":
        return cv.op("Sigmoid", [x])
    if kind == "tanh":
        return cv.op("Tanh", [x])
    if kind == "softrelu":
        return cv.op("Softplus", [x])
    if kind == "softsign":
        return cv.op("Div", [x, cv.op("Add", [cv.op("Abs", [x]), cv.const(1.0, like=x)])])
    if kind == "log_sigmoid":
        return cv.op("Neg", [cv.op("Softplus", [cv.op("Neg", [x])])])
    if kind == "mish":
        return cv.op("Mul", [x, cv.op("Tanh", [cv.op("Softplus", [x])])])
    raise Unsupported(f"Activation act_type={kind!r} is not lowered")


@TABLE.register("Activation")
def _activation_op(cv, a: Attrs, x):
    return _activation(cv, a.str("act_type"), x)


@TABLE.register("LeakyReLU")
def _leaky_relu(cv, a: Attrs, x, gamma=None):
    kind = a.str("act_type", "leaky")
    if kind == "leaky":
        return cv.op("LeakyRelu", [x], {"alpha": a.float("slope", 0.25)})
    if kind == "rrelu":   # inference uses the mean of the random slope's range
        lo, hi = a.float("lower_bound", 0.125), a.float("upper_bound", 0.334)
        return cv.op("LeakyRelu", [x], {"alpha": (lo + hi) / 2})
    if kind == "elu":
        return cv.op("Elu", [x], {"alpha": a.float("slope", 0.25)})
    if kind == "selu":
        return cv.op("Selu", [x])
    if kind == "gelu":
        return cv.op("Gelu", [x])
    if kind == "prelu":
        if x.type.rank > 2 and gamma.type.shape[0] != 1:   # one slope per channel (axis 1)
            gamma = cv.op("Reshape", [gamma, cv.const([-1] + [1] * (x.type.rank - 2),
                                                      dtype="int64")])
        return cv.op("PRelu", [x, gamma])
    raise Unsupported(f"LeakyReLU act_type={kind!r} is not lowered")


def _softmax(cv, a: Attrs, x, op: str):
    if a.bool("use_length"):
        raise Unsupported(f"{a.op} use_length=True (masked softmax) is not lowered")
    if a.has("temperature") and a.float("temperature") != 1.0:
        x = cv.op("Div", [x, cv.const(a.float("temperature"), like=x)])
    return cv.op(op, [x], {"axis": a.int("axis", -1)})


@TABLE.register("softmax")
def _softmax_op(cv, a: Attrs, x, length=None):
    return _softmax(cv, a, x, "Softmax")


@TABLE.register("log_softmax")
def _log_softmax(cv, a: Attrs, x, length=None):
    return _softmax(cv, a, x, "LogSoftmax")


def _softmax_flat(cv, x):
    """Softmax over all axes but the first (MXNet's 'instance' mode)."""
    if x.type.rank == 2:
        return cv.op("Softmax", [x], {"axis": 1})
    flat = cv.op("Flatten", [x], {"axis": 1})
    y = cv.op("Softmax", [flat], {"axis": 1})
    return cv.op("Reshape", [y, cv.const(list(x.type.shape), dtype="int64")])


@TABLE.register("SoftmaxActivation")
def _softmax_activation(cv, a: Attrs, x):
    if a.str("mode", "instance") == "channel":
        return cv.op("Softmax", [x], {"axis": 1})
    return _softmax_flat(cv, x)


@TABLE.register("SoftmaxOutput", "Softmax")
def _softmax_output(cv, a: Attrs, x, label=None):
    """Inference form: the softmax only (the label is a training input)."""
    if a.bool("preserve_shape"):
        return cv.op("Softmax", [x], {"axis": -1})
    if a.bool("multi_output"):
        return cv.op("Softmax", [x], {"axis": 1})
    return _softmax_flat(cv, x)


@TABLE.register("Dropout")
def _dropout(cv, a: Attrs, x):
    if a.str("mode", "training") == "always":
        raise Unsupported("Dropout mode='always' drops at inference too; it is not lowered")
    return cv.op("Identity", [x])


@TABLE.register("Embedding")
def _embedding(cv, a: Attrs, idx, weight):
    if idx.type.dtype not in ("int32", "int64"):
        raise Unsupported(FLOAT_INDEX_REASON)
    return cv.op("Gather", [weight, idx], {"axis": 0})
