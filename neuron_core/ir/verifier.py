"""Checks the structural invariants of a graph. Runs after every compiler pass when NEURON_VERIFY=1."""
from __future__ import annotations

from ..errors import IRError
from .printer import format_node


def verify(graph) -> None:
    """Raise IRError naming the first broken invariant: use before def, dangling edges, bad names."""
    defined = {id(v) for v in graph.inputs}
    for v in graph.values.values():
        if v.is_const:
            defined.add(id(v))
            if v.producer is not None:
                raise IRError(f"constant %{v.name} also has a producer %{v.producer.name}")
    node_names = set()
    for node in graph.nodes:
        if node.name in node_names:
            raise IRError(f"node name %{node.name} is used twice")
        node_names.add(node.name)
        for i, v in enumerate(node.inputs):
            if v is None:
                continue
            if id(v) not in defined:
                raise IRError(f"input {i} %{v.name} of `{format_node(node)}` is used before it is "
                              "defined (graph not in topological order, or the value is dangling)")
            if node not in v.users:
                raise IRError(f"%{v.name} does not list `{node.name}` among its users")
        for out in node.outputs:
            if out.producer is not node:
                raise IRError(f"output %{out.name} of %{node.name} names another producer")
            if graph.values.get(out.name) is not out:
                raise IRError(f"output %{out.name} of %{node.name} is not registered in the graph")
            defined.add(id(out))
    for v in graph.outputs:
        if id(v) not in defined:
            raise IRError(f"graph output %{v.name} is never defined")
    live = {id(n) for n in graph.nodes}
    for v in graph.values.values():
        for user in v.users:
            if id(user) not in live or v not in user.inputs:
                raise IRError(f"%{v.name} lists user %{user.name} which does not read it")
