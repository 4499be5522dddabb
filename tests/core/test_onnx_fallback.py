"""ONNX models with unsupported ops at the start, middle and end: NeuronCore + onnxruntime together,
against onnxruntime alone; save and load in a fresh process."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import neuron_core.onnx as nonnx
from neuron_core.errors import BadInputError, NeffFormatError, NeuronError
from neuron_core.models.builders import resnet


def _with_unsupported(where: str) -> onnx.ModelProto:
    """A small ResNet-18 with one Softsign (no Neuron lowering) first, in the middle, or last."""
    model = resnet(18, image=32, width=8, num_classes=10)
    relus = [n for n in model.graph.node if n.op_type == "Relu"]
    if where == "end":
        out = model.graph.output[0]
        model.graph.node.append(onnx.helper.make_node("Softsign", [out.name], ["probs"], name="softsign"))
        out.name = "probs"
    else:
        relus[0 if where == "start" else len(relus) // 2].op_type = "Softsign"
    return model


def _reference(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]


X = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_unsupported_op_anywhere_matches_onnxruntime(where):
    model = _with_unsupported(where)
    expected = _reference(model, X)
    exact = nonnx.compile(model, precision="fp32", cost_aware=False)
    assert "Softsign (1)" in str(exact.report)
    assert any(kind == "host" for kind, _, _ in exact.steps)
    np.testing.assert_allclose(exact.run({"input": X})[0], expected, rtol=1e-4,
                               atol=1e-4 * np.abs(expected).max())
    approx = nonnx.compile(model, cost_aware=False).run([X])[0]
    err = np.linalg.norm(approx - expected) / np.linalg.norm(expected)
    assert 0 < err < 0.1  # BF16 through ~20 layers; a logic error gives O(1)


def test_report_of_a_fragmented_model_ranks_the_culprit():
    model = _with_unsupported("middle")
    report = nonnx.compile(model, cost_aware=False).report
    assert report.num_subgraphs == 2
    assert report.ranking[0]["op_type"] == "Softsign" and report.ranking[0]["fragments_caused"] == 1
    assert 90 < report.percent_on_neuron < 100


def test_estimate_shows_neuron_parts_and_measured_onnxruntime_time(caplog):
    model = _with_unsupported("middle")
    with caplog.at_level("INFO", logger="Neuron"):
        compiled = nonnx.compile(model, cost_aware=False)
    assert "Estimated on inf1.xlarge (timing model, batch 1, 4 NeuronCores): P50" in caplog.text
    row = compiled.estimate("inf1.xlarge").instances["inf1.xlarge"]
    assert row.host_ms > 0 and row.device_ms > 0 and row.transfer_ms > 0
    # the host part is what onnxruntime took in the last run
    compiled.run([X])
    again = compiled.estimate("inf1.xlarge").instances["inf1.xlarge"]
    assert again.host_ms == pytest.approx(compiled.last_host_ms)
    assert again.latency_ms_p50 - again.host_ms == pytest.approx(row.latency_ms_p50 - row.host_ms)
    whole = nonnx.compile(resnet(18, image=32, width=8, num_classes=10)).estimate()
    assert all(r.host_ms == 0 for r in whole.instances.values())


def test_fully_supported_model_is_one_neuron_op():
    compiled = nonnx.compile(resnet(18, image=32, width=8, num_classes=10))
    assert [k for k, _, _ in compiled.steps] == ["neuron"]
    assert compiled.report.percent_on_neuron == 100.0


def test_save_and_load_in_a_fresh_process(tmp_path):
    model = _with_unsupported("middle")
    compiled = nonnx.compile(model, precision="fp32", cost_aware=False)
    path = tmp_path / "model.neuron.onnx"
    compiled.save(path)
    np.save(tmp_path / "x.npy", X)
    code = ("import numpy as np, neuron_core.onnx as n, sys; "
            f"m = n.load({str(path)!r}, precision='fp32'); "
            f"y, = m.run([np.load({str(tmp_path / 'x.npy')!r})]); "
            f"np.save({str(tmp_path / 'y.npy')!r}, y); print(m.report.num_subgraphs)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), compiled.run([X])[0])


def test_tampered_neff_inside_a_saved_model_is_rejected(tmp_path):
    compiled = nonnx.compile(resnet(18, image=32, width=8, num_classes=10))
    proto = compiled.proto
    attr = next(a for a in proto.graph.node[0].attribute if a.name == "neff")
    data = bytearray(attr.s)
    data[len(data) // 3] ^= 0x01
    attr.s = bytes(data)
    path = tmp_path / "bad.onnx"
    onnx.save(proto, path)
    with pytest.raises(NeffFormatError):
        nonnx.load(path)


def test_plain_onnx_file_is_not_mistaken_for_a_compiled_one(tmp_path):
    path = tmp_path / "plain.onnx"
    onnx.save(resnet(18, image=32, width=8, num_classes=10), path)
    with pytest.raises(NeuronError, match="compile it first"):
        nonnx.load(path)


def test_bad_inputs_and_options():
    compiled = nonnx.compile(resnet(18, image=32, width=8, num_classes=10))
    with pytest.raises(BadInputError, match="float32\\[1, 3, 32, 32\\]"):
        compiled.run([X.astype(np.float64)])
    with pytest.raises(BadInputError, match="missing \\['input'\\]"):
        compiled.run({"image": X})
    with pytest.raises(NeuronError, match="valid options are"):
        nonnx.compile(resnet(18, image=32, width=8), min_segment=3)


def test_a_host_op_with_an_empty_leading_output_feeds_the_right_value():
    """A GRU (host op) whose Y output is unused ("") and whose Y_h feeds a Relu: the Relu reads
    Y_h, and the whole model matches onnxruntime."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((1, 12, 3)).astype(np.float32), "w")
    r = numpy_helper.from_array(rng.standard_normal((1, 12, 4)).astype(np.float32), "r")
    nodes = [helper.make_node("GRU", ["x", "w", "r"], ["", "yh"], hidden_size=4, name="gru"),
             helper.make_node("Relu", ["yh"], ["a"], name="relu"),
             helper.make_node("Neg", ["a"], ["y"], name="neg")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [5, 1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 4])],
                              [w, r])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((5, 1, 3)).astype(np.float32)
    compiled = nonnx.compile(model, minimum_segment_size=1, precision="fp32")
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(compiled.run({"x": x})[0], want, rtol=1e-6, atol=1e-6)


