"""The partitioner: golden cases by hand, invariants on random DAGs (hypothesis)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neuron_core.errors import UnsupportedOpError
from neuron_core.ir import Graph, TensorType
from neuron_core.ops import infer_node
from neuron_core.partition import PartitionOptions, partition
from neuron_core.partition.cluster import cluster_indices, edges

T = TensorType((64, 64), "float32")


def build(spec, outputs=None) -> Graph:
    """spec: [(name, op_type, [input names])]; 'x' is the graph input. Sin/Cos are unsupported."""
    g = Graph("golden")
    env = {"x": g.add_input("x", T)}
    for name, op, ins in spec:
        node = g.add_node(op, [env[i] for i in ins], name=name, outputs=[name])
        if op in ("Sin", "Cos"):
            node.outputs[0].type = T
        else:
            infer_node(node)
        env[name] = node.outputs[0]
    g.outputs = [env[o] for o in (outputs or [spec[-1][0]])]
    return g


def placement(part) -> list:
    """Subgraphs as sorted lists of node names."""
    return [sorted(n.name for n in s.nodes) for s in part.subgraphs]


EXACT = dict(cost_aware=False, minimum_segment_size=1)


def test_chain_splits_at_the_unsupported_op():
    g = build([("a", "Relu", ["x"]), ("b", "Neg", ["a"]), ("c", "Sin", ["b"]),
               ("d", "Relu", ["c"]), ("e", "Neg", ["d"])])
    part = partition(g, PartitionOptions(**EXACT))
    assert placement(part) == [["a", "b"], ["d", "e"]]
    assert part.verdicts["c"].kind == "unsupported-op"
    assert [getattr(u, "name", None) or "sub" for u in part.units] == ["sub", "c", "sub"]


def test_diamond_never_merges_across_the_host_path():
    # a -> b(host) -> d and a -> c -> d: {a, c, d} would need b's result inside itself
    g = build([("a", "Relu", ["x"]), ("b", "Sin", ["a"]), ("c", "Neg", ["a"]),
               ("d", "Add", ["b", "c"])])
    groups = placement(partition(g, PartitionOptions(**EXACT)))
    assert not any("a" in grp and "d" in grp for grp in groups)
    assert sorted(sum(groups, [])) == ["a", "c", "d"]
    assert len(groups) == 2


def test_cycle_trap_a_to_c_directly_and_through_the_host():
    g = build([("a", "Relu", ["x"]), ("b", "Cos", ["a"]), ("c", "Add", ["a", "b"])])
    groups = placement(partition(g, PartitionOptions(**EXACT)))
    assert groups == [["a"], ["c"]]


def test_independent_host_branch_does_not_split_the_main_chain():
    # x -> a -> b -> d, x -> h(host) -> d: all of a, b, d can be one subgraph
    g = build([("a", "Relu", ["x"]), ("b", "Neg", ["a"]), ("h", "Sin", ["x"]),
               ("d", "Add", ["b", "h"])])
    assert placement(partition(g, PartitionOptions(**EXACT))) == [["a", "b", "d"]]


def test_branches_each_get_their_own_subgraph():
    g = build([("a", "Relu", ["x"]), ("a2", "Neg", ["a"]), ("h", "Sin", ["a2"]),
               ("b", "Relu", ["h"]), ("b2", "Neg", ["b"]), ("k", "Cos", ["a2"]),
               ("c", "Relu", ["k"]), ("c2", "Neg", ["c"]), ("m", "Add", ["b2", "c2"])])
    groups = placement(partition(g, PartitionOptions(**EXACT)))
    assert ["a", "a2"] in groups
    assert len(groups) == 2 and sorted(groups[1]) == ["b", "b2", "c", "c2", "m"]


def test_minimum_segment_size_drops_small_segments_with_a_reason():
    g = build([("a", "Relu", ["x"]), ("h", "Sin", ["a"]), ("b", "Relu", ["h"]),
               ("b2", "Neg", ["b"])])
    part = partition(g, PartitionOptions(minimum_segment_size=2, cost_aware=False))
    assert placement(part) == [["b", "b2"]]
    assert part.verdicts["a"].kind == "too-small"
    assert "minimum_segment_size=2" in part.verdicts["a"].reason


def test_no_fuse_ops_by_type_and_name_and_force_fuse_ops():
    g = build([("a", "Relu", ["x"]), ("b", "Neg", ["a"]), ("c", "Relu", ["b"])])
    part = partition(g, PartitionOptions(no_fuse_ops=("Neg",), **EXACT))
    assert part.verdicts["b"].kind == "user-denied" and placement(part) == [["a"], ["c"]]
    part = partition(g, PartitionOptions(no_fuse_ops=("c",), **EXACT))
    assert placement(part) == [["a", "b"]]
    part = partition(g, PartitionOptions(no_fuse_ops=("Neg",), force_fuse_ops=("a",),
                                         minimum_segment_size=5, cost_aware=False))
    assert placement(part) == [["a"]]  # forced despite being too small
    assert part.verdicts["c"].kind == "too-small"


def test_subgraph_builder_function_decides_per_node():
    g = build([("a", "Relu", ["x"]), ("b", "Neg", ["a"]), ("c", "Relu", ["b"])])
    part = partition(g, PartitionOptions(subgraph_builder_function=lambda n: n.name != "a",
                                         **EXACT))
    assert placement(part) == [["b", "c"]]
    assert "subgraph_builder_function" in part.verdicts["a"].reason


def test_strict_mode_lists_every_misfit():
    g = build([("a", "Relu", ["x"]), ("s1", "Sin", ["a"]), ("s2", "Cos", ["s1"])])
    with pytest.raises(UnsupportedOpError) as info:
        partition(g, PartitionOptions(fallback=False))
    message = str(info.value)
    assert "%s1 (Sin)" in message and "%s2 (Cos)" in message and "2 of 3" in message


def test_single_fusion_ratio_keeps_only_the_dominant_subgraph():
    spec = [(f"r{i}", "Relu" if i % 2 else "Neg", [f"r{i - 1}" if i else "x"]) for i in range(8)]
    spec += [("h", "Sin", ["r7"]), ("t1", "Relu", ["h"]), ("t2", "Neg", ["t1"])]
    part = partition(build(spec), PartitionOptions(**EXACT))
    assert placement(part) == [sorted(f"r{i}" for i in range(8))]
    assert part.verdicts["t1"].kind == "not-dominant"
    part = partition(build(spec), PartitionOptions(single_fusion_ratio_threshold=0.9, **EXACT))
    assert len(part.subgraphs) == 2


def test_cost_filter_drops_a_fragment_that_only_moves_data():
    g = build([("a", "Relu", ["x"]), ("h", "Sin", ["a"]), ("t", "Transpose", ["h"]),
               ("t2", "Transpose", ["t"]), ("h2", "Cos", ["t2"])])
    part = partition(g, PartitionOptions(minimum_segment_size=1))
    assert part.verdicts["t"].kind == "cost-rejected"
    assert "boundary bytes" in part.verdicts["t"].reason


def test_report_lines_json_and_dot():
    g = build([("a", "Relu", ["x"]), ("b", "Neg", ["a"]), ("c", "Sin", ["b"]),
               ("d", "Relu", ["c"]), ("e", "Neg", ["d"]), ("f", "Sin", ["e"])])
    report = partition(g, PartitionOptions(**EXACT)).report
    text = str(report)
    assert "66.7% of all operations (4 of 6) are supported" in text
    assert "Unsupported operators: Sin (2)" in text
    assert "The neuron partitioner created 2 sub-graphs" in text
    assert "Compiled these operators (and counts) to Neuron: Relu: 2, Neg: 2" in text
    assert "Fix first (fragments each unsupported op type causes): Sin (1)" in text
    data = json.loads(report.to_json())
    assert data["num_subgraphs"] == 2 and data["percent_on_neuron"] == pytest.approx(66.67)
    assert data["subgraphs"][0]["transfer_bytes"] == 2 * T.nbytes
    dot = report.to_dot()
    assert dot.startswith("digraph") and "cluster_0" in dot and '"c" [label="Sin' in dot
    assert report.num_subgraphs == 2 and round(report.percent_on_neuron) == 67
    assert "  on the host: c (Sin): " in text and "  on the host: f (Sin): " in text


def test_report_arithmetic_on_neuron_ignores_data_movement():
    # a, b placed; c (Sin) on the host; d, e placed -> arithmetic placed: a, d of a, c, d
    g = build([("a", "Relu", ["x"]), ("b", "Identity", ["a"]), ("c", "Sin", ["b"]),
               ("d", "Relu", ["c"]), ("e", "Flatten", ["d"])])
    report = partition(g, PartitionOptions(**EXACT)).report
    assert report.percent_on_neuron == pytest.approx(80.0)
    assert report.percent_arithmetic_on_neuron == pytest.approx(200 / 3)
    strict = partition(g, PartitionOptions(cost_aware=False, minimum_segment_size=3)).report
    assert strict.percent_arithmetic_on_neuron == 0.0
    assert json.loads(report.to_json())["percent_arithmetic_on_neuron"] == pytest.approx(66.67)


# -- properties on random DAGs -----------------------------------------------------------------------
@st.composite
def random_dag(draw, max_nodes=40):
    n = draw(st.integers(2, max_nodes))
    supported = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    preds = []
    for i in range(n):
        k = draw(st.integers(1, min(2, i + 1)))
        preds.append(sorted(set(draw(st.lists(st.integers(-1, i - 1), min_size=k, max_size=k)))))
    return supported, preds


def _graph_from(preds) -> Graph:
    """The DAG's shape as IR (placement comes from the mask given to the clustering)."""
    spec = [(f"n{i}", "Add" if len(ps) == 2 else "Relu", ["x" if p < 0 else f"n{p}" for p in ps])
            for i, ps in enumerate(preds)]
    return build(spec, outputs=[f"n{len(preds) - 1}"])


