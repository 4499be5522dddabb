import numpy as np

from neuron_core.ir import TensorType
from tests.core.ops.test_misc import randn, typed_node, verdict
from tests.helpers import assert_matches_ort


def ints(*shape, seed=0, low=-50, high=50, dtype=np.int64):
    return np.random.default_rng(seed).integers(low, high, shape).astype(dtype)


def test_add_broadcast():
    assert_matches_ort("Add", [randn(2, 3, 4), randn(3, 1, seed=1)])


def test_add_int64():
    assert_matches_ort("Add", [ints(2, 3), ints(3, seed=1)])


def test_sub_broadcast():
    assert_matches_ort("Sub", [randn(2, 3, 4), randn(4, seed=1)])


def test_sub_int64():
    assert_matches_ort("Sub", [ints(2, 3), ints(1, seed=1)])


def test_mul_broadcast():
    assert_matches_ort("Mul", [randn(2, 1, 4), randn(3, 1, seed=1)])


def test_mul_int32():
    assert_matches_ort("Mul", [ints(2, 3, dtype=np.int32), ints(2, 3, seed=1, dtype=np.int32)])


def test_div_broadcast():
    assert_matches_ort("Div", [randn(2, 3, 4), randn(3, 4, seed=1) + np.float32(3)])


def test_div_int64_truncates_toward_zero():
    a = ints(6, 7)
    b = ints(6, 7, seed=1, low=1, high=9) * np.where(ints(6, 7, seed=2, low=0, high=2) == 1, 1, -1)
    assert_matches_ort("Div", [a, b])


def test_div_int32_broadcast():
    assert_matches_ort("Div", [ints(4, 5, dtype=np.int32), np.array([-3, 2, 7, -1, 4], np.int32)])


def test_pow_scalar_exponent():
    assert_matches_ort("Pow", [randn(3, 4), np.array(3.0, np.float32)])


def test_pow_int64_exponent():
    assert_matches_ort("Pow", [randn(3, 4), np.array([0, 1, 2, 3], np.int64)])


def test_pow_float_exponent_broadcast():
    base = np.random.default_rng(0).uniform(0.1, 3.0, (2, 3, 4)).astype(np.float32)
    assert_matches_ort("Pow", [base, randn(3, 1, seed=1)])


def test_pow_int_base_unsupported():
    v = verdict("Pow", [TensorType((3,), "int64"), TensorType((3,), "int64")])
    assert not v.supported and v.kind == "dtype"


def test_max_three_inputs_broadcast():
    assert_matches_ort("Max", [randn(2, 3, 4), randn(3, 1, seed=1), randn(4, seed=2)])


def test_max_int64():
    assert_matches_ort("Max", [ints(2, 3), ints(3, seed=1)])


def test_min_three_inputs_broadcast():
    assert_matches_ort("Min", [randn(2, 3, 4), randn(3, 1, seed=1), randn(4, seed=2)])


def test_min_single_input():
    assert_matches_ort("Min", [randn(2, 3)])


def test_sum_three_inputs_broadcast():
    assert_matches_ort("Sum", [randn(2, 3, 4), randn(3, 1, seed=1), randn(4, seed=2)])


def test_sum_single_input():
    assert_matches_ort("Sum", [randn(2, 3)])


def test_mean_three_inputs_broadcast():
    assert_matches_ort("Mean", [randn(2, 3, 4), randn(3, 1, seed=1), randn(4, seed=2)])


def test_mean_two_inputs():
    assert_matches_ort("Mean", [randn(5, 4), randn(5, 4, seed=1)])


def test_add_keeps_symbolic_batch():
    node = typed_node("Add", [TensorType(("N", 3, 4), "float32"), TensorType((4,), "float32")])
    assert node.outputs[0].type == TensorType(("N", 3, 4), "float32")


def test_sum_keeps_symbolic_batch():
    node = typed_node("Sum", [TensorType(("N", 1), "float32"), TensorType((1, 6), "float32"),
                              TensorType((6,), "float32")])
    assert node.outputs[0].type == TensorType(("N", 6), "float32")


def test_mul_float64_unsupported():
    v = verdict("Mul", [TensorType((2,), "float64"), TensorType((2,), "float64")])
    assert not v.supported and v.kind == "dtype" and "float64" in v.reason
