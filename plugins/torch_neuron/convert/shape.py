"""Data-movement ATen ops: views, permutes, concatenation, slicing, indexing, padding."""
from __future__ import annotations

import numpy as np

from neuron_core.bridge import Unsupported
from neuron_core.ir import Value

from . import TABLE
from ._util import axis, ints, onnx_dtype


@TABLE.register("aten.view.default", "aten._unsafe_view.default", "aten.reshape.default")
def _view(cv, x, shape):
    return cv.op("Reshape", [x, ints(cv, shape)])


@TABLE.register("aten.permute.default")
def _permute(cv, x, dims):
    return cv.op("Transpose", [x], {"perm": [axis(d, x) for d in dims]})


@TABLE.register("aten.t.default")
def _t(cv, x):
    return x if x.type.rank < 2 else cv.op("Transpose", [x], {"perm": [1, 0]})


@TABLE.register("aten.transpose.int")
def _transpose(cv, x, d0, d1):
    perm = list(range(x.type.rank))
    a, b = axis(d0, x), axis(d1, x)
    perm[a], perm[b] = perm[b], perm[a]
    return cv.op("Transpose", [x], {"perm": perm})


@TABLE.register("aten.expand.default")
def _expand(cv, x, sizes, implicit=False):
    lead = len(sizes) - x.type.rank
    shape = [x.type.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes)]
    return cv.op("Expand", [x, ints(cv, shape)])


@TABLE.register("aten.unsqueeze.default")
def _unsqueeze(cv, x, dim):
    return cv.op("Unsqueeze", [x, ints(cv, [dim % (x.type.rank + 1)])])


@TABLE.register("aten.squeeze.dims", "aten.squeeze.dim", "aten.squeeze.default")
def _squeeze(cv, x, dims=None):
    if dims is None:
        dims = range(x.type.rank)
    elif isinstance(dims, int):
        dims = [dims]
    keep = [axis(d, x) for d in dims if x.type.shape[axis(d, x)] == 1]
    return cv.op("Squeeze", [x, ints(cv, keep)]) if keep else x


@TABLE.register("aten.cat.default")
def _cat(cv, tensors, dim=0):
    tensors = [t for t in tensors if t.type.numel != 0 or t.type.rank > 1]
    return cv.op("Concat", tensors, {"axis": axis(dim, tensors[0])})


@TABLE.register("aten.slice.Tensor")
def _slice(cv, x, dim=0, start=None, end=None, step=1):
    a = axis(dim, x)
    size = x.type.shape[a]
    start = 0 if start is None else start
    end = size if end is None else min(end, size)
    if start == 0 and end >= size and step == 1:
        return x
    return cv.op("Slice", [x, ints(cv, [start]), ints(cv, [end]), ints(cv, [a]),
                           ints(cv, [step])])


@TABLE.register("aten.select.int")
def _select(cv, x, dim, index):
    return cv.op("Gather", [x, cv.const(np.int64(index))], {"axis": axis(dim, x)})


@TABLE.register("aten.split_with_sizes.default", "aten.split.Tensor")
def _split(cv, x, sizes, dim=0):
    a = axis(dim, x)
    if isinstance(sizes, int):
        total = x.type.shape[a]
        sizes = [min(sizes, total - s) for s in range(0, total, sizes)]
    return cv.op("Split", [x, ints(cv, sizes)], {"axis": a}, outputs=len(sizes))


@TABLE.register("aten.index.Tensor")
def _index(cv, x, indices):
    """x[i0, i1, ...] with integer index tensors: one Gather over the indexed dims flattened into
    one, at the flat index sum(i_k * stride_k), which folds to a constant when the indices are
    constants (the iota indices of Hugging Face's vmap-built attention masks)."""
    used = [(d, t) for d, t in enumerate(indices) if t is not None]
    if not used or not all(isinstance(t, Value) for _, t in used):
        raise Unsupported("indexing with a non-tensor index")
    if any(t.type.dtype == "bool" for _, t in used):
        raise Unsupported("boolean-mask indexing has a data-dependent output shape")
    if len(used) == 1:
        return cv.op("Gather", [x, used[0][1]], {"axis": used[0][0]})
    dims = [d for d, _ in used]
    shape = list(x.type.shape)
    at = dims[0]
    if dims != list(range(at, at + len(dims))):
        # indexed dims apart: torch puts the broadcast index dims first
        order = dims + [d for d in range(len(shape)) if d not in dims]
        x = cv.op("Transpose", [x], {"perm": order})
        shape, at = [shape[d] for d in order], 0
    sizes = shape[at:at + len(dims)]
    x = cv.op("Reshape", [x, ints(cv, shape[:at] + [int(np.prod(sizes))] +
                                  shape[at + len(dims):])])
    flat, stride = None, 1
    for (_, idx), size in reversed(list(zip(used, sizes))):
        if idx.type.dtype != "int64":
            idx = cv.op("Cast", [idx], {"to": onnx_dtype("int64")})
        idx = cv.op("Where", [cv.op("Less", [idx, cv.const(0, idx)]),
                              cv.op("Add", [idx, cv.const(size, idx)]), idx])
        term = idx if stride == 1 else cv.op("Mul", [idx, cv.const(stride, idx)])
        flat = term if flat is None else cv.op("Add", [term, flat])
        stride *= size
    return cv.op("Gather", [x, flat], {"axis": at})


@TABLE.register("aten.gather.default")
def _gather(cv, x, dim, index, sparse_grad=False):
    return cv.op("GatherElements", [x, index], {"axis": axis(dim, x)})


@TABLE.register("aten._assert_tensor_metadata.default")
def _assert_metadata(cv, x, size=None, stride=None, dtype=None, **_):
    """export's check of a tensor's dtype and shape: static here, so it holds by construction."""
    want = str(dtype).replace("torch.", "") if dtype is not None else x.type.dtype
    if want != x.type.dtype or (size is not None and tuple(size) != tuple(x.type.shape)):
        raise Unsupported(f"tensor metadata check expects {size} {want}, the graph has "
                          f"{x.type.shape} {x.type.dtype}")
    return None


@TABLE.register("aten.constant_pad_nd.default")
def _pad(cv, x, pad, value=0):
    n = x.type.rank
    begins, ends = [0] * n, [0] * n
    for k in range(len(pad) // 2):       # torch lists the last dimension first
        begins[n - 1 - k], ends[n - 1 - k] = pad[2 * k], pad[2 * k + 1]
    if min(begins + ends) < 0:
        raise Unsupported("negative padding (cropping) in constant_pad_nd")
    return cv.op("Pad", [x, ints(cv, begins + ends), cv.const(value, x)], {"mode": "constant"})


@TABLE.register("aten.flatten.using_ints")
def _flatten(cv, x, start_dim=0, end_dim=-1):
    s, e = axis(start_dim, x), axis(end_dim, x)
    shape = list(x.type.shape)
    new = shape[:s] + [-1 if s <= e else 1] + shape[e + 1:]
    if s <= e:
        size = 1
        for d in shape[s:e + 1]:
            size *= d
        new[s] = size
    return cv.op("Reshape", [x, ints(cv, new)])


@TABLE.register("aten.full_like.default", "aten.zeros_like.default", "aten.ones_like.default")
def _full_like(cv, x, fill_value=None, dtype=None, **_):
    """Only the shape of `x` matters, and it is static: the result is a constant."""
    value = {"aten.zeros_like.default": 0, "aten.ones_like.default": 1}.get(cv._op, fill_value)
    name = str(dtype).replace("torch.", "") if dtype is not None else x.type.dtype
    return cv.const(np.full(x.type.shape, value, dtype=np.dtype(name)))
