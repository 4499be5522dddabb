import math

import numpy as np

from neuron_core.ir import TensorType
from neuron_core.ops import get_op
from neuron_core.ops.activation import _erf
from tests.core.ops.test_misc import randn, typed_node, verdict
from tests.helpers import assert_matches_ort


def positive(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 4.0, shape).astype(np.float32)


def test_relu_basic():
    assert_matches_ort("Relu", [randn(2, 3, 4)])


def test_leakyrelu_default():
    assert_matches_ort("LeakyRelu", [randn(2, 3, 4)])


def test_leakyrelu_alpha():
    assert_matches_ort("LeakyRelu", [randn(2, 3, 4)], {"alpha": 0.2})


def test_prelu_channel_slope():
    assert_matches_ort("PRelu", [randn(2, 3, 4, 5), randn(3, 1, 1, seed=1)])


def test_prelu_scalar_slope():
    assert_matches_ort("PRelu", [randn(2, 3, 4), np.array([0.25], np.float32)])


def test_prelu_full_slope():
    assert_matches_ort("PRelu", [randn(2, 3, 4), randn(2, 3, 4, seed=1)])


def test_elu_default():
    assert_matches_ort("Elu", [randn(2, 3, 4)])


def test_elu_alpha():
    assert_matches_ort("Elu", [randn(2, 3, 4)], {"alpha": 0.5})


def test_selu_default():
    assert_matches_ort("Selu", [randn(2, 3, 4)])


def test_selu_alpha_gamma():
    assert_matches_ort("Selu", [randn(2, 3, 4)], {"alpha": 1.5, "gamma": 2.0})


def test_sigmoid_basic():
    assert_matches_ort("Sigmoid", [randn(2, 3, 4) * 10])


def test_sigmoid_saturates_without_overflow():
    x = np.array([-1000.0, -90.0, 0.0, 90.0, 1000.0], np.float32)
    with np.errstate(over="raise", invalid="raise"):   # underflow to 0 is fine
        assert_matches_ort("Sigmoid", [x])


def test_tanh_basic():
    assert_matches_ort("Tanh", [randn(2, 3, 4) * 3])


def test_erf_basic():
    assert_matches_ort("Erf", [randn(4, 5, 6) * 2])


def test_erf_tails_and_tiny():
    x = np.array([0.0, 1e-30, -1e-8, 1e-3, 0.999, 1.0, 1.001, -3.9, 3.99, 4.0, 6.0, -60.0, np.inf],
                 np.float32)
    assert_matches_ort("Erf", [x])


def test_erf_within_one_ulp_of_math_erf():
    x = np.linspace(-6, 6, 200001, dtype=np.float32)
    exact = np.array([math.erf(v) for v in x.astype(np.float64)])
    ours = _erf(x)
    assert ours.dtype == np.float32
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    assert np.max(np.abs(ours - exact) / np.maximum(ulp, 1e-45)) <= 1.0


def test_gelu_default():
    assert_matches_ort("Gelu", [randn(2, 3, 8) * 3])


def test_gelu_tanh():
    assert_matches_ort("Gelu", [randn(2, 3, 8) * 3], {"approximate": "tanh"})


def test_softmax_default_axis():
    assert_matches_ort("Softmax", [randn(2, 3, 5) * 4])


def test_softmax_axis0():
    assert_matches_ort("Softmax", [randn(2, 3, 5) * 4], {"axis": 0})


def test_softmax_negative_axis():
    assert_matches_ort("Softmax", [randn(2, 3, 5) * 4], {"axis": -2})


def test_logsoftmax_default_axis():
    assert_matches_ort("LogSoftmax", [randn(2, 3, 5) * 4])


def test_logsoftmax_axis1():
    assert_matches_ort("LogSoftmax", [randn(2, 3, 5) * 4], {"axis": 1})


def test_softmax_axis_out_of_range_unsupported():
    v = verdict("Softmax", [TensorType((2, 3), "float32")], {"axis": 2})
    assert not v.supported and "axis" in v.reason


def test_clip_min_max():
    lo, hi = np.array(-0.5, np.float32), np.array(0.7, np.float32)
    assert_matches_ort("Clip", [randn(3, 4), lo, hi])


def test_clip_min_only():
    assert_matches_ort("Clip", [randn(3, 4), np.array(0.1, np.float32)])


def test_clip_max_only():
    assert_matches_ort("Clip", [randn(3, 4), None, np.array(0.1, np.float32)])


def test_clip_no_bounds():
    assert_matches_ort("Clip", [randn(3, 4)])


def test_clip_min_above_max():
    assert_matches_ort("Clip", [randn(3, 4), np.array(1.0, np.float32), np.array(-1.0, np.float32)])


def test_clip_int64():
    x = np.arange(-10, 10, dtype=np.int64)
    assert_matches_ort("Clip", [x, np.array(-3, np.int64), np.array(5, np.int64)])


def test_hardsigmoid_default():
    assert_matches_ort("HardSigmoid", [randn(3, 4) * 4])


def test_hardsigmoid_alpha_beta():
    assert_matches_ort("HardSigmoid", [randn(3, 4) * 4], {"alpha": 0.1, "beta": 0.3})


def test_hardswish_basic():
    assert_matches_ort("HardSwish", [randn(3, 4) * 4])


def test_softplus_basic():
    assert_matches_ort("Softplus", [randn(3, 4) * 10])


def test_sqrt_basic():
    assert_matches_ort("Sqrt", [positive(3, 4)])


def test_reciprocal_basic():
    assert_matches_ort("Reciprocal", [positive(3, 4) * np.float32(-1)])


def test_exp_basic():
    assert_matches_ort("Exp", [randn(3, 4) * 5])


def test_log_basic():
    assert_matches_ort("Log", [positive(3, 4)])


def test_neg_float():
    assert_matches_ort("Neg", [randn(3, 4)])


def test_neg_int64():
    assert_matches_ort("Neg", [np.arange(-5, 7, dtype=np.int64)])


def test_abs_float():
    assert_matches_ort("Abs", [randn(3, 4)])


def test_abs_int64():
    assert_matches_ort("Abs", [np.arange(-5, 7, dtype=np.int64)])


def test_sigmoid_keeps_symbolic_batch():
    node = typed_node("Sigmoid", [TensorType(("N", 8), "float32")])
    assert node.outputs[0].type == TensorType(("N", 8), "float32")


def test_prelu_keeps_symbolic_batch():
    node = typed_node("PRelu", [TensorType(("N", 3, 5), "float32"), TensorType((3, 1), "float32")])
    assert node.outputs[0].type == TensorType(("N", 3, 5), "float32")


def test_sigmoid_float64_unsupported():
    v = verdict("Sigmoid", [TensorType((2, 3), "float64")])
    assert not v.supported and v.kind == "dtype" and "float64" in v.reason


def test_sigmoid_symbolic_batch_unsupported():
    v = verdict("Sigmoid", [TensorType(("N", 3), "float32")])
    assert not v.supported and v.kind == "dynamic-shape"


def test_gelu_unknown_approximate_unsupported():
    v = verdict("Gelu", [TensorType((2, 3), "float32")], {"approximate": "fast"})
    assert not v.supported and "approximate" in v.reason


def test_float32_stays_float32():
    x = randn(2, 3)
    for op in ("LeakyRelu", "Elu", "Selu", "Sigmoid", "Erf", "Gelu", "HardSigmoid", "HardSwish",
               "Softplus", "Softmax", "LogSoftmax"):
        (y,) = get_op(op).run({}, [x])
        assert y.dtype == np.float32, op
