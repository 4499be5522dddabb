"""The user cache of built programs: what a NEFF's load derives (its onnxruntime graphs, their
rounded and reordered weights), kept so that the next process on this machine loads it as it is.

Location: $NEURON_SIM_CACHE_DIR, else $XDG_CACHE_HOME/neuron-sim, else ~/.cache/neuron-sim
(`NEURON_SIM_CACHE_DIR=off` turns the cache off). An entry is a directory named by its key: the
sha256 of the NEFF's section hashes, the precision, the package's and onnxruntime's versions and
the CPU's feature flags, so that nothing built for one machine or release is read by another. An
entry is written to a temporary directory and renamed into place, so a reader never sees half of
one; the least recently used entries are removed once the cache holds more than
$NEURON_SIM_CACHE_MAX_MB megabytes (default 4096). A cache that cannot be written is not an error:
the program is then built at every load.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import mmap
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import __version__, dtypes
from .._cpu import cpu_flags
from .context import default

log = logging.getLogger("Neuron")

FORMAT = 1
_OFF = ("off", "0", "none", "")


def cache_dir() -> Path | None:
    """The cache's directory, or None when $NEURON_SIM_CACHE_DIR turns it off."""
    chosen = os.environ.get("NEURON_SIM_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in _OFF else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "neuron-sim"


def _builder_digest() -> bytes:
    """A digest of the code that builds the graphs (the ops and the runtime's lowering), so that
    a changed builder never reads what an earlier one stored."""
    memo = default().memo("cache.builder_digest")
    if not memo:
        digest = hashlib.sha256()
        package = Path(__file__).resolve().parent.parent
        for path in sorted([*package.rglob("ops/**/*.py"), *package.rglob("runtime/**/*.py")]):
            digest.update(path.relative_to(package).as_posix().encode() + path.read_bytes())
        memo["digest"] = digest.digest()
    return memo["digest"]


def entry_key(neff, precision: str) -> str:
    import onnxruntime
    digest = hashlib.sha256(_builder_digest())
    for part in (f"format {FORMAT}", __version__, onnxruntime.__version__, precision, cpu_flags()):
        digest.update(part.encode() + b"\0")
    for section in neff.sections:
        digest.update(section.name.encode() + section.sha256)
    return digest.hexdigest()[:32]


def discard(key: str) -> None:
    """Remove the entry `key` (one onnxruntime refused)."""
    root = cache_dir()
    if root is not None:
        shutil.rmtree(root / key, ignore_errors=True)


def load(key: str) -> list | None:
    """The segments stored under `key`, or None (absent, or unreadable: then rebuilt)."""
    root = cache_dir()
    if root is None:
        return None
    entry = root / key
    try:
        index = json.loads((entry / "segments.json").read_text())
        segments = [_read_segment(entry, s) for s in index["segments"]]
        os.utime(entry)  # recently used
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("cache entry %s is unreadable (%s); rebuilding it", entry, exc)
        return None
    log.debug("program graphs from the cache: %s", entry)
    return segments


def _read_segment(entry: Path, s: dict):
    from .graph import Segment
    segment = Segment(s["instrs"], None, {}, s["inputs"], s["outputs"], s["guards"])
    segment.output_names = s["output_names"]
    if s["model"] is None:
        return segment
    segment.model = (entry / s["model"]).read_bytes()
    # mapped, not read: onnxruntime reads the pages it needs, from the page cache when warm
    # (entries are never rewritten in place, so a mapping stays valid while it is used)
    blob = np.zeros(0, np.uint8)
    if s["weights_bytes"]:
        with open(entry / s["weights_file"], "rb") as f:
            mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        blob = np.frombuffer(mapping, np.uint8)
        if hasattr(mmap, "MADV_DONTNEED"):
            segment.release = functools.partial(mapping.madvise, mmap.MADV_DONTNEED)
    if blob.size != s["weights_bytes"]:
        raise ValueError(f"{s['weights_file']} holds {blob.size} bytes, not {s['weights_bytes']}")
    for name, dtype, shape, offset in s["weights"]:
        count = int(np.prod(shape, dtype=np.int64))
        segment.weights[name] = np.frombuffer(blob, dtypes.to_numpy(dtype), count,
                                              offset).reshape(shape)
    return segment


def store(key: str, segments: list) -> None:
    """Store `segments` under `key` (best effort: a failure is logged at debug level)."""
    root = cache_dir()
    if root is None:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            index = [_write_segment(tmp, k, s) for k, s in enumerate(segments)]
            (tmp / "segments.json").write_text(json.dumps({"segments": index}))
            os.rename(tmp, root / key)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (root / key).is_dir():  # (another process may have stored it first)
                raise
        _evict(root)
    except OSError as exc:
        log.debug("cannot store built program in the cache %s: %s", root, exc)


def _write_segment(entry: Path, k: int, segment) -> dict:
    out = {"instrs": segment.instrs, "inputs": segment.inputs, "outputs": segment.outputs,
           "guards": segment.guards, "output_names": getattr(segment, "output_names", []),
           "model": None}
    if segment.model is None:
        return out
    (entry / f"seg{k}.onnx").write_bytes(segment.model)
    index, offset = [], 0
    with open(entry / f"seg{k}.bin", "wb") as f:
        for name, array in segment.weights.items():
            pad = -offset % 64
            f.write(b"\0" * pad)
            offset += pad
            data = np.require(array, requirements="C")
            f.write(data.tobytes())
            index.append([name, dtypes.canonical(data.dtype), list(data.shape), offset])
            offset += data.nbytes
    out.update(model=f"seg{k}.onnx", weights_file=f"seg{k}.bin", weights_bytes=offset,
               weights=index)
    return out


def _evict(root: Path) -> None:
    limit = float(os.environ.get("NEURON_SIM_CACHE_MAX_MB", "4096")) * 2 ** 20
    entries = []
    for entry in root.iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            if entry.name.startswith(".") and time.time() - entry.stat().st_mtime > 3600:
                shutil.rmtree(entry, ignore_errors=True)  # left by a process that died
            continue
        size = sum(f.stat().st_size for f in entry.iterdir())
        entries.append((entry.stat().st_mtime, size, entry))
    total = sum(size for _, size, _ in entries)
    for _, size, entry in sorted(entries):
        if total <= limit:
            break
        shutil.rmtree(entry, ignore_errors=True)
        total -= size
