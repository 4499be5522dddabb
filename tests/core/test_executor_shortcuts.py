"""The executor's shortcuts are bit-identical to the plain path: bf16 tables of unary functions,
skipped roundings of exact ops, and epilogues written into the TensorEngine op's own result."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy import special

from neuron_core import runtime
from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.ops import activation, get_op
from neuron_core.ops._elementwise import via_bf16_table

#: every bfloat16 bit pattern (NaNs and infinities included) as float32
ALL_BF16 = (np.arange(1 << 16, dtype=np.uint32) << 16).view(np.float32)


pytestmark = pytest.mark.usefixtures("fresh_runtime")


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, np.float32).view(np.uint32)


@pytest.mark.parametrize("name,plain", [
    ("Erf", special.erf), ("Tanh", np.tanh), ("Sigmoid", activation._sigmoid),
    ("Gelu", activation._gelu_erf), ("Gelu-tanh", activation._gelu_tanh)])
def test_bf16_table_matches_the_function(name, plain):
    op, attrs = get_op(name.split("-")[0]), {}
    if name == "Gelu-tanh":
        attrs = {"approximate": "tanh"}
    elif name == "Gelu":
        attrs = {"approximate": "none"}
    rng = np.random.default_rng(0)
    x = ALL_BF16[rng.permutation(ALL_BF16.size)].reshape(256, 256)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(_bits(op.reference(x, **attrs)), _bits(plain(x)))
        y = (rng.standard_normal(10_000) * 3).astype(np.float32)  # not bf16: the plain path
        np.testing.assert_array_equal(_bits(op.reference(y, **attrs)), _bits(plain(y)))


def test_bf16_table_only_for_exact_contiguous_float32():
    calls = []

    def fn(x):
        calls.append(x.size)
        return x + np.float32(1)

    exact = np.ones((64, 128), np.float32)
    via_bf16_table(fn, exact, key="test-fn")
    assert calls == [1 << 16]  # the table, built once
    via_bf16_table(fn, exact, key="test-fn")
    assert calls == [1 << 16]
    for x in (exact + np.float32(1e-3), exact[:, ::2], exact.astype(np.float64)):
        calls.clear()
        via_bf16_table(fn, x, key="test-fn")
        assert calls == [x.size]


def _model(nodes, inputs, outputs, inits):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, feed, precision="hardware"):
    """The reference kernels: these tests compare bits with NumPy's own matmul (the fast kernels'
    summation order is checked in test_fast_kernels.py)."""
    compiled = compile_graph(from_onnx(model), parse_compiler_args([]))
    with runtime.load(compiled.to_bytes(), precision=precision, kernels="reference") as m:
        return m.run(feed)


def test_epilogue_in_place_is_bit_identical_and_keeps_constants():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    b = rng.standard_normal((8,)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Add", ["b", "m"], ["s"]),   # the chained value second
             helper.make_node("Relu", ["s"], ["r"]),
             helper.make_node("Div", ["r", "d"], ["y"])]
    d = np.float32(3.0) * np.ones((1, 8), np.float32)
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
                   [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
                    numpy_helper.from_array(d, "d")])
    x = rng.standard_normal((4, 16)).astype(np.float32)

    def bf16(a):
        return a.astype(ml_dtypes.bfloat16).astype(np.float32)

    expected = bf16(np.maximum(bf16(b) + bf16(x) @ bf16(w), 0) / bf16(d))
    for _ in range(2):  # a second run sees the same constants
        y, = _run(model, {"x": x})
        np.testing.assert_array_equal(_bits(y), _bits(expected))
    y32, = _run(model, {"x": x}, precision="fp32")
    np.testing.assert_array_equal(_bits(y32), _bits(np.maximum(b + x @ w, 0) / d))


def test_exact_ops_skip_rounding_without_changing_results():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((8, 6)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]),
             helper.make_node("Transpose", ["m"], ["t"], perm=[1, 0]),
             helper.make_node("Relu", ["t"], ["r"]),
             helper.make_node("Relu", ["x"], ["xr"]),   # fp32 input: its output is still rounded
             helper.make_node("ReduceSum", ["xr"], ["s"], keepdims=0)]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 8])],
                   [helper.make_tensor_value_info("r", TensorProto.FLOAT, [6, 5]),
                    helper.make_tensor_value_info("s", TensorProto.FLOAT, [])],
                   [numpy_helper.from_array(w, "w")])
    x = rng.standard_normal((5, 8)).astype(np.float32) * np.float32(1 + 2 ** -12)

    def bf16(a):
        return np.asarray(a, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32)

    r, s = _run(model, {"x": x})
    np.testing.assert_array_equal(_bits(r), _bits(np.maximum(bf16(bf16(x) @ bf16(w)).T, 0)))
    np.testing.assert_array_equal(_bits(s), _bits(bf16(np.sum(bf16(np.maximum(x, 0))))))


def test_results_written_into_dying_inputs_leave_other_buffers_alone():
    """An op writes into an input only when that buffer dies with it and nothing else reads it:
    here `a` is read by a Reshape (a view) and by a Mul, so neither may overwrite it; `m` and `n`
    each feed one op and may be overwritten."""
    rng = np.random.default_rng(7)
    c1, c2 = (rng.standard_normal((2, 6)).astype(np.float32) for _ in range(2))
    nodes = [helper.make_node("Add", ["x", "c1"], ["a"]),
             helper.make_node("Reshape", ["a", "shape"], ["r"]),
             helper.make_node("Mul", ["a", "c2"], ["m"]),
             helper.make_node("Relu", ["m"], ["n"]),
             helper.make_node("Reshape", ["r", "back"], ["rb"]),
             helper.make_node("Sub", ["n", "rb"], ["y"])]
    inits = [numpy_helper.from_array(c1, "c1"), numpy_helper.from_array(c2, "c2"),
             numpy_helper.from_array(np.array([3, 4], np.int64), "shape"),
             numpy_helper.from_array(np.array([2, 6], np.int64), "back")]
    model = _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
                   [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6]),
                    helper.make_tensor_value_info("r", TensorProto.FLOAT, [3, 4])], inits)
    x = rng.standard_normal((2, 6)).astype(np.float32)
    x_before = x.copy()
    a = x + c1
    expected_y = np.maximum(a * c2, 0) - a
    for _ in range(2):
        y, r = _run(model, {"x": x}, precision="fp32")
        np.testing.assert_array_equal(_bits(y), _bits(expected_y))
        np.testing.assert_array_equal(_bits(r), _bits(a.reshape(3, 4)))
        np.testing.assert_array_equal(_bits(x), _bits(x_before))
