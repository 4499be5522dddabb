"""The NEFF container: a versioned, hashed header and four sections. JSON and raw arrays only, no code.

Layout (integers little-endian)::

    header    magic[8] major:u16 minor:u16 header_len:u32 version_len:u16 compiler_version[utf-8]
              n_sections:u16, then per section: name_len:u8 name[utf-8] offset:u64 size:u64 sha256[32]
              zero padding, then sha256[32] of every header byte before it (header_len % 64 == 0)
    sections  "metadata" (UTF-8 JSON), "program" (UTF-8 JSON), "weights.index" (JSON: name ->
              {dtype, shape, offset, nbytes}), "weights" (raw little-endian arrays, 64-byte aligned)

Each section is padded to a multiple of 64 bytes (JSON with spaces, weights with zeros) and the
sections tile the file from the end of the header to its last byte, so every byte is under a hash.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import mmap
import os
import struct
from dataclasses import dataclass, field

import numpy as np

from .. import dtypes
from ..errors import NeffFormatError, NeffSourceError, NeffVersionError, NeuronError

FORMAT_VERSION: tuple[int, int] = (1, 2)  # 1.2: engines by their full names
MAGIC: bytes = b"NEFFSIM\x00"
ALIGN = 64
SECTIONS = ("metadata", "program", "weights.index", "weights")

_PREFIX = struct.Struct("<8sHHI")  # magic, major, minor, header_len
_ENTRY = struct.Struct("<QQ32s")  # offset, size, sha256
_HASH = 32
_MIN_HEADER = _PREFIX.size + 2 + 2 + _HASH


@dataclass(frozen=True)
class Section:
    """One entry of the section table: where a section lies and the sha256 of its bytes."""

    name: str
    offset: int
    size: int
    sha256: bytes


@dataclass(eq=False)
class Neff:
    """A compiled model read from a NEFF: header fields, metadata, program and weights."""

    version: tuple[int, int]
    compiler_version: str
    metadata: dict = field(repr=False)
    program: dict = field(repr=False)
    _weights: dict[str, np.ndarray] = field(repr=False)
    path: str | None = None
    nbytes: int = 0
    sections: list[Section] = field(default_factory=list, repr=False)
    #: checks the weights section's sha256 on the first read of `weights` (read_neff(defer=...))
    _deferred_check: object = field(default=None, repr=False)
    #: the file's mmap (None for bytes) and each weight's byte span in it
    _map: object = field(default=None, repr=False)
    _spans: dict = field(default_factory=dict, repr=False)

    def drop_pages(self, name: str | None = None) -> None:
        """Tell the kernel that weight `name`'s pages of the mapped file (all weights' with None)
        are not needed now (a reader that made its own copy of the array, or only checked the
        hash, calls it): they leave the process's resident memory and are read again from the
        file if the array is read again."""
        spans = list(self._spans.values())
        span = self._spans.get(name) if name is not None else \
            (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else None
        if self._map is None or span is None or not hasattr(mmap, "MADV_DONTNEED"):
            return
        start, stop = span
        start -= start % mmap.PAGESIZE
        stop -= stop % mmap.PAGESIZE         # a page shared with a neighbour stays
        if stop > start:
            with contextlib.suppress(OSError, ValueError):
                self._map.madvise(mmap.MADV_DONTNEED, start, stop - start)

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """name -> read-only array. Its section's hash is checked before it is first handed out."""
        if self._deferred_check is not None:
            self._deferred_check()
            self._deferred_check = None
        return self._weights


def _pad(n: int) -> int:
    return -n % ALIGN


# ----------------------------------------------------------------------------------------- writing

def _json_section(name: str, obj) -> bytes:
    if not isinstance(obj, dict):
        raise NeffFormatError(f"NEFF {name} must be a dict, got {type(obj).__name__}")
    try:
        text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        return text.encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise NeffFormatError(f"NEFF {name} is not JSON-serializable: {exc}; use dict, list, str, "
                              f"int, finite float, bool and None only") from exc


