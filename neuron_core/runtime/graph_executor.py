"""GraphExecutor: runs the default kernel set, "fast": the program lowered to onnxruntime graphs
(runtime/graph.py), built once per machine and kept in the user cache (runtime/cache.py); the
instructions no graph takes run on their references (runtime/executor.py) between them."""
from __future__ import annotations

import concurrent.futures

import numpy as np

from .. import dtypes
from ..errors import NeuronError
from ..ops import op_names
from . import kernels
from .executor import PRECISIONS, Executor, Step, _kernel


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
            # (a corrupted file is an error on every machine), on a second thread meanwhile,
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                check = pool.submit(lambda: neff.weights)
                # and the ops' facts the timing model reads at the first run: their modules
                # load while onnxruntime builds the sessions
                pool.submit(op_names)
                try:
                    self._runs = [self._prepare(s) for s in segments]
                except NeuronError:  # an entry onnxruntime no longer takes: built anew
                    cache.discard(key)
                    segments, self.from_cache = None, False
                check.result()  # raises NeffFormatError for a corrupted weights section
                neff.drop_pages()   # the hash read them; the sessions read the cache's copy
        if segments is None:
            from .graph import Lowering
            segments = Lowering(program, self.constants(), self._rounding,
                                kernels.nchwc_block(), precision).segments()
            cache.store(key, segments)
            stored = cache.load(key)
            if stored is not None:
                # the sessions read the mapped copy just stored, and the arrays the lowering
                # made go (remade if a reference segment asks): the first load holds the
                # weights no more often than the next ones
                segments, self._constants = stored, None
                if sum(b.nbytes for b in program.buffers if b.kind == "weight") > TRIM_BYTES:
                    _give_back_freed_memory()
            self._runs = [self._prepare(s) for s in segments]
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
                        self._neff.drop_pages(b.name)   # the file's copy is not read again
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
        steps = [Step(_kernel(instr, self._rounding, self.program.buffers), instr.inputs,
                      instr.outputs, instr.free) for instr in instrs]

        def run(env):
            if constants is not None:
                for i in weights:
                    if constants[i] is not None:
                        env[i] = constants[i]
            for step in steps:
                results, _ = step.run([None if i is None else env[i] for i in step.inputs], env,
                                      None)
                for b, r in zip(step.outputs, results):
                    env[b] = r
                for b in step.free:
                    env[b] = None
            return True
        return run

    def run(self, inputs: list, timings: list | None = None) -> list:
        """Run the program; with a `timings` list (a profile), every instruction runs on a kernel
        of its own and appends (instruction, start, end) perf_counter seconds."""
        if timings is not None:
            return self._other("instruction").run(inputs, timings)
        env: list = [None] * len(self.program.buffers)
        buffers = self.program.buffers
        for bid, arr in zip(self.program.inputs, inputs):
            # the graphs hold every float in a float32 container (bf16/fp16 values exactly)
            env[bid] = arr.astype(np.float32) if arr.dtype != np.float32 and \
                dtypes.is_float(buffers[bid].dtype) else arr
        for run in self._runs:
            if not run(env):  # a NaN or an inf reached a MaxPool: the reference's result
                return self._other("reference").run(inputs)
        return [env[b] for b in self.program.outputs]

    def _other(self, kernels_: str) -> "Executor":
        if kernels_ not in self._fallback:
            self._fallback[kernels_] = Executor(self.program, self._neff.weights, self.precision,
                                                kernels_)
        return self._fallback[kernels_]


#: weights beyond which a first load collects and trims before building its sessions (a
#: collection costs tens of ms in a process holding a framework's heap)
TRIM_BYTES = 64 << 20


def _give_back_freed_memory() -> None:
    """Collect what the lowering left in reference cycles and ask the C allocator to return the
    freed arenas to the system (glibc keeps them otherwise, and the sessions about to be built
    would add their packed weights on top)."""
    import ctypes
    import gc
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):   # not glibc: its allocator decides
        pass


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
    if segment.release is not None:
        # onnxruntime has packed the weights it packs; the pages of the mapped file it read for
        # that leave the resident set (a kernel reading them again gets them from the file)
        segment.release()
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
