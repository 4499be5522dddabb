"""The functional model of a NeuronCore: runs a program's instructions in order on numpy arrays.

Each instruction computes in fp32 (products of bf16/fp16 operands are exact in fp32, so this
reproduces the TensorEngine's fp32 accumulation up to summation order), applies its fused epilogue in
fp32, and rounds every float output to its buffer's storage dtype (round-to-nearest-even). In
precision="fp32" mode every rounding and cast is skipped, to separate precision loss from logic bugs.

Shortcuts that leave every bit as it is: an op marked `exact` (its outputs are input values) skips
the rounding when its float inputs are already stored in the output's dtype (rounding is idempotent);
epilogue ops that take `out=` write into the TensorEngine op's own result instead of a new array; an
op that takes `out=` writes into an input that dies with it and that no other buffer can share; and
rounding happens in place in arrays the executor made itself. A model input is never written to.

With the instruction kernels (runtime/kernels/), activations between convolutions stay in
onnxruntime's blocked layout: Executor._plan decides once which buffers hold blocked arrays, and
every reader that needs NCHW (and every model output) gets its buffer converted back.

GraphExecutor (runtime/graph_executor.py) runs the default kernel set, "fast": the program lowered
to onnxruntime graphs (runtime/graph.py), built once per machine and kept in the user cache.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import dtypes
from ..errors import NeuronError
from ..neff.verify import decode_attrs
from ..ops import CAST, instruction_op
from . import kernels

PRECISIONS = ("hardware", "fp32")
#: the environment variable that chooses the precision when no argument does
PRECISION_VAR = "NEURON_SIM_PRECISION"


def resolve_precision(precision: str | None = None) -> str:
    """`precision`, or $NEURON_SIM_PRECISION when it is None, or "hardware"; anything else (an
    empty string included) is an error naming the valid values and where the value came from."""
    import os
    source = "argument precision="
    if precision is None:
        precision, source = os.environ.get(PRECISION_VAR, "hardware"), f"${PRECISION_VAR}"
    if precision not in PRECISIONS:
        raise NeuronError(f"precision {precision!r} (from {source}) is not valid; choose from "
                          f"{', '.join(PRECISIONS)}")
    return precision


def output_rounding(instr, buffers: list, rounding: dict) -> list:
    """The dtype each output of `instr` is rounded to (None: not rounded). An op marked `exact`
    with no epilogue outputs input values only: already exact in its float inputs' common storage
    dtype, it skips that rounding (rounding is idempotent). A float input whose declared dtype is
    not float32 counts as float32 storage (its container may not be float32)."""
    rounds = [rounding.get(o) for o in instr.outputs]
    if instr.post or not any(rounds) or not instruction_op(instr.op).exact:
        return rounds
    storage = {rounding.get(i) if buffers[i].dtype == dtypes.FP32 else dtypes.FP32
               for i in instr.inputs if i is not None and dtypes.is_float(buffers[i].dtype)}
    if len(storage) == 1:
        rounds = [None if to in storage else to for to in rounds]
    return rounds


def _kernel(instr, rounding: dict, buffers: list, fast=None, vector: bool = False):
    """The step function computing one instruction: `run(args, env, donor)` -> (output arrays,
    rounded; whether each is a fresh array no other buffer shares). `donor` is the index of an
    input the op may write its result into (see Executor._donors), or None. `fast` is a
    kernels.Kernel for it (or None); with `vector`, an elementwise instruction the fused vector
    kernel takes runs there when its arguments allow."""
    if instr.op == CAST:
        return _Cast(instr.attrs["to"] if rounding else None)
    return _Compute(instr, rounding, buffers, fast, vector)


class _Cast:
    """A cast instruction: the rounding to `to` (None in fp32 precision: the value as it is)."""

    __slots__ = ("to",)

    def __init__(self, to):
        self.to = to

    def __call__(self, args, env, donor):
        if self.to:
            return [dtypes.round_to(args[0], self.to)], [True]
        return [args[0]], [False]


class _Compute:
    """An op instruction: the fused vector kernel, else the fast kernel, else the op's reference;
    then the epilogue ops the kernel did not absorb, then the rounding of each output to its
    storage dtype. One method per path."""

    __slots__ = ("instr", "attrs", "reference", "fast", "post", "rounds", "fused")

    def __init__(self, instr, rounding: dict, buffers: list, fast, vector: bool):
        op = instruction_op(instr.op)
        self.instr, self.reference, self.fast = instr, op.reference, fast
        self.attrs = {**op.defaults, **decode_attrs(instr.attrs)}
        self.post = [(instruction_op(p["op"]),
                      {**instruction_op(p["op"]).defaults, **decode_attrs(p["attrs"])},
                      p["inputs"]) for p in instr.post]
        self.rounds = rounds = output_rounding(instr, buffers, rounding)
        self.fused = kernels.vector_kernel(instr, rounds) if vector else None

    def __call__(self, args, env, donor):
        if self.fused is not None:
            out = self.fused(args, args[donor] if donor is not None else None)
            if out is not None:
                return [out], [True]
        outs, owned, rest = self._fast(args)
        if outs is None:
            outs, owned, rest = self._reference(args, donor)
        owned = self._epilogue(rest, outs, owned, args, env)
        fresh = [owned] + [_owned(o, args) for o in outs[1:]]
        return self._round(outs, fresh), fresh

    def _fast(self, args):
        """(outputs, owned, epilogue ops left) from the fast kernel, or (None, ...) without one."""
        if self.fast is None:
            return None, False, self.post
        out = self.fast.run(args)
        if out is None:
            if self.fast.blocked:  # its argument is blocked: no reference can take it
                raise NeuronError(f"internal error: the blocked kernel of {self.instr.op} "
                                  f"({self.instr.node}) gave no result; run with "
                                  "NEURON_SIM_KERNELS=reference")
            return None, False, self.post
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return outs, _owned(outs[0], args), self.post[self.fast.absorbed:]

    def _reference(self, args, donor):
        """(outputs, owned, the whole epilogue) from the op's NumPy reference, writing into the
        donor input where the op takes `out=`."""
        if donor is not None and _fits(args[donor], args):
            out, owned = self.reference(*args, out=args[donor], **self.attrs), True
        else:
            out = self.reference(*args, **self.attrs)
            owned = False
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return outs, owned or _owned(outs[0], args), self.post

    @staticmethod
    def _epilogue(rest: list, outs: list, owned: bool, args: list, env) -> bool:
        """Apply epilogue ops `rest` to outs[0] in fp32 (in place where it is owned and the op
        takes `out=`); returns whether outs[0] is then owned."""
        for p_op, p_attrs, p_inputs in rest:
            p_args = [outs[0] if i == -1 else (None if i is None else env[i]) for i in p_inputs]
            if owned and p_op.writes_out and _fits(outs[0], p_args):
                outs[0] = p_op.reference(*p_args, out=outs[0], **p_attrs)
            else:
                prev = outs[0] if owned else None
                outs[0] = p_op.reference(*p_args, **p_attrs)
                owned = _owned(outs[0], [a for a in p_args if a is not prev] + args)
        return owned

    def _round(self, outs: list, fresh: list) -> list:
        """Each output rounded to its storage dtype: in place into a fresh array, else a new one."""
        for k, to in enumerate(self.rounds):
            if to is not None:
                outs[k] = dtypes.round_to(outs[k], to, inplace=fresh[k])
                fresh[k] = True
        return outs


@dataclass(frozen=True, slots=True)
class Step:
    """One instruction as the executor runs it: its step function (see _kernel), the buffers it
    reads and writes, those that die after it, the input it may write its result into (see
    _donors), and the blocked buffers it reads back in NCHW."""

    run: object
    inputs: list
    outputs: list
    free: list
    donor: int | None = None
    unblock: tuple = ()


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
    """Runs a Program instruction by instruction on prepared weights. `precision` is "hardware" or
    "fp32"; `kernels` is "instruction" (TensorEngine instructions over constant weights on
    onnxruntime's packed-weight kernels, one session each) or "reference" (every instruction on
    the ops' NumPy references); see runtime/kernels/."""

    def __init__(self, program, weights: dict, precision: str = "hardware",
                 kernels_: str = "instruction", drop_pages=None):
        if precision not in PRECISIONS:
            raise NeuronError(f"precision {precision!r} is not valid; choose from {PRECISIONS}")
        self.program, self.precision, self.kernels = program, precision, kernels_
        dtypes.load_jit()
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
                    if drop_pages is not None:
                        drop_pages(b.name)          # the file's copy is not read again
                self.env_template[b.id] = arr
        fast, self.blocked, unblock = self._plan(kernels_)
        #: how many instructions run on the fast kernels
        self.fast_kernels = sum(f is not None for f in fast)
        donors = _donors(program)
        vector = kernels_ == "instruction"
        self.steps = [Step(_kernel(i, rounding, program.buffers, f, vector), i.inputs, i.outputs,
                           i.free, d, u)
                      for i, f, d, u in zip(program.instrs, fast, donors, unblock)]

    def _plan(self, kernels_: str):
        """Per instruction, its fast kernel (or None) and the blocked buffers it reads back in NCHW;
        and the set of buffers held in the blocked layout (see kernels/blocked.py): the results of blocked
        convolutions (those something may read blocked) and pools, and of elementwise instructions
        over blocked operands."""
        buffers, instrs = self.program.buffers, self.program.instrs
        if kernels_ != "instruction":
            return [None] * len(instrs), set(), [()] * len(instrs)
        block = kernels.nchwc_block()
        takes_blocked: set = set()  # buffers some instruction may read blocked
        for instr in instrs:
            if instruction_op(instr.op).reads_blocked:
                takes_blocked.update(instr.inputs)
        blocked: set = set()
        fast, unblock = [], []
        for instr in instrs:
            source = instr.inputs[0] if instr.inputs else None
            kernel = kernels.fast_kernel(instr, buffers, self.env_template, block,
                                         bool(takes_blocked & set(instr.outputs)),
                                         source in blocked)
            if kernel is not None and kernel.blocked:
                kept = {source} & blocked
            elif kernels.layout_free(instr, buffers, blocked):
                kept = set(instr.inputs) | {i for p in instr.post for i in p["inputs"]}
            else:
                kept = set()
            reads = set(instr.inputs) | {i for p in instr.post for i in p["inputs"]}
            unblock.append(tuple(sorted((reads & blocked) - kept)))
            if kernel is not None and kernel.blocked or kept:
                blocked.update(instr.outputs)
            fast.append(kernel)
        return fast, blocked, unblock

    def run(self, inputs: list, timings: list | None = None) -> list:
        """Run the program; with a `timings` list, append (instruction, start, end) perf_counter
        seconds of every instruction (for profiles)."""
        env = list(self.env_template)
        fresh = [False] * len(env)  # buffer i holds an array of its own, shared with no other
        for bid, arr in zip(self.program.inputs, inputs):
            env[bid] = arr
        clock = time.perf_counter if timings is not None else None
        for j, step in enumerate(self.steps):
            started = clock() if clock else 0.0
            view = env
            if step.unblock:  # blocked buffers this instruction reads in NCHW
                view = list(env)
                for b in step.unblock:
                    view[b] = kernels.to_plain(env[b])
            ins, donor = step.inputs, step.donor
            args = [None if i is None else view[i] for i in ins]
            results, owned = step.run(args, view, donor if donor is not None and fresh[ins[donor]]
                                      else None)
            if clock:
                timings.append((j, started, clock()))
            for b, r, o in zip(step.outputs, results, owned):
                env[b], fresh[b] = r, o
            for b in step.free:
                env[b], fresh[b] = None, False
        return [kernels.to_plain(env[b]) if b in self.blocked else env[b]
                for b in self.program.outputs]


def _donors(program) -> list:
    """Per instruction, the index of an input its op may overwrite with its result, or None: a
    float32 buffer the program computed, read by this instruction alone and dead after it (so no
    other buffer can be a view of it), for an op that takes `out=`. At run time the buffer must
    also hold a fresh array (Executor.run tracks that) of the result's shape."""
    reads: dict = {}
    for instr in program.instrs:
        for i in list(instr.inputs) + [i for p in instr.post for i in p["inputs"]]:
            if i is not None and i != -1:
                reads[i] = reads.get(i, 0) + 1
    donors = []
    for instr in program.instrs:
        donor = None
        if instruction_op(instr.op).writes_out:
            for k, b in enumerate(instr.inputs):
                buf = None if b is None else program.buffers[b]
                if (buf is not None and buf.kind == "internal" and buf.dtype == dtypes.FP32
                        and reads.get(b) == 1 and b in instr.free):
                    donor = k
                    break
        donors.append(donor)
    return donors
