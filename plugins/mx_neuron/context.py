"""`mx.neuron(i)` (and its early-docs alias `mx.infa(i)`): the context to bind compiled symbols.

MXNet's engine only knows CPU and GPU devices, and a compiled symbol's host part runs on the CPU
while its `_neuron_subgraph_op` nodes call the simulated NeuronCore. So the neuron context is a
`Context` subclass that *is* `cpu(0)` to MXNet (device type and id; MXNet binds only arrays of the
bound context, and the params are loaded on cpu(0)) and carries the NeuronCore index: every API
that takes a ctx (Module.bind, Symbol.bind, simple_bind, `with ctx:`, NDArray creation) accepts it
unchanged. Binding a compiled symbol with `mx.neuron(i)` binds a copy whose neuron nodes name the
core i stands for (`Symbol.bind` and `simple_bind`, which Module uses, are wrapped for this), so
its NEFFs load and run there: as in mxnet-neuron, i is a NeuronCore group with
NEURONCORE_GROUP_SIZES (its first core), else the i-th core visible to the process. With plain
`mx.cpu()` they go where the runtime's placement puts them.
"""
from __future__ import annotations

import json

from neuron_core.errors import NeuronError
from neuron_core.runtime.context import default

from . import jsonform
from ._mxnet import import_mxnet
from .op import OP_TYPE

mx = import_mxnet()


class _DeviceString(str):
    """What `str(mx.neuron(i))` returns: reads "neuron(i)", the name the Neuron docs use, and
    encodes to "cpu(0)": MXNet hands `str(ctx)` to its C library (e.g. `mx.nd.zeros(ctx=...)`),
    which parses only cpu/gpu device strings."""

    def __new__(cls, shown: str, device: str):
        self = super().__new__(cls, shown)
        self.device = device
        return self

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.device.encode(encoding, errors)


class NeuronContext(mx.Context):
    """cpu(0) to MXNet's engine, NeuronCore `core` to the user."""

    def __init__(self, core: int = 0):
        if not isinstance(core, int) or isinstance(core, bool) or core < 0:
            raise NeuronError(f"mx.neuron(core): core must be a NeuronCore index >= 0, got "
                              f"{core!r}")
        super().__init__("cpu", 0)
        self.neuron_core = core

    def __str__(self) -> str:
        return _DeviceString(f"neuron({self.neuron_core})", super().__str__())

    __repr__ = __str__


def on_core(sym, index: int):
    """A copy of compiled `sym` whose neuron nodes run where `mx.neuron(index)` points: NeuronCore
    group `index` with NEURONCORE_GROUP_SIZES, else the index-th NeuronCore visible to this
    process (`sym` itself if it has no neuron nodes)."""
    text = jsonform.mxnet_json(sym)
    if OP_TYPE not in text:
        return sym
    core = default().devices.core_at(index, "mx.neuron")   # said at bind time, not in MXNet's engine
    graph = json.loads(text)
    for node in graph["nodes"]:
        attrs = node.get("attrs") or {}
        if node["op"] == "Custom" and attrs.get("op_type") == OP_TYPE:
            config = json.loads(attrs["config"])
            config["core"] = core
            attrs["config"] = json.dumps(config, separators=(",", ":"))
    return mx.sym.load_json(json.dumps(graph))


def _wrap_bind(original):
    def bind(self, ctx, *args, **kwargs):
        if isinstance(ctx, NeuronContext):
            self = on_core(self, ctx.neuron_core)
        return original(self, ctx, *args, **kwargs)
    bind.__doc__, bind.__name__ = original.__doc__, original.__name__
    bind.wrapped = original
    return bind


def neuron(core: int = 0) -> NeuronContext:
    """The context for binding a compiled symbol on NeuronCore `core`.

    Example:
        >>> mod = mx.mod.Module(sym, data_names=["data"], label_names=None, context=mx.neuron())
    """
    return NeuronContext(core)


def install() -> None:
    """Expose `mx.neuron`, `mx.infa`, `mx.context.neuron` and `mx.contrib.neuron` (`compile`,
    `analyze`, `estimate`); wrap `Symbol.bind` / `simple_bind` to honour `mx.neuron(i)`, and
    MXNet's JSON edges to speak mxnet-neuron's form (jsonform.py)."""
    import importlib
    import sys
    import types

    from .api import compile as compile_fn
    from .estimate import estimate

    # the package attribute `compile` is the function; fetch the module itself
    _compile = importlib.import_module(__package__ + ".compile")

    jsonform.install()
    for mod in (mx, mx.context):
        mod.neuron = neuron
        mod.infa = neuron
    Symbol = mx.sym.Symbol
    for name in ("bind", "simple_bind"):
        if not hasattr(getattr(Symbol, name), "wrapped"):
            setattr(Symbol, name, _wrap_bind(getattr(Symbol, name)))
    contrib = types.ModuleType("mxnet.contrib.neuron",
                               "The older entry point: mx.contrib.neuron.compile(sym, args, aux, "
                               "inputs, **compile_args).")
    contrib.compile = compile_fn
    contrib.analyze = _compile.analyze_symbol
    contrib.estimate = estimate
    mx.contrib.neuron = contrib
    sys.modules["mxnet.contrib.neuron"] = contrib
