"""The partitioner: verdicts -> clusters -> size, cost and dominance filters -> subgraphs + report.

    part = partition(graph, PartitionOptions(minimum_segment_size=2))
    print(part.report)
    for sub in part.subgraphs: compile_graph(sub.graph, options)
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..errors import FallbackDisabledError
from ..ir import Graph
from ..ops import TENSOR_ENGINE, get_op, has_op
from ..ops.registry import Verdict
from .cluster import cluster_indices
from .options import PartitionOptions, TransferCosts
from .verdicts import _named, all_verdicts, cannot_run

log = logging.getLogger("Neuron")


@dataclass
class Subgraph:
    """A cluster of nodes that runs on the NeuronCore as one compiled unit."""

    index: int
    nodes: list
    inputs: list          # Values read from outside (graph inputs or host results)
    outputs: list         # Values read outside the cluster or graph outputs
    gain_s: float = 0.0   # estimated host time saved minus transfer and launch cost
    transfer_bytes: int = 0
    graph: Graph | None = None

    def extract(self, name: str | None = None) -> Graph:
        """A standalone IR graph of this cluster (constants copied, boundary values as I/O)."""
        return extract_graph(self, name or f"neuron_subgraph_{self.index}")


@dataclass
class Partition:
    """The placement of every node: `subgraphs` on Neuron, `host_nodes` on the host framework."""

    graph: Graph
    verdicts: dict                 # node name -> Verdict (final: includes cluster-level drops)
    subgraphs: list
    host_nodes: list
    report: "object" = None
    units: list = field(default_factory=list)   # execution order: Subgraph or host Node
    raw_clusters: int = 0          # clusters before the size/cost/dominance filters


def _nbytes(v) -> int:
    return v.type.nbytes if v.type is not None and v.type.is_static else 0


def boundary(graph: Graph, members: list, outs_of_graph: set | None = None) -> tuple[list, list]:
    """(inputs, outputs) of a set of nodes: non-constant values crossing its border, in order.
    `outs_of_graph` (ids of the graph outputs) may be passed in when called for many clusters."""
    inside = {id(n) for n in members}
    if outs_of_graph is None:
        outs_of_graph = {id(v) for v in graph.outputs}
    inputs, outputs, seen_in, seen_out = [], [], set(), set()
    for node in members:
        for v in node.inputs:
            if v is None or v.is_const or id(v) in seen_in:
                continue
            if v.producer is None or id(v.producer) not in inside:
                seen_in.add(id(v))
                inputs.append(v)
        for v in node.outputs:
            if id(v) in seen_out:
                continue
            if id(v) in outs_of_graph or any(id(u) not in inside for u in v.users):
                seen_out.add(id(v))
                outputs.append(v)
    return inputs, outputs


def _time(node, costs: TransferCosts, on_device: bool) -> float:
    if not has_op(node.op_type):
        return 0.0
    op = get_op(node.op_type)
    cost = op.cost(node)
    if on_device:
        flops = costs.device_flops_per_s if op.engine == TENSOR_ENGINE else costs.device_vector_flops_per_s
        return max(cost.flops / flops, cost.bytes / costs.device_bytes_per_s)
    return max(cost.flops / costs.host_flops_per_s, cost.bytes / costs.host_bytes_per_s)


def estimate_gain(sub: Subgraph, costs: TransferCosts) -> float:
    """Host time saved by running `sub` on Neuron, minus moving its boundary and launching it."""
    saved = sum(_time(n, costs, False) - _time(n, costs, True) for n in sub.nodes)
    crossing = len(sub.inputs) + len(sub.outputs)
    transfer = (sub.transfer_bytes / costs.pcie_bytes_per_s + crossing * costs.transfer_latency_s
                + costs.launch_s)
    return saved - transfer


def partition(graph: Graph, options: PartitionOptions | None = None, *,
              log_report: bool = True) -> Partition:
    """Place every node; raise FallbackDisabledError (an UnsupportedOpError) listing all misfits when fallback=False.
    The report goes to the `Neuron` logger at INFO unless `log_report` is False."""
    from .report import PartitionReport
    options = options or PartitionOptions()
    verdicts = all_verdicts(graph, options)
    nodes = graph.nodes
    if not options.fallback:
        bad = [(n, verdicts[n.name]) for n in nodes if not verdicts[n.name].supported]
        if bad:
            raise FallbackDisabledError(cannot_run(bad, len(nodes), "fallback=False but ",
                                                "Pass fallback=True to run them on the host."))
    supported = [verdicts[n.name].supported for n in nodes]
    clusters = [[nodes[i] for i in c] for c in cluster_indices(nodes, supported)]
    subs = []
    graph_outputs = {id(v) for v in graph.outputs}
    for members in clusters:
        ins, outs = boundary(graph, members, graph_outputs)
        sub = Subgraph(0, members, ins, outs)
        sub.transfer_bytes = sum(_nbytes(v) for v in ins + outs)
        sub.gain_s = estimate_gain(sub, options.costs)
        subs.append(sub)
    kept = _filter(subs, verdicts, options, len(nodes))
    for i, sub in enumerate(kept):
        sub.index = i
    on_neuron = {id(n) for s in kept for n in s.nodes}
    host = [n for n in nodes if id(n) not in on_neuron]
    part = Partition(graph, verdicts, kept, host, raw_clusters=len(clusters))
    part.units = _units(graph, kept, host)
    part.report = PartitionReport.build(part, options)
    if log_report:
        for line in str(part.report).splitlines():
            log.info(line)
    return part


def _drop(sub: Subgraph, verdicts: dict, kind: str, reason: str) -> None:
    for n in sub.nodes:
        verdicts[n.name] = Verdict.no(kind, reason)


def _filter(subs: list, verdicts: dict, options: PartitionOptions, total: int) -> list:
    """Minimum size, cost, then dominance: each dropped cluster records why on its nodes."""
    forced = [any(_named(n, options.force_fuse_ops) for n in s.nodes) for s in subs]
    whole_graph = len(subs) == 1 and len(subs[0].nodes) == total
    kept = []
    for sub, force in zip(subs, forced):
        if not options.fallback or force:
            kept.append(sub)
        elif len(sub.nodes) < options.minimum_segment_size:
            _drop(sub, verdicts, "too-small", f"its segment has {len(sub.nodes)} operation(s), "
                  f"fewer than minimum_segment_size={options.minimum_segment_size}")
        elif options.cost_aware and options.subgraph_builder_function is None and \
                not whole_graph and sub.gain_s <= 0:   # a builder's choice is the user's
            _drop(sub, verdicts, "cost-rejected",
                  f"moving its segment's {sub.transfer_bytes} boundary bytes to and from the device "
                  f"costs more than it saves (estimated net {1e6 * sub.gain_s:.1f} us)")
        else:
            kept.append(sub)
    if options.fallback and kept:
        largest = max(kept, key=lambda s: len(s.nodes))
        if len(kept) > 1 and len(largest.nodes) > options.single_fusion_ratio_threshold * total:
            for sub in kept:
                if sub is not largest and not any(_named(n, options.force_fuse_ops)
                                                  for n in sub.nodes):
                    _drop(sub, verdicts, "not-dominant",
                          f"one subgraph holds {len(largest.nodes)} of {total} operations (more "
                          f"than single_fusion_ratio_threshold="
                          f"{options.single_fusion_ratio_threshold}); only it is kept")
            kept = [s for s in kept if s is largest or any(_named(n, options.force_fuse_ops)
                                                           for n in s.nodes)]
    return kept


def _units(graph: Graph, subs: list, host: list) -> list:
    """Execution order of subgraphs and host nodes: a topological order of the condensed graph
    (acyclic because clusters are convex), earliest first for determinism."""
    import heapq
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    unit_of = {id(n): n for n in host}
    for sub in subs:
        for n in sub.nodes:
            unit_of[id(n)] = sub
    units = list(host) + list(subs)
    first = {id(u): min(position[id(n)] for n in (u.nodes if isinstance(u, Subgraph) else [u]))
             for u in units}
    deps = {id(u): set() for u in units}
    users = {id(u): [] for u in units}
    for u in units:
        for n in (u.nodes if isinstance(u, Subgraph) else [u]):
            for v in n.inputs:
                if v is not None and v.producer is not None and id(v.producer) in unit_of:
                    d = unit_of[id(v.producer)]
                    if d is not u and id(d) not in deps[id(u)]:
                        deps[id(u)].add(id(d))
                        users[id(d)].append(u)
    ready = [(first[id(u)], id(u), u) for u in units if not deps[id(u)]]
    heapq.heapify(ready)
    order = []
    while ready:
        _, _, u = heapq.heappop(ready)
        order.append(u)
        for w in users[id(u)]:
            deps[id(w)].discard(id(u))
            if not deps[id(w)]:
                heapq.heappush(ready, (first[id(w)], id(w), w))
    assert len(order) == len(units), "condensed graph has a cycle: clusters are not convex"
    return order


def extract_graph(sub: Subgraph, name: str) -> Graph:
    """Copy a cluster into its own graph: boundary inputs become graph inputs."""
    g = Graph(name)
    env = {}
    for v in sub.inputs:
        env[id(v)] = g.add_input(v.name, v.type)
    for node in sub.nodes:
        ins = []
        for v in node.inputs:
            if v is None:
                ins.append(None)
            elif id(v) not in env:
                env[id(v)] = g.add_const(v.name, v.const)
                ins.append(env[id(v)])
            else:
                ins.append(env[id(v)])
        copy = g.add_node(node.op_type, ins, dict(node.attrs), name=node.name,
                          outputs=[o.name for o in node.outputs], native=node.native,
                          scope=node.scope)
        for o, c in zip(node.outputs, copy.outputs):
            c.type = o.type
            env[id(o)] = c
    g.outputs = [env[id(v)] for v in sub.outputs]
    return g
