"""Tensor ops (Concat, Split, Slice, Pad, Gather, GatherElements, DepthToSpace, SpaceToDepth)
against onnxruntime, plus symbolic-dim inference and support verdicts."""
from __future__ import annotations

import numpy as np
import pytest

from neuron_core.errors import ShapeInferenceError
from neuron_core.ir import Graph, TensorType
from neuron_core.ops import get_op
from tests.core.ops.test_shape import data, infer_symbolic
from tests.helpers import assert_matches_ort, run_ort, run_registry

I64 = np.int64
BIG = np.iinfo(np.int64).max


# -- Concat -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1, -3])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_concat_axis(axis, dtype):
    shapes = [[2, 3, 4], [2, 3, 4], [2, 3, 4]]
    for i, s in enumerate(shapes):
        s[axis] += i
    assert_matches_ort("Concat", [data(s, dtype, seed=i) for i, s in enumerate(shapes)],
                       {"axis": axis})


def test_concat_symbolic_other_axis():
    assert infer_symbolic("Concat", ("N", 3), attrs={"axis": 1}, more=[("N", 5)]) == ("N", 8)
    with pytest.raises(ShapeInferenceError, match="symbolic"):
        infer_symbolic("Concat", ("N", 3), attrs={"axis": 0}, more=[("N", 3)])


# -- Split ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("split,axis", [([2, 4], 1), ([1, 0, 5], -1), ([2], 0)])
def test_split_by_input(split, axis):
    shape = [2, 3, 3]
    shape[axis] = sum(split)
    assert_matches_ort("Split", [data(shape, "int64"), np.array(split, I64)], {"axis": axis},
                       n_outputs=len(split))


@pytest.mark.parametrize("num_outputs,dim", [(3, 6), (3, 7), (4, 10), (2, 1)])
def test_split_num_outputs(num_outputs, dim):
    assert_matches_ort("Split", [data((dim, 2), "bool")], {"num_outputs": num_outputs},
                       n_outputs=num_outputs)


def test_split_even_default():
    # opset 18+ wants `split` or `num_outputs`; the even default is opset 13's, checked there
    x = data((2, 9))
    ours = run_registry("Split", [x], {"axis": 1}, n_outputs=3)
    theirs = run_ort("Split", [x], {"axis": 1}, n_outputs=3, opset=13)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_split_even_default_uneven_raises():
    with pytest.raises(ShapeInferenceError, match="evenly"):
        infer_symbolic("Split", (7, 2), n_outputs=2)


def test_split_symbolic_other_axis():
    assert infer_symbolic("Split", ("N", 6), [[2, 4]], {"axis": 1}, n_outputs=2) == [("N", 2),
                                                                                    ("N", 4)]


# -- Slice ------------------------------------------------------------------------------------------
SLICES = {
    "basic": ([1, 0], [3, 2], [0, 1], None),
    "omitted_axes": ([0, 1], [1, 3], None, None),
    "negative_axes": ([1], [-1], [-1], None),
    "negative_index": ([-3], [-1], [2], None),
    "steps": ([0, 1], [4, 5], [1, 2], [2, 3]),
    "negative_step": ([-1], [-BIG], [2], [-1]),
    "negative_step_2": ([4, 3], [0, -100], [2, 1], [-2, -1]),
    "clamp_high": ([1], [BIG], [0], None),
    "clamp_low": ([-100], [100], [2], None),
    "clamp_negative_step_low": ([-100], [-200], [1], [-1]),
    "empty": ([3], [1], [1], None),
}


@pytest.mark.parametrize("variant", SLICES)
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_slice_variants(variant, dtype):
    starts, ends, axes, steps = SLICES[variant]
    inputs = [data((3, 4, 5), dtype), np.array(starts, I64), np.array(ends, I64),
              None if axes is None else np.array(axes, I64),
              None if steps is None else np.array(steps, I64)]
    while inputs[-1] is None:
        inputs.pop()
    assert_matches_ort("Slice", inputs)


