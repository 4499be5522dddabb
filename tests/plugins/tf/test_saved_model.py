"""tf_neuron.saved_model.compile on real SavedModels (Keras export and tf.saved_model.save), the
predictor, options and their errors."""
from __future__ import annotations

import logging

import pytest

tf = pytest.importorskip("tensorflow")

import numpy as np  # noqa: E402

import tf_neuron  # noqa: E402
from neuron_core.errors import BadInputError, NeuronError  # noqa: E402

from ..estimates import check_split_estimate  # noqa: E402
from .models import BF16_TOL, FP32_ATOL, FP32_RTOL, mobilenet_like, rel_err  # noqa: E402

keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def cnn_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("cnn") / "sm"
    mobilenet_like().export(str(path), verbose=False)
    return path


def _images(n=1, size=32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, size, size, 3)).astype(np.float32)


def _reference(model_dir, x, key="serving_default"):
    fn = tf.saved_model.load(str(model_dir)).signatures[key]
    name = next(iter(fn.structured_input_signature[1]))
    return {k: v.numpy() for k, v in fn(**{name: tf.constant(x)}).items()}, name


def test_saved_model_resnet50_matches_tensorflow(tmp_path, monkeypatch, caplog):
    model = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3),
                                        classifier_activation=None)
    model.export(str(tmp_path / "resnet"), verbose=False)
    with caplog.at_level(logging.INFO, logger="Neuron"):
        result = tf_neuron.saved_model.compile(tmp_path / "resnet", tmp_path / "resnet_neuron")
    assert set(result) == {"OnNeuronRatio"} and result["OnNeuronRatio"] >= 0.95
    assert "Number of operations in TensorFlow session:" in caplog.text
    assert "Number of operations placed on Neuron runtime:" in caplog.text
    assert "The neuron partitioner created 1 sub-graphs" in caplog.text
    x = _images(seed=3)
    want, name = _reference(tmp_path / "resnet", x)
    loaded = tf.saved_model.load(str(tmp_path / "resnet_neuron"))
    assert set(loaded.signatures) == {"serve", "serving_default"}
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    got = loaded.signatures["serving_default"](**{name: x})
    np.testing.assert_allclose(got["output_0"].numpy(), want["output_0"], rtol=FP32_RTOL,
                               atol=FP32_ATOL * np.abs(want["output_0"]).max())
    monkeypatch.setenv("NEURON_SIM_PRECISION", "hardware")
    got = loaded.signatures["serve"](**{name: x})
    assert 0 < rel_err(got["output_0"].numpy(), want["output_0"]) < BF16_TOL


def test_saved_model_predictor_and_bad_inputs(cnn_dir, tmp_path, monkeypatch):
    tf_neuron.saved_model.compile(cnn_dir, tmp_path / "out", batch_size=2)
    pred = tf_neuron.predictor.from_saved_model(tmp_path / "out")
    x = _images(2)
    want, name = _reference(cnn_dir, x)
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    got = pred({name: x})
    np.testing.assert_allclose(got["output_0"], want["output_0"], rtol=FP32_RTOL, atol=FP32_ATOL)
    with pytest.raises(BadInputError, match=r"has shape \(1, 32, 32, 3\).*\(2, 32, 32, 3\)"):
        pred({name: x[:1]})
    with pytest.raises(BadInputError, match=r"missing \['keras_tensor.*unknown \['images'\]"):
        pred({"images": x})
    with pytest.raises(BadInputError, match="feed dict"):
        pred(x)
    for wrong in (x.astype(np.int64), x > 0.5):     # never cast to float32 silently
        with pytest.raises(BadInputError, match=rf"dtype {wrong.dtype.name}, the signature "
                                                r"expects float32"):
            pred({name: wrong})
    with pytest.raises(NeuronError, match=r"'nope' is not in .*serving_default"):
        tf_neuron.predictor.from_saved_model(tmp_path / "out", signature_def_key="nope")


