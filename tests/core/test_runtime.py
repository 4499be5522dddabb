"""The runtime API: load/run/unload, input checks, device memory, precision modes, bad NEFFs."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neuron_core import runtime
from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.errors import BadInputError, NeffFormatError, NeffVersionError, NeuronError, \
    ResourceError
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.runtime.device import get_device_manager


@pytest.fixture(autouse=True)
def fresh_devices(fresh_runtime, monkeypatch):
    monkeypatch.delenv("NEURON_SIM_PRECISION", raising=False)


def _two_input_neff(weight_elems: int = 16) -> bytes:
    w = np.arange(weight_elems, dtype=np.float32)[:4].reshape(1, 4)
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["s", "w"], ["y"])]
    graph = helper.make_graph(nodes, "g", [
        helper.make_tensor_value_info("a", TensorProto.FLOAT, [2, 4]),
        helper.make_tensor_value_info("b", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()


def test_run_by_list_and_by_name():
    a = np.ones((2, 4), np.float32)
    b = np.full((2, 4), 2, np.float32)
    with runtime.load(_two_input_neff()) as m:
        by_list, = m.run([a, b])
        by_name, = m.run({"b": b, "a": a})
    np.testing.assert_array_equal(by_list, [[0, 3, 6, 9]] * 2)
    np.testing.assert_array_equal(by_name, by_list)


@pytest.mark.parametrize("inputs, needle", [
    ([np.ones((2, 4), np.float32)], "takes 2 inputs"),
    ({"a": np.ones((2, 4), np.float32), "c": np.ones((2, 4), np.float32)}, "unknown ['c']"),
    ([np.ones((2, 4), np.float32), np.ones((3, 4), np.float32)], "'b' has shape (3, 4), expected (2, 4)"),
    ([np.ones((2, 4), np.float32), np.ones((2, 4), np.float64)], "'b' has dtype float64, expected float32"),
    ([np.ones((2, 4), np.float32), [[1.0] * 4] * 2], "'b' must be a numpy array"),
])
def test_bad_inputs_name_the_input(inputs, needle):
    with runtime.load(_two_input_neff()) as m:
        with pytest.raises(BadInputError, match="EXEC_BAD_INPUT") as info:
            m.run(inputs)
    assert needle in str(info.value)


def test_load_fails_when_device_memory_is_full_and_unload_frees():
    manager = get_device_manager()
    usage = manager.usage()
    hogs = [manager.allocate(u.total - 64, owner="hog", core=c) for c, u in usage.items()]
    with pytest.raises(ResourceError) as info:
        runtime.load(_two_input_neff())
    message = str(info.value)
    assert "RESOURCE" in message and "needs" in message and "occupied" in message
    manager.free(hogs[0])
    model = runtime.load(_two_input_neff())
    assert model.core == 0
    used = manager.usage()[0].used
    model.unload()
    assert manager.usage()[0].used < used
    model.unload()  # idempotent
    with pytest.raises(NeuronError, match="unloaded"):
        model.run([np.ones((2, 4), np.float32)] * 2)


def test_precision_from_environment(monkeypatch):
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    with runtime.load(_two_input_neff()) as m:
        assert m.precision == "fp32"
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp64")
    with pytest.raises(NeuronError, match="fp64"):
        runtime.load(_two_input_neff())


def test_version_mismatch_message(tmp_path):
    data = bytearray(_two_input_neff())
    data[8:10] = (2).to_bytes(2, "little")  # format major
    data[10:12] = (0).to_bytes(2, "little")  # format minor
    with pytest.raises(NeffVersionError, match="NEFF version mismatch supported: 1.2 received: 2.0"):
        runtime.load(bytes(data))


def test_truncated_neff_is_a_format_error(tmp_path):
    data = _two_input_neff()
    path = tmp_path / "cut.neff"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(NeffFormatError):
        runtime.load(path)


def test_a_format_1_1_neff_with_short_engine_names_still_loads():
    """NEFFs of format 1.1 named the engines pe/act/vector/relayout/dma; they load with the names
    the reports and profiles use, and run and time as a new NEFF does."""
    import json

    from neuron_core.neff.format import _assemble, _json_section, _weight_chunks, read_neff
    from neuron_core.runtime.timing import simulate
    neff = read_neff(_two_input_neff())
    short = {"TensorEngine": "pe", "ScalarEngine": "act", "VectorEngine": "vector",
             "PE transpose": "relayout", "DMA": "dma"}
    program = json.loads(json.dumps(neff.program))
    for instr in program["instrs"]:
        instr["engine"] = short[instr["engine"]]
    index, chunks = _weight_chunks(dict(neff.weights))
    header, body = _assemble({"metadata": [_json_section("metadata", neff.metadata)],
                              "program": [_json_section("program", program)],
                              "weights.index": [_json_section("weights.index", index)],
                              "weights": chunks}, "neuron-sim 0.1.0", version=(1, 1))
    old = header + b"".join(body)
    a, b = np.ones((2, 4), np.float32), np.full((2, 4), 2, np.float32)
    with runtime.load(old) as m_old, runtime.load(_two_input_neff()) as m_new:
        assert read_neff(old).version == (1, 1)
        assert [i.engine for i in m_old.program.instrs] == [i.engine for i in m_new.program.instrs]
        assert {i.engine for i in m_old.program.instrs} <= set(short)
        np.testing.assert_array_equal(m_old.run([a, b])[0], m_new.run([a, b])[0])
        assert simulate(m_old.program).cycles == simulate(m_new.program).cycles
