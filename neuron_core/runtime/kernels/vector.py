"""The fused elementwise kernel: an Add, Sub, Mul or Div (or a Relu), an optional fused Relu and
the rounding of the result in one compiled pass over memory (neuron_core/_jit.py) instead of the
references' one NumPy pass per step: bit for bit the references' result."""
from __future__ import annotations

import numpy as np

from ... import dtypes
from ...ops import instruction_op


def vector_kernel(instr, rounds: list):
    """A fast kernel for elementwise instruction `instr` (an op with a `vector_code`, with an
    optional fused Relu) whose output is rounded to `rounds[0]` (None, or bfloat16), or None for
    any other instruction and while the compiled kernels are not loaded (dtypes.jit).

    Returns `run(args, out)`: the rounded result, written into `out` (an array the caller owns,
    which may be one of the arguments) or a new array when `out` is None or not of the result's
    shape; or None when the arguments are not C-contiguous float32 arrays of one shape, or one
    shape and a single value (the reference then runs it).
    """
    if len(instr.outputs) != 1 or rounds[0] not in (None, dtypes.BF16):
        return None
    code = instruction_op(instr.op).vector_code
    if code is None:
        return None
    operands = 1 if code < 0 else 2
    if len(instr.post) > 1 or instr.post and (
            instruction_op(instr.post[0]["op"]).vector_code != -1 or instr.post[0]["attrs"]):
        return None  # an epilogue other than one Relu
    relu = code < 0 or bool(instr.post)
    compiled = dtypes.jit()
    if compiled is None:
        return None
    kernel = compiled.fused_elementwise
    bf16 = rounds[0] == dtypes.BF16

    def run(args, out):
        if len(args) != operands or not all(_plain_f32(a) for a in args):
            return None
        a, b = args[0], args[-1]
        if a.size == 0 or b.size == 0:
            return None
        shape = a.shape
        if b.shape != shape:
            try:
                shape = np.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                return None
            if shape not in (a.shape, b.shape) or min(a.size, b.size) != 1:
                return None
        if out is None or out.shape != shape:
            out = np.empty(shape, np.float32)
        kernel(a.reshape(-1), b.reshape(-1), out.reshape(-1), code, bf16, relu)
        return out
    return run


def _plain_f32(a) -> bool:
    return isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous
