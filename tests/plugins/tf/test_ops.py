"""Each conversion rule against TensorFlow on small functions (full-fp32 simulation), and the
rules' host fallbacks."""
from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

import numpy as np  # noqa: E402

import tf_neuron  # noqa: E402

RNG = np.random.default_rng(0)


def _w(*shape):
    return tf.constant(RNG.standard_normal(shape).astype(np.float32))


IMG = (2, 9, 10, 4)
W33 = _w(3, 3, 4, 6)
DW = _w(3, 3, 4, 2)
WG = _w(3, 3, 2, 6)
W66 = _w(3, 3, 6, 6)
V4 = [_w(4) for _ in range(3)]
VAR4 = tf.abs(_w(4)) + 0.5
W65, W57 = _w(6, 5), _w(5, 7)
CASES = {
    "conv_same_strided": (lambda x: tf.nn.conv2d(x, W33, 2, "SAME"), [IMG]),
    "conv_valid_dilated": (lambda x: tf.nn.conv2d(x, W33, 1, "VALID", dilations=2), [IMG]),
    "conv_explicit_pads": (lambda x: tf.nn.conv2d(x, W33, 1, [[0, 0], [1, 2], [0, 1], [0, 0]]),
                           [IMG]),
    "conv_grouped": (lambda x: tf.nn.conv2d(x, WG, 1, "SAME"), [IMG]),
    "depthwise_multiplier": (lambda x: tf.nn.depthwise_conv2d(x, DW, [1, 2, 2, 1], "SAME"),
                             [IMG]),
    "maxpool_same": (lambda x: tf.nn.max_pool2d(x, 3, 2, "SAME"), [IMG]),
    "avgpool_same_excludes_pad": (lambda x: tf.nn.avg_pool2d(x, 3, 2, "SAME"), [IMG]),
    "fused_batchnorm": (lambda x: tf.compat.v1.nn.fused_batch_norm(
        x, V4[0], V4[1], V4[2], VAR4, epsilon=1e-3, is_training=False)[0], [IMG]),
    "bias_relu6_leaky": (lambda x: tf.nn.leaky_relu(tf.nn.relu6(tf.nn.bias_add(x, V4[0])), 0.1),
                         [IMG]),
    "unary_chain": (lambda x: tf.nn.softplus(tf.nn.elu(x)) + tf.math.erfc(x) + tf.tanh(x)
                    + tf.math.rsqrt(tf.abs(x) + 1.0) + tf.square(x), [IMG]),
    "binary_broadcast": (lambda a, b: tf.maximum(a, b) - tf.minimum(a, 0.5) / (tf.abs(b) + 1.0)
                         + tf.math.squared_difference(a, b), [IMG, (1, 1, 10, 4)]),
    "reduce_keepdims": (lambda x: tf.reduce_mean(x, [1, 2], keepdims=True)
                        * tf.reduce_max(x, [3], keepdims=True), [IMG]),
    "reduce_to_vector": (lambda x: tf.reduce_sum(x, [1, 2]) + tf.reduce_min(x, [1, 2]), [IMG]),
    "pad_and_mirror": (lambda x: tf.pad(tf.pad(x, [[0, 0], [1, 2], [2, 1], [0, 0]], "REFLECT"),
                                        [[0, 0], [1, 0], [0, 1], [1, 1]], constant_values=0.5),
                       [IMG]),
    "strided_slice": (lambda x: x[:, 1:-1:2, ::-1, 2] + x[:, :4, :, 0], [IMG]),
    "strided_slice_ellipsis_newaxis": (lambda x: x[..., 1:3][:, tf.newaxis, 0], [IMG]),
    "concat_pack_unstack": (lambda a, b: tf.concat([a, b], 1)[:, :3] + tf.stack(
        tf.unstack(a, axis=1), axis=1), [(2, 3, 5), (2, 4, 5)]),
    "split_gather_tile": (lambda x: tf.concat(tf.split(x, [2, 3], axis=2)[::-1], 2)
                          + tf.tile(tf.gather(x, [1, 0, 2], axis=1)[:, :1], [1, 3, 1]),
                          [(2, 3, 5)]),
    "reshape_transpose_squeeze": (lambda x: tf.squeeze(tf.expand_dims(tf.transpose(
        tf.reshape(x, [2, 15]), [1, 0]), 0), 0), [(2, 3, 5)]),
    "matmul_transposed": (lambda a: tf.matmul(a, W65, transpose_b=True), [(3, 5)]),
    "batch_matmul_adjoint": (lambda a, b: tf.matmul(a, b, adjoint_a=True), [(2, 4, 3), (2, 4, 5)]),
    "einsum_attention": (lambda q, k: tf.einsum("btnh,bsnh->bnts", q, k),
                         [(2, 5, 3, 4), (2, 6, 3, 4)]),
    "einsum_dense_sum": (lambda x: tf.einsum("abc,cd->abd", x, W57)
                         + tf.einsum("abc->ab", x)[..., None], [(2, 3, 5)]),
    "softmax_select_cast": (lambda x: tf.where(x > 0, tf.nn.softmax(x), tf.cast(
        tf.cast(x * 4, tf.int32), tf.float32)), [(2, 3, 5)]),
    "shape_arithmetic": (lambda x: tf.reshape(x, [tf.shape(x)[0], -1]) * tf.cast(
        tf.size(x), tf.float32), [(2, 3, 5)]),
    "lrn": (lambda x: tf.nn.local_response_normalization(x, 2, 1.0, 0.1, 0.75), [IMG]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_tensorflow(case, monkeypatch):
    fn, shapes = CASES[case]
    xs = [RNG.standard_normal(s).astype(np.float32) for s in shapes]
    traced = tf_neuron.trace(fn, tuple(xs), minimum_segment_size=1)   # a tuple: positional
    assert traced.on_neuron_ratio == 1.0, str(traced.report)
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    want = fn(*[tf.constant(x) for x in xs]).numpy()
    np.testing.assert_allclose(traced(*xs).numpy(), want, rtol=1e-5, atol=1e-5)


def test_op_unsupported_stays_on_tensorflow(monkeypatch):
    def fn(x):
        y = tf.nn.relu(tf.nn.conv2d(x, W33, 1, "SAME"))
        y = tf.nn.relu(tf.nn.conv2d(tf.math.cumsum(y, axis=2), W66, 1, "SAME"))
        return y * 2.0 + 1.0
    x = RNG.standard_normal(IMG).astype(np.float32)
    info = tf_neuron.analyze_model(fn, x)
    assert info["unsupported_operators"] == {"Cumsum": 1}
    assert "Cumsum" in info["reasons"] and "no Neuron conversion" in info["reasons"]["Cumsum"]
    traced = tf_neuron.trace(fn, x, minimum_segment_size=1, cost_aware=False)
    assert 0.5 < traced.on_neuron_ratio < 1.0
    assert len(traced.report.subgraphs) == 2
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    want = fn(tf.constant(x)).numpy()
    np.testing.assert_allclose(traced(x).numpy(), want, rtol=1e-4, atol=1e-5 * abs(want).max())


def test_op_supported_list_is_derived_from_the_table():
    ops = tf_neuron.supported_operators()
    assert {"Conv2D", "DepthwiseConv2dNative", "Einsum", "FusedBatchNormV3", "MatMul"} <= set(ops)
    assert ops == sorted(ops) and "Cumsum" not in ops
    assert tf.neuron.supported_operators() == ops


def test_op_image_layout_crosses_region_boundaries(monkeypatch):
    """NCHW forms of image values flow between regions (through the host) correctly: from one
    NeuronOp to another, and from a host conv (transposed on the host) into a NeuronOp."""
    def fn(x):
        y = tf.nn.relu(tf.nn.conv2d(x, W33, 1, "SAME"))
        y = tf.nn.relu(tf.nn.conv2d(y, W66, 1, "SAME")) + 1.0
        z = tf.nn.conv2d(y + tf.math.cumsum(y, axis=1), W66, 1, "SAME")
        return tf.nn.relu(tf.nn.conv2d(tf.nn.relu(z), W66, 1, "SAME")) * 2.0
    x = RNG.standard_normal(IMG).astype(np.float32)
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    want = fn(tf.constant(x)).numpy()
    for deny in (None, [], ["Conv2D"]):
        traced = tf_neuron.trace(fn, x, minimum_segment_size=1, cost_aware=False,
                                 no_fuse_ops=deny)
        assert len(traced.report.subgraphs) >= 2
        # values reach ~1e3 after four unnormalised convs: compare relative to that scale
        np.testing.assert_allclose(traced(x).numpy(), want, rtol=1e-4, atol=1e-4 * abs(want).max())


def test_op_subgraph_builder_function_sees_node_defs(monkeypatch):
    seen = set()

    def builder(node):   # a NodeDef, as the Neuron SDK documents
        assert isinstance(node, tf.compat.v1.NodeDef)
        seen.add(node.op)
        return node.op != "Relu6"
    fn, shapes = CASES["bias_relu6_leaky"]
    x = RNG.standard_normal(IMG).astype(np.float32)
    traced = tf_neuron.trace(fn, x, builder, minimum_segment_size=1, cost_aware=False)
    assert {"BiasAdd", "Relu6", "LeakyRelu"} <= seen
    rows = {r["name"]: r for r in traced.report.nodes}
    assert any("subgraph_builder_function" in r["reason"] for r in rows.values())
    assert traced.on_neuron_ratio < 1.0
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    np.testing.assert_allclose(traced(x).numpy(), fn(tf.constant(x)).numpy(), rtol=1e-5,
                               atol=1e-5)


def test_op_neuron_node_carries_neff_and_config():
    import json

    from tf_neuron.op import TOKEN
    fn, shapes = CASES["conv_same_strided"]
    traced = tf_neuron.trace(fn, RNG.standard_normal(IMG).astype(np.float32))
    graph = traced._serve.get_concrete_function(**traced._specs).graph
    node = graph.get_operation_by_name("neuron/neuron_op_0")
    assert node.type == "EagerPyFunc" and node.get_attr("token").decode() == TOKEN
    config = json.loads(tf.get_static_value(node.inputs[-1]).item().decode())
    assert config["inputs"][0][1:] == [list(IMG), "float32"]
    assert config["outputs"][0][1:] == [[2, 5, 5, 6], "float32"]
    assert config["batch_axes"] == [-1] and len(config["neff_key"]) == 64
    src = node.inputs[-2].op
    while src.type == "Identity":
        src = src.inputs[0].op
    assert src.type == "ReadVariableOp"   # the NEFF comes from a variable, saved as one
