"""The IR: building, the stable text form, the verifier, and the core's independence of frameworks."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from neuron_core.errors import IRError
from neuron_core.ir import Graph, TensorType, verify
from neuron_core.ops import infer_node


def _small_graph() -> Graph:
    g = Graph("tiny")
    x = g.add_input("x", TensorType(("N", 4), "float32"))
    w = g.add_const("w", np.ones((4, 2), np.float32))
    mm = g.add_node("MatMul", [x, w], name="mm")
    infer_node(mm)
    act = g.add_node("LeakyRelu", mm.outputs, {"alpha": 0.1}, name="act")
    infer_node(act)
    g.outputs = act.outputs
    return g


def test_text_form_is_stable():
    assert str(_small_graph()) == "\n".join([
        "graph tiny(%x: f32[N,4]) {",
        "  %w = const : f32[4,2]",
        "  %mm = MatMul(%x, %w) : f32[N,2]",
        "  %act = LeakyRelu[alpha=0.1](%mm) : f32[N,2]",
        "  return %act",
        "}"])


def test_tensor_type_symbolic_batch():
    t = TensorType(("N", 3, 224, 224), "f32")
    assert t.dtype == "float32" and not t.is_static and str(t) == "f32[N,3,224,224]"
    with pytest.raises(IRError, match="symbolic"):
        t.numel
    assert TensorType((2, 3), "bfloat16").nbytes == 12


def test_names_stay_unique():
    g = Graph()
    x = g.add_input("x", TensorType((1,), "float32"))
    a = g.add_node("Relu", [x], name="r")
    b = g.add_node("Relu", a.outputs, name="r")
    assert a.name != b.name and a.outputs[0].name != b.outputs[0].name


def test_verifier_accepts_a_good_graph():
    verify(_small_graph())


def test_verifier_catches_use_before_definition():
    g = _small_graph()
    g.nodes.reverse()
    with pytest.raises(IRError, match="used before it is defined"):
        verify(g)


def test_verifier_catches_dangling_user_lists():
    g = _small_graph()
    g.nodes[1].inputs[0].users.clear()
    with pytest.raises(IRError, match="does not list"):
        verify(g)


def test_verifier_catches_undefined_output():
    g = _small_graph()
    other = Graph()
    g.outputs = [other.add_input("ghost", TensorType((1,), "float32"))]
    with pytest.raises(IRError, match="never defined"):
        verify(g)


def test_toposort_restores_order_and_detects_cycles():
    g = _small_graph()
    g.nodes.reverse()
    g.toposort()
    verify(g)
    mm, act = g.nodes
    mm.inputs[0] = act.outputs[0]
    act.outputs[0].users.append(mm)
    with pytest.raises(IRError, match="cycle"):
        g.toposort()


def test_core_imports_no_framework():
    code = ("import sys, neuron_core, neuron_core.runtime, neuron_core.compiler, "
            "neuron_core.frontends.onnx_import, neuron_core.tools.neuron_cc, neuron_core.estimate, "
            "neuron_core.bridge.plugin, neuron_core.ops as o; "
            "o.op_names(); bad = [m for m in ('torch', 'tensorflow', 'mxnet') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
