"""Compiler passes: each checked by its before/after IR text and by a numeric run of both forms."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.compiler.lowering import fusion_groups
from neuron_core.compiler.passes import fold_batchnorm, remove_identities
from neuron_core.errors import CompilerError, CompilerOptionError
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.runtime import load


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in dict(inits).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _fp32(graph, feed):
    with load(compile_graph(graph, parse_compiler_args([])).to_bytes(), precision="fp32") as m:
        return m.run(feed)


def _vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_frontend_folds_shape_chains_and_constant_of_shape():
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["flat"]),
             helper.make_node("ConstantOfShape", ["cshape"], ["ones"],
                              value=numpy_helper.from_array(np.array([1.0], np.float32))),
             helper.make_node("Add", ["flat", "ones"], ["y"])]
    inits = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64), "cshape": np.array([2, 12], np.int64)}
    g = from_onnx(_model(nodes, [_vi("x", [2, 3, 4])], [_vi("y", None)], inits))
    assert [n.op_type for n in g.nodes] == ["Reshape", "Add"]
    assert "%shape = const : i64[2]" in str(g) and "%ones = const : f32[2,12]" in str(g)


def test_fold_batchnorm_into_conv():
    rng = np.random.default_rng(0)
    inits = {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "b": rng.standard_normal(4).astype(np.float32),
             "s": rng.uniform(0.5, 2, 4).astype(np.float32),
             "t": rng.standard_normal(4).astype(np.float32),
             "m": rng.standard_normal(4).astype(np.float32),
             "v": rng.uniform(0.5, 2, 4).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "s", "t", "m", "v"], ["y"])]
    model = _model(nodes, [_vi("x", [1, 3, 8, 8])], [_vi("y", [1, 4, 8, 8])], inits)
    feed = {"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}
    before = from_onnx(model)
    assert [n.op_type for n in before.nodes] == ["Conv", "BatchNormalization"]
    after = fold_batchnorm(from_onnx(model))
    assert [n.op_type for n in after.nodes] == ["Conv"]
    assert after.outputs[0].name == "y"  # the graph output keeps its name
    assert "%y = Conv" in str(after)
    import onnxruntime as ort
    expected, = ort.InferenceSession(model.SerializeToString(),
                                     providers=["CPUExecutionProvider"]).run(None, feed)
    np.testing.assert_allclose(_fp32(after, feed)[0], expected, rtol=1e-5, atol=1e-5)


def test_remove_identities_keeps_output_names():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Identity", ["r"], ["i"]),
             helper.make_node("Dropout", ["i"], ["y"])]
    g = remove_identities(from_onnx(_model(nodes, [_vi("x", [2, 2])], [_vi("y", [2, 2])])))
    assert str(g).splitlines()[1:] == ["  %y = Relu(%x) : f32[2,2]", "  return %y", "}"]
    x = np.array([[-1, 2], [3, -4]], np.float32)
    assert _fp32(g, {"x": x})[0].tolist() == [[0, 2], [3, 0]]


def test_identity_of_an_input_becomes_a_copy():
    g = from_onnx(_model([helper.make_node("Identity", ["x"], ["y"])], [_vi("x", [3])],
                         [_vi("y", [3])]))
    compiled = compile_graph(g, parse_compiler_args([]))
    assert [i.op for i in compiled.program.instrs] == ["Identity"]
    x = np.arange(3, dtype=np.float32)
    with load(compiled.to_bytes()) as m:
        y, = m.run([x])
    assert y.tolist() == [0, 1, 2] and not np.shares_memory(x, y)


def test_matmul_absorbs_bias_and_activation():
    rng = np.random.default_rng(1)
    inits = {"w": rng.standard_normal((4, 5)).astype(np.float32),
             "b": rng.standard_normal(5).astype(np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Relu", ["a"], ["y"])]
    g = from_onnx(_model(nodes, [_vi("x", [3, 4])], [_vi("y", [3, 5])], inits))
    groups = fusion_groups(g)
    assert [[n.op_type for n in grp] for grp in groups] == [["MatMul", "Add", "Relu"]]
    compiled = compile_graph(g, parse_compiler_args(["--fast-math", "fp32-cast-matmult-bf16"]))
    pe = [i for i in compiled.program.instrs if i.engine == "TensorEngine"]
    assert len(pe) == 1 and [p["op"] for p in pe[0].post] == ["Add", "Relu"]
    x = rng.standard_normal((3, 4)).astype(np.float32)
    expected = np.maximum(x @ inits["w"] + inits["b"], 0)
    np.testing.assert_allclose(_fp32(g, {"x": x})[0], expected, rtol=1e-5, atol=1e-6)


def test_fusion_stops_at_a_shared_value():
    inits = {"w": np.ones((4, 4), np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Relu", ["m"], ["r"]),
             helper.make_node("Add", ["m", "r"], ["y"])]
    g = from_onnx(_model(nodes, [_vi("x", [2, 4])], [_vi("y", [2, 4])], inits))
    assert [len(grp) for grp in fusion_groups(g)] == [1, 1, 1]


def test_failing_pass_is_named_with_the_passes_before(monkeypatch):
    from neuron_core.compiler import pipeline

    def broken(graph):
        raise ZeroDivisionError("boom")
    monkeypatch.setattr(pipeline, "PIPELINE",
                        pipeline.PIPELINE[:2] + [pipeline.graph_pass("broken", broken)])
    g = from_onnx(_model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [1])], [_vi("y", [1])]))
    with pytest.raises(CompilerError, match=r"'broken' failed \(after infer_types, fold_constants\)"):
        compile_graph(g, parse_compiler_args([]))


def test_verify_env_runs_the_verifier_after_each_pass(monkeypatch):
    from neuron_core.compiler import pipeline

    def corrupt(graph):
        graph.nodes.reverse()
        return graph
    monkeypatch.setenv("NEURON_VERIFY", "1")
    monkeypatch.setattr(pipeline, "PIPELINE", [pipeline.graph_pass("corrupt", corrupt)])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    g = from_onnx(_model(nodes, [_vi("x", [1])], [_vi("y", [1])]))
    with pytest.raises(Exception, match="used before it is defined"):
        compile_graph(g, parse_compiler_args([]))


def test_the_pipeline_names_every_stage():
    from neuron_core.compiler import pipeline
    assert [p.name for p in pipeline.PIPELINE] == [
        "infer_types", "fold_constants", "remove_identities", "fold_batchnorm", "check_support",
        "fuse", "assign_precision", "lower", "plan_memory"]


def test_a_failing_memory_plan_is_named_as_such(monkeypatch):
    """The stages after the graph passes go through the same loop: a plan_memory failure names
    plan_memory and every pass before it."""
    from neuron_core.compiler import pipeline

    def broken(program):
        raise IndexError("no room")
    monkeypatch.setattr(pipeline, "plan_memory", broken)
    g = from_onnx(_model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", [1])], [_vi("y", [1])]))
    with pytest.raises(CompilerError, match=r"'plan_memory' failed \(after infer_types, .*, "
                                            r"fuse, assign_precision, lower\): IndexError: no room"):
        compile_graph(g, parse_compiler_args([]))


def test_verify_checks_the_program_after_lowering(monkeypatch):
    from neuron_core.compiler import pipeline

    def scramble(c):
        c.program.instrs.reverse()
    monkeypatch.setenv("NEURON_VERIFY", "1")
    monkeypatch.setattr(pipeline, "PIPELINE", pipeline.PIPELINE[:-1] + [
        pipeline.Pass("scramble", scramble), pipeline.PIPELINE[-1]])
    nodes = [helper.make_node("Sigmoid", ["x"], ["r"]), helper.make_node("Neg", ["r"], ["y"])]
    g = from_onnx(_model(nodes, [_vi("x", [4])], [_vi("y", [4])]))
    with pytest.raises(CompilerError, match="'scramble' failed .*reads buffer b\\d+ before any"):
        compile_graph(g, parse_compiler_args([]))


def test_dump_passes_writes_the_ir_after_every_pass(tmp_path):
    from neuron_core.compiler import pipeline
    inits = {"w": np.ones((4, 4), np.float32), "b": np.ones(4, np.float32)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
             helper.make_node("Identity", ["a"], ["i"]), helper.make_node("Relu", ["i"], ["y"])]
    g = from_onnx(_model(nodes, [_vi("x", [2, 4])], [_vi("y", [2, 4])], inits))
    compile_graph(g, parse_compiler_args(["--dump-passes", str(tmp_path)]))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["00-input.txt"] + [f"{k:02d}-{p.name}.txt"
                                        for k, p in enumerate(pipeline.PIPELINE, 1)]
    assert "Identity" in (tmp_path / "00-input.txt").read_text()
    assert "Identity" not in (tmp_path / "03-remove_identities.txt").read_text()
    assert "MatMul %" in (tmp_path / "06-fuse.txt").read_text().split("fusion groups")[1]
    assert "-> Add %" in (tmp_path / "06-fuse.txt").read_text()
    lowered = (tmp_path / "08-lower.txt").read_text()
    assert "TensorEngine MatMul" in lowered and "|> Add(acc, b" in lowered and "|> Relu(acc)" in lowered
    assert "@" in (tmp_path / "09-plan_memory.txt").read_text()  # offsets are assigned
    again = from_onnx(_model(nodes, [_vi("x", [2, 4])], [_vi("y", [2, 4])], inits))
    compile_graph(again, parse_compiler_args(["--dump-passes", str(tmp_path)]))  # a dump again
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CompilerOptionError, match="not an empty directory"):
        compile_graph(from_onnx(_model(nodes, [_vi("x", [2, 4])], [_vi("y", [2, 4])], inits)),
                      parse_compiler_args(["--dump-passes", str(tmp_path)]))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_compiler_and_partitioner_give_one_verdict():
    """The compiler's support check is the partitioner's verdict: the same nodes, the same reasons,
    in one message format."""
    from neuron_core.errors import UnsupportedOpError
    from neuron_core.partition import PartitionOptions, partition
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r"),
             helper.make_node("Sin", ["a"], ["y"], name="s"),
             helper.make_node("If", ["c"], ["z"], name="branch",
                              then_branch=helper.make_graph([], "t", [], []),
                              else_branch=helper.make_graph([], "e", [], []))]
    model = _model(nodes, [_vi("x", [2]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                   [_vi("y", [2]), _vi("z", [2])])
    with pytest.raises(UnsupportedOpError) as compiled:
        compile_graph(from_onnx(model), parse_compiler_args([]))
    with pytest.raises(UnsupportedOpError) as placed:
        partition(from_onnx(model), PartitionOptions(fallback=False), log_report=False)
    listed = [line for line in str(compiled.value).splitlines() if line.startswith("  %")]
    assert listed == [line for line in str(placed.value).splitlines() if line.startswith("  %")]
    assert len(listed) == 2 and "control flow" in listed[1]
    assert "2 of 3 nodes cannot run on Neuron" in str(compiled.value)


@pytest.mark.parametrize("args", [["--fast-math", "turbo"], ["--no-such-flag"], ["--verbose", "LOUD"]])
def test_bad_compiler_args_list_the_valid_ones(args):
    with pytest.raises(CompilerOptionError) as info:
        parse_compiler_args(args)
    assert "fast-math" in str(info.value) or "fp32-cast" in str(info.value)


def test_fast_math_none_is_matmult_bf16_without_relayout():
    policy = parse_compiler_args("--fast-math none").policy
    assert (policy.matmul, policy.other, policy.transpose) == ("bfloat16", "float32", None)
    policy = parse_compiler_args("--fast-math fp32-cast-matmult").policy
    assert (policy.matmul, policy.other, policy.transpose) == ("bfloat16", "float32", "float16")
