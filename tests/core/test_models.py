"""Whole models built in code, end to end through `neuron-cc compile` and the runtime, against
onnxruntime: full-FP32 simulation tightly, hardware precision within what BF16 allows."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from neuron_core import runtime
from neuron_core.models.builders import bert, resnet, small_cnn
from neuron_core.tools import neuron_cc


def _ort(model, feed):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def _compile(tmp_path, model, *flags) -> str:
    src, out = tmp_path / "model.onnx", tmp_path / "model.neff"
    onnx.save(model, src)
    assert neuron_cc.main(["compile", str(src), "--framework", "ONNX", "--output", str(out),
                           *flags]) == 0
    return str(out)


def _rel_err(actual, expected) -> float:
    """Normwise relative error ||a - e|| / ||e||."""
    return float(np.linalg.norm(actual - expected) / np.linalg.norm(expected))


MODELS = {
    "resnet18_w16": (lambda: resnet(18, image=64, width=16, num_classes=100),
                     lambda rng: {"input": rng.standard_normal((1, 3, 64, 64)).astype(np.float32)}),
    "resnet50_w8": (lambda: resnet(50, image=64, width=8, num_classes=100),
                    lambda rng: {"input": rng.standard_normal((1, 3, 64, 64)).astype(np.float32)}),
    "bert_l2_h128": (lambda: bert(layers=2, hidden=128, heads=4, seq=32, vocab=1000),
                     lambda rng: {"input_ids": rng.integers(0, 1000, (1, 32), dtype=np.int64)}),
}

#: Normwise bound for hardware precision. Each bf16 rounding has relative error <= 2^-9; a network
#: of depth L with well-conditioned layers accumulates roughly sqrt(#roundings) of them, a few
#: percent at most for these depths. A logic error (wrong axis, wrong weights) gives O(1).
HARDWARE_RTOL = 5e-2


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_end_to_end(tmp_path, name):
    build, feed_fn = MODELS[name]
    model = build()
    feed = feed_fn(np.random.default_rng(0))
    expected, = _ort(model, feed)
    neff = _compile(tmp_path, model)
    with runtime.load(neff, precision="fp32") as m:
        exact, = m.run(feed)
    # full FP32: only summation order differs from onnxruntime
    np.testing.assert_allclose(exact, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    with runtime.load(neff, precision="hardware") as m:
        approx, = m.run(feed)
    err = _rel_err(approx, expected)
    assert 0 < err < HARDWARE_RTOL, err  # > 0: the casts really happened


def test_fp16_everywhere_loses_less_than_bf16_everywhere(tmp_path):
    """fp16 keeps 3 more mantissa bits than bf16: on a well-scaled CNN its error is far smaller."""
    model = small_cnn()
    feed = {"input": np.random.default_rng(1).standard_normal((1, 3, 32, 32)).astype(np.float32)}
    expected, = _ort(model, feed)
    errors = {}
    for policy in ("fp32-cast-all", "fp32-cast-all-fp16"):
        (tmp_path / policy).mkdir()
        neff = _compile(tmp_path / policy, model, "--fast-math", policy)
        with runtime.load(neff) as m:
            errors[policy] = _rel_err(m.run(feed)[0], expected)
    assert errors["fp32-cast-all-fp16"] * 4 < errors["fp32-cast-all"]


def _round(a, dtype):
    import ml_dtypes
    return a.astype(ml_dtypes.bfloat16 if dtype == "bf16" else np.float16).astype(np.float32)


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


#: policy -> (dtype of matmul inputs, dtype the fused MatMul+Sigmoid result is rounded to or None)
POLICIES = {"all": ("bf16", "bf16"), "fp32-cast-matmult-bf16": ("bf16", None),
            "fp32-cast-all-fp16": ("fp16", "fp16"), "fp32-cast-matmult-fp16": ("fp16", None)}


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_cast_points_follow_the_policy(tmp_path, policy):
    """MatMul -> Sigmoid in hardware mode equals: operands rounded (RNE) to the matmul dtype,
    exact products, fp32 accumulation, the Sigmoid epilogue in fp32, and one rounding of the result
    to the dtype of other ops (none when those stay fp32)."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(2)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Sigmoid", ["m"], ["y"])],
        "mm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 32])],
        [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((8, 64)).astype(np.float32)
    matmul_dtype, out_dtype = POLICIES[policy]
    exact = _sigmoid(_round(x, matmul_dtype).astype(np.float64)
                     @ _round(w, matmul_dtype).astype(np.float64)).astype(np.float32)
    with runtime.load(_compile(tmp_path, model, "--fast-math", policy)) as m:
        y, = m.run({"x": x})
    if out_dtype is None:
        np.testing.assert_allclose(y, exact, rtol=1e-5)  # fp32 summation order only
    else:
        expected = _round(exact, out_dtype)
        # equal except where summation order moves a value across a rounding boundary (1 ulp)
        assert np.mean(y != expected) < 0.05
        np.testing.assert_allclose(y, expected, rtol=2 ** -7 if out_dtype == "bf16" else 2 ** -10)
        assert not np.array_equal(y, exact)
