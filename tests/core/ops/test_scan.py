"""CumSum against onnxruntime: axes, exclusive, reverse, integer inputs."""
import numpy as np
import pytest

from neuron_core.ir import TensorType
from neuron_core.ops import get_op
from tests.core.ops.test_misc import randn, typed_node
from tests.helpers import assert_matches_ort


def axis(a):
    return np.array(a, dtype=np.int64)


@pytest.mark.parametrize("a", [0, 1, -1])
def test_cumsum_axis(a):
    assert_matches_ort("CumSum", [randn(3, 4, 5), axis(a)])


@pytest.mark.parametrize("exclusive,reverse", [(1, 0), (0, 1), (1, 1)])
def test_cumsum_exclusive_reverse(exclusive, reverse):
    assert_matches_ort("CumSum", [randn(3, 5), axis(1)],
                       {"exclusive": exclusive, "reverse": reverse})


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_cumsum_integer_mask(dtype):
    x = (np.arange(12).reshape(2, 6) % 4 != 0).astype(dtype)
    assert_matches_ort("CumSum", [x, axis(1)])


def test_cumsum_cost_counts_every_element():
    node = typed_node("CumSum", [TensorType((8, 16), "float32"), axis(1)])
    assert get_op("CumSum").cost(node).flops == 8 * 16
