"""Safe destinations: every file or directory neuron-sim writes for a user goes through here.

Three rules, one place:
- an existing destination is replaced only when it is an artifact of ours (it parses fully as
  that artifact), or the caller passed overwrite=True (`check_destination`);
- bytes go to a unique temporary name in the destination's own directory and are renamed into
  place only once complete, so a failure leaves the old destination as it was (`atomic_write`,
  `atomic_dir`);
- a compiler work directory is written without following a symlink and without replacing a file
  it did not write itself (`WorkDir`).

Example:
    >>> from neuron_core.fileio import atomic_write, check_destination
    >>> check_destination("/tmp/m.bin", lambda p: True, overwrite=False, what="a test file")
    >>> atomic_write("/tmp/m.bin", b"data")
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable

from .errors import NeuronError


class DestinationError(NeuronError):
    """A save or compile would replace or write through something that is not its own."""


def check_destination(path, is_ours: Callable[[Path], bool], *, overwrite: bool, what: str,
                      advice: str = "choose another path or pass overwrite=True") -> None:
    """Refuse an existing `path` that `is_ours` rejects, unless `overwrite`. `what` names the
    artifact ("a NEFF written by neuron-sim"); `advice` ends the error: what to do."""
    path = Path(path)
    if not os.path.lexists(path) or overwrite:
        return
    try:
        ours = not path.is_symlink() and is_ours(path)
    except Exception:   # anything that does not parse is not ours
        ours = False
    if not ours:
        raise DestinationError(f"refusing to replace {str(path)!r}: it is not {what}; {advice}")


def atomic_write(path, data: bytes | Callable[[str], None]) -> int:
    """Write `data` (bytes, or a function writing a file at the path it is given) to a unique
    temporary file beside `path`, then rename it onto `path`; returns the size written. On any
    failure `path` is untouched and the temporary file removed. Keeps an existing file's mode."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mode = stat.S_IMODE(os.lstat(path).st_mode)
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        size = os.path.getsize(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return size


def _contains(outer: Path, inner: Path) -> bool:
    outer, inner = outer.resolve(), inner.resolve()
    return inner == outer or outer in inner.parents


def check_apart(path, keep=()) -> None:
    """Refuse `path` if it is, contains or lies inside one of `keep` (paths that must survive
    replacing `path`)."""
    for other in keep:
        if Path(path).resolve() == Path(other).resolve():
            raise DestinationError(f"refusing to write {str(path)!r}: it is {str(other)!r} itself, "
                                   "which would be destroyed; choose a directory outside it")
        if _contains(Path(path), Path(other)) or _contains(Path(other), Path(path)):
            raise DestinationError(f"refusing to write {str(path)!r}: it contains or lies inside "
                                   f"{str(other)!r}, which would be destroyed; choose a directory "
                                   "outside it")


@contextlib.contextmanager
def atomic_dir(path, *, keep=()):
    """Yield a fresh temporary directory beside `path`; when the block succeeds it replaces
    `path` (an existing one is removed only then). `keep`: see `check_apart`."""
    path = Path(path)
    check_apart(path, keep)
    parent = path.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    os.chmod(tmp, 0o755)   # mkdtemp makes it private; the result is an ordinary directory
    try:
        yield tmp
        old = None
        if os.path.lexists(path):
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class WorkDir:
    """A compiler work directory (`compiler_workdir`, NEURON_CC_FLAGS --workdir). Each file is
    written atomically; a path under it that is a symlink, or an existing file this work directory
    did not write (it is listed in MANIFEST), is refused with an error naming it."""

    MANIFEST = ".neuron-sim-workdir"

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        listing = self.root / self.MANIFEST
        self._ours = set(listing.read_text().split("\n")) - {""} if listing.is_file() else set()

    def write(self, relative: str, data: bytes | str) -> Path:
        target = self.root / relative
        here = self.root
        for part in Path(relative).parts:
            here = here / part
            if here.is_symlink():
                raise DestinationError(f"refusing to write {str(target)!r}: {str(here)!r} is a "
                                       "symlink and the work directory is never written through "
                                       "one; remove it or choose another compiler workdir")
        if os.path.lexists(target) and relative not in self._ours:
            raise DestinationError(f"refusing to replace {str(target)!r}: it was not written by "
                                   "a neuron-sim compile into this work directory; move it or "
                                   "choose another compiler workdir")
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data.encode() if isinstance(data, str) else data)
        if relative not in self._ours:
            self._ours.add(relative)
            atomic_write(self.root / self.MANIFEST, "\n".join(sorted(self._ours)).encode() + b"\n")
        return target