def test_dump_passes_writes_one_folder_per_subgraph_and_costs_are_an_option(tmp_path):
    from neuron_core.partition import TransferCosts
    compiled = nonnx.compile(_with_unsupported("middle"), minimum_segment_size=1,
                             compiler_args=["--dump-passes", str(tmp_path)],
                             costs=TransferCosts(pcie_bytes_per_s=1e15, transfer_latency_s=0.0,
                                                 launch_s=0.0))  # free transfers keep both
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert folders == [f"subgraph-{k}" for k in range(len(compiled.neffs))] and len(folders) == 2
    assert all((tmp_path / f / "09-plan_memory.txt").exists() for f in folders)
    with pytest.raises(NeuronError, match="valid options are"):
        nonnx.compile(_with_unsupported("middle"), cost=TransferCosts())


def _report_prop(q):
    return next(p for p in q.metadata_props if p.key == "neuron.report")


def _host_node(q):
    return next(n for n in q.graph.node if n.domain != nonnx.DOMAIN)


DAMAGE = [
    ("elem_type", lambda q: setattr(q.graph.input[0].type.tensor_type, "elem_type", 0),
     "value 'input' has ONNX element type 0"),
    ("value_info", lambda q: q.graph.ClearField("value_info"), "has no type"),
    ("report", lambda q: setattr(_report_prop(q), "value", "{bad"), "neuron.report is not JSON"),
    ("undefined", lambda q: _host_node(q).input.__setitem__(0, "nope"), "topologically sorted"),
    ("extra_output", lambda q: q.graph.node[0].output.append("extra"), "has 2 outputs, its NEFF 1"),
    ("order", lambda q: q.graph.node.reverse(), "topologically sorted"),
    ("input_shape", lambda q: q.graph.input[0].type.tensor_type.shape.dim[0].__setattr__(
        "dim_value", 5), r"is float32\[5, 3, 32, 32\] but node 'neuron_subgraph_0''s NEFF has"),
    ("host_op", lambda q: setattr(_host_node(q), "op_type", "Bogus"), "No Op registered for Bogus"),
    ("neff_type", lambda q: q.graph.node[0].attribute[0].__setattr__("type", onnx.AttributeProto.INT),
     "type field and data field mismatch in attribute neff"),
]


@pytest.mark.parametrize("edit, message", [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_a_damaged_saved_model_is_a_neff_format_error_and_loads_nothing(tmp_path, edit, message):
    """Each edit of a saved fallback model is refused at load by what it breaks, and every NEFF
    the failed load had loaded is given back."""
    from neuron_core.runtime.device import get_device_manager
    compiled = nonnx.compile(_with_unsupported("middle"), cost_aware=False)
    proto = onnx.ModelProto()
    proto.CopyFrom(compiled.proto)
    compiled.unload()
    edit(proto)
    path = tmp_path / "damaged.neuron.onnx"
    onnx.save(proto, path)
    before = sum(u.used for u in get_device_manager().usage().values())
    with pytest.raises(NeffFormatError, match=message):
        nonnx.load(path)
    assert sum(u.used for u in get_device_manager().usage().values()) == before