def _weight_chunks(weights: dict) -> tuple[dict, list]:
    """The weights index and the raw chunks (arrays and zero padding) of the weights section."""
    if not isinstance(weights, dict):
        raise NeffFormatError(f"NEFF weights must be a dict of name -> array, got {type(weights).__name__}")
    index, chunks, offset = {}, [], 0
    for name, value in weights.items():
        if not isinstance(name, str):
            raise NeffFormatError(f"weight names must be str, got {name!r}")
        arr = np.asarray(value)
        try:
            dtype = dtypes.canonical(arr.dtype)
        except NeuronError:
            raise NeffFormatError(f"weight {name!r} has unsupported dtype {str(arr.dtype)!r}; supported: "
                                  f"{', '.join(sorted(dtypes.SHORT))}") from None
        arr = arr.astype(dtypes.to_numpy(dtype).newbyteorder("<"), order="C", copy=False)
        raw = arr.reshape(-1).view(np.uint8)
        index[name] = {"dtype": dtype, "shape": list(arr.shape), "offset": offset, "nbytes": raw.nbytes}
        chunks += [raw, bytes(_pad(raw.nbytes))]
        offset += raw.nbytes + _pad(raw.nbytes)
    return index, chunks


def _assemble(sections: dict[str, list], compiler_version: str,
              version: tuple[int, int] = FORMAT_VERSION) -> tuple[bytes, list]:
    """Header bytes and the chunks that follow it, for sections given as lists of raw chunks.

    Pads each section to 64 bytes (spaces, zeros for "weights"). Tests use it to build files by hand.
    """
    cv = compiler_version.encode("utf-8")
    names = [name.encode("utf-8") for name in sections]
    if len(cv) > 0xFFFF or any(len(n) > 0xFF for n in names):
        raise NeffFormatError(f"compiler version or a section name is too long: {compiler_version!r}, "
                              f"{list(sections)!r}")
    body_len = _PREFIX.size + 2 + len(cv) + 2 + sum(1 + len(n) + _ENTRY.size for n in names)
    header_len = body_len + _HASH + _pad(body_len + _HASH)
    table, out, offset = b"", [], header_len
    for name, encoded in zip(sections, names):
        chunks = list(sections[name])
        size = sum(memoryview(c).nbytes for c in chunks)
        chunks.append((b"\0" if name == "weights" else b" ") * _pad(size))
        digest = hashlib.sha256()
        for chunk in chunks:
            digest.update(chunk)
        size += _pad(size)
        table += struct.pack("<B", len(encoded)) + encoded + _ENTRY.pack(offset, size, digest.digest())
        out += chunks
        offset += size
    body = (_PREFIX.pack(MAGIC, version[0], version[1], header_len) + struct.pack("<H", len(cv)) + cv
            + struct.pack("<H", len(names)) + table)
    body += bytes(header_len - _HASH - len(body))
    return body + hashlib.sha256(body).digest(), out


def _encode(metadata: dict, program: dict, weights: dict, compiler_version: str) -> tuple[bytes, list]:
    index, chunks = _weight_chunks(weights)
    sections = {"metadata": [_json_section("metadata", metadata)],
                "program": [_json_section("program", program)],
                "weights.index": [_json_section("weights.index", index)], "weights": chunks}
    return _assemble(sections, compiler_version)


def to_bytes(metadata: dict, program: dict, weights: dict[str, np.ndarray], *, compiler_version: str) -> bytes:
    """Serialize a compiled model to NEFF bytes (what `write_neff` puts in a file).

    Example:
        >>> data = to_bytes({"name": "m"}, {"ops": []}, {"w": np.ones(3, np.float32)}, compiler_version="0.1")
        >>> read_neff(data).weights["w"].tolist()
        [1.0, 1.0, 1.0]
    """
    header, chunks = _encode(metadata, program, weights, compiler_version)
    return header + b"".join(chunks)


