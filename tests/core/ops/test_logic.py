import numpy as np

from neuron_core.ir import TensorType
from tests.core.ops.test_misc import randn, typed_node, verdict
from tests.helpers import assert_matches_ort


def mask(*shape, seed=0):
    return np.random.default_rng(seed).random(shape) < 0.5


def small_ints(*shape, seed=0, dtype=np.float32):
    # few distinct values, so that equal elements occur
    return np.random.default_rng(seed).integers(-2, 3, shape).astype(dtype)


def test_where_float_broadcast_all():
    assert_matches_ort("Where", [mask(3, 1), randn(1, 4), randn(2, 1, 1, seed=1)])


def test_where_int64():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert_matches_ort("Where", [mask(3, 4), x, np.array(-1, np.int64)])


def test_where_float_condition_unsupported():
    v = verdict("Where", [TensorType((3,), "float32")] * 3)
    assert not v.supported and v.kind == "dtype"


def test_where_keeps_symbolic_batch():
    node = typed_node("Where", [TensorType(("N", 1), "bool"), TensorType((1, 5), "float32"),
                                TensorType((5,), "float32")])
    assert node.outputs[0].type == TensorType(("N", 5), "float32")


def test_equal_float_broadcast():
    assert_matches_ort("Equal", [small_ints(3, 4), small_ints(4, seed=1)])


def test_equal_int64():
    a, b = small_ints(3, 4, dtype=np.int64), small_ints(3, 4, seed=1, dtype=np.int64)
    assert_matches_ort("Equal", [a, b])


def test_equal_bool():
    assert_matches_ort("Equal", [mask(3, 4), mask(1, 4, seed=1)])


def test_less_broadcast():
    assert_matches_ort("Less", [small_ints(2, 3, 4), small_ints(3, 1, seed=1)])


def test_less_int64():
    assert_matches_ort("Less", [small_ints(5, dtype=np.int64), np.array(0, np.int64)])


def test_greater_broadcast():
    assert_matches_ort("Greater", [small_ints(2, 3, 4), small_ints(3, 1, seed=1)])


def test_lessorequal_broadcast():
    assert_matches_ort("LessOrEqual", [small_ints(2, 3, 4), small_ints(4, seed=1)])


def test_greaterorequal_broadcast():
    assert_matches_ort("GreaterOrEqual", [small_ints(2, 3, 4), small_ints(4, seed=1)])


def test_greater_keeps_symbolic_batch():
    node = typed_node("Greater", [TensorType(("N", 4), "float32"), TensorType((), "float32")])
    assert node.outputs[0].type == TensorType(("N", 4), "bool")


def test_not_basic():
    assert_matches_ort("Not", [mask(3, 4)])


def test_and_broadcast():
    assert_matches_ort("And", [mask(3, 4), mask(4, seed=1)])


def test_or_broadcast():
    assert_matches_ort("Or", [mask(3, 1), mask(1, 4, seed=1)])


def test_and_float_input_unsupported():
    v = verdict("And", [TensorType((3,), "float32"), TensorType((3,), "float32")])
    assert not v.supported and v.kind == "dtype"
