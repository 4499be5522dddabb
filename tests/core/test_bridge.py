"""The plugins' shared bridge, driven by a toy framework: a list of (name, op, inputs, attrs)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from neuron_core.bridge import ConversionTable, Converter, Unsupported, analyze, compile_plan, run_neff
from neuron_core.errors import BadInputError, NeuronError

TABLE = ConversionTable("Toy", "toy")


@TABLE.register("relu")
def _relu(cv, x):
    return cv.op("Relu", [x])


@TABLE.register("scale")
def _scale(cv, x, k=2.0):
    return cv.op("Mul", [x, cv.const(k, x)])


@TABLE.register("dense")
def _dense(cv, x, w, b):
    # two core nodes for one native op: placed as one piece
    return cv.op("Add", [cv.op("MatMul", [x, w]), b])


@TABLE.register("clip")
def _clip(cv, x, lo=0.0):
    if lo < 0:
        raise Unsupported("toy clip with a negative bound is not lowered")
    return cv.op("Clip", [x, cv.const(lo, x)])


def _host(op, args, attrs):
    if op == "relu":
        return np.maximum(args[0], 0)
    if op == "scale":
        return args[0] * attrs.get("k", 2.0)
    if op == "dense":
        return args[0] @ args[1] + args[2]
    if op == "clip":
        return np.maximum(args[0], attrs["lo"])
    if op == "softsign":
        return args[0] / (1 + np.abs(args[0]))
    raise AssertionError(op)


def _toy_model(rng):
    w = rng.standard_normal((8, 8)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    nodes = [("d0", "dense", ["x", "w", "b"], {}), ("r0", "relu", ["d0"], {}),
             ("s0", "scale", ["r0"], {"k": 0.5}), ("ss", "softsign", ["s0"], {}),
             ("d1", "dense", ["ss", "w", "b"], {}), ("r1", "relu", ["d1"], {}),
             ("c1", "clip", ["r1"], {"lo": -1.0})]
    return nodes, {"w": w, "b": b}


def _convert(nodes, params, batch=4):
    cv = Converter(TABLE, "toy")
    cv.add_input("x", "x", (batch, 8), "float32")
    for k, arr in params.items():
        cv.add_const(k, arr, k)
    for name, op, ins, attrs in nodes:
        cv.convert(name, op, tuple(cv.value(i) for i in ins), attrs, [name],
                   [((batch, 8), "float32")], name=name)
    cv.set_outputs([nodes[-1][0]])
    return cv


def _execute(plan, nodes, params, x, **kw):
    """The host side the plugins build natively, written here in numpy."""
    env = {"x": x, **params}
    produced = {}
    for call in plan.calls:
        outs = run_neff(call.neff, [_materialize(k, env, produced, nodes) for k in call.input_keys],
                        **kw)
        produced.update(zip(call.output_keys, outs))
    return _materialize(nodes[-1][0], env, produced, nodes)


def _materialize(key, env, produced, nodes):
    if key in produced:
        return produced[key]
    if key not in env:
        name, op, ins, attrs = next(n for n in nodes if n[0] == key)
        env[key] = _host(op, [_materialize(i, env, produced, nodes) for i in ins], attrs)
    return env[key]


def _reference(nodes, params, x):
    return _materialize(nodes[-1][0], {"x": x, **params}, {}, nodes)


def test_bridge_plan_runs_split_model_like_reference(caplog):
    rng = np.random.default_rng(0)
    nodes, params = _toy_model(rng)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="Neuron"):
        plan = compile_plan(_convert(nodes, params), minimum_segment_size=1, cost_aware=False)
    assert len(plan.calls) == 2
    assert plan.calls[0].input_keys == ["x"] and plan.calls[0].output_keys == ["s0"]
    assert plan.calls[1].input_keys == ["ss"] and plan.calls[1].output_keys == ["r1"]
    assert "The neuron partitioner created 2 sub-graphs" in caplog.text
    rows = {r["name"]: r for r in plan.report.nodes}
    assert rows["c1"]["reason"] == "toy clip with a negative bound is not lowered"
    assert "'softsign' has no Neuron conversion" in rows["ss"]["reason"]
    got = _execute(plan, nodes, params, x, precision="fp32")
    np.testing.assert_allclose(got, _reference(nodes, params, x), rtol=1e-5, atol=1e-5)


def test_bridge_keeps_a_native_op_in_one_place():
    rng = np.random.default_rng(1)
    nodes, params = _toy_model(rng)
    # deny only the MatMul half of the first dense: its Add must follow it to the host
    cv = _convert(nodes, params)
    matmul = next(n.name for n in cv.graph.nodes if n.op_type == "MatMul")
    plan = compile_plan(cv, minimum_segment_size=1, cost_aware=False, no_fuse_ops=[matmul])
    placed = {r["name"]: r["placement"] for r in plan.report.nodes}
    add = next(n.name for n in cv.graph.nodes if n.op_type == "Add")
    assert placed[matmul] == "host" and placed[add] != "neuron"
    assert all(k != "d0" for c in plan.calls for k in c.output_keys)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    np.testing.assert_allclose(_execute(plan, nodes, params, x, precision="fp32"),
                               _reference(nodes, params, x), rtol=1e-5, atol=1e-5)


def test_bridge_dynamic_batch_chunks_and_pads():
    rng = np.random.default_rng(2)
    nodes, params = _toy_model(rng)
    nodes = nodes[:3]
    plan = compile_plan(_convert(nodes, params), minimum_segment_size=1)
    call, = plan.calls
    x = rng.standard_normal((11, 8)).astype(np.float32)
    got, = run_neff(call.neff, [x], dynamic_batch=True, precision="fp32")
    np.testing.assert_allclose(got, _reference(nodes, params, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(BadInputError, match=r"has shape \(11, 8\), expected \(4, 8\).*"
                                            "dynamic_batch_size=True"):
        run_neff(call.neff, [x], precision="fp32")
    with pytest.raises(BadInputError, match=r"only dimension 0"):
        run_neff(call.neff, [x[:, :4]], dynamic_batch=True, precision="fp32")


def test_bridge_analyze_counts_native_ops():
    rng = np.random.default_rng(3)
    nodes, params = _toy_model(rng)
    info = analyze(_convert(nodes, params))
    assert info["total_count"] == 7 and info["supported_count"] == 5
    assert info["unsupported_operators"] == {"softsign": 1, "clip": 1}
    assert info["operator_count"]["dense"] == 2
    assert round(info["percent_supported"], 2) == round(500 / 7, 2)


def test_bridge_rejects_unknown_option_and_duplicate_rule():
    rng = np.random.default_rng(4)
    nodes, params = _toy_model(rng)
    with pytest.raises(NeuronError, match="unknown option.*minimum_segment_size"):
        compile_plan(_convert(nodes, params), minimum_segmnt_size=1)
    with pytest.raises(NeuronError, match="two conversion rules"):
        TABLE.register("relu")(lambda cv, x: x)


def test_bridge_estimate_chains_subgraphs_and_adds_host_time():
    from neuron_core.bridge import estimate_neffs, neuron_time
    from neuron_core.compiler.program import Program
    from neuron_core.neff import read_neff
    from neuron_core.estimate import estimate_program
    rng = np.random.default_rng(0)
    nodes, params = _toy_model(rng)
    plan = compile_plan(_convert(nodes, params), minimum_segment_size=1, cost_aware=False)
    singles = []
    for call in plan.calls:
        neff = read_neff(call.neff)
        singles.append(estimate_program(Program.from_json(neff.program), neff.metadata,
                                        instance="inf1.xlarge").instances["inf1.xlarge"])
    est = estimate_neffs([c.neff for c in plan.calls], host_ms=1.5, name="toy")
    row = est.instances["inf1.xlarge"]
    # a request runs both subgraphs in turn on its core, then pays the host work
    assert row.latency_ms_p50 == pytest.approx(sum(s.latency_ms_p50 for s in singles) + 1.5)
    assert row.device_ms == pytest.approx(sum(s.device_ms for s in singles))
    assert row.host_ms == 1.5
    assert row.throughput_per_s == pytest.approx(4 * 4 * 1e3 / row.latency_ms_p50)
    assert set(est.instances) == {"inf1.xlarge", "inf1.2xlarge", "inf1.6xlarge", "inf1.24xlarge"}
    assert any("2 Neuron subgraphs run one after another" in n for n in est.notes)
    assert "host ms" in est.format()
    with pytest.raises(NeuronError, match="host_ms must be"):
        estimate_neffs([], host_ms=-1)
    # twice the compiled batch: every part, and the host work, runs twice
    double = estimate_neffs([c.neff for c in plan.calls], host_ms=1.5, batch_size=8)
    two = double.instances["inf1.xlarge"]
    assert two.device_ms == pytest.approx(2 * row.device_ms) and two.host_ms == 3.0
    assert two.batch_size == 8 and not any("padded" in n for n in double.notes)
    # a pipeline replica is fed by its own host thread: host work caps each replica, not the chip
    piped = compile_plan(_convert(nodes, params), minimum_segment_size=1, cost_aware=False,
                         compiler_args=["--neuroncore-pipeline-cores", "2"])
    est = estimate_neffs([c.neff for c in piped.calls], host_ms=50.0)
    small, big = est.instances["inf1.xlarge"], est.instances["inf1.6xlarge"]
    assert (small.replicas, big.replicas) == (2, 8)
    assert small.throughput_per_s == pytest.approx(2 * 4 * 1e3 / 50.0)
    assert big.throughput_per_s == pytest.approx(4 * small.throughput_per_s)
    # the host time the plugins measure: wall time outside run_neff
    x = rng.standard_normal((4, 8)).astype(np.float32)
    with neuron_time() as inside:
        _execute(plan, nodes, params, x, precision="fp32")
    assert inside["calls"] == 2 and inside["seconds"] > 0
