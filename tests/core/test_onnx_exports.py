"""ONNX files as torch's exporters write them (TorchScript `dynamo=False` opset 17, and the default
dynamo exporter), of torch's nn.TransformerEncoder and Hugging Face BERT, DistilBERT, RoBERTa, ViT,
T5 encoder and ConvNeXt built small from configs: each compiles whole with `neuron-cc` (dynamic
dims pinned by --io-config) and matches onnxruntime on the same file. Also the import's handling of
the nodes only the host can run: folded when constant, typed so the ops after them stay static."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import neuron_core.onnx as nonnx
from neuron_core import runtime
from neuron_core.errors import UnsupportedOpError
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.ops import has_op
from neuron_core.tools import neuron_cc

pytest.importorskip("torch")
pytest.importorskip("transformers")
from tests.core.torch_exports import cosine, export, onnxruntime_outputs, rel_err  # noqa: E402

#: (model, exporter, dynamic axes) of every export checked; the dynamo exporter of torch 2.13
#: writes all of these; the TorchScript one cannot export an nn.TransformerEncoder under
#: torch.no_grad (its fused fast path has no ONNX form), so exports run with autograd on, as
#: export scripts do
CASES = [
    ("transformer_encoder", "torchscript", False),
    ("transformer_encoder", "torchscript", True),
    ("bert", "torchscript", False),
    ("bert_mask", "torchscript", True),
    ("distilbert", "torchscript", False),
    ("distilbert_mask", "torchscript", True),
    ("roberta_mask", "torchscript", True),
    ("vit", "torchscript", True),
    ("t5_encoder", "torchscript", False),
    ("convnext", "torchscript", False),
    ("transformer_encoder", "dynamo", True),
    ("bert_mask", "dynamo", True),
    ("distilbert_mask", "dynamo", False),
    ("roberta_mask", "dynamo", False),
    ("vit", "dynamo", False),
    ("t5_encoder", "dynamo", False),
    ("convnext", "dynamo", False),
]

#: full FP32 differs from onnxruntime only in summation order (float32 rounding, ~1e-7 here)
FP32_RTOL = 1e-5
#: hardware precision (BF16 storage and matmul inputs, FP32 accumulation) through two layers
HARDWARE_COSINE = 0.999


@pytest.mark.parametrize("kind,exporter,dynamic", CASES,
                         ids=[f"{k}-{e}{'-dynamic' if d else ''}" for k, e, d in CASES])
def test_export_compiles_whole_and_matches_onnxruntime(tmp_path, kind, exporter, dynamic):
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")   # the dynamo exporter writes its ONNX with it
    proto, feed, io_config = export(kind, exporter, dynamic=dynamic)
    if dynamic:  # the export really has dynamic dims: --io-config is what pins them
        dims = [d for vi in proto.graph.input for d in vi.type.tensor_type.shape.dim]
        assert any(d.dim_param for d in dims)
    expected, = onnxruntime_outputs(proto, feed)[:1]
    src, neff = tmp_path / "model.onnx", tmp_path / "model.neff"
    onnx.save(proto, src)
    # neuron-cc compiles a graph whole or fails, naming every node it cannot take
    assert neuron_cc.main(["compile", str(src), "--framework", "ONNX", "--io-config",
                           json.dumps(io_config), "--output", str(neff)]) == 0
    with runtime.load(str(neff), precision="fp32") as m:
        exact = m.run(feed)[0]
    assert exact.shape == expected.shape
    assert rel_err(exact, expected) < FP32_RTOL
    with runtime.load(str(neff)) as m:
        approx = m.run(feed)[0]
    assert 0 < rel_err(approx, expected) and cosine(approx, expected) > HARDWARE_COSINE


def test_dynamic_export_without_io_config_says_how_to_pin_it(tmp_path, capsys):
    proto, _, _ = export("bert_mask", "torchscript", dynamic=True)
    onnx.save(proto, tmp_path / "model.onnx")
    assert neuron_cc.main(["compile", str(tmp_path / "model.onnx"), "--framework", "ONNX",
                           "--output", str(tmp_path / "model.neff")]) != 0
    err = capsys.readouterr().err
    assert "dynamic dims (%input_ids: i64[batch,sequence]" in err
    assert """--io-config '{"inputs": {"input_ids": [[1, 1], "int64"], "attention_mask": """ in err


