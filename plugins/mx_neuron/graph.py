"""The compiled symbol: each `NeuronCall` of the plan replaces its region with one
`_neuron_subgraph_op` node (inputs: the region's inputs, then the data variables the region reads
but its NEFF does not, such as a SoftmaxOutput's label, so the compiled symbol keeps the original's
inputs, then its NEFF variable). The node's `subgraphs` field holds the region's own MXNet nodes, as
mxnet-neuron's does. Every other node is copied unchanged from the original symbol JSON, and nodes
nobody needs any more are dropped."""
from __future__ import annotations

import json

import numpy as np

from .capture import Captured
from .op import OP_TYPE

_UINT8 = "3"   # MXNet's type flag for uint8, for the NEFF variable's __dtype__


class _Builder:
    def __init__(self, cap: Captured):
        self.cap = cap
        self.nodes: list = []
        self.emitted: dict = {}     # old node index -> new node index
        self.produced: dict = {}    # native key -> (new node index, output)
        self.names = {n.name for n in cap.nodes}

    def entry(self, key) -> tuple:
        if key in self.produced:
            return self.produced[key]
        self._emit(key[0])
        return self.emitted[key[0]], key[1]

    def _emit(self, index: int) -> None:
        """Emit a native node after its inputs (iteratively: host chains can be long)."""
        stack = [index]
        while stack:
            i = stack[-1]
            if i in self.emitted:
                stack.pop()
                continue
            pending = [s[0] for s in self.cap.nodes[i].inputs
                       if s not in self.produced and s[0] not in self.emitted]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            node = self.cap.nodes[i]
            raw = dict(node.raw)
            raw["inputs"] = [[*self.entry(s), 0] for s in node.inputs]
            self.emitted[i] = self._add(raw)

    def _add(self, raw: dict) -> int:
        self.nodes.append(raw)
        return len(self.nodes) - 1

    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def region(self, call) -> list:
        """Indices of the native nodes inside `call`'s region (its ops and the variables they
        read), in the symbol's order: everything its outputs depend on short of its inputs."""
        stop = set(call.input_keys)
        seen, stack = set(), [k for k in call.output_keys if k not in stop]
        while stack:
            i = stack.pop()[0]
            if i in seen:
                continue
            seen.add(i)
            stack.extend(s for s in self.cap.nodes[i].inputs if s not in stop)
        return sorted(seen)

    def subgraph(self, call, members: list) -> dict:
        """The region as an MXNet graph: its inputs become variables, its outputs the heads."""
        nodes, where = [], {}
        for key in call.input_keys:
            src = self.cap.nodes[key[0]]
            name = src.name if src.is_var else f"{src.name}_output{key[1]}"
            where[key] = len(nodes)
            nodes.append({"op": "null", "name": name, "inputs": []})
        for i in members:
            raw = dict(self.cap.nodes[i].raw)
            raw["inputs"] = [[*self._local(s, where), 0] for s in self.cap.nodes[i].inputs]
            where[(i, 0)] = len(nodes)
            nodes.append(raw)
        heads = [[*self._local(k, where), 0] for k in call.output_keys]
        return {"nodes": nodes, "arg_nodes": [j for j, n in enumerate(nodes) if n["op"] == "null"],
                "heads": heads}

    @staticmethod
    def _local(key, where: dict) -> tuple:
        return (where[key], 0) if key in where else (where[(key[0], 0)], key[1])

    def call(self, call, neff_name: str, node_name: str, params) -> None:
        members = self.region(call)
        ignored = [i for i in members if self.cap.nodes[i].is_var
                   and self.cap.nodes[i].name not in params and self.cap.nodes[i].shapes[0]]
        ins = [[*self.entry(k), 0] for k in call.input_keys]
        ins += [[*self.entry((i, 0)), 0] for i in ignored]
        var = self._add({"op": "null", "name": neff_name, "inputs": [],
                         "attrs": {"__dtype__": _UINT8, "__shape__": f"({len(call.neff)},)"}})
        config = call.config()
        config["ignored_inputs"] = [[self.cap.nodes[i].name, list(self.cap.nodes[i].shapes[0]),
                                     self.cap.nodes[i].dtypes[0] or "float32"] for i in ignored]
        config["neff_bytes"] = len(call.neff)
        idx = self._add({"op": "Custom", "name": node_name, "inputs": ins + [[var, 0, 0]],
                         "attrs": {"op_type": OP_TYPE,
                                   "config": json.dumps(config, separators=(",", ":"))},
                         "subgraphs": [self.subgraph(call, members)]})
        for j, key in enumerate(call.output_keys):
            self.produced[key] = (idx, j)


def rebuild(cap: Captured, plan, params=(), prefix: str = "") -> tuple[str, dict]:
    """The compiled symbol's JSON and the NEFF params {variable name: uint8 array}; `params` names
    the variables that are weights (folded into the NEFFs), not data."""
    b = _Builder(cap)
    neffs = {}
    for call in plan.calls:
        neff_name = b.unique(f"{prefix}neuron_subgraph_{call.index}_neff")
        b.call(call, neff_name, b.unique(f"{prefix}neuron_subgraph_{call.index}"), set(params))
        neffs[neff_name] = np.frombuffer(call.neff, np.uint8)
    heads = [[*b.entry(h), 0] for h in cap.heads]
    graph = {"nodes": b.nodes, "arg_nodes": [i for i, n in enumerate(b.nodes) if n["op"] == "null"],
             "heads": heads, "attrs": dict(cap.graph.get("attrs", {}))}
    graph["attrs"].pop("node_row_ptr", None)
    return json.dumps(graph), neffs
