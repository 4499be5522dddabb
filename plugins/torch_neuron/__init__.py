"""torch_neuron: compile PyTorch models for the simulated NeuronCore, with fallback to PyTorch.

    import torch, torch_neuron
    traced = torch.neuron.trace(model, example_inputs)     # a torch.jit.ScriptModule
    torch.jit.save(traced, "model_neuron.pt")
    again = torch.jit.load("model_neuron.pt")              # in any process, after import torch_neuron

Importing this package registers the `neuron::forward_v1` operator and makes `torch.neuron`
available with `trace`, `analyze_model`, `estimate`, `DataParallel`, `is_available` and
`supported_operators` (also under the Neuron SDK's name `get_supported_operations`);
`neuron_error(e)` gives back the NeuronError behind the RuntimeError TorchScript raises for it.
`PLUGIN` is the plugin's record for the core (neuron-cc finds it by module name).
"""
from __future__ import annotations

import sys

import torch

from neuron_core.bridge import analyze
from neuron_core import logs as _logs
from neuron_core.errors import NeuronError

from . import op  # noqa: F401  (registers neuron::forward_v1)
from .op import neuron_error
from .capture import capture
from .convert import TABLE
from .data_parallel import DataParallel
from .graph import to_core
from .plugin import PLUGIN
from .trace import NodeView, Optimization, estimate, trace

__version__ = "1.13.0.sim"


def analyze_model(model, example_inputs, subgraph_builder_function=None, **options) -> dict:
    """Which operations of `model` can run on Neuron, without compiling.

    Returns a dict with percent_supported, percent_supported_arithmetic, supported_count,
    total_count, supported_operators, unsupported_operators, operator_count (ATen op -> count) and
    reasons (ATen op -> why it stays in PyTorch).

    Example:
        >>> info = torch.neuron.analyze_model(model, torch.zeros(1, 3, 224, 224))  # doctest: +SKIP
        >>> info["percent_supported"]                                              # doctest: +SKIP
        100.0
    """
    cv = to_core(capture(model, example_inputs))
    return analyze(cv, subgraph_builder_function=subgraph_builder_function, **options)


def is_available() -> bool:
    """True when at least one (simulated) NeuronCore is visible to this process."""
    from neuron_core.runtime.device import get_device_manager
    try:
        return len(get_device_manager().visible_cores) > 0
    except NeuronError:
        return False


def supported_operators() -> list[str]:
    """The ATen operators that can be compiled for Neuron (derived from the conversion table)."""
    return TABLE.supported()


#: the Neuron SDK's name for `supported_operators`
get_supported_operations = supported_operators


_logs.install()   # INFO:Neuron: lines on stderr until the application configures logging
torch.neuron = sys.modules[__name__]
sys.modules.setdefault("torch.neuron", sys.modules[__name__])

__all__ = ["trace", "analyze_model", "estimate", "DataParallel", "is_available", "Optimization",
           "NodeView", "neuron_error",
           "supported_operators", "get_supported_operations", "PLUGIN"]
