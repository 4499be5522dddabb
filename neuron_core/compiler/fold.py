"""Constant folding of one node: used by the frontends while importing and by the pass pipeline."""
from __future__ import annotations

import numpy as np

from ..errors import CompilerError
from ..ir import Graph, format_node
from ..ops import get_op, has_op, infer_node

#: folding stops at constants larger than this (elements), to keep NEFFs small
FOLD_LIMIT = 1 << 24


def add_folded(graph: Graph, op_type: str, inputs: list, attrs: dict | None = None, *,
               fold: bool = True, **node_fields) -> tuple:
    """Add a node as a frontend does: the node, its output types inferred, folded into constants
    when its value is known (unless `fold` is False). Returns (node, the values standing for its
    outputs afterwards: its own, or the constants that replaced them). `node_fields` go to
    Graph.add_node (name, outputs, scope, native)."""
    node = graph.add_node(op_type, inputs, attrs, **node_fields)
    infer_node(node)
    names = [o.name for o in node.outputs]
    if fold:
        fold_node(graph, node)
    return node, [graph.values[o] for o in names]


def fold_node(graph: Graph, node) -> bool:
    """Replace `node` by constants (same names) when its value is known at compile time."""
    if not has_op(node.op_type):
        return False
    ins = [v for v in node.inputs if v is not None]
    if node.op_type == "Shape" and ins[0].type is not None and ins[0].type.is_static:
        arrays = get_op("Shape").run(node.attrs, [np.empty(ins[0].type.shape, np.uint8)])
    elif all(v.is_const for v in ins):
        if any(o.type is None or not o.type.is_static or o.type.numel > FOLD_LIMIT
               for o in node.outputs):
            return False
        try:
            with np.errstate(all="ignore"):  # log(0) = -inf and the like: what the model says
                arrays = get_op(node.op_type).run(node.attrs, [None if v is None else v.const
                                                               for v in node.inputs])
        except Exception as exc:
            raise CompilerError(f"cannot fold `{format_node(node)}` at compile time: {exc}") from exc
    else:
        return False
    olds = list(node.outputs)
    graph.remove_node(node)
    for old, arr in zip(olds, arrays):
        graph.replace_uses(old, graph.add_const(old.name, np.asarray(arr)))
    return True
