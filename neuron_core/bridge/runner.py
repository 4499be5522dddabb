"""Run a NEFF from a plugin's native op: loaded once per runtime (runtime/context.py; keyed by
`neff.neff_key`, the NEFF header's own sha256, so a 100 MB NEFF is never re-hashed per call), with
the checks and dynamic batching the plugins share.

With `dynamic_batch=True`, dimension 0 of every input and output may differ from the compiled
batch: the inputs are cut into compiled-size chunks (the last one padded), run one by one, and the
outputs joined and trimmed. Any other dimension must match exactly.

A plugin's data-parallel wrapper runs replicas in threads, each inside `on_core(i)`: every NEFF
that thread runs is then loaded (once) on NeuronCore i, and other threads are unaffected.
"""
from __future__ import annotations

import contextlib
import os
import threading
import time

import numpy as np

from .. import dtypes
from ..errors import BadInputError
from ..neff.cache import neff_key
from ..runtime.context import default

_BINDING = threading.local()   # per thread: its core, timer and precision (see _bound)


@contextlib.contextmanager
def _bound(attr: str, value):
    """Set this thread's `attr` binding to `value` inside the block; yields `value`."""
    previous = getattr(_BINDING, attr, None)
    setattr(_BINDING, attr, value)
    try:
        yield value
    finally:
        setattr(_BINDING, attr, previous)


def on_core(core: int | None):
    """Run the NEFFs this thread calls inside the block on NeuronCore `core` (None: any core)."""
    return _bound("core", core)


def neuron_time():
    """Yield a dict whose "seconds" grows by the wall time this thread spends in `run_neff` inside
    the block (the plugins subtract it from a whole run to measure their host work)."""
    return _bound("timer", {"seconds": 0.0, "calls": 0})


def with_precision(precision: str | None):
    """Run the NEFFs this thread calls inside the block at `precision` ("fp32" or "hardware"),
    whatever $NEURON_SIM_PRECISION says (a plugin checking its own work wants exact numbers)."""
    return _bound("precision", precision)


def neuron_seconds() -> float:
    """Wall seconds all threads of this process have spent in `run_neff` so far. TensorFlow and
    MXNet run the plugins' ops on their own threads, where `neuron_time` cannot see them; the
    difference of two readings around a run is the NeuronCore part of it."""
    return default().neuron_seconds


def bound_core() -> int | None:
    """The NeuronCore this thread is bound to by `on_core`, or None."""
    return getattr(_BINDING, "core", None)


def _model(neff, precision: str | None, core: int | None, rt):
    from .. import runtime
    from ..runtime.executor import resolve_precision
    precision = resolve_precision(precision)
    key = (neff_key(neff), precision, core)
    loaded = rt.plugin_models
    with rt.lock:
        model = loaded.get(key)
        if model is not None and model.loaded:
            return model
        loading = rt.plugin_loading.setdefault(key, threading.Lock())
    with loading:   # one load per key; replicas on other cores load meanwhile
        with rt.lock:
            model = loaded.get(key)
        if model is None or not model.loaded:
            model = runtime.load(bytes(neff), precision=precision, core=core)
            with rt.lock:
                loaded[key] = model
                # a model loaded on "any core" serves later requests for the core it landed on
                landed = (key[0], precision, model.core)
                if landed not in loaded or not loaded[landed].loaded:
                    loaded[landed] = model
    return model


def unload_all() -> None:
    """Free every NEFF the plugins loaded in this process."""
    rt = default()
    with rt.lock:
        for model in rt.plugin_models.values():
            model.unload()
        rt.plugin_models.clear()


def run_neff(neff, inputs: list, *, dynamic_batch: bool = False, name: str = "neuron subgraph",
             precision: str | None = None, core: int | None = None) -> list:
    """Run `neff` (bytes-like) on numpy `inputs` in declared order; returns numpy outputs.
    `core` defaults to the thread's `on_core` binding, else the first core with room."""
    timer = getattr(_BINDING, "timer", None)
    rt = default()   # one runtime for the whole call: its model, its clock
    started = time.perf_counter()
    try:
        return _run(neff, inputs, dynamic_batch, name, precision, core, rt)
    finally:
        seconds = time.perf_counter() - started
        with rt.lock:
            rt.neuron_seconds += seconds
        if timer is not None:
            timer["seconds"] += seconds
            timer["calls"] += 1


def _run(neff, inputs: list, dynamic_batch: bool, name: str, precision, core, rt) -> list:
    precision = precision or getattr(_BINDING, "precision", None)
    model = _model(neff, precision, bound_core() if core is None else core, rt)
    expected = model.inputs
    if len(inputs) != len(expected):
        raise BadInputError(f"{name} takes {len(expected)} inputs "
                            f"({', '.join(n for n, _, _ in expected)}), got {len(inputs)}")
    arrays = []
    for arr, (iname, shape, dtype) in zip(inputs, expected):
        arr = np.asarray(arr)
        want = dtypes.to_numpy(dtype)
        if arr.dtype != want:
            if arr.dtype.kind != want.kind:
                raise BadInputError(f"{name}: input {iname!r} has dtype {arr.dtype.name}, "
                                    f"expected {dtype}")
            arr = arr.astype(want)
        ok = (arr.shape[1:] == shape[1:] and arr.ndim == len(shape)) if dynamic_batch and shape \
            else arr.shape == shape
        if not ok:
            hint = (" (only dimension 0, the batch, may vary)" if dynamic_batch else
                    "; compile with dynamic_batch_size=True to let the batch dimension vary")
            raise BadInputError(f"{name}: input {iname!r} has shape {tuple(arr.shape)}, expected "
                                f"{tuple(shape)}{hint}")
        arrays.append(arr)
    if not dynamic_batch or not expected or all(a.shape == s for a, (_, s, _) in
                                                zip(arrays, expected)):
        return model.run(arrays)
    return _run_batched(model, arrays, name)


def _run_batched(model, arrays: list, name: str) -> list:
    batch = model.inputs[0][1][0]
    sizes = {a.shape[0] for a in arrays}
    if len(sizes) != 1 or any(not s or s[0] != batch for _, s, _ in model.inputs) or \
            any(not s or s[0] != batch for _, s, _ in model.outputs):
        raise BadInputError(f"{name}: dynamic batch needs every input and output to carry the "
                            f"batch on dimension 0 (compiled batch {batch}); got input batches "
                            f"{sorted(sizes)}")
    n = sizes.pop()
    parts: list = [[] for _ in model.outputs]
    for start in range(0, n, batch):
        chunk = [a[start:start + batch] for a in arrays]
        short = batch - chunk[0].shape[0]
        if short:
            chunk = [np.concatenate([c, np.zeros((short,) + c.shape[1:], c.dtype)]) for c in chunk]
        for acc, out in zip(parts, model.run(chunk)):
            acc.append(out[:batch - short] if short else out)
    return [np.concatenate(p) if p else np.zeros((0,) + s[1:], dtypes.to_numpy(d))
            for p, (_, s, d) in zip(parts, model.outputs)]
