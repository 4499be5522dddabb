"""The MXNet plugin of neuron-sim (the mxnet-neuron workflow on a simulated NeuronCore).

`import mx_neuron` restores the numpy alias MXNet 1.9.1 needs and imports mxnet, registers the
`_neuron_subgraph_op` custom operator (needed to load compiled symbols), and adds `mx.neuron()`,
`mx.infa()` and `mx.contrib.neuron.compile` (and `.analyze`, `.estimate`).

    import mx_neuron, mxnet as mx
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": (1, 3, 224, 224)})
    mod = mx.mod.Module(csym, data_names=["data"], label_names=None, context=mx.neuron())
    mod.bind(data_shapes=[("data", (1, 3, 224, 224))], for_training=False)
    mod.set_params(cargs, caux)
    print(mx_neuron.estimate(csym, cargs).format())   # latency and throughput on Inf1 sizes
"""
from __future__ import annotations

from ._mxnet import import_mxnet

mx = import_mxnet()

from neuron_core import logs as _logs  # noqa: E402

from . import op  # noqa: E402  (registers _neuron_subgraph_op)
from .api import compile  # noqa: E402
from .compile import analyze_symbol as analyze, last_plan  # noqa: E402
from .context import NeuronContext, install, neuron  # noqa: E402
from .convert import supported_operators, supported_ops  # noqa: E402
from .estimate import estimate  # noqa: E402
from .plugin import PLUGIN  # noqa: E402

install()
_logs.install()   # INFO:Neuron: lines on stderr until the application configures logging

__all__ = ["compile", "analyze", "estimate", "last_plan", "neuron", "NeuronContext",
           "supported_operators", "supported_ops", "PLUGIN"]
