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

With the instruction kernels (runtime/kernels.py), activations between convolutions stay in
onnxruntime's blocked layout: Executor._plan decides once which buffers hold blocked arrays, and
every reader that needs NCHW (and every model output) gets its buffer converted back.

GraphExecutor runs the default kernel set, "fast": the program lowered to onnxruntime graphs
(runtime/graph.py), built once per machine and kept in the user cache (runtime/cache.py).
"""
from __future__ import annotations

import concurrent.futures
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


def _kernel(instr, rounding: dict, buffers: list, fast=None, vector: bool = False):
    """A closure computing one instruction: `run(args, env, donor)` -> (output arrays, rounded;
    whether each is a fresh array no other buffer shares). `donor` is the index of an input the
    op may write its result into (see Executor._donors), or None. `fast` is a (run, absorbed) pair
    from kernels.session_kernel: run(args) stands for the op and the first `absorbed` epilogue ops
    (or returns None: then the reference runs the op and its whole epilogue). With `vector`, an
    elementwise instruction kernels.vector_kernel takes runs there when its arguments allow."""
    if instr.op == "_cast":
        to = instr.attrs["to"] if rounding else None

        def cast(args, env, donor):
            return ([dtypes.round_to(args[0], to)], [True]) if to else ([args[0]], [False])
        return cast

    op = get_op(instr.op)
    attrs = dict(op.defaults)
    attrs.update(decode_attrs(instr.attrs))
    fast_run, absorbed = fast or (None, 0)
    blocked = getattr(fast_run, "blocked", False)  # its argument is blocked: no reference for it
    post = [(get_op(p["op"]), {**get_op(p["op"]).defaults, **decode_attrs(p["attrs"])}, p["inputs"])
            for p in instr.post]
    rounds = [rounding.get(o) for o in instr.outputs]
    if op.exact and not post and rounds != [None] * len(rounds):
        # the outputs hold input values only: already exact in the inputs' common storage dtype
        storage = _input_storage(instr, buffers, rounding)
        if len(storage) == 1:
            rounds = [None if to in storage else to for to in rounds]
    reference = op.reference
    fused = kernels.vector_kernel(instr, rounds) if vector else None

    def run(args, env, donor):
        if fused is not None:
            out = fused(args, args[donor] if donor is not None else None)
            if out is not None:
                return [out], [True]
        out = fast_run(args) if fast_run else None
        if out is None and blocked:
            raise NeuronError(f"internal error: the blocked kernel of {instr.op} ({instr.node}) "
                              "gave no result; run with NEURON_SIM_KERNELS=reference")
        rest = post[absorbed:] if out is not None else post
        owned = False
        if out is None:
            if donor is not None and _fits(args[donor], args):
                out, owned = reference(*args, out=args[donor], **attrs), True
            else:
                out = reference(*args, **attrs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        owned = owned or _owned(outs[0], args)
        for p_op, p_attrs, p_inputs in rest:
            p_args = [outs[0] if i == -1 else (None if i is None else env[i]) for i in p_inputs]
            if owned and p_op.writes_out and _fits(outs[0], p_args):
                outs[0] = p_op.reference(*p_args, out=outs[0], **p_attrs)
            else:
                prev = outs[0] if owned else None
                outs[0] = p_op.reference(*p_args, **p_attrs)
                owned = _owned(outs[0], [a for a in p_args if a is not prev] + args)
        fresh = [owned] + [_owned(o, args) for o in outs[1:]]
        for k, to in enumerate(rounds):
            if to is not None:  # rounds in place into a fresh array, else into a new one
                outs[k] = dtypes.round_to(outs[k], to, inplace=fresh[k])
                fresh[k] = True
        return outs, fresh
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
    """Runs a Program instruction by instruction on prepared weights. `precision` is "hardware" or
    "fp32"; `kernels` is "instruction" (TensorEngine instructions over constant weights on
    onnxruntime's packed-weight kernels, one session each) or "reference" (every instruction on
    the ops' NumPy references); see runtime/kernels.py."""

    def __init__(self, program, weights: dict, precision: str = "hardware",
                 kernels_: str = "instruction"):
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
                self.env_template[b.id] = arr
        fast, self.blocked, unblock = self._plan(kernels_)
        #: how many instructions run on the fast kernels
        self.fast_kernels = sum(f is not None for f in fast)
        donors = _donors(program)
        vector = kernels_ == "instruction"
        self.steps = [(_kernel(i, rounding, program.buffers, f, vector), i.inputs, i.outputs,
                       i.free, d, u)
                      for i, f, d, u in zip(program.instrs, fast, donors, unblock)]

    def _plan(self, kernels_: str):
        """Per instruction, its fast kernel (or None) and the blocked buffers it reads back in NCHW;
        and the set of buffers held in the blocked layout (see kernels.py): the results of blocked
        convolutions (those something may read blocked) and pools, and of elementwise instructions
        over blocked operands."""
        buffers, instrs = self.program.buffers, self.program.instrs
        if kernels_ != "instruction":
            return [None] * len(instrs), set(), [()] * len(instrs)
        block = kernels.nchwc_block()
        takes_blocked: set = set()  # buffers some instruction may read blocked
        for instr in instrs:
            if instr.op in ("Conv", "MaxPool") or instr.op in kernels.LAYOUT_FREE:
                takes_blocked.update(instr.inputs)
        blocked: set = set()
        fast, unblock = [], []
        for instr in instrs:
            source = instr.inputs[0] if instr.inputs else None
            kernel = kernels.session_kernel(
                instr, buffers, self.env_template,
                block if takes_blocked & set(instr.outputs) else None, source in blocked)
            if kernel is None and source in blocked:
                kernel = kernels.nchwc_pool(instr, block)
            if kernel is not None and getattr(kernel[0], "blocked", False):
                kept = {source} & blocked
            elif kernels.layout_free(instr, buffers, blocked):
                kept = set(instr.inputs) | {i for p in instr.post for i in p["inputs"]}
            else:
                kept = set()
            reads = set(instr.inputs) | {i for p in instr.post for i in p["inputs"]}
            unblock.append(tuple(sorted((reads & blocked) - kept)))
            if kernel is not None and getattr(kernel[0], "blocked", False) or kept:
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
        for j, (kernel, ins, outs, free, donor, unblock) in enumerate(self.steps):
            started = clock() if clock else 0.0
            view = env
            if unblock:  # blocked buffers this instruction reads in NCHW
                view = list(env)
                for b in unblock:
                    view[b] = kernels.to_plain(env[b])
            args = [None if i is None else view[i] for i in ins]
            results, owned = kernel(args, view, donor if donor is not None and fresh[ins[donor]]
                                    else None)
            if clock:
                timings.append((j, started, clock()))
            for b, r, o in zip(outs, results, owned):
                env[b], fresh[b] = r, o
            for b in free:
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
        if instr.op != "_cast" and get_op(instr.op).writes_out:
            for k, b in enumerate(instr.inputs):
                buf = None if b is None else program.buffers[b]
                if (buf is not None and buf.kind == "internal" and buf.dtype == dtypes.FP32
                        and reads.get(b) == 1 and b in instr.free):
                    donor = k
                    break
        donors.append(donor)
    return donors


class GraphExecutor:
    """Runs a Program as onnxruntime graphs (runtime/graph.py), the instructions no graph takes on
    their references between them. Built graphs come from the user cache (runtime/cache.py) when
    this machine built them before; `neff` is the NEFF the program came from (its weights and
    the key of its cache entry)."""

    def __init__(self, program, neff, precision: str = "hardware"):
        if precision not in PRECISIONS:
            raise NeuronError(f"precision {precision!r} is not valid; choose from {PRECISIONS}")
        from . import cache
        self.program, self.precision, self.kernels = program, precision, "fast"
        self._neff = neff  # its weights are read (and their hash checked) only when needed
        self._rounding = {}
        if precision == "hardware":
            self._rounding = {b.id: b.storage for b in program.buffers
                              if dtypes.is_float(b.dtype) and b.storage in (dtypes.BF16,
                                                                            dtypes.FP16)}
        self._constants: list | None = None
        self._fallback: dict = {}
        key = cache.entry_key(neff, precision)
        segments = cache.load(key)
        self.from_cache = segments is not None
        if segments is not None:
            # the weights come from the cache; the NEFF's are still checked against their hash
            # (a corrupted file is an error on every machine), on a second thread meanwhile
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                check = pool.submit(lambda: neff.weights)
                try:
                    self._runs = [self._prepare(s) for s in segments]
                except NeuronError:  # an entry onnxruntime no longer takes: built anew
                    cache.discard(key)
                    segments, self.from_cache = None, False
                check.result()  # raises NeffFormatError for a corrupted weights section
        if segments is None:
            from .graph import Lowering
            segments = Lowering(program, self.constants(), self._rounding,
                                kernels.nchwc_block(), precision).segments()
            self._runs = [self._prepare(s) for s in segments]
            cache.store(key, segments)
        self.segments = segments
        #: how many instructions run in onnxruntime graphs, and in how many graphs
        self.graph_instructions = sum(len(s.instrs) for s in segments if s.model is not None)
        self.graphs = sum(s.model is not None for s in segments)

    def constants(self) -> list:
        """Per buffer its array on the device if it is a weight (rounded to its storage), else
        None; made on first use (a program from the cache may never need them)."""
        if self._constants is None:
            self._constants = [None] * len(self.program.buffers)
            for b in self.program.buffers:
                if b.kind == "weight":
                    arr = self._neff.weights[b.name]
                    if b.id in self._rounding:
                        arr = _round_plain(np.asarray(arr, np.float32), b.storage)
                    self._constants[b.id] = arr
        return self._constants

    def _prepare(self, segment):
        if segment.model is not None:
            return _session_runner(segment)
        instrs = [self.program.instrs[k] for k in segment.instrs]
        weights = [i for instr in instrs for i in list(instr.inputs) + [
            x for p in instr.post for x in p["inputs"]] if i not in (None, -1)]
        constants = self.constants() if any(
            self.program.buffers[i].kind == "weight" for i in weights) else None
        steps = [(_kernel(instr, self._rounding, self.program.buffers), instr.inputs,
                  instr.outputs, instr.free) for instr in instrs]

        def run(env):
            if constants is not None:
                for i in weights:
                    if constants[i] is not None:
                        env[i] = constants[i]
            for kernel, ins, outs, free in steps:
                results, _ = kernel([None if i is None else env[i] for i in ins], env, None)
                for b, r in zip(outs, results):
                    env[b] = r
                for b in free:
                    env[b] = None
            return True
        return run

    def run(self, inputs: list, timings: list | None = None) -> list:
        """Run the program; with a `timings` list (a profile), every instruction runs on a kernel
        of its own and appends (instruction, start, end) perf_counter seconds."""
        if timings is not None:
            return self._other("instruction").run(inputs, timings)
        env: list = [None] * len(self.program.buffers)
        for bid, arr in zip(self.program.inputs, inputs):
            env[bid] = arr
        for run in self._runs:
            if not run(env):  # a NaN or an inf reached a MaxPool: the reference's result
                return self._other("reference").run(inputs)
        return [env[b] for b in self.program.outputs]

    def _other(self, kernels_: str) -> "Executor":
        if kernels_ not in self._fallback:
            self._fallback[kernels_] = Executor(self.program, self._neff.weights, self.precision,
                                                kernels_)
        return self._fallback[kernels_]


def _session_runner(segment):
    """run(env) for a graph segment: feeds its inputs from `env`, stores its outputs there, and
    says whether every MaxPool guard was finite."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    values = [ort.OrtValue.ortvalue_from_numpy(a) for a in segment.weights.values()]
    if values:
        options.add_external_initializers(list(segment.weights), values)
    try:
        session = ort.InferenceSession(segment.model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise NeuronError(f"internal error: onnxruntime refused the graph of instructions "
                          f"{segment.instrs[0]}..{segment.instrs[-1]}: {exc}; run with "
                          "NEURON_SIM_KERNELS=instruction") from None
    feeds = [(f"b{i}", i) for i in segment.inputs]
    names = list(segment.output_names) + list(segment.guards)
    outputs, n = segment.outputs, len(segment.outputs)

    def run(env):
        results = session.run(names, {name: env[i] for name, i in feeds})
        for bid, r in zip(outputs, results):
            env[bid] = r
        return all(np.isfinite(g) for g in results[n:])
    run.keep = values  # the session reads the initializers' memory
    return run


def _round_plain(x: np.ndarray, to: str) -> np.ndarray:
    """x rounded to `to` without the compiled kernels (a load must not need the JIT)."""
    import ml_dtypes
    narrow = ml_dtypes.bfloat16 if to == dtypes.BF16 else np.float16
    with np.errstate(over="ignore", invalid="ignore"):
        return x.astype(narrow).astype(np.float32)
