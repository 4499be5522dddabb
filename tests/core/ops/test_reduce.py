import numpy as np
import pytest

from neuron_core.errors import ShapeInferenceError
from neuron_core.ir import TensorType
from neuron_core.ops import get_op
from tests.core.ops.test_misc import randn, typed_node
from tests.helpers import assert_matches_ort


def axes(*a):
    return np.array(a, dtype=np.int64)


def test_reducemean_axis1():
    assert_matches_ort("ReduceMean", [randn(2, 3, 4), axes(1)])


def test_reducemean_all_axes():
    assert_matches_ort("ReduceMean", [randn(2, 3, 4)])


def test_reducemean_keepdims0():
    assert_matches_ort("ReduceMean", [randn(2, 3, 4), axes(2)], {"keepdims": 0})


def test_reducemean_negative_axes():
    assert_matches_ort("ReduceMean", [randn(2, 3, 4, 5), axes(-1, 0)])


def test_reducemean_empty_axes_noop():
    assert_matches_ort("ReduceMean", [randn(2, 3), axes()], {"noop_with_empty_axes": 1})


def test_reducemean_absent_axes_noop():
    assert_matches_ort("ReduceMean", [randn(2, 3)], {"noop_with_empty_axes": 1})


def test_reducemean_empty_axes_all():
    assert_matches_ort("ReduceMean", [randn(2, 3), axes()], {"keepdims": 0})


def test_reducesum_axes_keepdims0():
    assert_matches_ort("ReduceSum", [randn(2, 3, 4), axes(0, 2)], {"keepdims": 0})


def test_reducesum_int64():
    x = np.arange(24, dtype=np.int64).reshape(2, 3, 4) - 10
    assert_matches_ort("ReduceSum", [x, axes(1)])


def test_reducemax_axis():
    assert_matches_ort("ReduceMax", [randn(2, 3, 4), axes(-2)])


def test_reducemax_int64_all():
    x = np.arange(24, dtype=np.int64).reshape(2, 3, 4) - 10
    assert_matches_ort("ReduceMax", [x], {"keepdims": 0})


def test_reducemin_axis():
    assert_matches_ort("ReduceMin", [randn(2, 3, 4), axes(1)], {"keepdims": 0})


def test_reduceprod_axis():
    x = np.random.default_rng(0).uniform(0.5, 1.5, (2, 3, 4)).astype(np.float32)
    assert_matches_ort("ReduceProd", [x, axes(2)])


def test_reducel2_axis():
    assert_matches_ort("ReduceL2", [randn(2, 3, 4), axes(1, 2)])


def test_reducel2_all_keepdims0():
    assert_matches_ort("ReduceL2", [randn(2, 3, 4)], {"keepdims": 0})


def test_reducemean_keeps_symbolic_batch():
    node = typed_node("ReduceMean", [TensorType(("N", 3, 4), "float32"), axes(-1)],
                      {"keepdims": 0})
    assert node.outputs[0].type == TensorType(("N", 3), "float32")


def test_reducemean_axes_out_of_range():
    with pytest.raises(ShapeInferenceError, match="out of range"):
        typed_node("ReduceMean", [TensorType((2, 3), "float32"), axes(2)])


def test_reducesum_dynamic_axes_unsupported():
    node = typed_node("ReduceSum", [TensorType((2, 3), "float32"), None])
    node.inputs[1] = node.inputs[0]   # a run-time axes input (types already inferred)
    v = get_op("ReduceSum").check(node)
    assert not v.supported and "compile-time constant" in v.reason


def test_reducesum_cost_counts_input_elements():
    node = typed_node("ReduceSum", [TensorType((8, 16), "float32"), axes(1)])
    assert get_op("ReduceSum").cost(node).flops == 8 * 16
