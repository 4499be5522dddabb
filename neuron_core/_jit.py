"""The compiled (numba) kernels of the NumPy paths: bf16 rounding, bf16 table lookups and the fused
elementwise pass of the instruction kernels.

Module-level functions with `cache=True`, so numba compiles each once per machine and later
processes load the machine code from its cache: beside this file (`__pycache__`) when the package
directory is writable, else in numba's user-wide cache (~/.cache/numba, or $NUMBA_CACHE_DIR when
set). Importing this module imports numba (about half a second): `dtypes.jit()` hands it out only
once something has loaded numba (`dtypes.load_jit()`, which the instruction and reference
executors call), so loading and running a model on the whole-program kernels never needs it.
"""
from __future__ import annotations

import numpy as np
from numba import njit

#: elements per pass of the fused kernel: the chunk stays in L1 between the passes
CHUNK = 2048


@njit(nogil=True, cache=True)
def round_bf16(u):
    """In place over the uint32 view of float32 values: float32 -> bfloat16 -> float32. Bit for
    bit ml_dtypes (RNE; overflow to inf; a NaN becomes the quiet NaN of its sign) in about a fifth
    of the time: one pass, no temporaries."""
    for i in range(u.size):
        v = u[i]
        rounded = (v + np.uint32(0x7FFF) + ((v >> np.uint32(16)) & np.uint32(1))) \
            & np.uint32(0xFFFF0000)
        quiet_nan = (v & np.uint32(0x80000000)) | np.uint32(0x7FC00000)
        u[i] = quiet_nan if (v & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else rounded


@njit(nogil=True, cache=True)
def bf16_lookup(u, table, out):
    """out[i] = table[u[i] >> 16] when every low half of `u` is zero (returns False otherwise):
    a pass that checks, then a gather."""
    low = np.uint32(0)
    for i in range(u.size):
        low |= u[i] & np.uint32(0xFFFF)
    if low:
        return False
    for i in range(u.size):
        out[i] = table[u[i] >> np.uint32(16)]
    return True


@njit(nogil=True, cache=True, error_model="numpy")
def fused_elementwise(a, b, out, binary, bf16, relu):
    """out = relu?(round?(a op b)) with op -1 (a alone), 0 (+), 1 (-), 2 (*) or 3 (/); `a` or `b`
    may have a single element, broadcast. It runs chunk by chunk through a scratch array: every
    loop reads one array and writes another, so each vectorises even when `out` is `a` or `b` (a
    loop that rewrote its input in place with "x if x > 0 else 0" would be turned into masked
    stores, which are slow on some CPUs). Bit for bit the reference: np.add/subtract/multiply/
    divide in float32, then the bf16 rounding of round_bf16, then np.maximum(x, 0) (NaN stays NaN,
    -0 and negatives become +0)."""
    scratch = np.empty(CHUNK, np.float32)
    bits = scratch.view(np.uint32)
    zero = np.float32(0)
    single_a = np.full(CHUNK, a[0], np.float32)  # a broadcast value, as a chunk
    single_b = np.full(CHUNK, b[0], np.float32)
    for start in range(0, out.size, CHUNK):
        n = min(CHUNK, out.size - start)
        x = single_a[:n] if a.size == 1 else a[start:start + n]
        y = single_b[:n] if b.size == 1 else b[start:start + n]
        z = out[start:start + n]
        if binary == 0:
            for i in range(n):
                scratch[i] = x[i] + y[i]
        elif binary == 1:
            for i in range(n):
                scratch[i] = x[i] - y[i]
        elif binary == 2:
            for i in range(n):
                scratch[i] = x[i] * y[i]
        elif binary == 3:
            for i in range(n):
                scratch[i] = x[i] / y[i]
        else:
            for i in range(n):
                scratch[i] = x[i]
        if bf16:
            round_bf16(bits[:n])
        if relu:
            for i in range(n):
                v = scratch[i]
                z[i] = zero if v <= zero else v
        else:
            for i in range(n):
                z[i] = scratch[i]
