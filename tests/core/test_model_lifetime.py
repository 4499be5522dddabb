"""Device memory comes back: a model dropped without unload() is freed when collected, and a failed
load gives back what it had loaded."""
from __future__ import annotations

import gc

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import neuron_core.onnx as neuron_onnx
from neuron_core.errors import NeuronError
from neuron_core.runtime import load
from neuron_core.runtime.device import get_device_manager

from .neff_fixtures import neff  # noqa: F401  (fixture)


def _used() -> int:
    return sum(u.used for u in get_device_manager().usage().values())


def test_a_hundred_dropped_models_give_their_memory_back(neff, fresh_runtime):  # noqa: F811
    before = _used()
    for _ in range(100):
        model = load(neff)
        assert _used() > before
        model.run([np.ones(model.inputs[0][1], np.float32)])
        del model                 # no unload(): collected at once (no reference cycle)
    assert _used() == before
    held = [load(neff) for _ in range(3)]
    assert _used() > before
    del held
    gc.collect()
    assert _used() == before


def test_unload_then_collection_frees_once(neff, fresh_runtime):  # noqa: F811
    model = load(neff)
    model.unload()
    model.unload()
    other = load(neff)          # may take the same bytes again
    used = _used()
    del model
    gc.collect()
    assert _used() == used                   # collecting the unloaded one frees nothing more
    other.unload()


def _two_subgraph_model(tmp_path) -> str:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Neg", ["a"], ["b"]),
             helper.make_node("Sin", ["b"], ["c"]),             # host: splits the graph
             helper.make_node("Relu", ["c"], ["d"]), helper.make_node("Neg", ["d"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "two", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17)])
    src = tmp_path / "two.onnx"
    onnx.save(model, src)
    compiled = neuron_onnx.compile(str(src), minimum_segment_size=2, cost_aware=False)
    assert len([s for s in compiled.steps if s[0] == "neuron"]) == 2
    out = tmp_path / "two.neuron.onnx"
    compiled.save(str(out))
    compiled.unload()
    return str(out)


def test_a_failed_fallback_load_releases_its_first_subgraph(tmp_path, fresh_runtime):
    path = _two_subgraph_model(tmp_path)
    proto = onnx.load(path)
    neuron_nodes = [n for n in proto.graph.node if n.domain and "neff" in
                    [a.name for a in n.attribute]]
    second = neuron_nodes[1]
    for a in second.attribute:
        if a.name == "neff":
            a.s = b"not a neff"
    damaged = tmp_path / "damaged.neuron.onnx"
    onnx.save(proto, damaged)
    before = _used()
    with pytest.raises(NeuronError):
        neuron_onnx.load(str(damaged))
    assert _used() == before


def test_a_missing_neff_attribute_is_a_neuron_error(tmp_path, fresh_runtime):
    proto = onnx.load(_two_subgraph_model(tmp_path))
    node = next(n for n in proto.graph.node if n.domain and "neff" in
                [a.name for a in n.attribute])
    keep = [a for a in node.attribute if a.name != "neff"]
    del node.attribute[:]
    node.attribute.extend(keep)
    damaged = tmp_path / "no_neff.neuron.onnx"
    onnx.save(proto, damaged)
    with pytest.raises(NeuronError, match="has no 'neff' string attribute"):
        neuron_onnx.load(str(damaged))