def test_saved_model_dynamic_batch_size(cnn_dir, tmp_path, monkeypatch):
    tf_neuron.saved_model.compile(cnn_dir, tmp_path / "dyn", batch_size=2,
                                  dynamic_batch_size=True, signature_def_key="serving_default")
    fn = tf.saved_model.load(str(tmp_path / "dyn")).signatures["serving_default"]
    assert list(fn.structured_input_signature[1].values())[0].shape[0] is None
    x = _images(5, seed=1)
    want, name = _reference(cnn_dir, x)
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    got = fn(**{name: x})["output_0"].numpy()
    np.testing.assert_allclose(got, want["output_0"], rtol=FP32_RTOL, atol=FP32_ATOL)


def test_saved_model_existing_dir_and_bad_options(cnn_dir, tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("user data")
    with pytest.raises(NeuronError, match="already exists.*overwrite=True"):
        tf_neuron.saved_model.compile(cnn_dir, out)
    assert (out / "keep.txt").read_text() == "user data"
    bad = [({"batch_size": 0}, "batch_size=0 must be a positive int"),
           ({"minimum_segment_size": -1}, "minimum_segment_size=-1"),
           ({"signature_def_key": "predict"}, r"'predict' is not in the SavedModel.*serve"),
           ({"model_feed_dict": [1]}, "model_feed_dict must be a dict"),
           ({"compiler_args": ["--no-such-flag"]}, "no-such-flag")]
    for kwargs, message in bad:
        with pytest.raises(NeuronError, match=message):
            tf_neuron.saved_model.compile(cnn_dir, tmp_path / "new", **kwargs)
    with pytest.raises(NeuronError, match="holds no saved_model.pb"):
        tf_neuron.saved_model.compile(tmp_path, tmp_path / "new")
    with pytest.raises(NeuronError, match="itself, which would be destroyed"):
        tf_neuron.saved_model.compile(cnn_dir, cnn_dir, overwrite=True)
    result = tf_neuron.saved_model.compile(cnn_dir, out, overwrite=True,
                                           signature_def_key="serve")
    assert result["OnNeuronRatio"] == 1.0 and not (out / "keep.txt").exists()


class _Unsupported(tf.Module):
    """conv -> cumsum (no Neuron lowering) -> conv, with a dynamic batch and width."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(5)
        self.w1 = tf.Variable(rng.standard_normal((3, 3, 3, 8)).astype(np.float32))
        self.w2 = tf.Variable(rng.standard_normal((3, 3, 8, 8)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 16, None, 3], tf.float32, name="x")])
    def __call__(self, x):
        y = tf.nn.relu(tf.nn.conv2d(x, self.w1, 1, "SAME"))
        y = tf.nn.relu(tf.nn.conv2d(y, self.w2, 1, "SAME")) + 1.0
        y = tf.math.cumsum(y, axis=1)
        y = tf.nn.relu(tf.nn.conv2d(y, self.w2, 1, "SAME"))
        return {"y": tf.nn.relu(tf.nn.conv2d(y, self.w2, 1, "SAME")) * 0.5}


def test_saved_model_unsupported_op_in_the_middle(tmp_path, monkeypatch, caplog):
    module = _Unsupported()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures=module.__call__)
    with pytest.raises(NeuronError, match=r"input 'x'.*model_shape_feed_dict"):
        tf_neuron.saved_model.compile(tmp_path / "sm", tmp_path / "a")
    with caplog.at_level(logging.INFO, logger="Neuron"):
        result = tf_neuron.saved_model.compile(tmp_path / "sm", tmp_path / "b",
                                               model_shape_feed_dict={"x": [1, 16, 12, 3]},
                                               minimum_segment_size=1, cost_aware=False)
    assert 0.5 < result["OnNeuronRatio"] < 1.0
    assert "The neuron partitioner created 2 sub-graphs" in caplog.text
    assert "Operations left on TensorFlow: Cumsum: 1" in caplog.text
    assert "Estimated on inf1.xlarge (timing model, batch 1, 4 NeuronCores): P50" in caplog.text
    x = np.random.default_rng(6).standard_normal((1, 16, 12, 3)).astype(np.float32)
    want = module(tf.constant(x))["y"].numpy()
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    loaded = tf.saved_model.load(str(tmp_path / "b"))
    got = loaded.signatures["serving_default"](x=x)["y"].numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
    check_split_estimate(tf_neuron.estimate(loaded), "sm (serving_default)")
    assert tf_neuron.estimate(tmp_path / "b").to_json() == tf_neuron.estimate(loaded).to_json()
    with pytest.raises(NeuronError, match=r"signature_def_key='nope'.*\['serving_default'\]"):
        tf_neuron.estimate(loaded, signature_def_key="nope")
    for plain in (tmp_path / "sm", module):
        with pytest.raises(NeuronError, match="estimate takes a model compiled by tf_neuron"):
            tf_neuron.estimate(plain)
    with pytest.warns(UserWarning, match="OnNeuronRatio=0.000"):
        result = tf_neuron.saved_model.compile(tmp_path / "sm", tmp_path / "c",
                                               model_feed_dict={"x": x}, no_fuse_ops=["Conv2D"])
    assert result["OnNeuronRatio"] == 0.0


def test_trace_save_load_and_tf_neuron_alias(tmp_path, monkeypatch):
    model = mobilenet_like()
    x = _images(1, seed=7)
    traced = tf.neuron.trace(model, x)
    assert tf.neuron.trace is tf_neuron.trace and traced.on_neuron_ratio == 1.0
    assert tf.neuron.estimate is tf_neuron.estimate
    info = tf.neuron.analyze_model(model, x)
    assert info["percent_supported"] == 100.0 and info["total_count"] > 10
    assert set(info) >= {"percent_supported", "percent_supported_arithmetic", "supported_count",
                         "total_count", "supported_operators", "unsupported_operators",
                         "operator_count"}
    traced.save(tmp_path / "traced")
    loaded = tf.saved_model.load(str(tmp_path / "traced"))
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    want = model(x).numpy()
    np.testing.assert_allclose(loaded(x).numpy(), want, rtol=FP32_RTOL, atol=FP32_ATOL)
    got = loaded.signatures["serving_default"](input_0=x)
    np.testing.assert_allclose(next(iter(got.values())).numpy(), want, rtol=FP32_RTOL,
                               atol=FP32_ATOL)
    est = tf_neuron.estimate(traced, "inf1.xlarge")
    assert est.model == "mobilenet_like" and list(est.instances) == ["inf1.xlarge"]
    assert est.instances["inf1.xlarge"].host_ms > 0
    assert tf_neuron.estimate(loaded, "inf1.xlarge").to_json() == est.to_json()
    assert tf_neuron.estimate(traced, host_ms=0.0).instances["inf1.xlarge"].host_ms == 0.0
    with pytest.raises(NeuronError, match="example_inputs\\[0\\] is a str"):
        tf_neuron.trace(model, ["not a tensor"])


def test_many_traced_models_do_not_warn_of_retracing():
    """Each traced model has one tf.function, traced once: tracing several models in a loop (as
    bench_tf.py does; trace itself calls each twice) gives no "triggered tf.function retracing"
    warning."""
    seen = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    tf_logger = logging.getLogger("tensorflow")
    tf_logger.addHandler(handler)
    try:
        x = np.ones((1, 4), np.float32)
        for k in range(7):
            inputs = keras.Input((4,))
            model = keras.Model(inputs, keras.layers.Dense(3 + k, activation="relu")(inputs))
            traced = tf_neuron.trace(model, x)
    finally:
        tf_logger.removeHandler(handler)
    assert not [m for m in seen if "retracing" in m], seen
    assert traced(x).shape == (1, 9)
