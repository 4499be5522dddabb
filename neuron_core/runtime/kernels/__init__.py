"""The per-instruction fast kernels (`NEURON_SIM_KERNELS=instruction`, and what profiles run):
TensorEngine instructions (Conv, ConvTranspose, MatMul, Gemm) and the row reductions Softmax and
LayerNormalization on onnxruntime's kernels, activations kept in its blocked layout between
convolutions, and one fused pass for the common elementwise instructions. The default kernel set,
"fast", lowers the whole program to onnxruntime graphs instead (runtime/graph.py); the blocked
layout's helpers here serve both.

The functional model of a matmul or convolution is "fp32 products of the stored operands, summed in
fp32" (bf16 x bf16 and fp16 x fp16 products are exact in fp32). Any fp32 GEMM computes that, up to
summation order; what differs is speed. NumPy's BLAS sees the weights anew at every call, while
onnxruntime's CPU kernels pack a constant weight once into the layout its GEMM and convolution loops
want. So each TensorEngine instruction runs as a one-node onnxruntime session: its weights, as
stored on the device, are initializers; its other operands (an attention matmul's two activations)
are inputs. Keeping every matmul off NumPy also keeps OpenBLAS's threads, which spin after each
call, from taking a core from the sessions' pools.

Softmax and LayerNormalization sum in another order too, and Softmax's exp is onnxruntime's
(within a few float32 ulps of NumPy's; a result below float32's normal range comes out as 0, where
NumPy gives the subnormal). Once rounded to bf16 that is at most one ulp apart.

The bias add and a Relu that open the epilogue go with it (onnxruntime computes them in fp32, as the
executor does). Every other epilogue op, and the rounding to the output's storage dtype, stays with
the executor, so the cast points are the same as with the reference kernels.

Elementwise Add, Sub, Mul, Div and Relu (vector_kernel) compute, round and apply a fused Relu in one
compiled pass instead of one NumPy pass per step: bit for bit the references' result.

The modules: session.py (onnxruntime sessions over the caller's weights), generic.py (an
instruction as a one-node session of its op), gemm.py (a MatMul by a weight as one Gemm),
vector.py (the fused elementwise pass), blocked.py (the blocked layout, its Conv and MaxPool),
record.py (the Kernel the executor gets). Which of them may take an op its op says
(Op.fast_kernels, Op.vector_code, Op.layout_free in neuron_core/ops/).

`NEURON_SIM_KERNELS=reference` (or `runtime.load(..., kernels="reference")`) runs every instruction
on the ops' own NumPy references instead: the independent oracle the other kernel sets are tested
against.
"""
from __future__ import annotations

import os

from ...errors import NeuronError
from ...ops import instruction_op
from .blocked import (block_filter, conv_kernel, layout_free, nchwc_block, nchwc_conv_plan,
                      nchwc_pool_attrs, pool_kernel, to_blocked, to_plain)
from .gemm import matmul_as_gemm
from .generic import one_node
from .record import Kernel
from .session import external
from .vector import vector_kernel

KERNELS = ("fast", "instruction", "reference")


def choose(kernels: str | None) -> str:
    """The kernel set to use: the argument, else $NEURON_SIM_KERNELS, else "fast"."""
    kernels = kernels or os.environ.get("NEURON_SIM_KERNELS", "fast")
    if kernels not in KERNELS:
        raise NeuronError(f"kernels {kernels!r} is not valid; choose from {', '.join(KERNELS)} "
                          "(argument kernels= or $NEURON_SIM_KERNELS)")
    return kernels


def fast_kernel(instr, buffers: list, constants: list, block: int | None = None,
                blocked_output: bool = False, blocked_input: bool = False) -> Kernel | None:
    """The first of the fast kernels its op declares (Op.fast_kernels) that takes instruction
    `instr`, or None. `constants[i]` is buffer i's array on the device if it is a weight, else
    None. `block` is the channel block of this CPU's blocked layout (nchwc_block); a blocked
    Conv is taken only where some instruction may read its result blocked (`blocked_output`), a
    blocked MaxPool only of blocked input (`blocked_input`)."""
    if len(instr.outputs) != 1:
        return None
    for name in instruction_op(instr.op).fast_kernels:
        if name == "blocked-conv":
            found = conv_kernel(instr, buffers, constants, block, blocked_input) \
                if block and blocked_output else None
        elif name == "blocked-pool":
            found = pool_kernel(instr, block) if blocked_input else None
        elif name == "gemm":
            found = matmul_as_gemm(instr, buffers, constants)
        elif name == "session":
            found = one_node(instr, buffers, constants)
        else:
            raise NeuronError(f"internal error: op {instr.op} declares an unknown fast kernel "
                              f"{name!r}")
        if found is not None:
            return found
    return None


__all__ = ["KERNELS", "Kernel", "block_filter", "choose", "external", "fast_kernel",
           "layout_free", "nchwc_block", "nchwc_conv_plan", "nchwc_pool_attrs", "to_blocked",
           "to_plain", "vector_kernel"]
