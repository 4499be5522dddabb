"""MaxPool, AveragePool and the global pools against onnxruntime."""
import numpy as np
import pytest

from neuron_core.ir import Graph, TensorType
from neuron_core.ops import get_op, infer_node
from tests.helpers import assert_matches_ort

SHAPES = {"1d": (2, 3, 11), "2d": (2, 3, 9, 10), "3d": (1, 2, 7, 6, 8)}

POOLS = {
    "basic": {"kernel_shape": 3},
    "strides_pads": {"kernel_shape": 3, "strides": 2, "pads": 1},
    "asymmetric_pads": {"kernel_shape": 3, "strides": 2, "pads": (0, 2)},
    "ceil_mode": {"kernel_shape": 3, "strides": 2, "pads": 1, "ceil_mode": 1},
    "ceil_mode_no_pad": {"kernel_shape": 2, "strides": 2, "ceil_mode": 1},
    # the last window would start in the right padding: ONNX drops it
    "ceil_mode_last_window": {"kernel_shape": 3, "strides": 3, "pads": (0, 1), "ceil_mode": 1},
    "dilations": {"kernel_shape": 3, "dilations": 2, "pads": 1},
    "dilations_ceil": {"kernel_shape": 3, "dilations": 2, "strides": 2, "pads": 2,
                       "ceil_mode": 1},
    "same_upper": {"kernel_shape": 3, "strides": 2, "auto_pad": "SAME_UPPER"},
    "same_lower": {"kernel_shape": 4, "strides": 3, "auto_pad": "SAME_LOWER"},
    "valid": {"kernel_shape": 3, "strides": 2, "auto_pad": "VALID"},
}


def _attrs(spec: dict, rank: int) -> dict:
    """Per-axis attribute lists from the scalar spec (pads given as (begin, end))."""
    n = rank - 2
    attrs = {}
    for key, value in spec.items():
        if key == "pads":
            lo, hi = value if isinstance(value, tuple) else (value, value)
            attrs[key] = [lo] * n + [hi] * n
        elif key in ("kernel_shape", "strides", "dilations"):
            attrs[key] = [value] * n
        else:
            attrs[key] = value
    return attrs


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("rank", list(SHAPES))
@pytest.mark.parametrize("variant", list(POOLS))
def test_maxpool_variants(variant, rank):
    x = _x(SHAPES[rank])
    assert_matches_ort("MaxPool", [x], _attrs(POOLS[variant], x.ndim))


@pytest.mark.parametrize("count_include_pad", [0, 1], ids=["exclude_pad", "include_pad"])
@pytest.mark.parametrize("rank", list(SHAPES))
@pytest.mark.parametrize("variant", list(POOLS))
def test_averagepool_variants(variant, rank, count_include_pad):
    x = _x(SHAPES[rank])
    attrs = _attrs(POOLS[variant], x.ndim)
    assert_matches_ort("AveragePool", [x], {**attrs, "count_include_pad": count_include_pad})


@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 7, 9), (1, 4, 3, 5, 6)],
                         ids=["1d", "2d", "3d"])
def test_globalpool_variants(op_type, shape):
    assert_matches_ort(op_type, [_x(shape)])


def test_maxpool_resnet_stem():
    x = _x((1, 8, 112, 112))
    assert_matches_ort("MaxPool", [x], {"kernel_shape": [3, 3], "strides": [2, 2],
                                        "pads": [1, 1, 1, 1]})


def _node(op_type, shape, attrs, n_outputs=1):
    g = Graph()
    node = g.add_node(op_type, [g.add_input("x", TensorType(shape, "float32"))], attrs,
                      outputs=n_outputs)
    if n_outputs == 1:
        infer_node(node)
    else:  # Indices output: MaxPool infers one output only, so type the outputs by hand
        for out in node.outputs:
            out.type = TensorType(shape, "float32")
    return node


@pytest.mark.parametrize("attrs, n_outputs, reason", [
    ({"kernel_shape": [2, 2]}, 2, "Indices"),
    ({"kernel_shape": [2, 2], "storage_order": 1}, 1, "storage_order"),
])
def test_maxpool_unsupported(attrs, n_outputs, reason):
    verdict = get_op("MaxPool").check(_node("MaxPool", (1, 2, 4, 4), attrs, n_outputs))
    assert not verdict.supported and reason in verdict.reason


@pytest.mark.parametrize("op_type, attrs, flops", [
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
     2 * 8 * 4 * 4 * 9),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2]}, 2 * 8 * 4 * 4 * 4),
    ("GlobalAveragePool", {}, 2 * 8 * 8 * 8),
])
def test_pool_cost(op_type, attrs, flops):
    node = _node(op_type, (2, 8, 8, 8), attrs)
    assert get_op(op_type).cost(node).flops == flops
    assert get_op(op_type).engine == "VectorEngine"


def test_pool_symbolic_batch():
    node = _node("MaxPool", ("N", 3, 9, 9), {"kernel_shape": [3, 3], "strides": [2, 2]})
    assert node.outputs[0].type.shape == ("N", 3, 4, 4)
