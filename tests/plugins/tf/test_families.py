"""Numeric parity with TensorFlow for the Keras CNN families and a transformer encoder, traced
with tf_neuron.trace: full-fp32 simulation tight, hardware (bf16) precision within tolerance."""
from __future__ import annotations

import pytest

tf = pytest.importorskip("tensorflow")

import numpy as np  # noqa: E402

import tf_neuron  # noqa: E402

from .models import BF16_TOL, FAMILIES, FP32_ATOL, FP32_RTOL, rel_err, transformer_encoder  # noqa: E402,E501


def _check(model, x, monkeypatch, min_ratio=0.95):
    traced = tf_neuron.trace(model, x)
    assert traced.on_neuron_ratio >= min_ratio, str(traced.report)
    want = model(x, training=False).numpy()
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")
    np.testing.assert_allclose(traced(x).numpy(), want, rtol=FP32_RTOL, atol=FP32_ATOL)
    monkeypatch.setenv("NEURON_SIM_PRECISION", "hardware")
    err = rel_err(traced(x).numpy(), want)
    assert 0 < err < BF16_TOL   # > 0: the bf16 casts really happened
    return traced


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_matches_tensorflow(family, monkeypatch):
    model = FAMILIES[family]()
    x = np.random.default_rng(1).standard_normal((2, 32, 32, 3)).astype(np.float32)
    traced = _check(model, x, monkeypatch)
    assert traced.on_neuron_ratio == 1.0


def test_transformer_encoder_matches_tensorflow(monkeypatch):
    model = transformer_encoder()
    x = np.random.default_rng(2).standard_normal((2, 16, 32)).astype(np.float32)
    _check(model, x, monkeypatch)
    ops = tf_neuron.analyze_model(model, x)["operator_count"]
    assert "Einsum" in ops or "BatchMatMulV2" in ops
