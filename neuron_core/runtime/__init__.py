"""The framework-free runtime: `load(neff)` onto a simulated NeuronCore, then `model.run(inputs)`."""
from .model import Model, load

__all__ = ["Model", "load"]
