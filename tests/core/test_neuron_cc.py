"""neuron-cc on the command line: compile, list-operators, info, -V, and every bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from neuron_core import runtime
from neuron_core.models.builders import small_cnn
from neuron_core.ops import op_names
from neuron_core.tools.neuron_cc import main


def _save(tmp_path, model, name="model.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return str(path)


def _model(nodes, inputs, outputs, inits=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_list_operators_is_the_registry(capsys):
    assert main(["list-operators", "--framework", "ONNX"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == op_names()
    for op in ("Conv", "MatMul", "Softmax", "LayerNormalization", "Resize", "Gather"):
        assert op in listed


def test_version_flag():
    out = subprocess.run([sys.executable, "-m", "neuron_core.tools.neuron_cc", "-V"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "neuron-cc" in out.stdout and "NEFF format 1.2" in out.stdout


def test_compile_and_info(tmp_path, capsys):
    src, neff = _save(tmp_path, small_cnn()), tmp_path / "cnn.neff"
    assert main(["compile", src, "--framework", "ONNX", "--output", str(neff)]) == 0
    assert "NEFF written to" in capsys.readouterr().out
    assert main(["info", str(neff)]) == 0
    info = capsys.readouterr().out
    assert "input  [1,3,32,32]  float32" in info
    assert "Conv: 20" in info and "sha256" in info


def test_compile_dump_passes(tmp_path, capsys):
    src, dump = _save(tmp_path, small_cnn()), tmp_path / "passes"
    assert main(["compile", src, "--framework", "ONNX", "--output", str(tmp_path / "c.neff"),
                 "--dump-passes", str(dump)]) == 0
    assert f"written to {dump}" in capsys.readouterr().out
    files = sorted(p.name for p in dump.iterdir())
    assert files[0] == "00-input.txt" and files[-1] == "09-plan_memory.txt" and len(files) == 10
    assert "BatchNormalization" in (dump / "00-input.txt").read_text()
    assert "BatchNormalization" not in (dump / "04-fold_batchnorm.txt").read_text()


def test_io_config_fixes_dynamic_batch(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    src = _save(tmp_path, _model([helper.make_node("Relu", ["x"], ["y"])], [x], [y]))
    out = str(tmp_path / "m.neff")
    cfg = tmp_path / "io.json"
    cfg.write_text(json.dumps({"inputs": {"x:0": [[3, 4], "float32"]}, "outputs": ["y"]}))
    assert main(["compile", src, "--framework", "ONNX", "--io-config", str(cfg),
                 "--output", out]) == 0
    with runtime.load(out) as m:
        assert m.inputs == [("x", (3, 4), "float32")]
        y, = m.run(np.array([[-1, 2, -3, 4]] * 3, np.float32))
    assert y.tolist() == [[0, 2, 0, 4]] * 3


def test_dynamic_shape_without_io_config_is_explained(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])
    src = _save(tmp_path, _model([helper.make_node("Relu", ["x"], ["y"])], [x], [y]))
    assert main(["compile", src, "--framework", "ONNX", "--output", str(tmp_path / "o.neff")]) == 1
    err = capsys.readouterr().err
    assert "dynamic shape" in err and "io-config" in err


def test_unsupported_ops_are_all_listed(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r"),
             helper.make_node("Sin", ["a"], ["b"], name="my_sin"),
             helper.make_node("Cos", ["b"], ["y"], name="my_cos")]
    src = _save(tmp_path, _model(nodes, [x], [y]))
    assert main(["compile", src, "--framework", "ONNX", "--output", str(tmp_path / "o.neff")]) == 1
    err = capsys.readouterr().err
    assert "2 of 3 nodes" in err
    assert "%my_sin (Sin)" in err and "%my_cos (Cos)" in err and "no Neuron lowering" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("content", [b"", b"\x08\x01garbage\xff\xfe" * 10, b"not a model"])
def test_corrupt_model_is_one_line(tmp_path, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    out = subprocess.run([sys.executable, "-m", "neuron_core.tools.neuron_cc", "compile", str(bad),
                          "--framework", "ONNX"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("neuron-cc: error:")
    assert "bad.onnx" in out.stderr


def test_missing_files_are_one_line(tmp_path, capsys):
    assert main(["compile", str(tmp_path / "nope.onnx"), "--framework", "ONNX"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["info", str(tmp_path / "nope.neff")]) == 1
    assert "nope.neff" in capsys.readouterr().err


def test_corrupt_neff_info_is_one_line(tmp_path, capsys):
    src, neff = _save(tmp_path, small_cnn()), tmp_path / "m.neff"
    assert main(["compile", src, "--framework", "ONNX", "--output", str(neff)]) == 0
    data = bytearray(neff.read_bytes())
    data[len(data) // 2] ^= 0x10
    neff.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["info", str(neff)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("neuron-cc: error:") and err.count("\n") == 1


def test_refuses_to_overwrite_a_non_neff(tmp_path, capsys):
    src = _save(tmp_path, small_cnn())
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    assert main(["compile", src, "--framework", "ONNX", "--output", str(precious)]) == 1
    assert "refusing to replace" in capsys.readouterr().err
    assert precious.read_text() == "keep me"


@pytest.mark.parametrize("args, needle", [
    (["--fast-math", "fp64"], "fp32-cast-matmult"),
    (["--fp32-cast", "everything"], "invalid choice"),
    (["--neuroncore-pipeline-cores", "0"], "must be 1 to 64"),
])
def test_bad_options(tmp_path, capsys, args, needle):
    src = _save(tmp_path, small_cnn())
    try:
        rc = main(["compile", src, "--framework", "ONNX", "--output", str(tmp_path / "o.neff"),
                   *args])
    except SystemExit as exc:  # argparse's own choices check
        rc = exc.code
    assert rc in (1, 2)
    assert needle in capsys.readouterr().err


def test_other_frameworks_point_to_their_plugin(tmp_path, capsys):
    src = _save(tmp_path, small_cnn())
    assert main(["compile", src, "--framework", "PYTORCH"]) == 1
    assert "torch.neuron.trace(model, example_inputs)" in capsys.readouterr().err


def test_plugins_are_found_by_module_name_without_importing_a_framework():
    from neuron_core.tools.neuron_cc import _framework
    code = ("import sys; from neuron_core.tools.neuron_cc import frameworks; print(frameworks()); "
            "print(sorted(m for m in ('torch', 'tensorflow', 'mxnet') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    listed, imported = out.stdout.splitlines()
    assert eval(listed) == ("ONNX", "MXNET", "PYTORCH", "TENSORFLOW") and imported == "[]"
    assert _framework("pytorch") == "PYTORCH" and _framework("Tensorflow") == "TENSORFLOW"


def test_list_operators_of_a_framework_comes_from_its_plugin(capsys):
    pytest.importorskip("torch_neuron")
    import torch_neuron
    assert main(["list-operators", "--framework", "PYTORCH"]) == 0
    listed = capsys.readouterr().out.split()
    assert listed == torch_neuron.supported_operators() == torch_neuron.get_supported_operations()
    from neuron_core.bridge.plugin import find
    assert find("pytorch") == torch_neuron.PLUGIN and torch_neuron.TABLE.framework == "PYTORCH"
    assert "aten.convolution.default" in listed and "aten.sin.default" not in listed


def test_old_opset_attributes_are_upgraded(tmp_path):
    """Opset 9 Unsqueeze/Squeeze/Pad/Slice/Upsample attributes compile to the same results."""
    import onnxruntime as ort
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [helper.make_node("Pad", ["x"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1], value=0.5),
             helper.make_node("Upsample", ["p", "scales"], ["u"], mode="nearest"),
             helper.make_node("Slice", ["u"], ["s"], starts=[1], ends=[7], axes=[2]),
             helper.make_node("Unsqueeze", ["s"], ["q"], axes=[0]),
             helper.make_node("Squeeze", ["q"], ["sq"], axes=[0]),
             helper.make_node("ReduceMean", ["sq"], ["m"], axes=[3], keepdims=1),
             helper.make_node("Softmax", ["m"], ["y"], axis=1)]
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales")
    model = _model(nodes, [x], [y], [scales], opset=9)
    src = _save(tmp_path, model)
    out = str(tmp_path / "m.neff")
    assert main(["compile", src, "--framework", "ONNX", "--output", out]) == 0
    feed = np.random.default_rng(0).standard_normal((1, 2, 3, 3)).astype(np.float32)
    expected, = ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(None, {"x": feed})
    with runtime.load(out, precision="fp32") as m:
        got, = m.run({"x": feed})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_broken_plugin_record_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    from neuron_core.bridge import plugin
    package = tmp_path / "broken_neuron"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text("raise RuntimeError('half-installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level("WARNING", logger="Neuron"):
        found = plugin.plugins()
    assert {"PYTORCH", "TENSORFLOW", "MXNET"} <= set(found)
    assert "broken_neuron" in caplog.text and "half-installed" in caplog.text


def test_verbose_before_the_command_and_the_inf1_compatibility_flags(tmp_path):
    """`neuron-cc --verbose INFO compile ...` (the option first) and the Inf1 flags that change
    nothing in the simulator are accepted; the NEFF records them, and the one that would change
    numbers on the device says it is not simulated."""
    from neuron_core.neff import read_neff
    src, neff = _save(tmp_path, small_cnn()), tmp_path / "c.neff"
    out = subprocess.run([sys.executable, "-m", "neuron_core.tools.neuron_cc", "--verbose", "INFO",
                          "compile", src, "--framework", "ONNX", "--output", str(neff),
                          "--enable-fast-loading-neuron-binaries", "--enable-fast-context-switch",
                          "--enable-saturate-infinity"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "INFO Neuron: compiled" in out.stderr  # the level given before the command took effect
    assert "does not saturate" in out.stderr
    options = read_neff(str(neff)).metadata["options"]
    assert options["accepted_flags"] == ["enable-fast-loading-neuron-binaries",
                                         "enable-fast-context-switch",
                                         "enable-saturate-infinity"]
