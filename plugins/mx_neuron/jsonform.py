"""The compiled symbol's JSON in mxnet-neuron's form.

mxnet-neuron writes each compiled region as a node `{"op": "_neuron_subgraph_op", "subgraphs":
[<the region's MXNet graph>], ...}`, and documented code reads exactly that (the Compilation Python
API's "Extract Compilation Statistics" snippet counts those nodes and the ops of their
`subgraphs`). MXNet itself can only run such a node as its `Custom` operator, so the graph MXNet
holds says `"op": "Custom", "attrs": {"op_type": "_neuron_subgraph_op", ...}` (the `subgraphs`
field MXNet keeps as it is). This module translates at MXNet's JSON edges, once installed:
`Symbol.tojson`, `Symbol.save` and pickling give mxnet-neuron's form; `mx.sym.load`,
`mx.sym.load_json`, unpickling and Gluon's loaders accept it (and MXNet's own form). A symbol
without compiled regions passes through untouched.
"""
from __future__ import annotations

import json

from neuron_core.errors import NeuronError

from ._mxnet import import_mxnet
from .op import OP_TYPE, parse_config

mx = import_mxnet()

#: MXNet's own methods and loaders, before install() wraps them
_ORIGINAL: dict = {}


def _translate(text: str, documented: bool) -> str:
    if OP_TYPE not in text:
        return text
    try:
        graph = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NeuronError(f"symbol JSON with {OP_TYPE} nodes is not valid JSON ({exc})") from None
    for node in graph.get("nodes", []):
        attrs = node.get("attrs") or {}
        if not documented and OP_TYPE in (node.get("op"), attrs.get("op_type")):
            error = parse_config(attrs.get("config", "{}"))[1] if "config" in attrs else None
            if error:   # said here: raised in MXNet's callback it could end the process
                raise NeuronError(f"node {node.get('name')!r}: {error}")
        if documented and node.get("op") == "Custom" and attrs.get("op_type") == OP_TYPE:
            node["op"] = OP_TYPE
            node["attrs"] = {k: v for k, v in attrs.items() if k != "op_type"}
        elif not documented and node.get("op") == OP_TYPE:
            if "config" not in attrs:
                raise NeuronError(f"{OP_TYPE} node {node.get('name')!r} has no 'config' "
                                  "attribute: it was not compiled by this mx_neuron (a symbol "
                                  "compiled on an Inf1 machine holds that machine's own form); "
                                  "compile the original model again with mx_neuron.compile")
            node["op"] = "Custom"
            node["attrs"] = {"op_type": OP_TYPE, **attrs}
    return json.dumps(graph)


def documented_json(text: str) -> str:
    """MXNet's JSON of a compiled symbol -> mxnet-neuron's form."""
    return _translate(text, documented=True)


def loadable_json(text: str) -> str:
    """mxnet-neuron's form (or MXNet's own) -> the JSON MXNet loads."""
    return _translate(text, documented=False)


def mxnet_json(sym) -> str:
    """The JSON MXNet itself holds for `sym` (its `Custom` nodes), for this plugin's own reading."""
    return _ORIGINAL.get("tojson", mx.sym.Symbol.tojson)(sym)


def install() -> None:
    """Wrap MXNet's JSON edges (idempotent)."""
    if _ORIGINAL:
        return
    symbol_mod = mx.symbol.symbol
    Symbol = mx.sym.Symbol
    _ORIGINAL.update(tojson=Symbol.tojson, save=Symbol.save, setstate=Symbol.__setstate__,
                     load=symbol_mod.load, load_json=symbol_mod.load_json)

    def tojson(self, *args, **kwargs):
        return documented_json(_ORIGINAL["tojson"](self, *args, **kwargs))

    def save(self, fname, *args, **kwargs):
        _ORIGINAL["save"](self, fname, *args, **kwargs)
        with open(fname) as f:
            text = f.read()
        if OP_TYPE in text:
            with open(fname, "w") as f:
                f.write(documented_json(text))

    def setstate(self, state):
        if state.get("handle") is not None:
            state = {**state, "handle": loadable_json(state["handle"])}
        _ORIGINAL["setstate"](self, state)

    def load(fname):
        if not isinstance(fname, str):
            return _ORIGINAL["load"](fname)   # MXNet's own error for a bad argument
        with open(fname) as f:
            text = f.read()
        if OP_TYPE not in text:
            return _ORIGINAL["load"](fname)
        return _ORIGINAL["load_json"](loadable_json(text))

    def load_json(json_str):
        if not isinstance(json_str, str):
            return _ORIGINAL["load_json"](json_str)
        return _ORIGINAL["load_json"](loadable_json(json_str))

    for fn, original in ((tojson, Symbol.tojson), (save, Symbol.save), (load, symbol_mod.load),
                         (load_json, symbol_mod.load_json)):
        fn.__doc__, fn.__name__ = original.__doc__, original.__name__
    Symbol.tojson, Symbol.save, Symbol.__setstate__ = tojson, save, setstate
    for module in (symbol_mod, mx.symbol, mx.sym):
        module.load, module.load_json = load, load_json
    mx.gluon.block.load_json = load_json