def _reach(succs) -> list:
    n = len(succs)
    reach = [set() for _ in range(n)]
    for i in range(n - 1, -1, -1):
        for s in succs[i]:
            reach[i].add(s)
            reach[i] |= reach[s]
    return reach


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dag())
def test_clusters_are_convex_acyclic_complete_and_deterministic(dag):
    supported, preds = dag
    g = _graph_from(preds)
    mask = list(supported)
    clusters = cluster_indices(g.nodes, mask)
    assert clusters == cluster_indices(g.nodes, mask)
    members = [i for c in clusters for i in c]
    assert sorted(members) == [i for i, s in enumerate(mask) if s]  # each once, hosts never
    _, succs = edges(g.nodes)
    reach = _reach(succs)
    owner = {i: k for k, c in enumerate(clusters) for i in c}
    for c in clusters:
        inside = set(c)
        for u in c:
            for w in reach[u] - inside:
                assert not (reach[w] & inside), "a path leaves the cluster and comes back"
    # condensed graph acyclic: units (clusters, host nodes) have a topological order
    unit = {i: ("c", owner[i]) if i in owner else ("h", i) for i in range(len(mask))}
    cedges = {(unit[i], unit[s]) for i in range(len(mask)) for s in succs[i] if unit[i] != unit[s]}
    indeg = {u: 0 for u in set(unit.values())}
    for _, b in cedges:
        indeg[b] += 1
    ready = [u for u, d in indeg.items() if d == 0]
    seen = 0
    while ready:
        u = ready.pop()
        seen += 1
        for a, b in cedges:
            if a == u:
                indeg[b] -= 1
                if indeg[b] == 0:
                    ready.append(b)
    assert seen == len(indeg)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_dag(max_nodes=12))
