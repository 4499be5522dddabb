"""Gluon: export a hybridizable block to a Symbol, compile it, and wrap the result in a SymbolBlock
whose parameters hold the params and the NEFFs."""
from __future__ import annotations

import numpy as np

from neuron_core.errors import NeuronError

from ._mxnet import import_mxnet
from .compile import compile_symbol

mx = import_mxnet()


def _example(value):
    if isinstance(value, mx.nd.NDArray):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return mx.nd.array(value, dtype=value.dtype)
    return mx.nd.zeros(tuple(value))


def compile_block(block, inputs=None, **compile_args):
    """Compile a HybridBlock; returns a hybridized SymbolBlock running the compiled symbol, with
    the same inputs as `block` (a label input the compiled part does not read included)."""
    if not isinstance(block, mx.gluon.HybridBlock):
        raise NeuronError(f"compile expects a Gluon HybridBlock, got {type(block).__name__}")
    if isinstance(inputs, (list, tuple)) and inputs and not isinstance(inputs[0], int):
        inputs = {f"data{i}" if len(inputs) > 1 else "data": v for i, v in enumerate(inputs)}
    elif inputs is not None and not isinstance(inputs, dict):
        inputs = {"data": inputs}
    if not inputs:
        raise NeuronError("compiling a Gluon block needs inputs: a dict of input name -> NDArray "
                          "or shape, e.g. inputs={'data': (1, 3, 224, 224)}")
    names = list(inputs)
    examples = [_example(inputs[n]) for n in names]
    block(*examples)   # finishes deferred shape initialization
    out = block(*[mx.sym.var(n) for n in names])
    sym = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
    params = {p.name: p.data() for p in block.collect_params().values()}
    args = {k: params[k] for k in sym.list_arguments() if k in params}
    aux = {k: params[k] for k in sym.list_auxiliary_states() if k in params}
    compile_args.setdefault("model_name", type(block).__name__)
    csym, cargs, caux = compile_symbol(sym, args, aux, {n: e for n, e in zip(names, examples)},
                                       **compile_args)
    net = mx.gluon.SymbolBlock(csym, [mx.sym.var(n, dtype=e.dtype)
                                      for n, e in zip(names, examples)])
    values = {**cargs, **caux}
    for name, param in net.collect_params().items():
        if name not in values:
            raise NeuronError(f"compiled block parameter {name!r} has no value")
        arr = values[name]
        param.dtype = arr.dtype
        param._load_init(arr, mx.cpu())
    # Gluon's export saves only the params of a block that has run hybridized (it writes an
    # empty params file otherwise): run it once, so `block.export(...)` works right away
    net.hybridize()
    net(*examples)
    return net
