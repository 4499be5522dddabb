"""The framework-free runtime: `load(neff)` onto a simulated NeuronCore, then `model.run(inputs)`."""
from .context import Runtime
from .model import Model, load

__all__ = ["Model", "Runtime", "load"]
