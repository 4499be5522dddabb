"""The functional model of a NeuronCore: runs a program's instructions in order on numpy arrays.

Each instruction computes in fp32 (products of bf16/fp16 operands are exact in fp32, so this
reproduces the TensorEngine's fp32 accumulation up to summation order), applies its fused epilogue in
fp32, and rounds every float output to its buffer's storage dtype (round-to-nearest-even). In
precision="fp32" mode every rounding and cast is skipped, to separate precision loss from logic bugs.

Two shortcuts leave every bit as it is: an op marked `exact` (its outputs are input values) skips the
rounding when its float inputs are already stored in the output's dtype (rounding is idempotent), and
epilogue ops that take `out=` write into the TensorEngine op's own result instead of a new array.
"""
from __future__ import annotations

import time

import numpy as np

from .. import dtypes
from ..errors import NeuronError
from ..ops import get_op
from . import kernels

PRECISIONS = ("hardware", "fp32")


def decode_attrs(value):
    """Inverse of lowering.jsonable: tagged arrays back to numpy."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: decode_attrs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode_attrs(v) for v in value]
    return value


def _input_storage(instr, buffers: list, rounding: dict) -> set:
    """The storage dtypes (None: not rounded) of the float inputs of `instr`; {"float32"} stands in
    for any float input whose declared dtype is not float32 (its container may not be float32)."""
    found = set()
    for i in instr.inputs:
        if i is None or not dtypes.is_float(buffers[i].dtype):
            continue
        found.add(rounding.get(i) if buffers[i].dtype == dtypes.FP32 else dtypes.FP32)
    return found


def _kernel(instr, rounding: dict, buffers: list, fast=None):
    """A closure computing one instruction: inputs list -> output arrays (rounded). `fast` is a
    (run, absorbed) pair from kernels.pe_kernel: run(args) stands for the op and the first
    `absorbed` epilogue ops (or returns None: then the reference runs the op and its whole
    epilogue)."""
    if instr.op == "_cast":
        to = instr.attrs["to"] if rounding else None

        def cast(args):
            return [dtypes.round_to(args[0], to) if to else args[0]]
        return cast

    op = get_op(instr.op)
    attrs = dict(op.defaults)
    attrs.update(decode_attrs(instr.attrs))
    fast_run, absorbed = fast or (None, 0)
    post = [(get_op(p["op"]), {**get_op(p["op"]).defaults, **decode_attrs(p["attrs"])}, p["inputs"])
            for p in instr.post]
    rounds = [rounding.get(o) for o in instr.outputs]
    if op.exact and not post and rounds != [None] * len(rounds):
        # the outputs hold input values only: already exact in the inputs' common storage dtype
        storage = _input_storage(instr, buffers, rounding)
        if len(storage) == 1:
            rounds = [None if to in storage else to for to in rounds]
    reference = op.reference

    def run(args, env):
        out = fast_run(args) if fast_run else None
        rest = post[absorbed:] if out is not None else post
        if out is None:
            out = reference(*args, **attrs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        scratch = bool(rest) and _owned(outs[0], args)
        for p_op, p_attrs, p_inputs in rest:
            p_args = [outs[0] if i == -1 else (None if i is None else env[i]) for i in p_inputs]
            if scratch and p_op.writes_out and _fits(outs[0], p_args):
                outs[0] = p_op.reference(*p_args, out=outs[0], **p_attrs)
            else:
                prev = outs[0] if scratch else None
                outs[0] = p_op.reference(*p_args, **p_attrs)
                scratch = _owned(outs[0], [a for a in p_args if a is not prev])
        for k, to in enumerate(rounds):
            if to is not None:
                outs[k] = dtypes.round_to(outs[k], to, inplace=_owned(outs[k], args))
        return outs
    return run


def _owned(result, inputs: list) -> bool:
    """Whether `result` is a float32 array that shares no memory with `inputs` (so the epilogue
    may write into it)."""
    return (isinstance(result, np.ndarray) and result.dtype == np.float32
            and result.flags.writeable and not any(
                isinstance(a, np.ndarray) and np.may_share_memory(result, a) for a in inputs))


def _fits(scratch: np.ndarray, args: list) -> bool:
    """Whether an elementwise result of float32 `args` has exactly the shape of `scratch`."""
    shapes = []
    for a in args:
        if a is scratch or a is None:
            continue
        if not isinstance(a, np.ndarray) or a.dtype != np.float32:
            return False
        shapes.append(a.shape)
    return np.broadcast_shapes(scratch.shape, *shapes) == scratch.shape


class Executor:
    """Runs a Program on prepared weights. `precision` is "hardware" or "fp32"; `kernels` is "fast"
    (TensorEngine instructions over constant weights on onnxruntime's packed-weight kernels) or
    "reference" (every instruction on the ops' NumPy references); see runtime/kernels.py."""

    def __init__(self, program, weights: dict, precision: str = "hardware",
                 kernels_: str = "fast"):
        if precision not in PRECISIONS:
            raise NeuronError(f"precision {precision!r} is not valid; choose from {PRECISIONS}")
        self.program, self.precision, self.kernels = program, precision, kernels_
        hardware = precision == "hardware"
        rounding = {}
        if hardware:
            rounding = {b.id: b.storage for b in program.buffers
                        if dtypes.is_float(b.dtype) and b.storage in (dtypes.BF16, dtypes.FP16)}
        self.env_template: list = [None] * len(program.buffers)
        for b in program.buffers:
            if b.kind == "weight":
                arr = weights[b.name]
                if hardware and b.id in rounding:
                    arr = dtypes.round_to(np.asarray(arr, np.float32), b.storage)
                self.env_template[b.id] = arr
        fast = [kernels.pe_kernel(i, program.buffers, self.env_template)
                if kernels_ == "fast" else None for i in program.instrs]
        #: how many instructions run on the fast kernels
        self.fast_kernels = sum(f is not None for f in fast)
        self.steps = [(_kernel(i, rounding, program.buffers, f), i.inputs, i.outputs, i.free,
                       i.op == "_cast") for i, f in zip(program.instrs, fast)]

    def run(self, inputs: list, timings: list | None = None) -> list:
        """Run the program; with a `timings` list, append (instruction, start, end) perf_counter
        seconds of every instruction (for profiles)."""
        env = list(self.env_template)
        for bid, arr in zip(self.program.inputs, inputs):
            env[bid] = arr
        clock = time.perf_counter if timings is not None else None
        for j, (kernel, ins, outs, free, is_cast) in enumerate(self.steps):
            started = clock() if clock else 0.0
            args = [None if i is None else env[i] for i in ins]
            results = kernel(args) if is_cast else kernel(args, env)
            if clock:
                timings.append((j, started, clock()))
            for b, r in zip(outs, results):
                env[b] = r
            for b in free:
                env[b] = None
        return [env[b] for b in self.program.outputs]
