"""Simulated Inf1 devices: the chips, NeuronCores and device memory this process may use.

The machine has `NEURON_SIM_NUM_CHIPS` Inferentia chips (default 1, like inf1.xlarge) of
`CORES_PER_CHIP` NeuronCores with `CORE_MEMORY_BYTES` of device DRAM each. As with the Neuron runtime,
`NEURON_RT_VISIBLE_CORES` ('0-1', '2', '0,2,3') restricts the cores the process may use and
`NEURON_RT_NUM_CORES=N` takes the first N free ones of those (0 means all). Models are placed by
allocating device memory on a core; `DeviceManager` keeps the books.

A manager given a simulated host (`runtime.host`; the runtime's always is) owns its cores there
exclusively from its first allocation until its last allocation is freed or it is closed: another
process asking for one of them fails with LOAD_NOT_ENOUGH_NC, naming the owner.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import NeuronError, ResourceError, Status
from ..logs import runtime_log
from . import host as hosts

CORES_PER_CHIP = 4
CORE_MEMORY_BYTES = 2 * 1024**3  # 8 GiB of DRAM per chip, shared by its 4 cores
DEFAULT_NUM_CHIPS = 1
MAX_CHIPS = 16  # inf1.24xlarge

ENV_NUM_CHIPS = "NEURON_SIM_NUM_CHIPS"
ENV_VISIBLE_CORES = "NEURON_RT_VISIBLE_CORES"
ENV_NUM_CORES = "NEURON_RT_NUM_CORES"
ENV_GROUP_SIZES = "NEURONCORE_GROUP_SIZES"
NOT_ENOUGH_NC = Status.LOAD_NOT_ENOUGH_NC

_CORE_ITEM = re.compile(r"^([0-9]+)(?:-([0-9]+))?$")   # ASCII digits: int() reads others too


@dataclass(frozen=True)
class NeuronCore:
    """One NeuronCore: its index across the machine, its chip and its device memory."""

    index: int
    chip: int
    memory_bytes: int = CORE_MEMORY_BYTES


@dataclass(frozen=True)
class NeuronDevice:
    """One Inferentia chip (/dev/neuron<index>) and its NeuronCores."""

    index: int
    cores: tuple[NeuronCore, ...]

    @property
    def memory_bytes(self) -> int:
        return sum(core.memory_bytes for core in self.cores)


@dataclass(frozen=True)
class Allocation:
    """A block of device memory on one NeuronCore, held by an owner (usually a loaded model)."""

    id: int
    core: int
    nbytes: int
    owner: str


@dataclass(frozen=True)
class CoreUsage:
    """Device memory of one NeuronCore: total, used, and the owners holding it."""

    core: int
    total: int
    used: int
    owners: tuple[str, ...]

    @property
    def free(self) -> int:
        return self.total - self.used


def make_devices(num_chips: int = DEFAULT_NUM_CHIPS) -> tuple[NeuronDevice, ...]:
    """The chips of a machine with `num_chips` Inferentia chips, cores numbered across chips."""
    return tuple(NeuronDevice(chip, tuple(NeuronCore(chip * CORES_PER_CHIP + i, chip)
                                          for i in range(CORES_PER_CHIP)))
                 for chip in range(num_chips))


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB ({n} bytes)"


def _span(cores: Iterable[int]) -> str:
    """'0-3' for a contiguous run, else '0, 2, 3'."""
    cores = list(cores)
    if len(cores) > 2 and cores == list(range(cores[0], cores[-1] + 1)):
        return f"{cores[0]}-{cores[-1]}"
    return ", ".join(map(str, cores))


def _int_var(var: str, text: str, minimum: int, maximum: int, form: str) -> int:
    value = text.strip()
    if not (value.isascii() and value.isdigit()) or not minimum <= int(value) <= maximum:
        raise NeuronError(f"{var}={text!r} is invalid: expected {form}")
    return int(value)


def parse_group_sizes(text: str) -> list[int]:
    """NeuronCore group sizes from NEURONCORE_GROUP_SIZES: '2,2', '1,1,1,1', or 'NxM' for N
    groups of M cores.

    Example:
        >>> parse_group_sizes("2,2"), parse_group_sizes("4x1")
        ([2, 2], [1, 1, 1, 1])
    """
    sizes = []
    for item in text.split(","):
        m = re.match(r"^\s*([0-9]+)\s*(?:x\s*([0-9]+))?\s*$", item)
        if not m or (m.group(2) is not None and int(m.group(1)) == 0) or int(m.group(2) or m.group(1)) < 1:
            raise NeuronError(f"{ENV_GROUP_SIZES}={text!r} is invalid: expected group sizes such as "
                              f"'2,2', '1,1,1,1' or '4x1' (four groups of one NeuronCore)")
        sizes += [int(m.group(2))] * int(m.group(1)) if m.group(2) else [int(m.group(1))]
    return sizes


def parse_core_list(text: str, var: str = ENV_VISIBLE_CORES) -> list[int]:
    """Core ids from '0-1', '2', '0,2,3' or '0-1,3', sorted and without repeats.

    Example:
        >>> parse_core_list("0-1,3")
        [0, 1, 3]
    """
    cores: set[int] = set()
    for item in text.split(","):
        m = _CORE_ITEM.match(item.strip())
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            raise NeuronError(f"{var}={text!r} is invalid: expected a core index, a range or a comma "
                              f"list of them, such as '0-1', '2' or '0,2,3'")
        first = int(m.group(1))
        cores.update(range(first, int(m.group(2) or first) + 1))
    return sorted(cores)


class DeviceManager:
    """The NeuronCores this process may use and the device memory allocated on each; with a `host`,
    the cores it owns there (see the module's docstring)."""

    def __init__(self, num_chips: int = DEFAULT_NUM_CHIPS, visible_cores: Iterable[int] | None = None,
                 num_cores: int = 0, host: Path | str | None = None,
                 groups: Iterable[int] | str | None = None):
        self.devices = make_devices(num_chips)
        self.cores = tuple(core for device in self.devices for core in device.cores)
        everything = [core.index for core in self.cores]
        visible = everything if visible_cores is None else sorted(set(visible_cores))
        missing = [c for c in visible if not 0 <= c < len(self.cores)]
        if missing:
            raise ResourceError(
                f"{ENV_VISIBLE_CORES} names NeuronCore {_span(missing)} but this machine has "
                f"{len(self.cores)} NeuronCores ({_span(everything)}) on {num_chips} chip(s); choose "
                f"cores from {_span(everything)}, or set {ENV_NUM_CHIPS} for more chips", status=NOT_ENOUGH_NC)
        sizes = parse_group_sizes(groups) if isinstance(groups, str) else list(groups or [])
        if sizes and sum(sizes) > (num_cores or len(visible)):
            have = f"{ENV_NUM_CORES}={num_cores}" if num_cores else \
                f"{len(visible)} are visible ({_span(visible)})"
            raise ResourceError(
                f"{ENV_GROUP_SIZES}={','.join(map(str, sizes))} asks for {sum(sizes)} NeuronCores but "
                f"{have}; make the groups smaller, or widen {ENV_VISIBLE_CORES} / {ENV_NUM_CHIPS}",
                status=NOT_ENOUGH_NC)
        if sizes and not num_cores:
            num_cores = sum(sizes)    # a process takes the cores of its groups (the first free ones)
        if num_cores > len(visible):
            raise ResourceError(
                f"{ENV_NUM_CORES}={num_cores} asks for {num_cores} NeuronCores but only {len(visible)} "
                f"are visible ({_span(visible)}); ask for fewer, or widen {ENV_VISIBLE_CORES} / "
                f"{ENV_NUM_CHIPS}", status=NOT_ENOUGH_NC)
        self.host = Path(host) if host is not None else None
        self._asked = (visible, num_cores, visible_cores is not None)
        #: the cores models may use: once owned, exactly the owned ones
        self.visible_cores: tuple[int, ...] = tuple(visible[:num_cores] if num_cores else visible)
        self._owner_pid: int | None = None     # the process owning visible_cores on the host
        self._group_sizes = sizes
        self._group_text = ",".join(map(str, sizes))
        self._next_group = 0
        # re-entrant: a model collected while this thread holds it frees its memory through it
        self._lock = threading.RLock()
        self._said: collections.deque = collections.deque()   # log records kept for after the lock
        self._ids = itertools.count(1)
        self._live: dict[int, dict[int, Allocation]] = {c: {} for c in self.visible_cores}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None,
                 host: Path | str | None = None) -> DeviceManager:
        """A manager configured from NEURON_SIM_NUM_CHIPS, NEURON_RT_VISIBLE_CORES, NEURON_RT_NUM_CORES,
        owning its cores on `host` (default: none, books only).

        Example:
            >>> DeviceManager.from_env({"NEURON_RT_VISIBLE_CORES": "2-3"}).visible_cores
            (2, 3)
        """
        env = os.environ if environ is None else environ
        num_chips = _int_var(ENV_NUM_CHIPS, env.get(ENV_NUM_CHIPS) or str(DEFAULT_NUM_CHIPS), 1, MAX_CHIPS,
                             f"a number of Inferentia chips from 1 to {MAX_CHIPS}, e.g. 1 (inf1.xlarge), "
                             f"4 (inf1.6xlarge) or 16 (inf1.24xlarge)")
        visible = env.get(ENV_VISIBLE_CORES, "").strip()
        num_cores = _int_var(ENV_NUM_CORES, env.get(ENV_NUM_CORES) or "0", 0, 10**6,
                             "a number of NeuronCores such as '2' (0 means all visible cores)")
        return cls(num_chips, parse_core_list(visible) if visible else None, num_cores, host,
                   env.get(ENV_GROUP_SIZES, "").strip() or None)

    @property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """The NeuronCore groups (NEURONCORE_GROUP_SIZES): consecutive runs of visible_cores, in
        order; () when the variable is unset."""
        groups, at = [], 0
        for size in self._group_sizes:
            groups.append(self.visible_cores[at:at + size])
            at += size
        return tuple(groups)

    def take(self) -> tuple[int, ...]:
        """Own the cores on the host now, as the first load would, and return them (what a
        framework's relative core indices count)."""
        with self._locked():
            self._take_cores()
            return self.visible_cores

    def core_at(self, index: int, what: str = "NeuronCore index") -> int:
        """The NeuronCore a framework's index names: with NEURONCORE_GROUP_SIZES the first core of
        group `index`, else the index-th core visible to this process (indices are relative to
        NEURON_RT_VISIBLE_CORES, as the Neuron frameworks count them). Takes the cores on the
        host first, so the answer is the core a load will use.

        Example:
            >>> DeviceManager(visible_cores=[2, 3]).core_at(1)
            3
        """
        with self._locked():
            self._take_cores()
            pool = [g[0] for g in self.groups] if self.groups else list(self.visible_cores)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(pool):
                if self.groups:
                    names = f"NeuronCore group 0 to {len(pool) - 1} ({ENV_GROUP_SIZES}={self._group_text})"
                else:
                    names = f"0 to {len(pool) - 1}: the cores visible to this process, {_span(self.visible_cores)}"
                if not any(self._live.values()):
                    self._give_back_cores()
                raise ResourceError(f"{what} {index!r} is out of range: use {names}", status=NOT_ENOUGH_NC)
            return pool[index]

    @contextlib.contextmanager
    def _locked(self):
        """Hold the lock; what was said meanwhile is logged once it is released (logging never
        runs under it)."""
        if not self._lock._is_owned():
            run_deferred()
        try:
            with self._lock:
                yield
        finally:
            while self._said:
                try:
                    level, args = self._said.popleft()
                except IndexError:
                    break
                runtime_log.log(level, *args)

    def _say(self, level: int, *args) -> None:
        self._said.append((level, args))

    @property
    def owned_cores(self) -> tuple[int, ...]:
        """The cores this manager owns on its host now (none before its first allocation)."""
        return self.visible_cores if self._owns() else ()

    def _owns(self) -> bool:
        return self._owner_pid == os.getpid()

    def _take_cores(self) -> None:
        """Own the visible cores on the host (called with the lock held, before an allocation)."""
        if self.host is None or self._owns():
            return
        visible, num_cores, _ = self._asked
        try:
            if num_cores:
                got = tuple(hosts.claim_any(self.host, visible, num_cores))
            else:
                hosts.claim(self.host, visible)
                got = tuple(visible)
        except hosts.CoresTaken:
            error = ResourceError(self._taken_message(), status=NOT_ENOUGH_NC)
            self._say(logging.ERROR, "%s", error)
            raise error from None
        except OSError as exc:
            raise ResourceError(f"cannot take NeuronCores on the simulated host {self.host}: {exc}; "
                                f"make that directory writable, or point {hosts.ENV_HOST_DIR} at one "
                                f"that is") from None
        if got != self.visible_cores:
            self.visible_cores = got
            self._live = {c: {} for c in got}
        self._owner_pid = os.getpid()
        self._say(logging.INFO, "this process owns NeuronCore %s on %s", _span(got), self.host)

    def _give_back_cores(self) -> None:
        """Stop owning the cores (lock held); a forked child owns nothing to give back."""
        if self._owns():
            hosts.release(self.host, self.visible_cores)
            self._say(logging.INFO, "gave back NeuronCore %s on %s", _span(self.visible_cores), self.host)
        self._owner_pid = None

    def _taken_message(self) -> str:
        visible, num_cores, explicit = self._asked
        holders = hosts.owners(self.host)
        free = [c.index for c in self.cores if c.index not in holders]
        if num_cores:
            asked = (f"{num_cores} of NeuronCore {_span(visible)} ({ENV_NUM_CORES}={num_cores}"
                     + (f", {ENV_VISIBLE_CORES}" if explicit else "") + ")")
        elif explicit:
            asked = f"NeuronCore {_span(visible)} ({ENV_VISIBLE_CORES})"
        else:
            asked = (f"NeuronCore {_span(visible)} (every core: {ENV_VISIBLE_CORES} and "
                     f"{ENV_NUM_CORES} are unset)")
        by_pid: dict = {}
        for c in visible:
            if c in holders:
                by_pid.setdefault((holders[c]["pid"], holders[c]["command"]), []).append(c)
        held = "; ".join(f"NeuronCore {_span(cs)} {'is' if len(cs) == 1 else 'are'} owned by pid "
                         f"{pid} ({cmd})" for (pid, cmd), cs in by_pid.items())
        if free:
            fix = (f"use the free ones with {ENV_VISIBLE_CORES}={_span(free).replace(', ', ',')} or "
                   f"{ENV_NUM_CORES}={len(free)}, stop the owning process, or give this process a "
                   f"simulated host of its own with {hosts.ENV_HOST_DIR}")
        else:
            fix = (f"stop the owning process, or give this process a simulated host of its own "
                   f"with {hosts.ENV_HOST_DIR}")
        return (f"this process asks for {asked}, but {held or 'another process is taking them'}; "
                f"free on this host ({self.host}): {_span(free) if free else 'none'}. To run, {fix}")

    def close(self) -> None:
        """Stop owning the cores on the host (the books stay readable; the next allocation takes
        the cores again)."""
        with self._locked():
            self._give_back_cores()

    def _check_exists(self, core: int) -> None:
        if isinstance(core, bool) or not isinstance(core, int) or not 0 <= core < len(self.cores):
            raise ResourceError(
                f"NeuronCore {core!r} does not exist: this machine has {len(self.cores)} NeuronCores "
                f"({_span(range(len(self.cores)))}); set {ENV_NUM_CHIPS} for more chips", status=NOT_ENOUGH_NC)

    def check_core(self, core: int) -> None:
        """ResourceError (LOAD_NOT_ENOUGH_NC) unless NeuronCore `core` exists and is visible."""
        self._check_exists(core)
        if core not in self._live:
            raise ResourceError(
                f"NeuronCore {core} is not visible to this process (visible: {_span(self.visible_cores)}); "
                f"include it in {ENV_VISIBLE_CORES} (and {ENV_NUM_CORES})", status=NOT_ENOUGH_NC)

    def _used(self, core: int) -> int:
        return sum(a.nbytes for a in self._live[core].values())

    def _owners(self, core: int) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.owner for a in self._live[core].values()))

    def allocate(self, nbytes: int, *, owner: str, core: int | None = None) -> Allocation:
        """Reserve `nbytes` of device memory on `core`, or where placement puts it (see place).

        Raises ResourceError when they do not fit (the message gives total, occupied and needed bytes),
        and ResourceError with status LOAD_NOT_ENOUGH_NC for a core that is absent or not visible.

        Example:
            >>> manager = DeviceManager()
            >>> a = manager.allocate(2**30, owner="resnet50")
            >>> a.core, manager.usage()[0].used
            (0, 1073741824)
            >>> manager.free(a)
        """
        return self.allocate_span([nbytes], owner=owner, core=core)[0]

    def allocate_span(self, sizes: list[int], *, owner: str, core: int | None = None) -> list[Allocation]:
        """Reserve sizes[i] bytes on the i-th of len(sizes) consecutive visible cores (a pipeline's
        stages), the first being `core` or where placement puts the span: the next NeuronCore
        group in load order when NEURONCORE_GROUP_SIZES is set, else the least used cores (fewest
        allocations, then lowest index) where every stage fits. All or nothing."""
        for nbytes in sizes:
            if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
                raise NeuronError(f"allocate() needs a non-negative int number of bytes, got {nbytes!r}")
        if not sizes:
            raise NeuronError("allocate_span() needs at least one size")
        with self._locked():
            if core is not None:
                self._check_exists(core)
            self._take_cores()
            try:
                if core is not None:
                    self.check_core(core)
                starts = self._starts(len(sizes), core, owner)
                for start in starts:
                    span = self.visible_cores[start:start + len(sizes)]
                    if all(self._used(c) + n <= self.cores[c].memory_bytes for c, n in zip(span, sizes)):
                        if self.groups and core is None:
                            self._next_group = (self._group_of(span[0]) + 1) % len(self.groups)
                        out = [Allocation(next(self._ids), c, n, owner) for c, n in zip(span, sizes)]
                        for a in out:
                            self._live[a.core][a.id] = a
                        return out
                cores = tuple(dict.fromkeys(c for start in starts
                                            for c in self.visible_cores[start:start + len(sizes)]))
                error = ResourceError(self._out_of_memory(max(sizes), owner, cores, len(sizes)))
                self._say(logging.ERROR, "%s", error)
                raise error
            except ResourceError:
                if not any(self._live.values()):
                    self._give_back_cores()
                raise

    def _starts(self, n: int, core: int | None, owner: str) -> list[int]:
        """Positions in visible_cores where a span of `n` cores may start, in the order to try."""
        visible = self.visible_cores
        if n > len(visible):
            raise ResourceError(
                f"{owner!r} runs on {n} NeuronCores (compiled with --neuroncore-pipeline-cores {n}) but "
                f"this process has {len(visible)} ({_span(visible)}); widen {ENV_VISIBLE_CORES} / "
                f"{ENV_NUM_CORES}, or compile it for fewer pipeline cores", status=NOT_ENOUGH_NC)
        last = len(visible) - n
        if core is not None:
            at = visible.index(core)
            if at > last:
                raise ResourceError(
                    f"{owner!r} runs on {n} consecutive NeuronCores from NeuronCore {core}, but this "
                    f"process has only {_span(visible[at:])} from there (visible: {_span(visible)}); "
                    f"start it on NeuronCore {visible[last]} or earlier", status=NOT_ENOUGH_NC)
            return [at]
        if self.groups:
            order = [(self._next_group + k) % len(self.groups) for k in range(len(self.groups))]
            starts = [p for p in (visible.index(self.groups[g][0]) for g in order) if p <= last]
            if not starts:
                raise ResourceError(
                    f"{owner!r} runs on {n} NeuronCores but no NeuronCore group "
                    f"({ENV_GROUP_SIZES}={self._group_text}) starts early enough to hold them; "
                    f"make a group of {n}", status=NOT_ENOUGH_NC)
            return starts
        load = [len(self._live[c]) for c in visible]
        return sorted(range(last + 1), key=lambda p: (sum(load[p:p + n]), p))

    def _group_of(self, core: int) -> int:
        return next(g for g, cores in enumerate(self.groups) if core in cores)

    def _out_of_memory(self, nbytes: int, owner: str, candidates: tuple[int, ...], stages: int = 1) -> str:
        lines = []
        for c in candidates:
            used, total = self._used(c), self.cores[c].memory_bytes
            held = f" (by {', '.join(map(repr, self._owners(c)))})" if used else ""
            lines.append(f"NeuronCore {c}: {_mib(used)} of {_mib(total)} occupied{held}, "
                         f"{_mib(total - used)} free")
        where = (f"NeuronCore {candidates[0]}" if len(candidates) == 1
                 else f"any of the {len(candidates)} visible NeuronCores")
        fix = (f"Unload a model (or free its memory) on these cores, or place {owner!r} on another "
               f"NeuronCore via {ENV_VISIBLE_CORES}")
        if nbytes > max(self.cores[c].memory_bytes for c in candidates):
            fix = (f"{owner!r} is larger than one NeuronCore's memory; split it across cores with "
                   f"neuron-cc --neuroncore-pipeline-cores N")
        needs = _mib(nbytes)
        if stages > 1:
            needs += f" on one NeuronCore (its largest of {stages} pipeline stages)"
            if nbytes > max(self.cores[c].memory_bytes for c in candidates):
                fix = (f"the largest pipeline stage of {owner!r} is larger than one NeuronCore's "
                       f"memory; compile it with more --neuroncore-pipeline-cores")
        return f"not enough device memory on {where} for {owner!r}: needs {needs}\n  " + \
            "\n  ".join(lines) + f"\n{fix}"

    def free(self, allocation: Allocation) -> None:
        """Release an allocation; freeing it again (or after a reset) does nothing."""
        with self._locked():
            live = self._live.get(allocation.core, {})
            if live.get(allocation.id) is allocation:
                del live[allocation.id]
                if not any(self._live.values()):
                    self._give_back_cores()

    def usage(self) -> dict[int, CoreUsage]:
        """Per visible core: total and used device memory and its owners, in core order."""
        with self._locked():
            return {c: CoreUsage(c, self.cores[c].memory_bytes, self._used(c), self._owners(c))
                    for c in self.visible_cores}


#: releases queued by finalizers (run by the garbage collector in whatever thread and lock it
#: interrupts): carried out by the next device-manager call, outside every lock
_deferred: collections.deque = collections.deque()


def defer(fn, *args) -> None:
    """Queue `fn(*args)` for the next device-manager call (safe inside a finalizer)."""
    _deferred.append((fn, args))


def run_deferred() -> None:
    """Carry out the queued releases (called with no lock held)."""
    while _deferred:
        try:
            fn, args = _deferred.popleft()
        except IndexError:
            return
        fn(*args)


def get_device_manager() -> DeviceManager:
    """The DeviceManager of the default runtime, configured from the environment on first use
    (see `context.Runtime.devices`).

    Example:
        >>> get_device_manager().visible_cores  # with no NEURON_RT_* variables set
        (0, 1, 2, 3)
    """
    from .context import default
    return default().devices


def reset_device_manager() -> None:
    """Forget the default runtime's manager (and its allocations); the next use reads the
    environment again."""
    from .context import default
    default().reset_devices()
