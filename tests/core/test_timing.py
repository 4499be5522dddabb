"""The timing model (runtime.timing) and the estimates built on it (neuron_core.estimate)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neuron_core import runtime
from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.errors import NeuronError
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.hw import INF1, INF1_INSTANCES
from neuron_core.models.builders import small_cnn
from neuron_core.estimate import estimate_program, split_stages
from neuron_core.runtime.timing import TRACKS, compute_seconds, simulate


@pytest.fixture(autouse=True)
def fresh_devices(fresh_runtime, monkeypatch):
    monkeypatch.delenv("NEURON_PROFILE", raising=False)


def _compile(nodes, inputs, outputs, inits=(), args=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return compile_graph(from_onnx(model), parse_compiler_args(list(args)))


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _matmul(m: int, k: int, n: int):
    w = numpy_helper.from_array(np.ones((k, n), np.float32), "w")
    return _compile([helper.make_node("MatMul", ["x", "w"], ["y"])], [_f32("x", (m, k))],
                    [_f32("y", (m, n))], [w])


def _add(rows: int, cols: int):
    return _compile([helper.make_node("Add", ["a", "b"], ["y"])],
                    [_f32("a", (rows, cols)), _f32("b", (rows, cols))], [_f32("y", (rows, cols))],
                    args=["--fast-math", "none"])  # fp32 elementwise: no casts


def test_matmul_twice_the_size_takes_about_twice_the_cycles():
    small = simulate(_matmul(512, 1024, 1024).program)
    large = simulate(_matmul(512, 1024, 2048).program)
    pe_small, pe_large = (next(e for e in t.events if e.name == "MatMul") for t in (small, large))
    assert 1.9 < pe_large.dur / pe_small.dur < 2.1
    # the whole execution also loads and casts the same input, then stores twice the output
    assert 1.6 < large.cycles / small.cycles < 2.1


def test_memory_bound_op_is_bandwidth_limited():
    program = _add(1024, 2048).program  # 16 MiB in, 8 MiB out, 2M additions
    t = simulate(program)
    assert t.dram_bytes == 3 * 1024 * 2048 * 4
    floor = t.dram_bytes / t.bandwidth
    assert floor <= t.device_s < 1.1 * floor
    add = next(i for i in program.instrs if i.op == "Add")
    assert compute_seconds(add, program) < 0.05 * t.device_s  # the engine waits for the bytes
    faster = dataclasses.replace(INF1, core_dma_bytes_per_s=2 * INF1.core_dma_bytes_per_s,
                                 dram_efficiency=1.0, dram_bytes_per_s=2 * INF1.dram_bytes_per_s)
    assert simulate(program, faster).device_s == pytest.approx(t.device_s / 2, rel=0.1)


def test_cores_of_a_chip_share_its_dram_bandwidth():
    program = _add(1024, 2048).program
    alone, four = simulate(program, active_cores=1), simulate(program, active_cores=4)
    assert four.bandwidth == pytest.approx(INF1.dram_bytes_per_s * INF1.dram_efficiency / 4)
    assert four.device_s > 1.5 * alone.device_s


def test_independent_engines_overlap():
    w = numpy_helper.from_array(np.ones((512, 2048), np.float32), "w")
    compiled = _compile([helper.make_node("MatMul", ["x", "w"], ["y1"]),
                         helper.make_node("Sigmoid", ["z"], ["y2"])],
                        [_f32("x", (256, 512)), _f32("z", (256, 1024))],
                        [_f32("y1", (256, 2048)), _f32("y2", (256, 1024))], [w],
                        args=["--fast-math", "none"])
    t = simulate(compiled.program)
    pe = next(e for e in t.events if e.track == "TensorEngine")
    act = next(e for e in t.events if e.track == "ScalarEngine" and e.name == "Sigmoid")
    assert pe.start < act.end and act.start < pe.end  # they run at the same time
    busy = t.busy()
    assert t.device_s < (busy["TensorEngine"] + busy["ScalarEngine"] + busy["DMA in"]
                         + busy["DMA out"])


def test_engines_are_in_order_queues_and_respect_dependencies():
    program = compile_graph(from_onnx(small_cnn()), parse_compiler_args([])).program
    t = simulate(program)
    for track in TRACKS:
        events = [e for e in t.events if e.track == track]
        assert all(a.end <= b.start + 1e-12 for a, b in zip(events, events[1:])), track
        assert [e.index for e in events] == sorted(e.index for e in events), track
    done = {}
    for e in t.events:
        if e.kind in ("compute", "move"):
            done[e.index] = e
    for j, instr in enumerate(program.instrs):
        for b in instr.inputs:
            producer = next((i for i in range(j) if b in program.instrs[i].outputs), None)
            if producer is not None:
                assert done[j].start >= done[producer].end - 1e-12


def test_weights_overflowing_the_sbuf_are_fetched_every_execution():
    fits = simulate(_matmul(128, 512, 512).program)       # 0.5 MiB of bf16 weights
    spills = simulate(_matmul(128, 2048, 2048).program)   # 8 MiB: more than the SBUF
    assert fits.resident_bytes == 512 * 512 * 2
    assert spills.resident_bytes == 0
    assert spills.dram_bytes >= 2048 * 2048 * 2


def test_timeline_is_a_pure_function_of_the_program_and_matches_execution():
    compiled = compile_graph(from_onnx(small_cnn()), parse_compiler_args([]))
    ahead = simulate(compiled.program)
    assert simulate(compiled.program).events == ahead.events
    with runtime.load(compiled.to_bytes()) as model:
        model.run(np.zeros((1, 3, 32, 32), np.float32))
        assert model.last_cycles == ahead.cycles
        assert model.timeline().events == ahead.events


def test_model_estimate_covers_every_instance_size():
    compiled = compile_graph(from_onnx(small_cnn()), parse_compiler_args([]))
    with runtime.load(compiled.to_bytes()) as model:
        est = model.estimate()
        one = model.estimate("inf1.xlarge", cores=1)
    assert list(est.instances) == list(INF1_INSTANCES)
    cores = {name: e.cores for name, e in est.instances.items()}
    assert cores == {"inf1.xlarge": 4, "inf1.2xlarge": 4, "inf1.6xlarge": 16, "inf1.24xlarge": 64}
    x = est.instances["inf1.xlarge"]
    assert x.latency_ms_p50 == pytest.approx(x.device_ms + x.transfer_ms)
    assert est.instances["inf1.24xlarge"].throughput_per_s == pytest.approx(
        16 * x.throughput_per_s, rel=0.01)
    assert one.instances["inf1.xlarge"].throughput_per_s < x.throughput_per_s
    assert estimate_program(compiled.program, compiled.metadata).to_json()["instances"] == \
        {k: v.to_json() for k, v in est.instances.items()}


def test_estimate_batch_size_runs_back_to_back_and_host_time_adds():
    compiled = compile_graph(from_onnx(small_cnn(batch=2)), parse_compiler_args([]))
    base = estimate_program(compiled.program, compiled.metadata, instance="inf1.xlarge")
    six = estimate_program(compiled.program, compiled.metadata, instance="inf1.xlarge",
                           batch_size=5, host_ms=2.0)
    b, s = base.instances["inf1.xlarge"], six.instances["inf1.xlarge"]
    assert base.compiled_batch == 2 and six.executions_per_request == 3
    assert s.latency_ms_p50 == pytest.approx(3 * b.latency_ms_p50 + 2.0, rel=0.01)
    assert "3 execution(s) of the compiled batch 2" in six.notes[0] and "padded" in six.notes[0]


def test_inflight_requests_follow_littles_law():
    compiled = compile_graph(from_onnx(small_cnn()), parse_compiler_args([]))
    e = estimate_program(compiled.program, compiled.metadata, instance="inf1.xlarge",
                         inflight=3).instances["inf1.xlarge"]
    per_core = e.throughput_per_s / e.replicas
    assert e.latency_ms_p50 == pytest.approx(3 * 1e3 / per_core, rel=0.01)


def test_pipeline_estimate_uses_stages_on_several_cores():
    compiled = compile_graph(from_onnx(small_cnn()),
                             parse_compiler_args(["--neuroncore-pipeline-cores", "8"]))
    est = estimate_program(compiled.program, compiled.metadata)
    assert est.pipeline_cores == 8
    assert est.instances["inf1.xlarge"].latency_ms_p50 is None
    assert "needs 8 NeuronCores (pipeline)" in est.instances["inf1.xlarge"].note
    big = est.instances["inf1.6xlarge"]
    assert big.replicas == 2 and big.throughput_per_s > 0
    text = est.format()
    assert "pipeline over 8 NeuronCores" in text and "needs 8 NeuronCores" in text


def test_split_stages_balances_contiguous_stages():
    costs = [1.0, 1.0, 1.0, 1.0, 4.0, 1.0, 1.0]
    stages = split_stages(lambda a, b: sum(costs[a:b]), 3, len(costs))
    assert stages[0][0] == 0 and stages[-1][1] == len(costs) and len(stages) == 3
    assert all(a[1] == b[0] for a, b in zip(stages, stages[1:]))
    assert max(sum(costs[a:b]) for a, b in stages) == 4.0
    with pytest.raises(NeuronError, match="cannot pipeline 7 instructions over 9"):
        split_stages(lambda a, b: sum(costs[a:b]), 9, len(costs))


@pytest.mark.parametrize("kwargs, needle", [
    ({"instance": "inf1.huge"}, "unknown instance 'inf1.huge'"),
    ({"cores": 0}, "cores must be an integer >= 1"),
    ({"batch_size": 2.5}, "batch_size must be an integer"),
    ({"host_ms": -1}, "host_ms must be a number"),
])
def test_estimate_rejects_bad_arguments(kwargs, needle):
    compiled = compile_graph(from_onnx(small_cnn()), parse_compiler_args([]))
    with pytest.raises(NeuronError, match=needle.replace("(", r"\(")):
        estimate_program(compiled.program, compiled.metadata, **kwargs)


def _matmul_chain(layers: int, width: int, args=()):
    inits = [numpy_helper.from_array(np.full((width, width), 0.01, np.float32), f"w{i}")
             for i in range(layers)]
    nodes = [helper.make_node("MatMul", ["x" if i == 0 else f"h{i}", f"w{i}"],
                              ["y" if i == layers - 1 else f"h{i + 1}"]) for i in range(layers)]
    return _compile(nodes, [_f32("x", (128, width))], [_f32("y", (128, width))], inits, args)


def test_prefetched_weights_shorten_a_streaming_execution_by_their_transfer_time():
    program = _matmul_chain(4, 2048).program  # 4 x 8 MiB of bf16 weights: streamed
    cold = simulate(program)
    warm = simulate(program, prefetched=INF1.sbuf_stream_bytes)
    assert warm.dram_bytes == cold.dram_bytes  # the same bytes move, only earlier
    saved = INF1.sbuf_stream_bytes / cold.bandwidth
    assert cold.device_s - warm.device_s == pytest.approx(saved, rel=0.1)
    resident = simulate(_matmul(128, 512, 512).program, prefetched=INF1.sbuf_stream_bytes)
    assert resident.device_s == simulate(_matmul(128, 512, 512).program).device_s


def test_pipeline_latency_counts_each_stage_from_its_inputs():
    compiled = _matmul_chain(12, 1536, ["--neuroncore-pipeline-cores", "4"])
    e = estimate_program(compiled.program, compiled.metadata,
                         instance="inf1.xlarge").instances["inf1.xlarge"]
    period = 4 * e.batch_size / e.throughput_per_s * 1e3  # 4 stages, one period each
    # every stage streams weights, so each starts its next request's weights while it waits
    # for the previous stage: a request's latency is shorter than 4 full stage periods
    bw = INF1.core_dram_bytes_per_s(4)
    saved = 4 * INF1.sbuf_stream_bytes / bw * 1e3
    assert e.latency_ms_p50 < period - 0.8 * saved
    assert e.latency_ms_p50 > period - 1.2 * saved - 4 * INF1.launch_overhead_s * 1e3


def test_pipeline_runs_a_larger_batch_one_slowest_stage_apart():
    compiled = _matmul_chain(12, 1536, ["--neuroncore-pipeline-cores", "4"])
    one, three = (estimate_program(compiled.program, compiled.metadata, instance="inf1.xlarge",
                                   batch_size=n).instances["inf1.xlarge"] for n in (128, 384))
    period_ms = 128 / one.throughput_per_s * 1e3
    launch_ms = INF1.launch_overhead_s * 1e3
    assert three.device_ms == pytest.approx(one.device_ms + 2 * (period_ms + launch_ms), rel=1e-6)
    assert three.throughput_per_s == pytest.approx(one.throughput_per_s, rel=1e-6)


def test_an_op_this_version_does_not_know_still_times():
    """A NEFF's instruction whose op the registry does not know (written by a newer compiler)
    times with the default facts instead of failing the estimate."""
    program = _matmul(16, 32, 8).program
    known = simulate(program).device_s
    program.instrs[0].op = "FutureMatMul"
    assert simulate(program).device_s == pytest.approx(known, rel=0.5)
