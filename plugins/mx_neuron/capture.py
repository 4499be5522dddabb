"""MXNet Symbol -> its nodes (from the symbol JSON) with every output's shape and dtype, inferred by
MXNet for the given inputs, and the core IR through the conversion table.

Keys of native values are `(node index, output index)` in the symbol JSON's node list."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from neuron_core.bridge import Converter
from neuron_core.errors import FrontendError, NeuronError

from ._mxnet import import_mxnet
from .convert import TABLE
from .convert._attrs import Attrs
from .jsonform import mxnet_json

mx = import_mxnet()


@dataclass
class MxNode:
    """One node of the symbol JSON with its inferred outputs."""

    index: int
    op: str                   # "null" for a variable
    name: str
    attrs: dict
    inputs: list              # [(node index, output index)]
    shapes: list = field(default_factory=list)
    dtypes: list = field(default_factory=list)
    raw: dict = field(default_factory=dict)

    @property
    def is_var(self) -> bool:
        return self.op == "null"


@dataclass
class Captured:
    nodes: list
    heads: list               # [(node index, output index)]
    graph: dict               # the parsed symbol JSON
    data_names: list


def _outputs_per_node(nodes: list, names: list) -> list:
    """How many visible outputs each node has: get_internals lists them in the JSON's node order
    (both are the same depth-first walk); a variable's entry is its name, an op's are NAME_*."""
    counts, pos = [], 0
    for i, node in enumerate(nodes):
        if node["op"] == "null":
            if names[pos] != node["name"]:
                raise FrontendError(f"symbol internals out of step at {names[pos]!r} (expected "
                                    f"variable {node['name']!r}); is the symbol JSON valid?")
            counts.append(1)
            pos += 1
            continue
        nxt = nodes[i + 1] if i + 1 < len(nodes) else None
        start = pos
        while pos < len(names) and (pos == start or not _starts(nxt, names[pos])):
            pos += 1
        counts.append(pos - start)
    return counts


def _starts(node, entry: str) -> bool:
    if node is None:
        return False
    return entry == node["name"] if node["op"] == "null" else entry.startswith(node["name"] + "_")


def capture(sym, shapes: dict, dtypes: dict, param_shapes: dict, param_dtypes: dict) -> Captured:
    """Parse `sym` and infer every output's shape and dtype for the given input/param shapes."""
    graph = json.loads(mxnet_json(sym))
    raw_nodes = graph["nodes"]
    internals = sym.get_internals()
    names = internals.list_outputs()
    known = {**param_shapes, **shapes}
    arg_names = set(internals.list_arguments()) | set(internals.list_auxiliary_states())
    try:
        _, out_shapes, _ = internals.infer_shape_partial(
            **{k: v for k, v in known.items() if k in arg_names})
        _, out_types, _ = internals.infer_type(
            **{k: v for k, v in {**param_dtypes, **dtypes}.items() if k in arg_names})
    except mx.base.MXNetError as exc:
        first = str(exc).strip().splitlines()[0]
        raise FrontendError(f"MXNet cannot infer the model's shapes for inputs {shapes!r}: "
                            f"{first}. Check `inputs` (names and shapes) and the params") from None
    counts = _outputs_per_node(raw_nodes, names)
    nodes, pos = [], 0
    for i, (raw, n) in enumerate(zip(raw_nodes, counts)):
        node = MxNode(i, raw["op"], raw["name"], dict(raw.get("attrs", raw.get("param", {})) or {}),
                      [(e[0], e[1]) for e in raw["inputs"]], raw=raw)
        node.shapes = [tuple(s) if s else None for s in out_shapes[pos:pos + n]]
        node.dtypes = [np.dtype(t).name if t is not None else None for t in out_types[pos:pos + n]]
        pos += n
        nodes.append(node)
    heads = [(h[0], h[1]) for h in graph["heads"]]
    return Captured(nodes, heads, graph, list(shapes))


def to_core(cap: Captured, params: dict, graph_name: str = "mxnet") -> Converter:
    """Convert the captured nodes: data inputs become graph inputs, params constants."""
    cv = Converter(TABLE, graph_name)
    for node in cap.nodes:
        key = (node.index, 0)
        if node.is_var:
            if node.name in params:
                cv.add_const(key, params[node.name], node.name)
                continue
            shape = node.shapes[0] if node.shapes else None
            if shape is None or any(d == 0 for d in shape):
                if node.name in cap.data_names:
                    raise NeuronError(f"input {node.name!r}: MXNet inferred no full shape")
                continue   # an unused variable (e.g. a label): nothing consumes it here
            cv.add_input(key, node.name, shape, node.dtypes[0] or "float32")
            continue
        attrs = Attrs(node.op, node.name, node.attrs, node.shapes, node.dtypes)
        args = [attrs]
        for src in node.inputs:
            if not cv.has(src):
                missing = cap.nodes[src[0]]
                raise NeuronError(f"{node.op} node {node.name!r} reads {missing.name!r}, which "
                                  "has no value: give it in `args`/`aux` or `inputs`")
            args.append(cv.value(src))
        keys = [(node.index, k) for k in range(len(node.shapes))]
        types = [(s, d or "float32") if s else None for s, d in zip(node.shapes, node.dtypes)]
        cv.convert(node, node.op, tuple(args), {}, keys, types, name=node.name)
    cv.set_outputs(cap.heads)
    return cv
