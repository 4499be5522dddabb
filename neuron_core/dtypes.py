"""Data types: canonical names, short printed forms, and round-to-nearest-even down-casts.

Tensors are kept in numpy arrays. Reduced-precision values (bfloat16, float16) are stored in float32
containers holding exactly representable values, so that arithmetic runs at float32 speed while every
down-cast rounds like the hardware does (round-to-nearest-even, via ml_dtypes).
"""
from __future__ import annotations

import sys

import ml_dtypes
import numpy as np

from .errors import NeuronError

BF16 = "bfloat16"
FP16 = "float16"
FP32 = "float32"

#: canonical name -> short name used in the IR text form
SHORT = {
    "float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64",
    "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8",
    "bool": "bool", "uint16": "u16", "uint32": "u32", "uint64": "u64",
}
LONG = {v: k for k, v in SHORT.items()}

FLOAT_TYPES = frozenset({"float32", "float16", "bfloat16", "float64"})
INT_TYPES = frozenset({"int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64"})

#: ONNX TensorProto.DataType code -> canonical name, hard-coded so that neuron_core never needs onnx
ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
               9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16"}
#: canonical name -> ONNX TensorProto.DataType code (Cast's `to`)
ONNX_CODES = {name: code for code, name in ONNX_DTYPES.items()}

_NUMPY = {name: np.dtype(name) for name in SHORT if name != "bfloat16"}
_NUMPY["bfloat16"] = np.dtype(ml_dtypes.bfloat16)


def is_known(dtype) -> bool:
    """True when `dtype` names one of the supported data types (complex64 does not)."""
    try:
        canonical(dtype)
    except (NeuronError, TypeError):
        return False
    return True


def canonical(dtype) -> str:
    """Canonical name of a numpy dtype, dtype name or short name ('f32' -> 'float32')."""
    if isinstance(dtype, str):
        name = LONG.get(dtype, dtype)
    else:
        name = np.dtype(dtype).name
    if name not in SHORT:
        raise NeuronError(f"unsupported data type {dtype!r}; supported: {', '.join(sorted(SHORT))}")
    return name


def to_numpy(dtype: str) -> np.dtype:
    """The numpy dtype for a canonical name (bfloat16 is ml_dtypes.bfloat16)."""
    return _NUMPY[canonical(dtype)]


def itemsize(dtype: str) -> int:
    return _NUMPY[canonical(dtype)].itemsize


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_TYPES


def round_to(x: np.ndarray, dtype: str, inplace: bool = False) -> np.ndarray:
    """Round float32 values to the nearest `dtype` value (RNE) and return them as float32.

    float32 (or any non-reduced dtype) returns `x` unchanged. With `inplace=True` a writable,
    C-contiguous float32 `x` is overwritten with the result (and returned); any other `x` is left
    as it is and a new array returned.
    """
    if dtype == BF16:
        compiled = jit()
        if compiled is None:
            with np.errstate(over="ignore", invalid="ignore"):
                return x.astype(ml_dtypes.bfloat16).astype(np.float32)
        if not (inplace and _writable_f32(x)):
            x = np.array(x, np.float32, order="C")  # a copy: the caller's array stays as it was
        compiled.round_bf16(x.reshape(-1).view(np.uint32))
        return x
    if dtype == FP16:
        return x.astype(np.float16).astype(np.float32)
    return x


def _writable_f32(x) -> bool:
    return (isinstance(x, np.ndarray) and x.dtype == np.float32 and x.flags.c_contiguous
            and x.flags.writeable)


def load_jit() -> None:
    """Import numba (when installed), so that the compiled kernels serve from now on (see jit)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        pass


def jit():
    """The compiled kernels (neuron_core._jit), or None: without numba, or while nothing in the
    process has loaded numba. Importing numba takes about half a second, so nothing that loads or
    runs a model on the whole-program kernels asks for it (the NumPy paths serve meanwhile, bit
    for bit the same); the instruction and reference executors call load_jit."""
    if "numba" not in sys.modules:
        return None
    try:
        from . import _jit
    except ImportError:
        return None
    return _jit


def bf16_lookup(x: np.ndarray, table: np.ndarray) -> np.ndarray | None:
    """`table[b]` for each element of float32 `x` whose bit pattern is bfloat16 pattern `b` padded
    with 16 zero bits (a value stored in BF16), as a new float32 array of x's shape; None when some
    element is not such a value (or `x` is not a C-contiguous little-endian float32 array).
    `table` is float32 with 65536 entries."""
    if x.dtype != np.float32 or not x.flags.c_contiguous or sys.byteorder != "little":
        return None
    compiled = jit()
    if compiled is None:
        halves = x.reshape(-1).view(np.uint16)  # little-endian: low half, high half of each value
        if halves[0::2].any():
            return None
        return np.take(table, halves[1::2]).reshape(x.shape)
    out = np.empty_like(x)
    return out if compiled.bf16_lookup(x.reshape(-1).view(np.uint32), table, out.reshape(-1)) \
        else None
