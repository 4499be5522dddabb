"""The partition report: what runs where and why, in the lines Neuron users know, plus what to fix
first (the unsupported op types ranked by how many fragments each one causes)."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field

from ..dtypes import SHORT
from ..ops import get_op, has_op
from .cluster import cluster_indices

_HOST_LINES = 10   # unsupported operations named one by one in the text report
_COLOURS = {"neuron": "#9be39b", "host": "#f4a6a6", "dropped": "#f7d08a"}


def _is_arithmetic(node) -> bool:
    return _arithmetic_type(node.op_type)


def _arithmetic_type(op_type: str) -> bool:
    """Registered ops say whether they compute; a foreign (host-only) op counts as arithmetic."""
    return get_op(op_type).arithmetic if has_op(op_type) else True


def _io(v) -> dict:
    t = v.type
    return {"name": v.name, "shape": list(t.shape) if t else None,
            "dtype": t.dtype if t else None, "bytes": t.nbytes if t and t.is_static else 0}


def fragment_ranking(graph, supported: list, base: int | None = None) -> list:
    """For each unsupported op type: how many fewer raw clusters there would be if it ran on Neuron.
    `base` is the number of clusters of `supported` itself, when already known."""
    nodes = graph.nodes
    if base is None:
        base = len(cluster_indices(nodes, supported))
    ranking = []
    for op_type in sorted({n.op_type for n, s in zip(nodes, supported) if not s}):
        flipped = [s or n.op_type == op_type for n, s in zip(nodes, supported)]
        merged = len(cluster_indices(nodes, flipped))
        count = sum(1 for n, s in zip(nodes, supported) if not s and n.op_type == op_type)
        ranking.append({"op_type": op_type, "count": count,
                        "fragments_caused": max(base - merged, 0)})
    ranking.sort(key=lambda r: (-r["fragments_caused"], -r["count"], r["op_type"]))
    return ranking


@dataclass
class PartitionReport:
    """One report object for every plugin: `str(report)`, `to_json()`, `to_dot()`."""

    total: int
    supported: int
    arithmetic_total: int
    arithmetic_supported: int
    on_neuron: int
    unsupported_ops: dict
    compiled_ops: dict
    subgraphs: list
    ranking: list
    nodes: list = field(default_factory=list)   # [{name, op_type, placement, kind, reason, subgraph}]
    edges: list = field(default_factory=list)

    @classmethod
    def build(cls, part, options) -> "PartitionReport":
        graph, verdicts = part.graph, part.verdicts
        nodes = graph.nodes
        inherent = {n.name: verdicts[n.name].supported or verdicts[n.name].kind in
                    ("too-small", "cost-rejected", "not-dominant") for n in nodes}
        sub_of = {n.name: s.index for s in part.subgraphs for n in s.nodes}
        arithmetic = [n for n in nodes if _is_arithmetic(n)]
        unsupported = Counter(n.op_type for n in nodes if not inherent[n.name])
        rows = []
        for n in nodes:
            v = verdicts[n.name]
            placement = "neuron" if n.name in sub_of else ("dropped" if inherent[n.name] else "host")
            rows.append({"name": n.name, "op_type": n.op_type, "placement": placement,
                         "kind": v.kind or "supported", "reason": v.reason,
                         "subgraph": sub_of.get(n.name), "scope": n.scope})
        edges = [(v.producer.name, n.name) for n in nodes for v in n.inputs
                 if v is not None and v.producer is not None]
        subgraphs = [{"index": s.index, "operations": len(s.nodes),
                      "ops": dict(Counter(n.op_type for n in s.nodes).most_common()),
                      "inputs": [_io(v) for v in s.inputs], "outputs": [_io(v) for v in s.outputs],
                      "transfer_bytes": s.transfer_bytes,
                      "estimated_net_gain_us": round(1e6 * s.gain_s, 2)} for s in part.subgraphs]
        return cls(total=len(nodes), supported=sum(inherent.values()),
                   arithmetic_total=len(arithmetic),
                   arithmetic_supported=sum(1 for n in arithmetic if inherent[n.name]),
                   on_neuron=len(sub_of), unsupported_ops=dict(unsupported.most_common()),
                   compiled_ops=dict(Counter(n.op_type for s in part.subgraphs
                                             for n in s.nodes).most_common()),
                   subgraphs=subgraphs,
                   ranking=fragment_ranking(graph, [inherent[n.name] for n in nodes],
                                            part.raw_clusters),
                   nodes=rows, edges=edges)

    def to_dict(self) -> dict:
        """Every field, JSON-able; `from_dict` rebuilds the report (saved models carry it)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "PartitionReport":
        data = dict(data)
        data["edges"] = [tuple(e) for e in data.get("edges", [])]
        return cls(**data)

    # -- figures ------------------------------------------------------------------------------------
    @property
    def num_subgraphs(self) -> int:
        return len(self.subgraphs)

    @property
    def percent_supported(self) -> float:
        return 100.0 * self.supported / self.total if self.total else 0.0

    @property
    def percent_on_neuron(self) -> float:
        return 100.0 * self.on_neuron / self.total if self.total else 0.0

    @property
    def percent_arithmetic_supported(self) -> float:
        return (100.0 * self.arithmetic_supported / self.arithmetic_total
                if self.arithmetic_total else 0.0)

    @property
    def percent_arithmetic_on_neuron(self) -> float:
        """Share of the arithmetic operations that run inside a Neuron subgraph."""
        placed = [r["placement"] == "neuron" for r in self.nodes if _arithmetic_type(r["op_type"])]
        return 100.0 * sum(placed) / len(placed) if placed else 0.0

    # -- renderings ---------------------------------------------------------------------------------
    def __str__(self) -> str:
        lines = [f"{self.percent_supported:.1f}% of all operations ({self.supported} of "
                 f"{self.total}) are supported",
                 f"{self.percent_arithmetic_supported:.1f}% of arithmetic operations "
                 f"({self.arithmetic_supported} of {self.arithmetic_total}) are supported"]
        if self.unsupported_ops:
            lines.append("Unsupported operators: " + ", ".join(
                f"{op} ({n})" for op, n in self.unsupported_ops.items()))
        lines.append(f"The neuron partitioner created {self.num_subgraphs} sub-graphs")
        lines.append(f"{self.percent_on_neuron:.1f}% of all operations ({self.on_neuron} of "
                     f"{self.total}) are placed on Neuron")
        if self.compiled_ops:
            lines.append("Compiled these operators (and counts) to Neuron: " + ", ".join(
                f"{op}: {n}" for op, n in self.compiled_ops.items()))
        for s in self.subgraphs:
            ins = ", ".join(f"{i['name']} {_t(i)}" for i in s["inputs"])
            outs = ", ".join(f"{o['name']} {_t(o)}" for o in s["outputs"])
            lines.append(f"  sub-graph {s['index']}: {s['operations']} ops; in: {ins or '-'}; "
                         f"out: {outs or '-'}; transfers {s['transfer_bytes']} bytes; estimated "
                         f"net gain {s['estimated_net_gain_us']} us")
        dropped = Counter((r["kind"], r["reason"]) for r in self.nodes
                          if r["placement"] == "dropped")
        for (kind, reason), n in dropped.items():
            lines.append(f"  {n} supported operation(s) left on the host ({kind}): {reason}")
        host = [r for r in self.nodes if r["placement"] == "host"]
        for r in host[:_HOST_LINES]:
            where = f" in {r['scope']}" if r.get("scope") else ""
            lines.append(f"  on the host: {r['name']} ({r['op_type']}){where}: {r['reason']}")
        if len(host) > _HOST_LINES:
            lines.append(f"  ... and {len(host) - _HOST_LINES} more on the host (report.nodes "
                         "lists them all)")
        causes = [r for r in self.ranking if r["fragments_caused"] > 0]
        if causes:
            lines.append("Fix first (fragments each unsupported op type causes): " + ", ".join(
                f"{r['op_type']} ({r['fragments_caused']})" for r in causes))
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps({
            "percent_supported": round(self.percent_supported, 2),
            "percent_arithmetic_supported": round(self.percent_arithmetic_supported, 2),
            "percent_on_neuron": round(self.percent_on_neuron, 2),
            "percent_arithmetic_on_neuron": round(self.percent_arithmetic_on_neuron, 2),
            "supported_count": self.supported, "total_count": self.total,
            "num_subgraphs": self.num_subgraphs, "unsupported_operators": self.unsupported_ops,
            "compiled_operators": self.compiled_ops, "subgraphs": self.subgraphs,
            "fragment_ranking": self.ranking, "nodes": self.nodes}, indent=1)

    def to_dot(self) -> str:
        """Graphviz DOT: nodes coloured by placement (neuron, host, supported-but-dropped)."""
        out = ["digraph partition {", "  rankdir=TB; node [shape=box, style=filled];"]
        for s in self.subgraphs:
            out.append(f"  subgraph cluster_{s['index']} {{ label=\"sub-graph {s['index']}\";")
            out.extend(f"    {_q(r['name'])};" for r in self.nodes if r["subgraph"] == s["index"])
            out.append("  }")
        for r in self.nodes:
            tip = r["reason"].replace('"', "'")
            out.append(f"  {_q(r['name'])} [label=\"{r['op_type']}\\n{r['name']}\", "
                       f"fillcolor=\"{_COLOURS[r['placement']]}\", tooltip=\"{tip}\"];")
        out.extend(f"  {_q(a)} -> {_q(b)};" for a, b in self.edges)
        out.append("}")
        return "\n".join(out)


def _t(io: dict) -> str:
    if io["shape"] is None:
        return "?"
    return f"{SHORT.get(io['dtype'], io['dtype'])}[{','.join(str(d) for d in io['shape'])}]"


def _q(name: str) -> str:
    return '"' + name.replace('"', '\\"') + '"'
