"""What the runtime of each process publishes for neuron-ls / neuron-top / neuron-monitor.

Every process with a loaded model keeps one JSON file, `<host>/<pid>.json`, in the directory of its
simulated host (`runtime.host`: $NEURON_SIM_HOST_DIR or `<tmp>/neuron-sim-<uid>/`). It is written atomically (temporary file +
rename) on load and unload and after executions, at most every `PUBLISH_INTERVAL_S` (a timer catches
up after a burst), and removed when the process unloads its last model or exits. Readers ignore (and
delete) files of processes that are gone, checking the pid and its start time.

Counters are cumulative (executions, errors, busy seconds per core); readers take differences over
their own period. `latencies` holds the most recent executions as [unix time, wall ms].
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from .host import command_line, host_dir, pid_alive, start_time

if TYPE_CHECKING:
    from .device import DeviceManager

log = logging.getLogger("Neuron")

PUBLISH_INTERVAL_S = 0.5
MAX_LATENCIES = 512
FORMAT = 1


def _default_devices() -> DeviceManager:
    from .device import get_device_manager
    return get_device_manager()


class ProcessState:
    """This process's loaded models and counters, published to its state file in `host` (default:
    $NEURON_SIM_HOST_DIR's). `devices` gives the DeviceManager whose cores and memory it reports
    (default: the default runtime's)."""

    def __init__(self, devices: Callable[[], DeviceManager] | None = None, host: Path | None = None):
        self._devices = devices or _default_devices
        self.host = Path(host) if host is not None else host_dir()
        self.pid = os.getpid()
        self.started = start_time(self.pid)
        self._lock = threading.Lock()
        self._models: dict = {}
        self._cores: dict = {}
        self._latencies: deque = deque(maxlen=MAX_LATENCIES)
        self._total = self._errors = 0
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self._path: Path | None = None

    # -- events from the runtime ---------------------------------------------------------------
    def model_loaded(self, model) -> None:
        with self._lock:
            self._models[id(model)] = {
                "ref": weakref.ref(model), "name": model.name, "core": model.core,
                "memory_bytes": sum(a.nbytes for a in model.allocations),
                "cores": list(model.cores), "loaded_at": time.time(),
                "executions": 0, "errors": 0, "device_latency_ms": None}
        self.publish(force=True)

    def model_gone(self, key: int) -> None:
        """The model registered under `key` (its id) was unloaded or collected."""
        with self._lock:
            self._models.pop(key, None)
            self._purge()
            empty = not self._models
        if empty:
            self.remove()
        else:
            self.publish(force=True)

    def _purge(self) -> None:
        """Forget models garbage-collected without unload() (call with the lock held)."""
        for key in [k for k, m in self._models.items() if m["ref"]() is None]:
            del self._models[key]

    def record_run(self, model, wall_s: float, ok: bool, device_ms: float | None = None) -> None:
        now = time.time()
        with self._lock:
            entry = self._models.get(id(model))
            core = self._cores.setdefault(model.core, {"busy_s": 0.0, "executions": 0,
                                                       "errors": 0, "device_busy_s": 0.0})
            core["busy_s"] += wall_s
            core["executions"] += 1
            self._total += 1
            if entry is not None:
                entry["executions"] += 1
                if device_ms is not None:
                    entry["device_latency_ms"] = round(device_ms, 4)
                    core["device_busy_s"] += device_ms / 1e3
            if ok:
                self._latencies.append([round(now, 4), round(1e3 * wall_s, 4)])
            else:
                core["errors"] += 1
                self._errors += 1
                if entry is not None:
                    entry["errors"] += 1
        self.publish()

    # -- publishing ---------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        manager = self._devices()
        usage = manager.usage()
        with self._lock:
            self._purge()
            models = [{k: v for k, v in m.items() if k != "ref"} for m in self._models.values()]
            cores = {}
            for c in sorted({c for m in models for c in m["cores"]} | set(self._cores)):
                counters = self._cores.get(c, {"busy_s": 0.0, "executions": 0, "errors": 0,
                                               "device_busy_s": 0.0})
                cores[str(c)] = {**{k: round(v, 6) for k, v in counters.items()},
                                 "memory_used": usage[c].used if c in usage else 0,
                                 "memory_total": manager.cores[c].memory_bytes
                                 if c < len(manager.cores) else 0,
                                 "models": [m["name"] for m in models if c in m["cores"]]}
            return {"format": FORMAT, "pid": self.pid, "start_time": self.started,
                    "command": command_line(),
                    "updated": time.time(), "num_chips": len(manager.devices),
                    "cores_per_chip": len(manager.devices[0].cores),
                    "visible_cores": list(manager.visible_cores),
                    "owned_cores": list(manager.owned_cores), "models": models,
                    "cores": cores, "executions": {"total": self._total, "errors": self._errors},
                    "latencies": list(self._latencies)}

    def publish(self, force: bool = False) -> None:
        """Write the state file now (`force`) or when PUBLISH_INTERVAL_S has passed since the last
        write; a skipped write is made up by a timer."""
        now = time.monotonic()
        with self._lock:
            if not self._models:
                return
            wait = self._last + PUBLISH_INTERVAL_S - now
            if not force and wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._deferred)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last = now
        self._write(self.snapshot())

    def _deferred(self) -> None:
        with self._lock:
            self._timer = None
        self.publish(force=True)

    def _write(self, data: dict) -> None:
        directory, tmp = self.host, None
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.pid}.", suffix=".tmp", dir=directory)
            with os.fdopen(fd, "w") as f:
                json.dump(data, f)
            path = directory / f"{self.pid}.json"
            os.replace(tmp, path)
            self._path = path
        except OSError as exc:  # monitoring must never break a run
            log.debug("cannot publish runtime state to %s: %s", directory, exc)
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def remove(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            path, self._path = self._path, None
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def process_state() -> ProcessState:
    """The state of this process, as the default runtime keeps it (see `context.Runtime.process`)."""
    from .context import default
    return default().process


def read_states(directory: Path | None = None) -> list:
    """The published states of the live processes of a host (default: $NEURON_SIM_HOST_DIR's), by
    pid; stale files are deleted."""
    directory = Path(directory) if directory is not None else host_dir()
    states = []
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            data = json.loads(path.read_text())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced, or not ours
        if not pid_alive(pid, data.get("start_time")):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        states.append(data)
    return sorted(states, key=lambda s: s["pid"])
