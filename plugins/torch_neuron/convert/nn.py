"""Layer-shaped ATen ops: convolution, matrix products, normalisation, pooling, softmax, embedding,
reductions and resizing."""
from __future__ import annotations

import numpy as np

from neuron_core.bridge import Unsupported

from . import TABLE
from ._util import axis, ints, onnx_dtype, output_used


def _pair(v, n: int) -> list:
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    return v * n if len(v) == 1 else v


@TABLE.register("aten.convolution.default")
def _convolution(cv, x, w, b, stride, padding, dilation, transposed, output_padding, groups):
    n = w.type.rank - 2
    attrs = {"strides": _pair(stride, n), "dilations": _pair(dilation, n),
             "pads": _pair(padding, n) * 2, "group": int(groups),
             "kernel_shape": list(w.type.shape[2:])}
    if transposed:
        attrs["output_padding"] = _pair(output_padding, n)
        return cv.op("ConvTranspose", [x, w, b], attrs)
    return cv.op("Conv", [x, w, b], attrs)


@TABLE.register("aten.addmm.default")
def _addmm(cv, bias, a, b, beta=1, alpha=1):
    return cv.op("Gemm", [a, b, bias], {"alpha": float(alpha), "beta": float(beta)})


@TABLE.register("aten.mm.default", "aten.bmm.default", "aten.matmul.default")
def _matmul(cv, a, b):
    return cv.op("MatMul", [a, b])


def _affine(cv, w, b, channels: int, like):
    w = w if w is not None else cv.const(np.ones(channels), like)
    b = b if b is not None else cv.const(np.zeros(channels), like)
    return w, b


@TABLE.register("aten._native_batch_norm_legit_no_training.default")
def _batch_norm(cv, x, w, b, mean, var, momentum, eps):
    w, b = _affine(cv, w, b, x.type.shape[1], x)
    y = cv.op("BatchNormalization", [x, w, b, mean, var], {"epsilon": float(eps)})
    return [y, None, None]


@TABLE.register("aten.native_layer_norm.default")
def _layer_norm(cv, x, normalized_shape, w, b, eps):
    if output_used(cv, 1) or output_used(cv, 2):
        raise Unsupported("layer_norm whose mean/rstd outputs are read (training graph)")
    size = int(np.prod(normalized_shape))
    if w is None or b is None:
        ones = cv.const(np.ones(normalized_shape), x)
        zeros = cv.const(np.zeros(normalized_shape), x)
        w, b = w or ones, b or zeros
    del size
    y = cv.op("LayerNormalization", [x, w, b],
              {"axis": -len(normalized_shape), "epsilon": float(eps)})
    return [y, None, None]


@TABLE.register("aten.max_pool2d_with_indices.default", "aten.max_pool1d_with_indices.default",
                "aten.max_pool3d_with_indices.default")
def _max_pool(cv, x, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):
    if output_used(cv, 1):
        raise Unsupported("max_pool whose indices output is read")
    n = x.type.rank - 2
    kernel = _pair(kernel_size, n)
    y = cv.op("MaxPool", [x], {"kernel_shape": kernel, "strides": _pair(stride or kernel, n),
                               "pads": _pair(padding, n) * 2, "dilations": _pair(dilation, n),
                               "ceil_mode": int(ceil_mode)})
    return [y, None]


@TABLE.register("aten.avg_pool2d.default", "aten.avg_pool1d.default", "aten.avg_pool3d.default")
def _avg_pool(cv, x, kernel_size, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
              divisor_override=None):
    if divisor_override is not None:
        raise Unsupported(f"avg_pool with divisor_override={divisor_override}")
    n = x.type.rank - 2
    kernel = _pair(kernel_size, n)
    return cv.op("AveragePool", [x], {"kernel_shape": kernel,
                                      "strides": _pair(stride or kernel, n),
                                      "pads": _pair(padding, n) * 2, "ceil_mode": int(ceil_mode),
                                      "count_include_pad": int(count_include_pad)})


@TABLE.register("aten._adaptive_avg_pool2d.default", "aten.adaptive_avg_pool2d.default",
                "aten._adaptive_avg_pool1d.default")
