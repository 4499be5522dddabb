import ml_dtypes
import numpy as np
from onnx import numpy_helper

from neuron_core.ir import Graph, TensorType
from neuron_core.ops import get_op, infer_node
from tests.helpers import assert_matches_ort, run_ort, run_registry


def typed_node(op_type, inputs, attrs=None, n_outputs=1):
    """A node with inferred output types; `inputs` holds TensorTypes (graph inputs), arrays
    (constants) or None (absent)."""
    g = Graph()
    values = [x if x is None else g.add_input(f"in{i}", x) if isinstance(x, TensorType)
              else g.add_const(f"c{i}", x) for i, x in enumerate(inputs)]
    node = g.add_node(op_type, values, attrs or {}, outputs=n_outputs)
    infer_node(node)
    return node


def verdict(op_type, inputs, attrs=None, n_outputs=1):
    return get_op(op_type).check(typed_node(op_type, inputs, attrs, n_outputs))


def randn(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def assert_tensor_attr_matches_ort(op_type, inputs, value):
    """Like assert_matches_ort for an op whose `value` attribute is a tensor (np.ndarray here,
    a TensorProto for onnx)."""
    ours = run_registry(op_type, inputs, {"value": value})
    theirs = run_ort(op_type, inputs, {"value": numpy_helper.from_array(value)})
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert ours[0].dtype == theirs[0].dtype


# -- Cast -----------------------------------------------------------------------------------------
def test_cast_float_to_int32_truncates():
    x = (randn(3, 5) * 10).astype(np.float32)
    assert_matches_ort("Cast", [x], {"to": 6})


def test_cast_float_to_int64():
    assert_matches_ort("Cast", [randn(4, 6, seed=1) * 100], {"to": 7})


def test_cast_float_to_int8_and_uint8():
    x = np.array([-2.7, -0.5, 0.5, 2.7, 100.9, 127.2], dtype=np.float32)
    assert_matches_ort("Cast", [x], {"to": 3})
    assert_matches_ort("Cast", [np.abs(x)], {"to": 2})


def test_cast_float_to_int32_out_of_range():
    x = np.array([1e10, -1e10, np.nan, np.inf, 2.5e9], dtype=np.float32)
    assert_matches_ort("Cast", [x], {"to": 6})


def test_cast_int64_to_float():
    x = np.arange(-6, 6, dtype=np.int64).reshape(3, 4) * 12345
    assert_matches_ort("Cast", [x], {"to": 1})


def test_cast_to_bool():
    x = np.array([0.0, -0.0, 1.5, -2.0, np.nan], dtype=np.float32)
    assert_matches_ort("Cast", [x], {"to": 9})
    assert_matches_ort("Cast", [np.array([0, 3, -1], dtype=np.int64)], {"to": 9})


def test_cast_bool_to_float():
    assert_matches_ort("Cast", [np.array([[True, False], [False, True]])], {"to": 1})


def test_cast_to_float16_rounds_in_float32_container():
    # reduced-precision values are kept in float32 containers (see neuron_core.dtypes), so the
    # reference returns float32 holding exactly the float16 values onnxruntime computes
    x = randn(5, 7, seed=2) * 1000
    node = typed_node("Cast", [TensorType(x.shape, "float32")], {"to": 10})
    assert node.outputs[0].type == TensorType((5, 7), "float16")
    (ours,) = get_op("Cast").run({"to": 10}, [x])
    (theirs,) = run_ort("Cast", [x], {"to": 10})
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs.astype(np.float32))


def test_cast_to_bfloat16_rounds_in_float32_container():
    # onnxruntime's bfloat16 output has no numpy type; ml_dtypes rounds to nearest even like it
    x = randn(5, 7, seed=3) * 1000
    (ours,) = get_op("Cast").run({"to": 16}, [x])
    np.testing.assert_array_equal(ours, x.astype(ml_dtypes.bfloat16).astype(np.float32))