def test_transformer_encoder_export_runs_all_on_neuron_with_fallback():
    """The host-fallback path (neuron_core.onnx.compile) takes the TorchScript export whole too:
    its Mod of two constants and the Slices it bounds fold away."""
    proto, feed, io_config = export("transformer_encoder", "torchscript", dynamic=True)
    assert "Mod" in {n.op_type for n in proto.graph.node}
    compiled = nonnx.compile(proto, io_config, precision="fp32", cost_aware=False)
    assert [kind for kind, _, _ in compiled.steps] == ["neuron"]
    assert compiled.report.percent_on_neuron == 100
    expected, = onnxruntime_outputs(proto, feed)
    assert rel_err(compiled.run(feed)[0], expected) < FP32_RTOL


# -- the nodes only the host can run -------------------------------------------------------------
HOST_OP = "Softsign"   # an ONNX op with no Neuron lowering


def _model(nodes, inputs, outputs, inits=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def test_ops_after_a_host_op_keep_static_shapes():
    assert not has_op(HOST_OP), f"{HOST_OP} got a lowering: pick another op without one"
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32),
                                "w")
    model = _model([helper.make_node(HOST_OP, ["x"], ["s"], name="host"),
                    helper.make_node("MatMul", ["s", "w"], ["y"], name="mm")],
                   [_f32("x", ["N", 8])], [_f32("y", ["N", 4])], [w])
    io_config = {"inputs": {"x": [[3, 8], "float32"]}}
    graph = from_onnx(model, io_config)
    assert graph.values["s"].type.shape == (3, 8) and graph.values["y"].type.shape == (3, 4)
    compiled = nonnx.compile(model, io_config, precision="fp32", cost_aware=False,
                             minimum_segment_size=1)
    assert [kind for kind, _, _ in compiled.steps] == ["host", "neuron"]
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    expected, = onnxruntime_outputs(model, {"x": x})
    assert rel_err(compiled.run({"x": x})[0], expected) < FP32_RTOL


def test_a_host_op_of_constants_is_folded():
    """Softsign of a constant, and Mod of two constants (a registered op), become constants:
    the Reshape they shape compiles."""
    c = numpy_helper.from_array(np.array([-3.0, 5.0, 1.0], np.float32), "c")
    nodes = [helper.make_node(HOST_OP, ["c"], ["soft"], name="soft"),
             helper.make_node("Constant", [], ["seven"], value=numpy_helper.from_array(
                 np.array([7], np.int64))),
             helper.make_node("Constant", [], ["four"], value=numpy_helper.from_array(
                 np.array([4], np.int64))),
             helper.make_node("Mod", ["seven", "four"], ["three"], name="mod"),
             helper.make_node("Concat", ["three", "three"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
             helper.make_node("Mul", ["r", "soft"], ["partial"], name="mul"),
             helper.make_node("ReduceSum", ["partial"], ["y"], keepdims=0)]
    model = _model(nodes, [_f32("x", [9])], [_f32("y", [])], [c])
    graph = from_onnx(model)
    assert {n.op_type for n in graph.nodes} == {"Reshape", "Mul", "ReduceSum"}
    np.testing.assert_allclose(graph.values["soft"].const, [-0.75, 5 / 6, 0.5], rtol=1e-6)


def test_slice_bounds_computed_at_run_time_go_to_the_host_with_a_reason(tmp_path):
    """A Slice whose end is a model input: neuron-cc names the input it needs constant, the
    fallback path runs the Slice (and what its dynamic shape feeds) on onnxruntime."""
    zero = numpy_helper.from_array(np.array([0], np.int64), "zero")
    model = _model([helper.make_node("Relu", ["x"], ["r"], name="relu"),
                    helper.make_node("Slice", ["r", "zero", "end"], ["s"], name="cut"),
                    helper.make_node("Neg", ["s"], ["y"], name="neg")],
                   [_f32("x", [6, 4]),
                    helper.make_tensor_value_info("end", TensorProto.INT64, [1])],
                   [_f32("y", ["K", 4])], [zero])
    with pytest.raises(UnsupportedOpError, match=r"input 2 \(%end\) of Slice must be a "
                       "compile-time constant but is computed at run time"):
        from neuron_core.compiler import compile_graph, parse_compiler_args
        compile_graph(from_onnx(model), parse_compiler_args([]))
    compiled = nonnx.compile(model, precision="fp32", cost_aware=False, minimum_segment_size=1)
    feed = {"x": np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32),
            "end": np.array([4], np.int64)}
    expected, = onnxruntime_outputs(model, feed)
    got, = compiled.run(feed)
    assert got.shape == (4, 4)
    np.testing.assert_array_equal(got, expected)
