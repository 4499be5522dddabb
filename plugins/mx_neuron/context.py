"""`mx.neuron(i)` (and its early-docs alias `mx.infa(i)`): the context to bind compiled symbols.

MXNet's engine only knows CPU and GPU devices, and a compiled symbol's host part runs on the CPU
while its `_neuron_subgraph_op` nodes call the simulated NeuronCore. So the neuron context is a
`Context` subclass that *is* `cpu(0)` to MXNet (device type and id) and carries the NeuronCore index
for the user: every API that takes a ctx (Module.bind, Symbol.bind, simple_bind, `with ctx:`,
NDArray creation) accepts it unchanged, and binding with plain `mx.cpu()` behaves identically.
"""
from __future__ import annotations

from neuron_core.errors import NeuronError

from ._mxnet import import_mxnet

mx = import_mxnet()


class NeuronContext(mx.Context):
    """cpu(0) to MXNet's engine, NeuronCore `core` to the user."""

    def __init__(self, core: int = 0):
        if not isinstance(core, int) or isinstance(core, bool) or core < 0:
            raise NeuronError(f"mx.neuron(core): core must be a NeuronCore index >= 0, got "
                              f"{core!r}")
        super().__init__("cpu", 0)
        self.neuron_core = core

    def __repr__(self) -> str:
        # str() stays MXNet's "cpu(0)": MXNet passes it to its operators as the device string
        return f"neuron({self.neuron_core})"


def neuron(core: int = 0) -> NeuronContext:
    """The context for binding a compiled symbol on NeuronCore `core`.

    Example:
        >>> mod = mx.mod.Module(sym, data_names=["data"], label_names=None, context=mx.neuron())
    """
    return NeuronContext(core)


def install() -> None:
    """Expose `mx.neuron`, `mx.infa`, `mx.context.neuron` and `mx.contrib.neuron` (`compile`,
    `analyze`, `estimate`)."""
    import importlib
    import sys
    import types

    from .api import compile as compile_fn
    from .estimate import estimate

    # the package attribute `compile` is the function; fetch the module itself
    _compile = importlib.import_module(__package__ + ".compile")

    for mod in (mx, mx.context):
        mod.neuron = neuron
        mod.infa = neuron
    contrib = types.ModuleType("mxnet.contrib.neuron",
                               "The older entry point: mx.contrib.neuron.compile(sym, args, aux, "
                               "inputs, **compile_args).")
    contrib.compile = compile_fn
    contrib.analyze = _compile.analyze_symbol
    contrib.estimate = estimate
    mx.contrib.neuron = contrib
    sys.modules["mxnet.contrib.neuron"] = contrib
