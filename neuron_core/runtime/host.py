"""A simulated Inf1 host: the directory its processes share, and which process owns each NeuronCore.

One machine can be several simulated hosts (each pytest worker, each node of a local Ray cluster):
a host is the directory $NEURON_SIM_HOST_DIR (the older $NEURON_SIM_STATE_DIR is read too), by
default `<tmp>/neuron-sim-<uid>/`. It holds what the processes publish for neuron-ls / neuron-top
(`<pid>.json`, see `runtime.state`) and one lock file per NeuronCore, `cores/nc<N>.lock`.

As with the Neuron runtime, a process owns the NeuronCores it uses exclusively: the first model it
loads takes them, and a second process asking for a taken core fails to load. A core is owned by
holding an exclusive `flock` on its lock file, so the kernel frees it when the owner exits however
it exits (SIGKILL included); the file names the owner (pid, start time, command) for the error
messages and neuron-ls. Inside one process the claims are counted, so several device managers
(runtimes) of one process share its cores; a forked child inherits none of them.

Example:
    >>> import tempfile
    >>> host = Path(tempfile.mkdtemp())
    >>> claim(host, [0, 1])
    >>> owners(host)[0]["pid"] == os.getpid()
    True
    >>> release(host, [0, 1])
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Iterable

ENV_HOST_DIR = "NEURON_SIM_HOST_DIR"
LEGACY_ENV_HOST_DIR = "NEURON_SIM_STATE_DIR"

_lock = threading.Lock()
#: (host directory, core) -> [open lock file descriptor, number of claims in this process]
_held: dict[tuple[str, int], list] = {}


def start_time(pid: int) -> str | None:
    """The process start time (clock ticks since boot, /proc/<pid>/stat field 22), if known."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process `pid` runs, and is the same process that started at `started`."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return False
    return started is None or start_time(pid) in (None, started)


def command_line() -> str:
    """This process's command, as neuron-ls shows it."""
    return " ".join([os.path.basename(sys.argv[0] or "python")] + sys.argv[1:])[:200]


def host_dir(environ=None) -> Path:
    """$NEURON_SIM_HOST_DIR (or $NEURON_SIM_STATE_DIR), else a per-user directory in the temp dir."""
    env = os.environ if environ is None else environ
    text = env.get(ENV_HOST_DIR) or env.get(LEGACY_ENV_HOST_DIR)
    return Path(text) if text else Path(tempfile.gettempdir()) / f"neuron-sim-{os.getuid()}"


def lock_path(host: Path, core: int) -> Path:
    return Path(host) / "cores" / f"nc{core}.lock"


def _take(host: Path, core: int) -> int | None:
    """An fd holding core's lock exclusively, or None when another process holds it."""
    path = lock_path(host, core)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    pid = os.getpid()
    record = json.dumps({"pid": pid, "start_time": start_time(pid), "command": command_line()})
    os.ftruncate(fd, 0)
    os.pwrite(fd, record.encode(), 0)
    return fd


def claim(host: Path, cores: Iterable[int]) -> None:
    """Own all of `cores` on `host`, or none: raises CoresTaken naming those another process holds."""
    host, cores = str(host), list(cores)
    with _lock:
        taken, new = [], []
        for core in cores:
            if (host, core) in _held:
                continue
            fd = _take(Path(host), core)
            if fd is None:
                taken.append(core)
            else:
                new.append(core)
                _held[(host, core)] = [fd, 0]
        if taken:
            for core in new:
                os.close(_held.pop((host, core))[0])
            raise CoresTaken(taken)
        for core in cores:
            _held[(host, core)][1] += 1


def claim_any(host: Path, candidates: Iterable[int], count: int) -> list[int]:
    """Own the first `count` of `candidates` that are free (cores this process owns count as
    free); raises CoresTaken when fewer are."""
    host, got, taken = str(host), [], []
    with _lock:
        for core in candidates:
            if len(got) == count:
                break
            if (host, core) in _held:
                got.append(core)
                continue
            fd = _take(Path(host), core)
            if fd is None:
                taken.append(core)
            else:
                _held[(host, core)] = [fd, 0]
                got.append(core)
        if len(got) < count:
            for core in got:
                if _held[(host, core)][1] == 0:
                    os.close(_held.pop((host, core))[0])
            raise CoresTaken(taken)
        for core in got:
            _held[(host, core)][1] += 1
    return got


def release(host: Path, cores: Iterable[int]) -> None:
    """Give back one claim on each of `cores`; a core's lock is dropped with its last claim."""
    host = str(host)
    with _lock:
        for core in cores:
            entry = _held.get((host, core))
            if entry is None:
                continue
            entry[1] -= 1
            if entry[1] <= 0:
                del _held[(host, core)]
                os.close(entry[0])


def owned(host: Path) -> list[int]:
    """The cores of `host` this process owns."""
    with _lock:
        return sorted(core for h, core in _held if h == str(host))


def owners(host: Path) -> dict[int, dict]:
    """core -> {"pid", "start_time", "command"} of the process owning it, for each owned core of
    `host` (this process's own included)."""
    found: dict[int, dict] = {}
    try:
        paths = sorted((Path(host) / "cores").glob("nc*.lock"))
    except OSError:
        return found
    mine = set(owned(host))
    for path in paths:
        try:
            core = int(path.stem[2:])
        except ValueError:
            continue
        if core in mine:
            pid = os.getpid()
            found[core] = {"pid": pid, "start_time": start_time(pid), "command": command_line()}
            continue
        holder = _probe(path)
        if holder is not None:
            found[core] = holder
    return found


def _probe(path: Path) -> dict | None:
    """The owner recorded in a lock file another process holds, or None when it is free."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            pass
        else:
            return None
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(os.pread(fd, 4096, 0) or b"{}")
            if isinstance(record, dict) and pid_alive(int(record["pid"]), record.get("start_time")):
                return {"pid": int(record["pid"]), "start_time": record.get("start_time"),
                        "command": str(record.get("command", ""))}
        return {"pid": None, "start_time": None, "command": "(starting)"}
    finally:
        os.close(fd)


def _forget_after_fork() -> None:
    """A forked child owns nothing: close its copies of the lock fds (the parent keeps its own)."""
    global _lock
    _lock = threading.Lock()
    for fd, _ in _held.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


class CoresTaken(Exception):
    """Some requested cores are owned by other processes (`cores`)."""

    def __init__(self, cores: list[int]):
        super().__init__(f"NeuronCores {cores} are owned by other processes")
        self.cores = cores
