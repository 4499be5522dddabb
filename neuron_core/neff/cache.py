"""A NEFF's identity and the per-process cache of NEFF bytes the plugins read from their
framework's storage (a TorchScript buffer, a SavedModel variable, an MXNet param).

A NEFF is known by the sha256 that closes its header, which covers every section's sha256: reading
it takes the header's first 16 bytes and 32 more, so a 100 MB NEFF is never re-hashed per call.

    key = neff_key(neff_bytes)
    neff = NEFF_BYTES.get(key, lambda: tensor.numpy(), "neuron_op_0: the NEFF is damaged")
"""
from __future__ import annotations

import threading
from typing import Callable

from ..errors import NeffFormatError
from .format import _HASH, _MIN_HEADER, _PREFIX


def key_from(read: Callable[[int, int], bytes], size: int, what: str = "NEFF") -> bytes:
    """The closing sha256 of the header of a `size`-byte NEFF whose bytes start..stop
    `read(start, stop)` returns (it reads only the header's fixed prefix and its last 32 bytes)."""
    if size < _PREFIX.size:
        raise NeffFormatError(f"{what} of {size} bytes is too short to hold a header")
    *_, header_len = _PREFIX.unpack(bytes(read(0, _PREFIX.size)))   # magic, major, minor, length
    if not _MIN_HEADER <= header_len <= size:
        raise NeffFormatError(f"{what} header length {header_len} is outside the {size}-byte "
                              "buffer; the NEFF is damaged")
    return bytes(read(header_len - _HASH, header_len))


def neff_key(neff) -> bytes:
    """The NEFF header's closing sha256 of a bytes-like NEFF, which covers every section's sha256."""
    buf = memoryview(neff).cast("B")
    return key_from(lambda start, stop: buf[start:stop], len(buf))


class NeffBytes:
    """NEFF bytes by key, each read from its framework's storage once per process and checked
    against its key on that read (kept as a memo of the process's runtime, runtime/context.py)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._reading: dict = {}   # key -> the lock held while that key's NEFF is read

    @property
    def _by_key(self) -> dict:
        from ..runtime.context import default
        return default().memo("neff.bytes")

    def get(self, key: bytes, read: Callable[[], object], mismatch: str):
        """The NEFF of `key`; the first call reads it with `read()` and raises NeffFormatError with
        `mismatch` when what it read is not that NEFF. Reads of other keys go on meanwhile."""
        by_key = self._by_key
        neff = by_key.get(key)
        if neff is not None:
            return neff
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:
            neff = by_key.get(key)
            if neff is None:
                neff = read()
                if neff_key(neff) != key:
                    raise NeffFormatError(mismatch)
                by_key[key] = neff
        return neff

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()


#: the one cache of the plugins' NEFF bytes in this process
NEFF_BYTES = NeffBytes()
