"""neuron-sim core: IR, op registry, partitioner, compiler, NEFF container and a simulated
NeuronCore runtime. Imports no deep-learning framework."""
from __future__ import annotations

import importlib
import sys

from . import _cpu
from .errors import NeuronError

__version__ = "0.1.0"


if "numpy" not in sys.modules:
    # numpy loads OpenBLAS, which picks its kernel then (see _cpu.openblas_kernel)
    with _cpu.openblas_kernel("numpy"):
        importlib.import_module("numpy")

__all__ = ["NeuronError", "__version__"]

#: subpackages reached as attributes (`neuron_core.runtime.load`) without importing them first
_SUBPACKAGES = frozenset({"bridge", "compiler", "estimate", "frontends", "ir", "models", "neff",
                          "ops", "partition", "runtime", "tools", "dtypes", "hw"})


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
