"""neuron-sim core: IR, op registry, partitioner, compiler, NEFF container and a simulated
NeuronCore runtime. Imports no deep-learning framework."""
from __future__ import annotations

from .errors import NeuronError

__version__ = "0.1.0"

__all__ = ["NeuronError", "__version__"]
