"""Shared test oracles: run one ONNX node in onnxruntime, and the same node through the op registry."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from neuron_core.ir import Graph, TensorType
from neuron_core.ops import get_op, infer_node

OPSET = 21


def run_ort(op_type: str, inputs: list, attrs: dict | None = None, n_outputs: int = 1,
            opset: int = OPSET) -> list[np.ndarray]:
    """Evaluate one ONNX node in onnxruntime. `inputs` is a list of arrays (None = absent)."""
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, **(attrs or {}))
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
                    for n, x in zip(names, inputs) if x is not None]
    graph = helper.make_graph([node], "g", graph_inputs, [onnx.ValueInfoProto(name=o) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    model = onnx.shape_inference.infer_shapes(model)
    inferred = {v.name: v for v in model.graph.value_info}
    for out in model.graph.output:
        if out.name in inferred:
            out.CopyFrom(inferred[out.name])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {n: x for n, x in zip(names, inputs) if x is not None}
    return sess.run(None, feed)


def run_registry(op_type: str, inputs: list, attrs: dict | None = None, n_outputs: int = 1,
                 const_inputs: tuple = ()) -> list[np.ndarray]:
    """Evaluate one node through the registry: build it in the IR (inputs at positions in
    `const_inputs`, and the op's static inputs, become constants), infer its types, check the
    verdict and run the reference. Asserts that inferred types match the computed outputs."""
    op = get_op(op_type)
    g = Graph()
    values = []
    for i, x in enumerate(inputs):
        if x is None:
            values.append(None)
        elif i in const_inputs or i in op.static_inputs:
            values.append(g.add_const(f"c{i}", x))
        else:
            values.append(g.add_input(f"in{i}", TensorType(x.shape, x.dtype)))
    node = g.add_node(op_type, values, attrs or {}, outputs=n_outputs)
    infer_node(node)
    verdict = op.check(node)
    assert verdict.supported, verdict.reason
    outs = op.run(node.attrs, [x for x in inputs])
    for value, out in zip(node.outputs, outs):
        assert tuple(value.type.shape) == tuple(out.shape), (value.type, out.shape)
        assert value.type.dtype == (np.dtype(out.dtype).name), (value.type, out.dtype)
    return outs


def assert_matches_ort(op_type: str, inputs: list, attrs: dict | None = None, n_outputs: int = 1,
                       rtol: float = 1e-5, atol: float = 1e-6, const_inputs: tuple = ()) -> None:
    """The registry's fp32 reference agrees with onnxruntime on this node."""
    ours = run_registry(op_type, inputs, attrs, n_outputs, const_inputs)
    theirs = run_ort(op_type, inputs, attrs, n_outputs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
