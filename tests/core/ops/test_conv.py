"""Conv and ConvTranspose against onnxruntime: every attribute variant on random fp32 inputs."""
import numpy as np
import pytest

from neuron_core.ir import Graph, TensorType
from neuron_core.ops import get_op, infer_node
from tests.helpers import assert_matches_ort, run_ort, run_registry

# a convolution output is a sum over C/group * prod(kernel) products (up to ~600 here): fp32
# summation in a different order (BLAS blocking vs onnxruntime's MLAS) differs by a few ulps of the
# partial sums, so compare with rtol 1e-4 / atol 1e-5 instead of the 1e-5 / 1e-6 defaults (weights
# are scaled by 1/sqrt(fan_in), as initialisers do, so outputs and partial sums stay O(1))
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _data(x_shape, w_shape, bias: bool, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    b_len = w_shape[0]
    return [x, w, rng.standard_normal(b_len).astype(np.float32)] if bias else [x, w]


CONV = {
    "basic": ((2, 3, 9, 10), (4, 3, 3, 3), {}),
    "pads": ((1, 3, 9, 10), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    "asymmetric_pads": ((1, 3, 9, 10), (4, 3, 3, 2), {"pads": [0, 2, 1, 1]}),
    "strides": ((2, 3, 11, 10), (5, 3, 3, 3), {"strides": [2, 3], "pads": [1, 1, 1, 1]}),
    "dilations": ((1, 3, 12, 11), (4, 3, 3, 3), {"dilations": [2, 3], "pads": [2, 1, 2, 1]}),
    "same_upper": ((1, 3, 9, 10), (4, 3, 4, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 3]}),
    "same_lower": ((1, 3, 9, 10), (4, 3, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
    "valid": ((1, 3, 9, 10), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    "group": ((2, 6, 8, 8), (9, 2, 3, 3), {"group": 3, "pads": [1, 1, 1, 1]}),
    "depthwise": ((2, 6, 8, 9), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),
    "depthwise_strided": ((1, 8, 9, 9), (8, 1, 3, 3), {"group": 8, "strides": [2, 2],
                                                       "dilations": [1, 2], "pads": [1, 2, 0, 1]}),
    "depthwise_multiplier": ((1, 4, 7, 8), (12, 1, 3, 2), {"group": 4, "pads": [1, 0, 1, 1]}),
    "pointwise": ((2, 16, 7, 9), (8, 16, 1, 1), {}),
    "pointwise_strided": ((1, 16, 9, 9), (8, 16, 1, 1), {"strides": [2, 2]}),
    "pointwise_padded": ((1, 4, 5, 5), (3, 4, 1, 1), {"pads": [1, 0, 0, 1]}),
    "pointwise_group": ((1, 8, 5, 5), (6, 4, 1, 1), {"group": 2}),
    "kernel_shape_attr": ((1, 3, 9, 10), (4, 3, 3, 3), {"kernel_shape": [3, 3]}),
    "conv1d": ((2, 3, 17), (4, 3, 5), {"strides": [2], "pads": [2, 1], "dilations": [2]}),
    "conv1d_same": ((2, 3, 17), (4, 3, 4), {"auto_pad": "SAME_LOWER"}),
    "conv3d": ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), {"strides": [1, 2, 2],
                                                  "pads": [1, 0, 1, 1, 1, 0]}),
    "conv3d_depthwise": ((1, 3, 5, 6, 7), (3, 1, 3, 3, 3), {"group": 3, "pads": [1] * 6}),
    "resnet_stem": ((1, 3, 32, 32), (8, 3, 7, 7), {"strides": [2, 2], "pads": [3, 3, 3, 3]}),
    "resnet_3x3": ((1, 64, 14, 14), (32, 64, 3, 3), {"pads": [1, 1, 1, 1]}),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("variant", list(CONV))
def test_conv_variants(variant, bias):
    x_shape, w_shape, attrs = CONV[variant]
    assert_matches_ort("Conv", _data(x_shape, w_shape, bias), attrs, **TOL)


CONV_TRANSPOSE = {
    "basic": ((2, 4, 5, 6), (4, 3, 3, 3), {}),
    "strides": ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 3]}),
    "pads": ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "pads": [1, 0, 2, 1]}),
    "output_padding": ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [3, 2],
                                                    "output_padding": [2, 1]}),
    "dilations": ((1, 4, 5, 6), (4, 3, 3, 2), {"dilations": [2, 3], "strides": [2, 1]}),
    "output_shape": ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "output_shape": [10, 12]}),
    "output_shape_odd": ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2],
                                                      "output_shape": [9, 13]}),
    "same_upper": ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    "same_lower": ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    "valid": ((1, 4, 5, 6), (4, 3, 3, 3), {"strides": [2, 2], "auto_pad": "VALID"}),
    "group": ((2, 6, 4, 5), (6, 2, 3, 3), {"group": 3, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "depthwise": ((1, 4, 4, 5), (4, 1, 2, 2), {"group": 4, "strides": [2, 2]}),
    "kernel_shape_attr": ((1, 4, 5, 6), (4, 3, 3, 3), {"kernel_shape": [3, 3]}),
    "conv1d": ((2, 3, 7), (3, 2, 4), {"strides": [3], "pads": [1, 2], "output_padding": [1]}),
    "conv3d": ((1, 2, 3, 4, 5), (2, 3, 2, 3, 2), {"strides": [2, 1, 2],
                                                  "pads": [0, 1, 1, 0, 1, 0]}),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("variant", list(CONV_TRANSPOSE))
def test_convtranspose_variants(variant, bias):
    x_shape, w_shape, attrs = CONV_TRANSPOSE[variant]
    data = _data(x_shape, w_shape, False)
    if bias:
        data.append(np.linspace(-1, 1, w_shape[1] * attrs.get("group", 1), dtype=np.float32))
    assert_matches_ort("ConvTranspose", data, attrs, **TOL)


@pytest.mark.parametrize("auto_pad, pads", [("SAME_UPPER", [1, 2, 2, 2]),
                                             ("SAME_LOWER", [2, 2, 1, 2])])
def test_conv_same_dilated(auto_pad, pads):
    # onnxruntime rejects dilations with SAME_*; ONNX pads the dilated kernel extent (here 4 x 5 on
    # a 9 x 10 input: 3 and 4 pad in total), which must equal the explicit pads in onnxruntime
    x, w = _data((1, 3, 9, 10), (4, 3, 2, 3), False)
    attrs = {"dilations": [3, 2]}
    ours = run_registry("Conv", [x, w], {**attrs, "auto_pad": auto_pad})[0]
    np.testing.assert_allclose(ours, run_ort("Conv", [x, w], {**attrs, "pads": pads})[0], **TOL)


def _node(op_type, x_shape, w_shape, attrs):
    g = Graph()
    node = g.add_node(op_type, [g.add_input("x", TensorType(x_shape, "float32")),
                                g.add_input("w", TensorType(w_shape, "float32"))], attrs)
    infer_node(node)
    return node


@pytest.mark.parametrize("op_type, x_shape, w_shape, attrs, matmul", [
    ("Conv", (2, 64, 56, 56), (64, 64, 3, 3), {"pads": [1, 1, 1, 1]}, (2, 3136, 576, 64)),
    ("Conv", (1, 8, 10, 10), (12, 2, 3, 3), {"group": 4}, (4, 64, 18, 3)),
    ("ConvTranspose", (1, 8, 5, 5), (8, 3, 2, 2), {"strides": [2, 2], "group": 2},
     (2, 25, 4, 12)),
])
def test_conv_cost(op_type, x_shape, w_shape, attrs, matmul):
    node = _node(op_type, x_shape, w_shape, attrs)
    cost = get_op(op_type).cost(node)
    count, m, k, n = matmul
    assert cost.matmul == matmul
    assert cost.flops == 2 * count * m * k * n
    assert get_op(op_type).engine == "TensorEngine"


def test_conv_symbolic_batch():
    node = _node("Conv", ("N", 3, 8, 8), (4, 3, 3, 3), {"strides": [2, 2]})
    assert node.outputs[0].type.shape == ("N", 4, 3, 3)
