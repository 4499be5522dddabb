"""The framework-free runtime API: load a NEFF onto a simulated NeuronCore and run it.

    model = neuron_core.runtime.load("model.neff")
    outputs = model.run({"x": x})
    print(model.estimate().format())      # latency / throughput on each Inf1 size

Every execution also yields the timing model's cycles and per-engine timeline (`model.timeline()`,
`model.last_cycles`); `NEURON_PROFILE=DIR` writes each execution's trace there (see
`runtime.profile`), and the process publishes its loaded models and counters for neuron-ls /
neuron-top / neuron-monitor (see `runtime.state`).
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
import weakref

import numpy as np

from .. import dtypes
from ..logs import runtime_log
from ..neff.verify import verify
from ..errors import BadInputError, NeuronError, RuntimeStatusError, Status
from .device import defer, get_device_manager
from .executor import Executor, resolve_precision
from .graph_executor import GraphExecutor
from .stages import stage_bounds, stage_bytes
from .kernels import choose as choose_kernels
from .state import process_state

log = logging.getLogger("Neuron")


class Model:
    """A NEFF loaded on a NeuronCore. Call `run(inputs)`; `unload()` frees its device memory."""

    def __init__(self, neff, precision: str, core: int | None = None, kernels_: str = "fast"):
        self.neff = neff
        self.metadata = neff.metadata
        self.precision = precision
        self.kernels = kernels_
        self.program = verify(neff)
        self.inputs = [(d["name"], tuple(d["shape"]), d["dtype"]) for d in self.metadata["inputs"]]
        self.outputs = [(d["name"], tuple(d["shape"]), d["dtype"]) for d in self.metadata["outputs"]]
        self.name = str(self.metadata.get("source") or (neff.path and os.path.basename(neff.path))
                        or self.metadata.get("graph") or "model")
        owner = f"pid {os.getpid()}: {self.metadata.get('source') or neff.path or 'model'}"
        self._timelines: dict = {}
        self.last_cycles: int | None = None
        self._async_lock = threading.Lock()
        self._queue: concurrent.futures.ThreadPoolExecutor | None = None
        self._slots: threading.BoundedSemaphore | None = None
        options = self.metadata.get("options") or {}
        #: NeuronCores the NEFF runs on (--neuroncore-pipeline-cores) and its stages' instructions
        self.pipeline_cores = max(1, int(options.get("neuroncore_pipeline_cores", 1) or 1))
        if self.pipeline_cores > 1:
            self.stages = stage_bounds(self.program, self.pipeline_cores)
            sizes = stage_bytes(self.program, self.stages)
        else:
            self.stages = [(0, len(self.program.instrs))]
            sizes = [int(self.program.memory.get("total_bytes", 0))]
        #: the device memory it holds, one block per NeuronCore it runs on (stage order)
        self.allocations = get_device_manager().allocate_span(sizes, owner=owner, core=core)
        self.allocation = self.allocations[0]
        try:
            if kernels_ == "fast":
                self._executor = GraphExecutor(self.program, neff, precision)
            else:
                self._executor = Executor(self.program, neff.weights, precision, kernels_,
                                          neff.drop_pages)
        except BaseException:
            for allocation in self.allocations:
                get_device_manager().free(allocation)
            raise
        self.loaded = True
        state = process_state()
        state.model_loaded(self)
        # a model dropped without unload() gives its device memory back after it is collected (the
        # finalizer only queues the release: it may run inside any lock of any thread)
        self._release = weakref.finalize(self, defer, _release, get_device_manager(),
                                         self.allocations, state, id(self))
        self._release.atexit = False
        runtime_log.info("loaded %s on NeuronCore %s: %s MiB of device memory, precision %s",
                         self.name, "-".join(str(c) for c in sorted({self.cores[0], self.cores[-1]})),
                         " + ".join(f"{a.nbytes / 2**20:.1f}" for a in self.allocations), precision)

    @property
    def core(self) -> int:
        """The NeuronCore it runs on (a pipeline's first)."""
        return self.allocation.core

    @property
    def cores(self) -> list[int]:
        """Every NeuronCore it holds memory on: one, or a pipeline's N in stage order."""
        return [a.core for a in self.allocations]

    def _check_inputs(self, inputs) -> list:
        expected = self.inputs
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, dict):
            names = [n for n, _, _ in expected]
            unknown = [k for k in inputs if k not in names]
            missing = [n for n in names if n not in inputs]
            if unknown or missing:
                raise BadInputError(f"inputs by name do not match the model: missing {missing}, "
                                    f"unknown {unknown}; the model's inputs are {names}")
            inputs = [inputs[n] for n in names]
        if not isinstance(inputs, (list, tuple)):
            raise BadInputError(f"run() takes one array, a list of arrays in declared order or a "
                                f"name -> array dict, got {type(inputs).__name__}; the model's "
                                f"inputs are {[n for n, _, _ in expected]}")
        inputs = list(inputs)
        if len(inputs) != len(expected):
            raise BadInputError(f"model takes {len(expected)} inputs "
                                f"({', '.join(n for n, _, _ in expected)}), got {len(inputs)}")
        checked = []
        for arr, (name, shape, dtype) in zip(inputs, expected):
            if not isinstance(arr, np.ndarray):
                raise BadInputError(f"input {name!r} must be a numpy array, got "
                                    f"{type(arr).__name__}")
            if tuple(arr.shape) != shape:
                raise BadInputError(f"input {name!r} has shape {tuple(arr.shape)}, expected {shape}")
            if arr.dtype != dtypes.to_numpy(dtype) and arr.dtype.newbyteorder("=") == \
                    dtypes.to_numpy(dtype):
                arr = arr.astype(dtypes.to_numpy(dtype))     # e.g. big-endian '>f4': same values
            if arr.dtype != dtypes.to_numpy(dtype):
                raise BadInputError(f"input {name!r} has dtype {arr.dtype.name}, expected {dtype}; "
                                    f"convert it with .astype(np.{dtype})")
            checked.append(arr)
        return checked

    def run(self, inputs) -> list:
        """Execute once. `inputs`: one array, a list in declared order, or a name -> array dict.
        Returns the outputs as a list of numpy arrays in declared order."""
        executor = self._executor
        if executor is None or not self.loaded:
            raise RuntimeStatusError(f"{self.name} was unloaded; load the NEFF again to run it",
                                     Status.CLOSED)
        started = time.perf_counter()
        profile_dir = os.environ.get("NEURON_PROFILE")
        steps: list | None = [] if profile_dir else None
        try:
            args = self._check_inputs(inputs)
            self._check_time()
            outs = executor.run(args, steps)
        except BaseException as exc:
            process_state().record_run(self, time.perf_counter() - started, ok=False)
            if isinstance(exc, RuntimeStatusError) and exc.status is Status.TIMEOUT:
                runtime_log.error("%s", exc)
            raise
        timeline = self.timeline()
        self.last_cycles = timeline.cycles
        wall = time.perf_counter() - started
        runtime_log.debug("executed %s on NeuronCore %d in %.2f ms (%.3f ms of device time, %d "
                          "cycles)", self.name, self.core, 1e3 * wall, 1e3 * timeline.device_s,
                          timeline.cycles)
        process_state().record_run(self, wall, ok=True, device_ms=1e3 * timeline.device_s)
        if profile_dir:
            self._write_profile(profile_dir, timeline, steps)
        result = []
        for arr, (_, _, dtype) in zip(outs, self.outputs):
            want = dtypes.to_numpy(dtype)
            if (arr.dtype != want or arr.base is not None or not arr.flags.writeable
                    or any(np.may_share_memory(arr, a) for a in args)):
                arr = np.array(arr, dtype=want)
            result.append(arr)
        return result

    def _check_time(self) -> None:
        """TIMEOUT when one execution takes longer on the simulated device than
        $NEURON_RT_EXEC_TIMEOUT allows (measured in simulated device time, known before running:
        a slow host or a paused debugger never trips it)."""
        limit = exec_timeout()
        device_s = self.timeline().device_s
        if device_s > limit:
            raise RuntimeStatusError(f"{self.name}: an execution takes {1e3 * device_s:.3f} ms of "
                                     f"device time, more than {TIMEOUT_VAR}={limit:g} s allows; "
                                     f"raise {TIMEOUT_VAR}", Status.TIMEOUT)

    def run_async(self, inputs) -> concurrent.futures.Future:
        """Queue one execution and return its Future (its result() is what run() returns, or
        raises what run() raises). Executions of one model run in order, one at a time, as on a
        NeuronCore; at most $NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS (default
        DEFAULT_INFLIGHT) are queued or running, beyond which submission fails with QUEUE_FULL.

        Example:
            >>> futures = [model.run_async([x]) for x in batch]     # doctest: +SKIP
            >>> outputs = [f.result() for f in futures]             # doctest: +SKIP
        """
        with self._async_lock:
            if not self.loaded:
                raise RuntimeStatusError(f"{self.name} was unloaded; load the NEFF again to run "
                                         "it", Status.CLOSED)
            if self._queue is None:
                self._slots = threading.BoundedSemaphore(max_inflight())
                self._queue = concurrent.futures.ThreadPoolExecutor(
                    1, thread_name_prefix=f"neuron-{self.name}"[:40])
            queue, slots = self._queue, self._slots
        if not slots.acquire(blocking=False):
            runtime_log.debug("%s: run_async refused, %d requests in flight", self.name,
                                max_inflight())
            raise RuntimeStatusError(f"{self.name}: {max_inflight()} requests are already in "
                                     f"flight ({INFLIGHT_VAR}); wait for some to finish",
                                     Status.QUEUE_FULL)
        try:
            future = queue.submit(self.run, inputs)
        except RuntimeError:            # unloaded meanwhile: the queue is shut
            slots.release()
            raise RuntimeStatusError(f"{self.name} was unloaded; load the NEFF again to run it",
                                     Status.CLOSED) from None
        future.add_done_callback(lambda _: slots.release())
        return future

    def unload(self) -> None:
        """Free the device memory this model holds (idempotent). Requests still queued by
        run_async fail with CLOSED."""
        with self._async_lock:
            queue, self._queue = self._queue, None
        if self.loaded:
            self.loaded = False
            self._executor = None
            detached = self._release.detach()      # (self, defer, (_release, *args), {})
            if detached is not None:
                _release(*detached[2][1:])
            runtime_log.info("unloaded %s from NeuronCore %d", self.name, self.core)
        if queue is not None:
            queue.shutdown(wait=False)

    def timeline(self, active_cores: int | None = None):
        """The timing model's per-engine timeline of one execution (cached; a pure function of
        the program). `active_cores`: cores of this chip streaming from DRAM at once, by default
        those holding models in this process."""
        if active_cores is None:
            manager = get_device_manager()
            chip = manager.cores[self.core].chip
            active_cores = max(1, sum(1 for c, u in manager.usage().items()
                                      if u.used and manager.cores[c].chip == chip))
        if active_cores not in self._timelines:
            from .timing import simulate
            self._timelines[active_cores] = simulate(self.program, active_cores=active_cores)
        return self._timelines[active_cores]

    def estimate(self, instance: str | None = None, cores: int | None = None,
                 batch_size: int | None = None, host_ms: float = 0.0, inflight: int = 1):
        """Latency P50 and throughput on Inf1 sizes (all, or `instance`), from the timing model.

        `host_ms` adds host time per request (e.g. host-fallback ops); see `neuron_core.estimate`.

        Example:
            >>> est = model.estimate("inf1.xlarge")                       # doctest: +SKIP
            >>> est.instances["inf1.xlarge"].throughput_per_s             # doctest: +SKIP
        """
        from ..estimate import estimate_program
        return estimate_program(self.program, self.metadata, instance=instance, cores=cores,
                                batch_size=batch_size, host_ms=host_ms, inflight=inflight,
                                name=self.name)

    def _write_profile(self, directory: str, timeline, steps: list) -> None:
        from .profile import build_trace, write_profile
        trace = build_trace(self.program, timeline, model=self.name, core=self.core,
                            wall_steps=steps)
        try:
            path = write_profile(directory, trace, self.name)
        except OSError as exc:
            raise NeuronError(f"NEURON_PROFILE={directory!r}: cannot write the profile: {exc}; "
                              "point it at a writable directory or unset it") from None
        log.debug("profile written to %s", path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unload()

    def __repr__(self) -> str:
        ins = ", ".join(f"{n}: {dtypes.SHORT[d]}{list(s)}" for n, s, d in self.inputs)
        return f"<neuron Model ({ins}) on core {self.core}, precision={self.precision}>"


#: the environment variables of execution limits, as the Neuron runtime names them
TIMEOUT_VAR = "NEURON_RT_EXEC_TIMEOUT"
INFLIGHT_VAR = "NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS"
#: seconds of device time one execution may take (the Neuron runtime's table gives 30 for Inf1)
DEFAULT_TIMEOUT_S = 30.0
#: requests one model may have queued or running through run_async (nrt's 0, "async off", and
#: an unset variable both mean this bound: run_async always works here)
DEFAULT_INFLIGHT = 64


def _env_number(name: str, default, kind, what: str):
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < 0 or (kind is float and not value == value):
        raise RuntimeStatusError(f"{name}={text!r} is not {what}", Status.INVALID)
    return value


def exec_timeout() -> float:
    """$NEURON_RT_EXEC_TIMEOUT in seconds of simulated device time (default DEFAULT_TIMEOUT_S)."""
    limit = _env_number(TIMEOUT_VAR, DEFAULT_TIMEOUT_S, float, "a number of seconds (e.g. 30)")
    return limit if limit > 0 else DEFAULT_TIMEOUT_S


def max_inflight() -> int:
    """$NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS, or DEFAULT_INFLIGHT when unset or 0."""
    return _env_number(INFLIGHT_VAR, DEFAULT_INFLIGHT, int, "a count of requests (e.g. 8)") or \
        DEFAULT_INFLIGHT


def _release(manager, allocations, state, key: int) -> None:
    """What unload() and the collection of a loaded model both do: free its device memory and
    take it out of the process's published state (holds no reference to the model)."""
    for allocation in allocations:
        manager.free(allocation)
    state.model_gone(key)


def load(neff, precision: str | None = None, core: int | None = None,
         kernels: str | None = None) -> Model:
    """Load a NEFF (path or bytes) onto a simulated NeuronCore.

    Args:
        neff: path to a .neff file, or its bytes.
        precision: "hardware" (BF16/FP16 as compiled, the default) or "fp32" (every cast skipped);
            defaults to $NEURON_SIM_PRECISION or "hardware".
        core: NeuronCore index, or None for the first visible core with room.
        kernels: "fast" (the default: the whole program as onnxruntime graphs, kept in the
            user cache, see runtime/graph.py), "instruction" (one fast kernel per instruction;
            profiles use it) or "reference" (every instruction on the ops' own NumPy references);
            defaults to $NEURON_SIM_KERNELS or "fast". All compute the same fp32 sums of the same
            stored operands and round at the same points.

    Example:
        >>> model = load("model.neff")                    # doctest: +SKIP
        >>> y, = model.run({"x": np.zeros((1, 3, 224, 224), np.float32)})  # doctest: +SKIP
    """
    from ..neff import read_neff
    precision = resolve_precision(precision)
    kernels = choose_kernels(kernels)
    started = time.perf_counter()
    # the whole-program kernels may take their weights from the cache: hash them only if read
    model = Model(read_neff(neff, defer_weights=kernels == "fast"), precision, core, kernels)
    log.debug("loaded NEFF in %.1f ms", 1e3 * (time.perf_counter() - started))
    return model
