"""Shape ops (Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Tile) against onnxruntime,
plus symbolic-dim inference and the support verdict of non-constant shape inputs."""
from __future__ import annotations

import numpy as np
import pytest

from neuron_core.errors import ShapeInferenceError
from neuron_core.ir import Graph, TensorType
from neuron_core.ops import get_op, infer_node
from tests.helpers import assert_matches_ort

I64 = np.int64
DTYPES = ["float32", "float16", "int64", "int32", "bool"]


def data(shape, dtype="float32", seed=0) -> np.ndarray:
    """Random test data of any dtype, from a fixed seed."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if np.dtype(dtype).kind == "i":
        return rng.integers(-100, 100, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def infer_symbolic(op_type, shape, consts=(), attrs=None, n_outputs=1, more=()):
    """Inferred output shapes of a node whose data input has `shape` (may hold "N"); `consts` are
    the constant inputs after it (None = absent), `more` the shapes of further runtime inputs."""
    g = Graph()
    ins = [g.add_input("x", TensorType(shape, "float32"))]
    ins += [g.add_input(f"y{i}", TensorType(s, "int64")) for i, s in enumerate(more)]
    ins += [None if c is None else g.add_const(f"c{i}", np.asarray(c, I64))
            for i, c in enumerate(consts)]
    node = g.add_node(op_type, ins, attrs or {}, outputs=n_outputs)
    infer_node(node)
    shapes = [o.type.shape for o in node.outputs]
    return shapes[0] if n_outputs == 1 else shapes


# -- Reshape ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [[4, 6], [-1], [2, -1, 3], [0, -1], [0, 0, 2, 2], [24]])
def test_reshape_shapes(shape):
    assert_matches_ort("Reshape", [data((2, 3, 4)), np.array(shape, I64)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_reshape_dtypes(dtype):
    assert_matches_ort("Reshape", [data((2, 3, 4), dtype), np.array([0, -1], I64)])


def test_reshape_allowzero():
    assert_matches_ort("Reshape", [data((0, 3)), np.array([3, 0], I64)], {"allowzero": 1})


def test_reshape_zero_copies_without_allowzero():
    assert_matches_ort("Reshape", [data((2, 3, 4)), np.array([0, 12], I64)], {"allowzero": 0})


def test_reshape_symbolic_copy_and_fill():
    assert infer_symbolic("Reshape", ("N", 3, 4), [[0, -1]]) == ("N", 12)
    assert infer_symbolic("Reshape", ("N", 3, 4), [[-1, 4]]) == ("N*3", 4)


def test_reshape_bad_size_raises():
    with pytest.raises(ShapeInferenceError, match="cannot reshape"):
        infer_symbolic("Reshape", (2, 3), [[4, 2]])


def test_reshape_nonconstant_shape_is_dynamic():
    g = Graph()
    x = g.add_input("x", TensorType((2, 6), "float32"))
    s = g.add_input("s", TensorType((2,), "int64"))
    node = g.add_node("Reshape", [x, s])
    with pytest.raises(ShapeInferenceError, match="compile-time constant"):
        infer_node(node)
    node.outputs[0].type = TensorType((3, 4), "float32")
    verdict = get_op("Reshape").check(node)
    assert not verdict.supported
    assert verdict.kind == "dynamic-shape"
    assert "%s" in verdict.reason and "constant" in verdict.reason


# -- Flatten ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_flatten_axis(axis):
    assert_matches_ort("Flatten", [data((2, 3, 4))], {"axis": axis})


@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_flatten_dtypes(dtype):
    assert_matches_ort("Flatten", [data((2, 3, 4), dtype)])


def test_flatten_symbolic():
    assert infer_symbolic("Flatten", ("N", 3, 4)) == ("N", 12)
    assert infer_symbolic("Flatten", ("N", 3, 4), attrs={"axis": 2}) == ("N*3", 4)


# -- Squeeze / Unsqueeze ----------------------------------------------------------------------------
@pytest.mark.parametrize("axes", [None, [0], [-1], [0, 2]])
def test_squeeze_axes(axes):
    ins = [data((1, 3, 1, 1), "int64")] + ([] if axes is None else [np.array(axes, I64)])
    assert_matches_ort("Squeeze", ins)


def test_squeeze_non_unit_axis_raises():
    with pytest.raises(ShapeInferenceError, match="cannot squeeze"):
        infer_symbolic("Squeeze", (2, 3), [[0]])


@pytest.mark.parametrize("axes", [[0], [-1], [0, 3], [1, -1], [-4, 2]])
def test_unsqueeze_axes(axes):
    assert_matches_ort("Unsqueeze", [data((3, 4), "bool"), np.array(axes, I64)])


def test_unsqueeze_symbolic():
    assert infer_symbolic("Unsqueeze", ("N", 3), [[0, -1]]) == (1, "N", 3, 1)


# -- Transpose --------------------------------------------------------------------------------------
@pytest.mark.parametrize("perm", [None, [0, 2, 1], [2, 0, 1]])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_transpose_perm(perm, dtype):
    attrs = {} if perm is None else {"perm": perm}
    assert_matches_ort("Transpose", [data((2, 3, 4), dtype)], attrs)


def test_transpose_symbolic_and_engine():
    assert infer_symbolic("Transpose", ("N", 3, 4), attrs={"perm": [2, 0, 1]}) == (4, "N", 3)
    assert get_op("Transpose").engine == "PE transpose"
    assert not get_op("Transpose").arithmetic


# -- Expand / Tile ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [[2, 3, 4], [3, 1], [2, 1, 1], [4]])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_expand_bidirectional(shape, dtype):
    assert_matches_ort("Expand", [data((3, 1), dtype), np.array(shape, I64)])


def test_expand_symbolic():
    assert infer_symbolic("Expand", ("N", 1), [[1, 5]]) == ("N", 5)


@pytest.mark.parametrize("repeats", [[1, 1], [2, 3], [0, 2]])
@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_tile_repeats(repeats, dtype):
    assert_matches_ort("Tile", [data((2, 3), dtype), np.array(repeats, I64)])


def test_tile_symbolic():
    assert infer_symbolic("Tile", ("N", 3), [[2, 1]]) == ("N*2", 3)
