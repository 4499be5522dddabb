"""A NeuronOp whose config or NEFF is damaged fails through TensorFlow's own error path (an
OpError whose message leads with the NeuronError's class), never a crash or a bare KeyError."""
from __future__ import annotations

import json

import pytest

tf = pytest.importorskip("tensorflow")

import numpy as np  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from tensorflow.python.ops import gen_script_ops  # noqa: E402

import tf_neuron  # noqa: E402, F401  (registers the NeuronOp callback)
from neuron_core.compiler import compile_graph, parse_compiler_args  # noqa: E402
from neuron_core.frontends.onnx_import import from_onnx  # noqa: E402
from neuron_core.neff import neff_key  # noqa: E402
from tf_neuron.op import FORMAT, TOKEN  # noqa: E402


@pytest.fixture(scope="module")
def neff() -> bytes:
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return compile_graph(from_onnx(model), parse_compiler_args([])).to_bytes()


def _call(executable: bytes, config):
    text = config if isinstance(config, str) else json.dumps(config)
    x = tf.constant(np.array([[-1, 0, 2], [3, -4, 5]], np.float32))

    @tf.function
    def f():
        return gen_script_ops.eager_py_func(input=[x, tf.constant(executable), tf.constant(text)],
                                            token=TOKEN, Tout=[tf.float32], name="neuron_op_0")
    return f()


def _config(neff: bytes, **changes) -> dict:
    return dict({"name": "neuron_op_0", "format": FORMAT, "dynamic_batch": False,
                 "neff_key": neff_key(neff).hex()}, **changes)


def test_the_intact_op_runs(neff):
    np.testing.assert_array_equal(_call(neff, _config(neff))[0].numpy(),
                                  [[0, 0, 2], [3, 0, 5]])


@pytest.mark.parametrize("config, message", [
    ("{bad", "NeffFormatError: a NeuronOp's config is not JSON"),
    ("[]", "NeffFormatError: a NeuronOp's config must be a JSON object"),
    ({"name": "neuron_op_0", "format": FORMAT, "dynamic_batch": False},
     "config field 'neff_key': Field required"),
    ("dynamic_batch", "config field 'dynamic_batch': Input should be a valid boolean"),
    ("neff_key", "config field 'neff_key': String should match pattern"),
])
def test_a_damaged_config_is_a_neff_format_error_through_tensorflow(neff, config, message):
    if config == "dynamic_batch":
        config = _config(neff, dynamic_batch="yes")
    elif config == "neff_key":
        config = _config(neff, neff_key="zz")
    with pytest.raises(tf.errors.OpError, match=message):
        _call(neff, config)


def test_a_neff_that_does_not_match_its_config_is_refused(neff):
    damaged = bytearray(neff)
    damaged[-1] ^= 1
    other_key = neff_key(neff)[::-1].hex()
    with pytest.raises(tf.errors.OpError, match="NeffFormatError: neuron_op_0: its NEFF does not "
                                                "match its config"):
        _call(bytes(damaged), _config(neff, neff_key=other_key))
