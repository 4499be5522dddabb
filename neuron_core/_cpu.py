"""What neuron-sim reads about the host CPU: its feature flags, and the OpenBLAS kernel they call for.

OpenBLAS picks its kernels from the CPU model name when its library loads, and falls back to its
oldest x86 kernel when a virtual CPU hides that name, at half the matmul speed or less.
`openblas_kernel()` chooses from the feature flags instead, for the moment a library that loads
OpenBLAS is imported (OpenBLAS reads $OPENBLAS_CORETYPE then and never again), and leaves the
environment as it found it. Imports nothing but the standard library: it runs before numpy loads.
"""
from __future__ import annotations

import contextlib
import logging
import os
import platform
from typing import Iterator

log = logging.getLogger("Neuron")

ENV_CORETYPE = "OPENBLAS_CORETYPE"


def cpu_flags() -> str:
    """The CPU's feature flags, sorted (what onnxruntime picks its kernels by), or the machine name."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((x for x in f if x.startswith(("flags", "Features"))), "")
    except OSError:
        line = ""
    return " ".join(sorted(line.split(":", 1)[-1].split())) or platform.machine()


def openblas_coretype(flags: str) -> str | None:
    """The OpenBLAS kernel for CPU feature flags `flags`, or None to leave the choice to OpenBLAS.

    Example:
        >>> openblas_coretype("avx2 fma sse4_2")
        'Haswell'
    """
    have = set(flags.split())
    if {"avx512f", "avx512bw"} <= have:
        return "SkylakeX"
    if {"avx2", "fma"} <= have:
        return "Haswell"
    return None


@contextlib.contextmanager
def openblas_kernel(library: str) -> Iterator[str | None]:
    """Inside the block $OPENBLAS_CORETYPE names the kernel for this CPU's flags, unless the user
    set it; afterwards it is as it was (removed when it was absent). Yields the choice, or None.

    Example:
        >>> with openblas_kernel("numpy"):
        ...     import numpy
    """
    if ENV_CORETYPE in os.environ:
        log.debug("OpenBLAS kernel for %s: %s, from $%s", library, os.environ[ENV_CORETYPE],
                  ENV_CORETYPE)
        yield None
        return
    chosen = openblas_coretype(cpu_flags())
    if chosen is None:
        yield None
        return
    log.debug("OpenBLAS kernel for %s: %s, from the CPU's feature flags (set %s to choose)",
              library, chosen, ENV_CORETYPE)
    os.environ[ENV_CORETYPE] = chosen
    try:
        yield chosen
    finally:
        os.environ.pop(ENV_CORETYPE, None)
