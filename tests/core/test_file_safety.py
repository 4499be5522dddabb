"""Nothing a user has is replaced without asking: neuron-cc's --output, CompiledModel.save and a
compiler work directory (neuron_core.fileio, the one place these rules live)."""
from __future__ import annotations

import os

import onnx
import pytest
from onnx import TensorProto, helper

import neuron_core.onnx as nonnx
from neuron_core.bridge.plan import _dump, NeuronCall
from neuron_core.errors import NeuronError
from neuron_core.fileio import DestinationError, WorkDir
from neuron_core.tools.neuron_cc import main


def _relu(tmp_path):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _cc(model, out, *extra):
    return main(["compile", str(model), "--framework", "ONNX", "--output", str(out), *extra])


def test_neuron_cc_refuses_a_file_that_only_starts_like_a_neff(tmp_path, capsys):
    from neuron_core.neff import MAGIC
    out = tmp_path / "out.neff"
    out.write_bytes(MAGIC + b"my notes, not a NEFF")
    assert _cc(_relu(tmp_path), out) == 1
    assert "refusing to replace" in capsys.readouterr().err
    assert out.read_bytes() == MAGIC + b"my notes, not a NEFF"


def test_neuron_cc_keeps_the_old_neff_when_the_compile_fails(tmp_path, capsys):
    model, out = _relu(tmp_path), tmp_path / "out.neff"
    assert _cc(model, out) == 0
    before = out.read_bytes()
    assert _cc(model, out, "--neuroncore-pipeline-cores", "64") == 1
    assert "cannot pipeline" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "out.neff"]
    assert _cc(model, out) == 0   # a NEFF of ours is replaced without asking


def test_compiled_model_save_refuses_a_foreign_file(tmp_path):
    compiled = nonnx.compile(str(_relu(tmp_path)))
    thesis = tmp_path / "thesis.docx"
    thesis.write_bytes(b"PK\x03\x04 chapter one")
    with pytest.raises(DestinationError, match="thesis.docx.*overwrite=True"):
        compiled.save(thesis)
    assert thesis.read_bytes() == b"PK\x03\x04 chapter one"
    compiled.save(thesis, overwrite=True)
    assert nonnx.load(thesis).inputs[0][0] == "x"


def test_compiled_model_save_leaves_a_tmp_file_alone(tmp_path):
    compiled = nonnx.compile(str(_relu(tmp_path)))
    (tmp_path / "m.neuron.onnx.tmp").write_text("mine")
    compiled.save(tmp_path / "m.neuron.onnx")
    compiled.save(tmp_path / "m.neuron.onnx")   # replacing its own file needs no overwrite
    assert (tmp_path / "m.neuron.onnx.tmp").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.neuron.onnx", "m.neuron.onnx.tmp",
                                                         "m.onnx"]


def test_workdir_never_writes_through_a_symlink_or_over_a_foreign_file(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    work = tmp_path / "work"
    (work / "neuron_subgraph_0").mkdir(parents=True)
    (work / "neuron_subgraph_0" / "graph.txt").symlink_to(outside)
    call = NeuronCall(0, b"neff", [], [], [], [])
    graph = nonnx.from_onnx(str(_relu(tmp_path)))
    with pytest.raises(NeuronError, match="symlink"):
        _dump(WorkDir(work), 0, graph, b"neff", call)
    assert outside.read_text() == "keep"
    (work / "neuron_subgraph_0" / "graph.txt").unlink()
    (work / "report.json").write_text("the user's own report")
    with pytest.raises(DestinationError, match="report.json"):
        WorkDir(work).write("report.json", "{}")
    assert (work / "report.json").read_text() == "the user's own report"
    _dump(WorkDir(work), 0, graph, b"neff", call)
    _dump(WorkDir(work), 0, graph, b"neff2", call)   # its own files are replaced on a rerun
    assert (work / "neuron_subgraph_0" / "model.neff").read_bytes() == b"neff2"


def test_a_profile_never_replaces_a_file_of_another_kind(tmp_path, monkeypatch):
    """NEURON_PROFILE's ring of traces replaces this process's older traces, but a file of the
    user's at a trace's name is kept, and the run says so."""
    import os

    import numpy as np

    from neuron_core.compiler import compile_graph, parse_compiler_args
    from neuron_core.errors import NeuronError
    from neuron_core.frontends.onnx_import import from_onnx
    from neuron_core.models.builders import small_cnn
    from neuron_core.runtime import load
    model = load(compile_graph(from_onnx(small_cnn()), parse_compiler_args([])).to_bytes())
    x = np.zeros((1, 3, 32, 32), np.float32)
    monkeypatch.setenv("NEURON_PROFILE", str(tmp_path))
    monkeypatch.setenv("NEURON_PROFILE_MAX_FILES", "1")          # every run writes the same name
    model.run([x])
    (trace,) = tmp_path.glob("*.trace.json")
    model.run([x])                                          # its own trace: replaced
    assert [p.name for p in tmp_path.glob("*.trace.json")] == [trace.name]
    trace.write_text("my notes")
    with pytest.raises(NeuronError, match="refusing to replace .* not a profile trace"):
        model.run([x])
    assert trace.read_text() == "my notes"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
