"""Helpers the conversion rules share."""
from __future__ import annotations

import numpy as np

from neuron_core.bridge import Unsupported
from neuron_core.dtypes import ONNX_CODES
from neuron_core.ir import Value


def onnx_dtype(torch_dtype) -> int:
    """The ONNX TensorProto code of a torch dtype (Cast's `to`)."""
    name = str(torch_dtype).replace("torch.", "")
    if name not in ONNX_CODES:
        raise Unsupported(f"dtype {name} has no NeuronCore form")
    return ONNX_CODES[name]


def rank(v: Value) -> int:
    return v.type.rank


def axis(dim: int, v: Value) -> int:
    """A torch dim (maybe negative) as a non-negative axis of `v`."""
    return dim % max(rank(v), 1)


def ints(cv, values, dtype=np.int64) -> Value:
    return cv.const(np.asarray(list(values), dtype=dtype))


def operand(cv, x, like: Value) -> Value:
    """A tensor operand, or a Python scalar as a constant of `like`'s dtype."""
    if isinstance(x, Value):
        return x
    if isinstance(x, bool) and like.type.dtype != "bool":
        x = int(x)
    return cv.const(x, like)


def first_tensor(*xs) -> Value:
    return next(x for x in xs if isinstance(x, Value))


def output_used(cv, index: int) -> bool:
    """Whether output `index` of the fx node being converted is read (through getitem)."""
    return any(u.args[1] == index for u in cv.node.users if len(u.args) > 1)
