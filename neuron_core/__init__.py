"""neuron-sim core: IR, op registry, partitioner, compiler, NEFF container and a simulated
NeuronCore runtime. Imports no deep-learning framework."""
from __future__ import annotations

import os
import sys

from .errors import NeuronError

__version__ = "0.1.0"


def _pick_blas_kernel() -> None:
    """OpenBLAS picks its kernels from the CPU model name and falls back to its oldest x86 kernel
    when a virtual CPU hides it, at half the matmul speed or less. When numpy is not loaded yet and
    the user chose nothing, choose from the CPU's feature flags instead."""
    if "numpy" in sys.modules or "OPENBLAS_CORETYPE" in os.environ:
        return
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")),
                         [])
    except OSError:
        return
    if "avx512f" in flags and "avx512bw" in flags:
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
    elif "avx2" in flags and "fma" in flags:
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"


_pick_blas_kernel()

__all__ = ["NeuronError", "__version__"]

#: subpackages reached as attributes (`neuron_core.runtime.load`) without importing them first
_SUBPACKAGES = frozenset({"bridge", "compiler", "estimate", "frontends", "ir", "models", "neff",
                          "ops", "partition", "runtime", "tools", "dtypes", "hw"})


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
