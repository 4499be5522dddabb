"""`mx_neuron.estimate`: latency and throughput of a compiled symbol (or Gluon block) on Inf1
sizes, from the timing model of its `_neuron_subgraph_op` NEFFs plus the MXNet work between them.

The host work is measured at compile time (the compiled symbol bound on the CPU and run twice on
the compile inputs, minus the time spent in NeuronCore calls; the best run counts) and kept in the
`__neuron_host_ms__` attribute of the symbol's output nodes (with the model's name in
`__neuron_model__`), so it travels in the symbol JSON (`sym.save`, `block.export`) as the NEFFs
travel in the params.

    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": (1, 3, 224, 224)})
    print(mx_neuron.estimate(csym, cargs).format())
"""
from __future__ import annotations

import json
import logging

import numpy as np

from neuron_core.errors import NeuronError
from neuron_core.estimate import Compiled, estimate_compiled, measure_host_ms
from neuron_core.estimate import summary as _summary

from ._mxnet import import_mxnet
from .jsonform import mxnet_json
from .op import OP_TYPE

mx = import_mxnet()
log = logging.getLogger("Neuron")

HOST_ATTR = "__neuron_host_ms__"
NAME_ATTR = "__neuron_model__"

__all__ = ["estimate", "measure_host", "with_host_ms", "summary"]


def measure_host(sym, args: dict, aux: dict, inputs: dict, shapes: dict, dtypes: dict) -> float:
    """Host work per run of compiled `sym` (ms) on the compile `inputs` (arrays, or zeros for
    shapes); 0 with a warning when the symbol cannot be bound (e.g. a label of unknown shape)."""
    try:
        exe = sym.simple_bind(mx.cpu(), grad_req="null", type_dict=dtypes, **shapes)
    except mx.base.MXNetError as exc:
        log.warning("could not bind the compiled symbol to time its MXNet work (%s); estimates "
                    "count no host time: pass host_ms= to mx_neuron.estimate",
                    str(exc).strip().splitlines()[0])
        return 0.0
    exe.copy_params_from(args, aux, allow_extra_params=True)
    for name, value in inputs.items():   # simple_bind leaves its arrays uninitialised
        exe.arg_dict[name][:] = 0 if isinstance(value, (tuple, list)) else (
            value if isinstance(value, mx.nd.NDArray) else np.asarray(value))

    def run():
        for out in exe.forward(is_train=False):
            out.wait_to_read()
    return measure_host_ms(run)   # the first run also loads the NEFFs and warms MXNet up


def with_host_ms(graph_json: str, host_ms: float, name: str):
    """The symbol of `graph_json` with `host_ms` and the model's `name` in its output nodes'
    attributes."""
    graph = json.loads(graph_json)
    for node, _, _ in graph["heads"]:
        graph["nodes"][node].setdefault("attrs", {}).update({HOST_ATTR: repr(float(host_ms)),
                                                             NAME_ATTR: name})
    return mx.sym.load_json(json.dumps(graph))


def _compiled(obj, args):
    """(symbol, params) of a compiled symbol with its args, or of a compiled Gluon block."""
    if isinstance(obj, mx.gluon.SymbolBlock):
        return obj._cached_graph[1], {n: p.data() for n, p in obj.collect_params().items()}
    if not isinstance(obj, mx.sym.Symbol):
        raise NeuronError(f"estimate takes a symbol compiled by mx_neuron.compile (with its args) "
                          f"or the SymbolBlock it returns for a Gluon block, got "
                          f"{type(obj).__name__}")
    return obj, dict(args or {})


def estimate(sym, args=None, aux=None, instance: str | None = None, cores: int | None = None,
             batch_size: int | None = None, host_ms: float | None = None):
    """Latency P50 and throughput of a compiled model on Inf1 sizes (timing model): its Neuron
    sub-graphs one after another plus the MXNet work measured at compile time (or `host_ms`).

    Args:
        sym: the compiled symbol (or the compiled Gluon SymbolBlock, without args).
        args: its arg params, which hold the NEFFs (`*_neff`).
        aux: accepted for symmetry with `mx_neuron.compile`; unused.
        instance: one Inf1 size, e.g. "inf1.xlarge" (default: all of them).
        cores: NeuronCores to use (default: all of the instance's).
        batch_size: samples per request (default: the compiled batch).
        host_ms: host work per request in ms, instead of the measured one.

    Returns:
        A `neuron_core.estimate.Estimate` (`.format()`, `.to_json()`, `.instances`).

    Example:
        >>> sym, args, aux = mx.model.load_checkpoint("resnet18_neuron", 0)   # doctest: +SKIP
        >>> print(mx_neuron.estimate(sym, args).format())                     # doctest: +SKIP
    """
    del aux
    return estimate_compiled(_record(sym, args), instance, cores, batch_size, host_ms)


def _record(sym, args) -> Compiled:
    """Where a compiled symbol keeps its NEFFs (the `*_neff` args of its `_neuron_subgraph_op`
    nodes, in sub-graph order) and its host time (its output nodes' attributes)."""
    sym, params = _compiled(sym, args)
    measured = [a for a in sym.attr_dict().values() if HOST_ATTR in a]
    if not measured:
        raise NeuronError(f"symbol {sym.name or 'group'!r} was not compiled by this mx_neuron (no "
                          f"{HOST_ATTR} attribute); compile it with mx_neuron.compile first")
    graph = json.loads(mxnet_json(sym))
    calls = sorted((json.loads(n["attrs"]["config"])["index"], graph["nodes"][n["inputs"][-1][0]])
                   for n in graph["nodes"] if n.get("attrs", {}).get("op_type") == OP_TYPE)
    missing = [var["name"] for _, var in calls if var["name"] not in params]
    if missing:
        raise NeuronError(f"args lack the NEFF param(s) {missing}; pass the args "
                          "mx_neuron.compile returned (or loaded with the symbol)")
    neffs = [params[var["name"]].asnumpy().tobytes() for _, var in calls]
    return Compiled(neffs, float(measured[0][HOST_ATTR]), measured[0].get(NAME_ATTR, "model"))


def summary(sym, args) -> str:
    """One line for the end of a compile: the estimate on the smallest Inf1 size."""
    return _summary(_record(sym, args), "mx_neuron.estimate(sym, args)")
