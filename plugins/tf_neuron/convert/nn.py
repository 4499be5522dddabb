"""Rules for TensorFlow's neural-network ops: convolutions, pooling, batch norm, bias, softmax."""
from __future__ import annotations

import numpy as np

from neuron_core.bridge import Unsupported

from . import TABLE
from ._util import attr, data_format, nchw, publish, rule, spatial, spatial_pads


def _window_input(cv, x):
    """(NCHW input, format) for a spatial op."""
    fmt = data_format(cv)
    if x.type.rank != 4:
        raise Unsupported(f"{cv.node.type} on a rank-{x.type.rank} input (only 2-D images)")
    return (nchw(cv, x) if fmt == "NHWC" else x), fmt


def _out(cv, y, fmt):
    return publish(cv, y) if fmt == "NHWC" else y


def _pads(cv, xin, kernel, strides, dilations, fmt):
    explicit = attr(cv, "explicit_paddings", [])
    if explicit:
        explicit = explicit[2:6] if fmt == "NHWC" else explicit[4:8]
    return spatial_pads(xin.type.shape[2:], kernel, strides, dilations, attr(cv, "padding"),
                        explicit)


def _conv(cv, xin, fmt, weight, kernel, group):
    """Conv of the NCHW input `xin` with the OIHW `weight`, windowed by the TF op's strides,
    dilations and padding."""
    strides = spatial(attr(cv, "strides"), fmt)
    dil = spatial(attr(cv, "dilations", [1, 1, 1, 1]), fmt)
    pads = _pads(cv, xin, kernel, strides, dil, fmt)
    y = cv.op("Conv", [xin, weight], {"strides": strides, "dilations": dil, "pads": pads,
                                      "group": group, "kernel_shape": kernel})
    return _out(cv, y, fmt)


@rule(TABLE, "Conv2D")
def _conv2d(cv, x, w):
    xin, fmt = _window_input(cv, x)
    kh, kw, cin, _ = w.type.shape
    weight = cv.op("Transpose", [w], {"perm": [3, 2, 0, 1]})   # HWIO -> OIHW
    return _conv(cv, xin, fmt, weight, [kh, kw], group=xin.type.shape[1] // cin)


@rule(TABLE, "DepthwiseConv2dNative")
def _depthwise(cv, x, w):
    xin, fmt = _window_input(cv, x)
    kh, kw, c, mult = w.type.shape
    # TF output channel c * mult + m is ONNX group c, filter m: (C * M, 1, H, W)
    weight = cv.op("Transpose", [w], {"perm": [2, 3, 0, 1]})
    weight = cv.op("Reshape", [weight, cv.const(np.array([c * mult, 1, kh, kw], np.int64))])
    return _conv(cv, xin, fmt, weight, [kh, kw], group=c)


def _pool(cv, op_type, x, extra):
    xin, fmt = _window_input(cv, x)
    kernel = spatial(attr(cv, "ksize"), fmt)
    strides = spatial(attr(cv, "strides"), fmt)
    if list(attr(cv, "ksize"))[0] != 1 or list(attr(cv, "strides"))[0] != 1:
        raise Unsupported("pooling across the batch dimension is not supported")
    pads = _pads(cv, xin, kernel, strides, (1, 1), fmt)
    y = cv.op(op_type, [xin], {"kernel_shape": kernel, "strides": strides, "pads": pads, **extra})
    return _out(cv, y, fmt)


@rule(TABLE, "MaxPool")
def _maxpool(cv, x):
    return _pool(cv, "MaxPool", x, {})


@rule(TABLE, "AvgPool")
def _avgpool(cv, x):
    # TF's SAME average pooling divides by the number of real (unpadded) elements
    return _pool(cv, "AveragePool", x, {"count_include_pad": 0})


@rule(TABLE, "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3")
def _fused_bn(cv, x, scale, offset, mean, var, *_):
    if attr(cv, "is_training", False):
        raise Unsupported("FusedBatchNorm with is_training=True (batch statistics) is not "
                          "supported; export the model for inference")
    xin, fmt = _window_input(cv, x)
    y = cv.op("BatchNormalization", [xin, scale, offset, mean, var],
              {"epsilon": float(attr(cv, "epsilon", 1e-3))})
    return [_out(cv, y, fmt)]


@rule(TABLE, "BiasAdd", "BiasAddV1")
def _bias_add(cv, x, b):
    from .math import binary
    if attr(cv, "data_format", "NHWC") == "NCHW" and x.type.rank >= 3:
        shape = [-1] + [1] * (x.type.rank - 2)
        b = cv.op("Reshape", [b, cv.const(np.array(shape, np.int64))])
    return binary(cv, "Add", x, b)


@rule(TABLE, "Softmax", "LogSoftmax")
def _softmax(cv, x):
    return cv.op(cv.node.type, [x], {"axis": -1})


@rule(TABLE, "LRN")
def _lrn(cv, x):
    if x.type.rank != 4:
        raise Unsupported("LRN on a non-image input")
    r = int(attr(cv, "depth_radius", 5))
    size = 2 * r + 1
    # TF: x / (bias + alpha * sum(sq))^beta; ONNX divides alpha by size
    y = cv.op("LRN", [nchw(cv, x)], {"size": size, "alpha": float(attr(cv, "alpha", 1.0)) * size,
                                     "beta": float(attr(cv, "beta", 0.5)),
                                     "bias": float(attr(cv, "bias", 1.0))})
    return publish(cv, y)

