"""Graph, Node, Value, TensorType: the one IR every frontend produces.

Node op types and attributes follow ONNX operator semantics (latest opset). A Value is produced by one
node (or is a graph input or a constant) and read by any number of nodes; its type may hold a symbolic
dimension (a string such as "N") for the batch axis.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from .. import dtypes
from ..errors import IRError

Dim = "int | str"


@dataclass(frozen=True, slots=True)
class TensorType:
    """Shape (ints, or strings for symbolic dimensions) and canonical dtype name."""

    shape: tuple
    dtype: str
    _numel: int = field(default=-1, init=False, repr=False, compare=False)

    def __post_init__(self):
        shape = tuple(d if isinstance(d, str) else int(d) for d in self.shape)
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtypes.canonical(self.dtype))
        if all(isinstance(d, int) and d >= 0 for d in shape):  # computed once: asked very often
            object.__setattr__(self, "_numel", math.prod(shape))

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return self._numel >= 0

    @property
    def numel(self) -> int:
        if self._numel < 0:
            raise IRError(f"tensor type {self} has symbolic dimensions; its size is unknown")
        return self._numel

    @property
    def nbytes(self) -> int:
        return self.numel * dtypes.itemsize(self.dtype)

    def __str__(self) -> str:
        return f"{dtypes.SHORT[self.dtype]}[{','.join(str(d) for d in self.shape)}]"


@dataclass(eq=False, slots=True)
class Value:
    """An edge of the graph: one producer (node, graph input or constant), many users."""

    name: str
    type: TensorType | None = None
    producer: "Node | None" = None
    users: list = field(default_factory=list)
    const: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.const is not None

    def __repr__(self) -> str:
        return f"%{self.name}"


@dataclass(eq=False, slots=True)
class Node:
    """One operation: `%outs = op_type[attrs](%ins)`. `native` keeps a handle to the framework node."""

    name: str
    op_type: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    native: Any = None
    scope: str = ""

    def input(self, i: int) -> Value | None:
        return self.inputs[i] if i < len(self.inputs) else None

    def __repr__(self) -> str:
        return f"<Node %{self.name} {self.op_type}>"


class Graph:
    """A DAG of nodes in topological order, with named inputs, outputs and constants."""

    def __init__(self, name: str = "main"):
        self.name = name
        self.nodes: list[Node] = []
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.values: dict[str, Value] = {}
        self._counter = 0
        self._node_names: set[str] = set()

    # -- building -------------------------------------------------------------------------------
    def unique_name(self, base: str, *, node: bool = False) -> str:
        """`base`, or `base_K` if that name is taken (node names and value names are apart)."""
        taken = self._node_names if node else self.values
        base = base or "v"
        name = base
        while name in taken:
            self._counter += 1
            name = f"{base}_{self._counter}"
        if node:
            self._node_names.add(name)
        return name

    def add_input(self, name: str, type: TensorType) -> Value:
        value = self._new_value(name, type)
        self.inputs.append(value)
        return value

    def add_const(self, name: str, array: np.ndarray) -> Value:
        array = np.asarray(array)
        value = self._new_value(self.unique_name(name), TensorType(array.shape, array.dtype))
        value.const = array
        return value

    def add_node(self, op_type: str, inputs: Iterable, attrs: dict | None = None, *,
                 name: str | None = None, outputs: Iterable[str] | int = 1, scope: str = "",
                 native: Any = None) -> Node:
        """Append a node; `outputs` is a count or a list of output value names."""
        name = self.unique_name(name or op_type.lower(), node=True)
        if isinstance(outputs, int):
            outputs = [name if outputs == 1 else f"{name}:{i}" for i in range(outputs)]
        ins = []
        for v in inputs:
            if v is not None and not isinstance(v, Value):
                raise IRError(f"node %{name} ({op_type}): input {v!r} is not a Value")
            ins.append(v)
        node = Node(name, op_type, ins, [], dict(attrs or {}), native, scope)
        for out_name in outputs:
            out = self._new_value(self.unique_name(out_name), None)
            out.producer = node
            node.outputs.append(out)
        for v in ins:
            if v is not None:
                v.users.append(node)
        self.nodes.append(node)
        return node

    def _new_value(self, name: str, type: TensorType | None) -> Value:
        if name in self.values:
            raise IRError(f"value name {name!r} is defined twice in graph {self.name!r}")
        value = Value(name, type)
        self.values[name] = value
        return value

    # -- editing --------------------------------------------------------------------------------
    def replace_uses(self, old: Value, new: Value) -> None:
        """Make every reader of `old` (nodes and graph outputs) read `new` instead."""
        for user in old.users:
            user.inputs = [new if v is old else v for v in user.inputs]
            new.users.append(user)
        old.users = []
        self.outputs = [new if v is old else v for v in self.outputs]

    def remove_node(self, node: Node) -> None:
        self.nodes.remove(node)
        self._node_names.discard(node.name)
        for v in node.inputs:
            if v is not None and node in v.users:
                v.users = [u for u in v.users if u is not node]
        for out in node.outputs:
            self.values.pop(out.name, None)

    def prune(self) -> int:
        """Remove nodes whose outputs nobody reads, and constants nobody uses. Returns nodes removed."""
        live = {id(v) for v in self.outputs}
        keep, removed = [], 0
        for node in reversed(self.nodes):
            if any(id(o) in live for o in node.outputs):
                keep.append(node)
                live.update(id(v) for v in node.inputs if v is not None)
            else:
                removed += 1
                for v in node.inputs:
                    if v is not None:
                        v.users = [u for u in v.users if u is not node]
                for out in node.outputs:
                    self.values.pop(out.name, None)
        self.nodes = keep[::-1]
        for name in [n for n, v in self.values.items() if v.is_const and not v.users
                     and id(v) not in live]:
            del self.values[name]
        return removed

    def toposort(self) -> None:
        """Reorder nodes topologically (stable for an already sorted graph)."""
        order, pending = [], list(self.nodes)
        produced = {id(v) for v in self.inputs} | {id(v) for v in self.values.values() if v.is_const}
        while pending:
            progress = []
            rest = []
            for node in pending:
                if all(v is None or id(v) in produced for v in node.inputs):
                    progress.append(node)
                    produced.update(id(o) for o in node.outputs)
                else:
                    rest.append(node)
            if not progress:
                raise IRError(f"graph {self.name!r} has a cycle through "
                              f"{', '.join('%' + n.name for n in rest[:5])}")
            order.extend(progress)
            pending = rest
        self.nodes = order

    # -- reading --------------------------------------------------------------------------------
    @property
    def constants(self) -> list[Value]:
        return [v for v in self.values.values() if v.is_const]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        from .printer import format_graph
        return format_graph(self)