def test_fallback_run_equals_host_only_run(dag):
    """Random DAG as ONNX (Sin unsupported), split and run: equal to onnxruntime alone."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    import neuron_core.onnx as nonnx
    supported, preds = dag
    nodes = []
    for i, (ok, ps) in enumerate(zip(supported, preds)):
        ins = ["x" if p < 0 else f"n{p}" for p in ps]
        if len(ins) == 2:
            op = "Add" if ok else "Max"
            nodes.append(helper.make_node(op, ins, [f"n{i}"], name=f"n{i}"))
        else:
            nodes.append(helper.make_node("Tanh" if ok else "Sin", ins, [f"n{i}"], name=f"n{i}"))
    outs = sorted({f"n{i}" for i in range(len(nodes))} - {i for n in nodes for i in n.input})
    graph = helper.make_graph(nodes, "rand", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [4, 8])], [helper.make_tensor_value_info(o, TensorProto.FLOAT,
                                                                         [4, 8]) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    deny = tuple(f"n{i}" for i, ok in enumerate(supported) if not ok and len(preds[i]) == 2)
    compiled = nonnx.compile(model, precision="fp32", no_fuse_ops=deny, **EXACT)
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    expected = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"]).run(None, {"x": x})
    for got, want in zip(compiled.run({"x": x}), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert onnx.checker.check_model(compiled.proto) is None