def write_neff(path, metadata: dict, program: dict, weights: dict[str, np.ndarray], *,
               compiler_version: str) -> int:
    """Write a NEFF file atomically and return the number of bytes written.

    Everything is validated before the disk is touched; the bytes go to a temporary file in the same
    folder, which replaces `path` only once complete, so readers (and mmaps of the old file) never see
    a half-written file. JSON turns tuples into lists.

    Example:
        >>> n = write_neff("/tmp/m.neff", {"name": "m"}, {"ops": []}, {"w": np.zeros((2, 2), np.int8)},
        ...                compiler_version="0.1")
        >>> read_neff("/tmp/m.neff").nbytes == n
        True
    """
    header, chunks = _encode(metadata, program, weights, compiler_version)
    from ..fileio import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(header)
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    return atomic_write(path, write)


# ----------------------------------------------------------------------------------------- reading

def _open(path: str):
    """A read-only mmap of the file (b"" when it is empty)."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return b""
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as exc:
        raise NeffFormatError(f"cannot read NEFF file {path!r}: {exc.strerror or exc}") from exc


#: bytes hashed at a time; of a mapped file, the pages of each chunk leave the resident set once
#: hashed (a reader that needs them faults them in again), so checking a large NEFF does not hold
#: all of it in memory at once
HASH_CHUNK = 16 << 20


def _sha256(buf, start: int, size: int) -> bytes:
    digest = hashlib.sha256()
    drop = isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED")
    with memoryview(buf) as view:
        for at in range(start, start + size, HASH_CHUNK):
            stop = min(at + HASH_CHUNK, start + size)
            with view[at:stop] as part:
                digest.update(part)
            low, high = at - at % mmap.PAGESIZE, stop - stop % mmap.PAGESIZE
            if drop and high > low:
                with contextlib.suppress(OSError, ValueError):
                    buf.madvise(mmap.MADV_DONTNEED, low, high - low)
    return digest.digest()


def _read_header(buf, where: str) -> tuple[tuple[int, int], str, list[Section], int]:
    n = len(buf)
    head = bytes(buf[:_PREFIX.size])
    if n < _PREFIX.size and MAGIC.startswith(head[:len(MAGIC)]):
        raise NeffFormatError(f"truncated: {where} has {n} bytes, a NEFF header needs at least {_MIN_HEADER}")
    if head[:len(MAGIC)] != MAGIC:
        raise NeffFormatError(f"not a NEFF file: {where} starts with {head[:len(MAGIC)]!r}, expected {MAGIC!r}")
    _, major, minor, header_len = _PREFIX.unpack(head)
    if major != FORMAT_VERSION[0]:
        ours = f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"
        raise NeffVersionError(f"NEFF version mismatch supported: {ours} received: {major}.{minor} "
                               f"({where}); recompile the model with this neuron-cc, or load it with a "
                               f"runtime that reads NEFF {major}.x")
    if header_len < _MIN_HEADER or header_len % ALIGN:
        raise NeffFormatError(f"corrupted header in {where}: header length {header_len} is invalid "
                              f"(a multiple of {ALIGN}, at least {_MIN_HEADER})")
    if header_len > n:
        raise NeffFormatError(f"truncated: the header ends at byte {header_len} but the file has {n} bytes "
                              f"({where})")
    body = bytes(buf[:header_len - _HASH])
    recorded, actual = bytes(buf[header_len - _HASH:header_len]), hashlib.sha256(body).digest()
    if recorded != actual:
        raise NeffFormatError(f"corrupted header in {where}: sha256 of bytes 0..{header_len - _HASH} is "
                              f"{actual.hex()[:16]}..., the header records {recorded.hex()[:16]}...")
    try:  # the hash matched, so only a hand-made header can fail here
        (size,) = struct.unpack_from("<H", body, _PREFIX.size)
        pos = _PREFIX.size + 2 + size
        compiler_version = body[pos - size:pos].decode("utf-8")
        (count,) = struct.unpack_from("<H", body, pos)
        pos, table = pos + 2, []
        for _ in range(count):
            size = body[pos]
            pos += 1 + size
            table.append(Section(body[pos - size:pos].decode("utf-8"), *_ENTRY.unpack_from(body, pos)))
            pos += _ENTRY.size
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise NeffFormatError(f"corrupted header in {where}: unreadable section table ({exc})") from None
    return (major, minor), compiler_version, table, header_len


def _check_layout(table: list[Section], header_len: int, n: int, where: str) -> None:
    names = [s.name for s in table]
    for name in SECTIONS:
        if names.count(name) != 1:
            raise NeffFormatError(f"corrupted section table in {where}: section {name!r} appears "
                                  f"{names.count(name)} times (sections: {names})")
    expected = header_len
    for s in sorted(table, key=lambda s: s.offset):
        if s.offset + s.size > n:
            raise NeffFormatError(f"truncated: section {s.name!r} ends at byte {s.offset + s.size} but the "
                                  f"file has {n} bytes ({where})")
        if s.offset != expected or s.offset % ALIGN:
            raise NeffFormatError(f"corrupted section table in {where}: section {s.name!r} starts at byte "
                                  f"{s.offset}, expected {expected} (64-byte aligned, no gaps)")
        expected += s.size
    if expected != n:
        raise NeffFormatError(f"corrupted: {n - expected} unexpected bytes after the last section, from byte "
                              f"{expected} to {n} ({where})")


def _load_json(buf, s: Section, where: str) -> dict:
    raw = bytes(buf[s.offset:s.offset + s.size])
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:   # nesting too deep too
        raise NeffFormatError(f"section {s.name!r} (bytes {s.offset}..{s.offset + s.size}) of {where} is "
                              f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise NeffFormatError(f"section {s.name!r} of {where} must hold a JSON object, got "
                              f"{type(obj).__name__}")
    return obj


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _check_index(index: dict, size: int, where: str) -> list[tuple[str, str, tuple, int]]:
    """(name, dtype, shape, offset) of every weight, after checking the index against the section."""
    entries, spans = [], []
    for name, e in index.items():
        what = f"weights.index entry {name!r} of {where}"
        if not isinstance(e, dict) or not {"dtype", "shape", "offset", "nbytes"} <= set(e):
            raise NeffFormatError(f"{what}: expected {{dtype, shape, offset, nbytes}}, got {e!r}")
        dtype, shape, offset, nbytes = e["dtype"], e["shape"], e["offset"], e["nbytes"]
        if not isinstance(dtype, str) or dtype not in dtypes.SHORT:
            raise NeffFormatError(f"{what}: unsupported dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
            raise NeffFormatError(f"{what}: shape {shape!r} is not a list of non-negative ints")
        if not (_is_count(offset) and _is_count(nbytes)) or offset % ALIGN:
            raise NeffFormatError(f"{what}: offset {offset!r} / nbytes {nbytes!r} must be non-negative "
                                  f"ints, the offset a multiple of {ALIGN}")
        expected = math.prod(shape) * dtypes.itemsize(dtype)
        if nbytes != expected:
            raise NeffFormatError(f"{what}: nbytes {nbytes} does not match shape {shape} of {dtype} "
                                  f"({expected} bytes)")
        if offset + nbytes > size:
            raise NeffFormatError(f"{what}: bytes {offset}..{offset + nbytes} lie outside the weights "
                                  f"section ({size} bytes)")
        entries.append((name, dtype, tuple(shape), offset))
        spans.append((offset, offset + nbytes, name))
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:]):
        if start < end:
            raise NeffFormatError(f"weights.index of {where}: weights {a!r} and {b!r} overlap")
    return entries


def read_neff(path_or_bytes, *, verify: bool = True, defer_weights: bool = False) -> Neff:
    """Read and check a NEFF file (memory-mapped) or NEFF bytes.

    Checks magic, format major version, the header hash, section bounds and (with `verify`) the
    sha256 of every section, then the JSON and the weights index. Weights are read-only zero-copy
    views of the mapped file. Any defect raises NeffFormatError (NeffVersionError for another major).
    With `defer_weights` the weights section is hashed when `Neff.weights` is first read, not here
    (hashing runs at about 1.5 GB/s: a reader that may never need the arrays, such as a load whose
    built program comes from the runtime's cache, skips it).

    Example:
        >>> neff = read_neff(to_bytes({}, {}, {"b": np.arange(4)}, compiler_version="0.1"))
        >>> neff.version, neff.weights["b"].flags.writeable
        ((1, 2), False)
    """
    if isinstance(path_or_bytes, np.ndarray):   # e.g. a framework variable's .numpy()
        path_or_bytes = _array_bytes(path_or_bytes)
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        path, where = None, "<bytes>"
        buf = memoryview(path_or_bytes).cast("B").toreadonly()
    elif isinstance(path_or_bytes, (str, os.PathLike)):
        path = os.fspath(path_or_bytes)
        if not isinstance(path, str):
            path = os.fsdecode(path)
        where, buf = repr(path), _open(path)
    else:
        raise NeffSourceError(f"a NEFF is a path (str or os.PathLike), bytes-like or a uint8 "
                              f"array of its bytes, got {type(path_or_bytes).__name__}")
    try:
        return _parse(buf, where, path, verify, defer_weights)
    except BaseException:
        if isinstance(buf, mmap.mmap):
            with contextlib.suppress(BufferError):
                buf.close()
        raise


def _array_bytes(arr: np.ndarray):
    """The bytes a numpy array of a NEFF holds: a contiguous array of uint8 (any shape), or a
    0-d bytes object array (what tf.Variable(neff_bytes).numpy() gives)."""
    if arr.dtype == np.uint8 and arr.flags.c_contiguous:
        return memoryview(arr).cast("B")
    if arr.ndim == 0 and isinstance(arr.item(), bytes):
        return arr.item()
    raise NeffSourceError(f"an array holding a NEFF must be contiguous uint8 bytes (or a 0-d "
                          f"bytes object), got a {'non-contiguous ' if arr.dtype == np.uint8 else ''}"
                          f"{arr.dtype} array of shape {arr.shape}; pass arr.tobytes() instead")


def _check_hash(buf, s: Section, where: str) -> None:
    actual = _sha256(buf, s.offset, s.size)
    if actual != s.sha256:
        raise NeffFormatError(f"corrupted: section {s.name!r} (bytes {s.offset}..{s.offset + s.size})"
                              f" of {where} has sha256 {actual.hex()[:16]}..., the header records "
                              f"{s.sha256.hex()[:16]}...")


def _parse(buf, where: str, path: str | None, verify: bool, defer_weights: bool = False) -> Neff:
    version, compiler_version, table, header_len = _read_header(buf, where)
    _check_layout(table, header_len, len(buf), where)
    by_name = {s.name: s for s in table}
    deferred = None
    if verify:
        for s in table:
            if defer_weights and s.name == "weights":
                deferred = functools.partial(_check_hash, buf, s, where)
            else:
                _check_hash(buf, s, where)
    metadata, program, index = (_load_json(buf, by_name[n], where) for n in SECTIONS[:3])
    ws = by_name["weights"]
    weights, spans = {}, {}
    for name, dtype, shape, offset in _check_index(index, ws.size, where):
        arr = np.frombuffer(buf, dtype=dtypes.to_numpy(dtype), count=math.prod(shape),
                            offset=ws.offset + offset).reshape(shape)
        arr.flags.writeable = False
        weights[name] = arr
        spans[name] = (ws.offset + offset, ws.offset + offset + arr.nbytes)
    return Neff(version, compiler_version, metadata, program, weights, path, len(buf), table,
                deferred, buf if isinstance(buf, mmap.mmap) else None, spans)
