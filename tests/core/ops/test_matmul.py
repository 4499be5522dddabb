"""MatMul and Gemm against onnxruntime: numpy matmul shapes, transposes, alpha/beta, C broadcast."""
import numpy as np
import pytest

from neuron_core.ir import Graph, TensorType
from neuron_core.ops import get_op, infer_node
from tests.helpers import assert_matches_ort

# inner dimensions up to 64: fp32 dot products summed in BLAS order vs onnxruntime's MLAS order
# differ by a few ulps of the partial sums, hence rtol 1e-4 / atol 1e-5
TOL = {"rtol": 1e-4, "atol": 1e-5}


def _rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("a_shape, b_shape", [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((2, 1, 3, 4), (5, 4, 6)),
    ((3, 4), (2, 4, 5)),
    ((1, 64, 64), (64, 48)),
], ids=["2d", "vec_mat", "mat_vec", "dot", "batch_mat", "vec_batch", "batch_vec", "broadcast",
        "mat_batch", "square"])
def test_matmul_shapes(a_shape, b_shape):
    rng = np.random.default_rng(0)
    assert_matches_ort("MatMul", [_rand(rng, a_shape), _rand(rng, b_shape)], **TOL)


@pytest.mark.parametrize("c_shape", [None, (3, 5), (5,), (1, 5), (3, 1), ()],
                         ids=["no_c", "full", "row", "row2d", "col", "scalar"])
@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)],
                         ids=["nn", "tn", "nt", "tt"])
def test_gemm_variants(trans_a, trans_b, c_shape):
    rng = np.random.default_rng(1)
    a = _rand(rng, (4, 3) if trans_a else (3, 4))
    b = _rand(rng, (5, 4) if trans_b else (4, 5))
    inputs = [a, b] if c_shape is None else [a, b, _rand(rng, c_shape)]
    assert_matches_ort("Gemm", inputs, {"transA": trans_a, "transB": trans_b}, **TOL)


@pytest.mark.parametrize("alpha, beta", [(0.5, 1.0), (1.0, -2.0), (2.5, 0.0), (-1.0, 0.25)])
def test_gemm_alpha_beta(alpha, beta):
    rng = np.random.default_rng(2)
    inputs = [_rand(rng, (6, 7)), _rand(rng, (7, 3)), _rand(rng, (3,))]
    assert_matches_ort("Gemm", inputs, {"alpha": alpha, "beta": beta}, **TOL)


def _node(op_type, shapes, attrs=None):
    g = Graph()
    ins = [g.add_input(f"i{k}", TensorType(s, "float32")) for k, s in enumerate(shapes)]
    node = g.add_node(op_type, ins, attrs or {})
    infer_node(node)
    return node


@pytest.mark.parametrize("op_type, shapes, attrs, matmul", [
    ("MatMul", [(2, 1, 3, 4), (5, 4, 6)], {}, (10, 3, 4, 6)),
    ("MatMul", [(4,), (4, 5)], {}, (1, 1, 4, 5)),
    ("Gemm", [(4, 3), (5, 4), (5,)], {"transA": 1, "transB": 1}, (1, 3, 4, 5)),
])
def test_matmul_cost(op_type, shapes, attrs, matmul):
    node = _node(op_type, shapes, attrs)
    cost = get_op(op_type).cost(node)
    count, m, k, n = matmul
    assert cost.matmul == matmul and cost.flops == 2 * count * m * k * n
    assert cost.bytes == 4 * (sum(np.prod(s) for s in shapes) + node.outputs[0].type.numel)


def test_matmul_symbolic_batch():
    assert _node("MatMul", [("N", 3, 4), (4, 5)]).outputs[0].type.shape == ("N", 3, 5)
