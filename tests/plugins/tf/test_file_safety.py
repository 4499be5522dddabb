"""tf_neuron's saves never destroy what they did not write: saved_model.compile refuses a
destination that contains or lies inside its source (even with overwrite=True) and a foreign
directory without it; TracedModel.save replaces a whole tf_neuron SavedModel, never another
model's files."""
from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

import numpy as np  # noqa: E402

import tf_neuron  # noqa: E402
from neuron_core.fileio import DestinationError  # noqa: E402


class Small(tf.Module):
    def __init__(self):
        super().__init__()
        self.w = tf.Variable(np.ones((4, 3), np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
    def __call__(self, x):
        return {"y": tf.nn.relu(tf.matmul(x, self.w))}


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture()
def src(tmp_path):
    module = Small()
    path = tmp_path / "models" / "src"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.__call__})
    (tmp_path / "models" / "notes.txt").write_text("the user's own file")
    return path


def test_compile_into_the_parent_of_its_source_is_refused(src, tmp_path):
    before = _tree(tmp_path)
    with pytest.raises(DestinationError, match="would be destroyed"):
        tf_neuron.saved_model.compile(str(src), str(src.parent), overwrite=True)
    with pytest.raises(DestinationError, match="would be destroyed"):
        tf_neuron.saved_model.compile(str(src), str(src / "variables"), overwrite=True)
    assert _tree(tmp_path) == before
    assert (src.parent / "notes.txt").read_text() == "the user's own file"


def test_compile_replaces_only_its_own_saved_model(src, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.docx").write_text("chapter one")
    with pytest.raises(Exception, match="already exists|refusing"):
        tf_neuron.saved_model.compile(str(src), str(other))
    assert (other / "thesis.docx").read_text() == "chapter one"
    dst = tmp_path / "compiled"
    tf_neuron.saved_model.compile(str(src), str(dst), minimum_segment_size=1)
    tf_neuron.saved_model.compile(str(src), str(dst), minimum_segment_size=1, overwrite=True)
    y = tf.saved_model.load(str(dst)).signatures["serving_default"](x=tf.ones([1, 4]))["y"]
    np.testing.assert_allclose(y.numpy(), np.full((1, 3), 4.0), rtol=1e-2)   # bf16 matmul
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_traced_save_does_not_replace_another_models_files(src, tmp_path):
    traced = tf_neuron.trace(lambda x: tf.nn.relu(tf.matmul(x, tf.ones([4, 3]))), tf.ones([1, 4]))
    with pytest.raises(DestinationError, match="not a SavedModel written by tf_neuron"):
        traced.save(src)   # a plain TensorFlow SavedModel, not one of ours
    assert "saved_model.pb" in _tree(src) and tf.saved_model.load(str(src)) is not None
    traced.save(tmp_path / "traced")
    traced.save(tmp_path / "traced")   # its own: replaced whole
    out = tf.saved_model.load(str(tmp_path / "traced"))(tf.ones([1, 4]))
    np.testing.assert_allclose(np.asarray(out), np.full((1, 3), 4.0), rtol=1e-2)
