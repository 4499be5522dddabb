"""`Runtime`: everything the runtime of this process keeps between calls, reachable from one object.

    rt = neuron_core.runtime.context.default()
    rt.devices.usage()        # the DeviceManager: cores, device memory, who holds it
    rt.process.snapshot()     # what neuron-ls / neuron-top / neuron-monitor read of this process

One `Runtime` serves the process (`default()`); the module functions that predate it
(`device.get_device_manager`, `state.process_state`) hand out its parts. A test, or a program that
wants a second set of books, makes its own and installs it for a block with `use(Runtime.fresh())`.

Two kinds of things hang off it. State: the device manager (read from the environment at first
use), the published process state, profile sequence numbers, the plugins' latest compile plans,
the NEFFs their native ops loaded and the time spent running them — a fresh Runtime starts them
empty. Memos: caches of facts that cannot change within a process
(digests of the code, what this CPU computes), keyed by content and named by their owner through
`memo(name)`; `Runtime.fresh()` shares the default's, so a test does not probe the machine again.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import threading
from pathlib import Path
from typing import Iterator

from ..logs import configure_runtime_logging
from .device import DeviceManager
from .host import host_dir
from .state import ProcessState


class Runtime:
    """The device manager, process state, counters and memos of one runtime (usually the process's).

    Example:
        >>> rt = Runtime()
        >>> rt.devices.visible_cores  # with no NEURON_RT_* variables set
        (0, 1, 2, 3)
        >>> with use(rt):
        ...     default() is rt
        True
    """

    def __init__(self, memos: dict[str, dict] | None = None, host: Path | str | None = None):
        #: the simulated host this runtime owns cores on and publishes to ($NEURON_SIM_HOST_DIR
        #: when it was created, unless given)
        self.host = Path(host) if host is not None else host_dir()
        self._lock = threading.RLock()
        self._devices: DeviceManager | None = None
        self._process: ProcessState | None = None
        #: (profile directory, model name) -> traces written so far (see profile.write_profile)
        self.profile_counts: dict[tuple[str, str], int] = {}
        #: plugin name -> the plan of its latest compile (e.g. mx_neuron.last_plan)
        self.last_plans: dict[str, object] = {}
        #: the NEFFs the plugins' native ops loaded (bridge/runner.py): (NEFF key, precision,
        #: core) -> Model; they hold memory on this runtime's devices
        self.plugin_models: dict = {}
        #: (NEFF key, precision, core) -> the lock held while that NEFF loads
        self.plugin_loading: dict = {}
        #: wall seconds all threads have spent in the plugins' NEFF runs (bridge.neuron_seconds)
        self.neuron_seconds = 0.0
        #: memo name -> its cache; facts only, so runtimes may share them (see fresh)
        self.memos: dict[str, dict] = {} if memos is None else memos

    @classmethod
    def fresh(cls, host: Path | str | None = None) -> Runtime:
        """A runtime with no devices, loaded models or counters yet, sharing the default's memos."""
        return cls(memos=default().memos, host=host)

    @property
    def devices(self) -> DeviceManager:
        """The DeviceManager, configured from the environment on first use (see reset_devices);
        it owns its cores on this runtime's host."""
        with self._lock:
            if self._devices is None:
                self._devices = DeviceManager.from_env(host=self.host)
            return self._devices

    def reset_devices(self) -> None:
        """Forget the device manager (and its allocations) and give its cores back; the next use
        reads the environment."""
        with self._lock:
            devices, self._devices = self._devices, None
        if devices is not None:
            devices.close()

    @property
    def process(self) -> ProcessState:
        """This process's published state (created on first use and in a forked child; its file
        is removed at exit)."""
        with self._lock:
            if self._process is None or self._process.pid != os.getpid():
                self._process = ProcessState(devices=lambda: self.devices, host=self.host)
                atexit.register(self._process.remove)
            return self._process

    @property
    def lock(self) -> threading.RLock:
        """The lock that guards this runtime's state."""
        return self._lock

    def memo(self, name: str) -> dict:
        """The memo named `name` (by its owner, e.g. "cache.builder_digest"), created empty."""
        return self.memos.setdefault(name, {})

    def next_profile(self, directory: str, model: str) -> int:
        """The sequence number of the next trace of `model` written to `directory`."""
        with self._lock:
            seq = self.profile_counts.get((directory, model), 0)
            self.profile_counts[(directory, model)] = seq + 1
            return seq

    def close(self) -> None:
        """Withdraw the published state file and give the cores back (as at exit); devices and
        counters stay readable."""
        with self._lock:
            process, devices = self._process, self._devices
        if process is not None:
            process.remove()
        if devices is not None:
            devices.close()


_default: Runtime | None = None
_default_lock = threading.Lock()


def default() -> Runtime:
    """The runtime every module-level function uses, created on first use (which also applies
    NEURON_RT_LOG_LEVEL / NEURON_RT_LOG_LOCATION, see `neuron_core.logs`)."""
    global _default
    with _default_lock:
        if _default is None:
            configure_runtime_logging()
            _default = Runtime()
        return _default


@contextlib.contextmanager
def use(runtime: Runtime) -> Iterator[Runtime]:
    """Make `runtime` the default inside the block (the previous one comes back afterwards)."""
    global _default
    with _default_lock:
        previous, _default = _default, runtime
    try:
        yield runtime
    finally:
        with _default_lock:
            _default = previous