def _adaptive_avg_pool(cv, x, output_size):
    spatial = x.type.shape[2:]
    out = _pair(output_size, len(spatial))
    if all(o == 1 for o in out):
        return cv.op("GlobalAveragePool", [x])
    if any(s % o for s, o in zip(spatial, out)):
        raise Unsupported(f"adaptive_avg_pool from {tuple(spatial)} to {tuple(out)}: the input "
                          "is not a multiple of the output, so the windows overlap unevenly")
    kernel = [s // o for s, o in zip(spatial, out)]
    return cv.op("AveragePool", [x], {"kernel_shape": kernel, "strides": kernel})


@TABLE.register("aten._softmax.default", "aten.softmax.int")
def _softmax(cv, x, dim, half_to_float=False):
    return cv.op("Softmax", [x], {"axis": axis(dim, x)})


@TABLE.register("aten._log_softmax.default", "aten.log_softmax.int")
def _log_softmax(cv, x, dim, half_to_float=False):
    return cv.op("LogSoftmax", [x], {"axis": axis(dim, x)})


@TABLE.register("aten.embedding.default")
def _embedding(cv, weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    return cv.op("Gather", [weight, indices], {"axis": 0})


def _reduce(core):
    def rule(cv, x, dim=None, keepdim=False, dtype=None):
        dims = list(range(x.type.rank)) if dim is None or dim == [] else \
            [axis(d, x) for d in (dim if isinstance(dim, (list, tuple)) else [dim])]
        if dtype is not None and str(dtype).replace("torch.", "") != x.type.dtype:
            raise Unsupported(f"reduction with dtype={dtype}")
        return cv.op(core, [x, ints(cv, dims)], {"keepdims": int(keepdim)})
    return rule


for _name, _core in {"mean.dim": "ReduceMean", "sum.dim_IntList": "ReduceSum",
                     "amax.default": "ReduceMax", "amin.default": "ReduceMin",
                     "mean.default": "ReduceMean", "sum.default": "ReduceSum",
                     "prod.dim_int": "ReduceProd"}.items():
    TABLE.register(f"aten.{_name}")(_reduce(_core))


@TABLE.register("aten.cumsum.default")
def _cumsum(cv, x, dim, dtype=None):
    # torch sums bool and integer tensors in int64 unless told otherwise
    name = str(dtype).replace("torch.", "") if dtype is not None else (
        "int64" if x.type.dtype in ("bool", "int8", "uint8", "int16", "int32") else x.type.dtype)
    if name != x.type.dtype:
        x = cv.op("Cast", [x], {"to": onnx_dtype(name)})
    return cv.op("CumSum", [x, ints(cv, [axis(dim, x)])])


@TABLE.register("aten.upsample_nearest2d.vec", "aten.upsample_nearest2d.default")
def _upsample_nearest(cv, x, output_size=None, scale_factors=None, *rest):
    return _resize(cv, x, output_size, scale_factors, {"mode": "nearest",
                   "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"})


@TABLE.register("aten.upsample_bilinear2d.vec", "aten.upsample_bilinear2d.default")
def _upsample_bilinear(cv, x, output_size=None, align_corners=False, scale_factors=None, *rest):
    mode = "align_corners" if align_corners else "pytorch_half_pixel"
    return _resize(cv, x, output_size, scale_factors, {"mode": "linear",
                   "coordinate_transformation_mode": mode})


def _resize(cv, x, output_size, scale_factors, attrs):
    shape = list(x.type.shape)
    if output_size:
        sizes = shape[:2] + list(output_size)
    elif scale_factors:
        sizes = shape[:2] + [int(s * f) for s, f in zip(shape[2:], scale_factors)]
    else:
        raise Unsupported("upsample with neither output_size nor scale_factors")
    return cv.op("Resize", [x, None, None, ints(cv, sizes)], attrs)


@TABLE.register("aten.any.dim", "aten.any.dims", "aten.any.default")
def _any(cv, x, dim=None, keepdim=False):
    as_float = cv.op("Cast", [x], {"to": 1})
    top = _reduce("ReduceMax")(cv, as_float, dim, keepdim)
    return cv.op("Greater", [top, cv.const(0.0, top)])