def test_slice_symbolic_untouched_axis():
    assert infer_symbolic("Slice", ("N", 8), [[1], [-1], [1], [2]]) == ("N", 3)


# -- Pad --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", [[1, 2, 0, 1], [0, 0, 2, 2], [1, -1, -1, 2]])
def test_pad_modes(mode, pads):
    assert_matches_ort("Pad", [data((4, 5)), np.array(pads, I64)], {"mode": mode})


@pytest.mark.parametrize("dtype,value", [("float32", 2.5), ("int64", -7), ("bool", True)])
def test_pad_constant_value(dtype, value):
    assert_matches_ort("Pad", [data((2, 3), dtype), np.array([1, 0, 2, 1], I64),
                               np.array(value, dtype)])


@pytest.mark.parametrize("axes", [[1], [-1, 0], [2]])
def test_pad_axes(axes):
    pads = np.array([1, 2] * len(axes), I64)
    assert_matches_ort("Pad", [data((3, 4, 5)), pads, np.array(0.5, np.float32),
                               np.array(axes, I64)], {"mode": "reflect"})


def test_pad_reflect_too_wide_raises():
    with pytest.raises(ShapeInferenceError, match="reflect"):
        infer_symbolic("Pad", (2, 3), [[2, 0, 0, 0]], {"mode": "reflect"})


def test_pad_mode_unsupported():
    g = Graph()
    x = g.add_input("x", TensorType((2, 3), "float32"))
    node = g.add_node("Pad", [x, g.add_const("p", np.zeros(4, I64))], {"mode": "mirror"})
    node.outputs[0].type = TensorType((2, 3), "float32")
    verdict = get_op("Pad").check(node)
    assert verdict.kind == "attribute" and "'mirror'" in verdict.reason


# -- Gather / GatherElements -----------------------------------------------------------------------
GATHER = {
    "scalar": (np.array(2, I64), 0),
    "vector": (np.array([0, 2, 1, 2], I64), 1),
    "matrix": (np.array([[0, 3], [1, 2]], I64), -1),
    "negative": (np.array([-1, 0, -3], I64), 0),
    "scalar_negative_axis": (np.array(-2, I64), -2),
    "int32": (np.array([[1], [0]], np.int32), 2),
}


@pytest.mark.parametrize("variant", GATHER)
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_gather_variants(variant, dtype):
    indices, axis = GATHER[variant]
    assert_matches_ort("Gather", [data((3, 4, 5), dtype), indices], {"axis": axis})


def test_gather_symbolic():
    assert infer_symbolic("Gather", ("N", 10), attrs={"axis": 1}, more=[(2, 3)]) == ("N", 2, 3)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_gatherelements_axis(axis, dtype):
    rng = np.random.default_rng(3)
    indices = rng.integers(-3, 3, (3, 3)).astype(I64)
    assert_matches_ort("GatherElements", [data((3, 4), dtype), indices], {"axis": axis})


def test_gatherelements_smaller_indices():
    indices = np.array([[1, 0], [0, 1]], np.int32)
    assert_matches_ort("GatherElements", [data((3, 4)), indices], {"axis": 0})


# -- DepthToSpace / SpaceToDepth --------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depthtospace_mode(mode):
    assert_matches_ort("DepthToSpace", [data((2, 8, 3, 2))], {"blocksize": 2, "mode": mode})


@pytest.mark.parametrize("blocksize", [2, 3])
def test_spacetodepth_blocksize(blocksize):
    assert_matches_ort("SpaceToDepth", [data((2, 3, 6, 6))], {"blocksize": blocksize})


def test_depthtospace_symbolic_batch():
    assert infer_symbolic("DepthToSpace", ("N", 8, 3, 2), attrs={"blocksize": 2}) == ("N", 2, 6, 4)
