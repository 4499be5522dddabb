import numpy as np
import pytest

from neuron_core.ir import TensorType
from tests.core.ops.test_misc import randn, verdict
from tests.helpers import assert_matches_ort, run_registry


def bn_params(c, seed=1):
    rng = np.random.default_rng(seed)
    scale, bias, mean = (rng.standard_normal(c).astype(np.float32) for _ in range(3))
    var = rng.uniform(0.5, 2.0, c).astype(np.float32)
    return [scale, bias, mean, var]


def test_batchnormalization_4d():
    assert_matches_ort("BatchNormalization", [randn(2, 3, 4, 5)] + bn_params(3))


def test_batchnormalization_2d_epsilon():
    assert_matches_ort("BatchNormalization", [randn(4, 6)] + bn_params(6), {"epsilon": 1e-2})


def test_batchnormalization_training_mode_unsupported():
    types = [TensorType((2, 3, 4), "float32")] + [TensorType((3,), "float32")] * 4
    v = verdict("BatchNormalization", types, {"training_mode": 1})
    assert not v.supported and "training_mode" in v.reason


def test_batchnormalization_running_stats_outputs_unsupported():
    types = [TensorType((2, 3, 4), "float32")] + [TensorType((3,), "float32")] * 4
    v = verdict("BatchNormalization", types, n_outputs=3)
    assert not v.supported and "outputs" in v.reason


def test_layernormalization_last_axis():
    x = randn(2, 3, 8)
    assert_matches_ort("LayerNormalization", [x, randn(8, seed=1), randn(8, seed=2)])


def test_layernormalization_axis1_no_bias():
    x = randn(2, 3, 4)
    assert_matches_ort("LayerNormalization", [x, randn(3, 4, seed=1)], {"axis": 1})


def test_layernormalization_negative_axis_epsilon():
    x = randn(2, 3, 4)
    assert_matches_ort("LayerNormalization", [x, randn(3, 4, seed=1), randn(3, 4, seed=2)],
                       {"axis": -2, "epsilon": 1e-3})


@pytest.mark.parametrize("axis", [-1, 1])
def test_layernormalization_stats_outputs(axis):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    scale = rng.standard_normal((3, 8) if axis == 1 else (8,)).astype(np.float32)
    assert_matches_ort("LayerNormalization", [x, scale], {"axis": axis}, n_outputs=3)


def test_layernormalization_stash_type_unsupported():
    types = [TensorType((2, 8), "float32"), TensorType((8,), "float32")]
    v = verdict("LayerNormalization", types, {"stash_type": 0})
    assert not v.supported and "stash_type" in v.reason


def test_instancenormalization_4d():
    assert_matches_ort("InstanceNormalization", [randn(2, 3, 4, 5), randn(3, seed=1),
                                                 randn(3, seed=2)])


def test_instancenormalization_3d_epsilon():
    x, scale, bias = randn(2, 4, 6), randn(4, seed=1), randn(4, seed=2)
    assert_matches_ort("InstanceNormalization", [x, scale, bias], {"epsilon": 1e-2})


def test_lrn_size5_default():
    assert_matches_ort("LRN", [randn(2, 7, 3, 3) * 10], {"size": 5})


def lrn_by_the_spec(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    """The ONNX LRN formula channel by channel, in float64: the oracle where onnxruntime (odd
    size, 4-D only) and onnx.reference (4-D only) do not go."""
    x64, out = x.astype(np.float64), np.empty(x.shape)
    for c in range(x.shape[1]):
        lo, hi = max(0, c - (size - 1) // 2), min(x.shape[1] - 1, c + size // 2)
        square_sum = np.sum(x64[:, lo:hi + 1] ** 2, axis=1)
        out[:, c] = x64[:, c] / (bias + alpha / size * square_sum) ** beta
    return out


def test_lrn_size2_attrs():
    x, attrs = randn(2, 6, 4, 4) * 10, {"size": 2, "alpha": 0.01, "beta": 0.5, "bias": 2.0}
    (ours,) = run_registry("LRN", [x], attrs)
    np.testing.assert_allclose(ours, lrn_by_the_spec(x, **attrs), rtol=1e-5, atol=1e-6)


def test_lrn_size3_3d():
    x, attrs = randn(2, 5, 7) * 10, {"size": 3, "alpha": 0.003}
    (ours,) = run_registry("LRN", [x], attrs)
    np.testing.assert_allclose(ours, lrn_by_the_spec(x, **attrs), rtol=1e-5, atol=1e-6)


def test_lrn_size5_matches_spec():
    x = randn(2, 7, 3, 3) * 10
    (ours,) = run_registry("LRN", [x], {"size": 5})
    np.testing.assert_allclose(ours, lrn_by_the_spec(x, 5), rtol=1e-5, atol=1e-6)


def test_lrn_without_size_unsupported():
    v = verdict("LRN", [TensorType((1, 3, 4, 4), "float32")])
    assert not v.supported and "size" in v.reason