def test_cast_to_float64_unsupported():
    v = verdict("Cast", [TensorType((2, 3), "float32")], {"to": 11})
    assert not v.supported and "float64" in v.reason


def test_cast_float64_input_unsupported():
    v = verdict("Cast", [TensorType((2, 3), "float64")], {"to": 1})
    assert not v.supported and v.kind == "dtype" and "float64" in v.reason


# -- Identity, Dropout ----------------------------------------------------------------------------
def test_identity_float():
    assert_matches_ort("Identity", [randn(2, 3, 4)])


def test_identity_int64():
    assert_matches_ort("Identity", [np.arange(12, dtype=np.int64).reshape(3, 4)])


def test_dropout_inference():
    assert_matches_ort("Dropout", [randn(2, 3, 4)])


def test_dropout_inference_with_mask():
    x = randn(2, 3, 4, seed=1)
    assert_matches_ort("Dropout", [x, np.array(0.3, np.float32), np.array(False)], n_outputs=2,
                       const_inputs=(1, 2))


def test_dropout_training_mode_unsupported():
    v = verdict("Dropout", [TensorType((2, 3), "float32"), np.array(0.5, np.float32),
                            np.array(True)], n_outputs=2)
    assert not v.supported and "training" in v.reason


def test_dropout_dynamic_training_mode_unsupported():
    v = verdict("Dropout", [TensorType((2, 3), "float32"), None, TensorType((), "bool")])
    assert not v.supported and "training" in v.reason


# -- Shape ----------------------------------------------------------------------------------------
def test_shape_full():
    assert_matches_ort("Shape", [randn(2, 3, 4, 5)])


def test_shape_start():
    assert_matches_ort("Shape", [randn(2, 3, 4, 5)], {"start": 1})


def test_shape_start_end_negative():
    assert_matches_ort("Shape", [randn(2, 3, 4, 5)], {"start": -3, "end": -1})


def test_shape_of_symbolic_input_infers_length():
    node = typed_node("Shape", [TensorType(("N", 3, 4), "float32")], {"start": 1})
    assert node.outputs[0].type == TensorType((2,), "int64")


# -- Constant, ConstantOfShape -------------------------------------------------------------------
def test_constant_value_tensor():
    assert_tensor_attr_matches_ort("Constant", [], randn(3, 4))


def test_constant_value_int64_tensor():
    assert_tensor_attr_matches_ort("Constant", [], np.array([3, -1, 7], dtype=np.int64))


def test_constant_value_float():
    assert_matches_ort("Constant", [], {"value_float": 2.5})


def test_constant_value_floats():
    assert_matches_ort("Constant", [], {"value_floats": [1.0, -2.5, 3.25]})


def test_constant_value_int():
    assert_matches_ort("Constant", [], {"value_int": 7})


def test_constant_value_ints():
    assert_matches_ort("Constant", [], {"value_ints": [2, -3, 4]})


def test_constant_value_string_unsupported():
    node = Graph().add_node("Constant", [], {"value_string": "x"})
    node.outputs[0].type = TensorType((), "float32")   # strings have no IR dtype; bypass infer
    v = get_op("Constant").check(node)
    assert not v.supported and "value_string" in v.reason


def test_constantofshape_default_zero():
    assert_matches_ort("ConstantOfShape", [np.array([2, 3, 4], dtype=np.int64)])


def test_constantofshape_float_value():
    assert_tensor_attr_matches_ort("ConstantOfShape", [np.array([3, 5], dtype=np.int64)],
                                   np.array([1.5], dtype=np.float32))


def test_constantofshape_int64_value():
    assert_tensor_attr_matches_ort("ConstantOfShape", [np.array([4, 1, 2], dtype=np.int64)],
                                   np.array([-7], dtype=np.int64))


def test_constantofshape_dynamic_shape_unsupported():
    g = Graph()
    shape = g.add_input("shape", TensorType((2,), "int64"))
    node = g.add_node("ConstantOfShape", [shape])
    v = get_op("ConstantOfShape").check(node)
    assert not v.supported and "compile-time constant" in v.reason
