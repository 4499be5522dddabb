"""Fixtures of the MXNet plugin tests: the simulator's precision per test."""
from __future__ import annotations

import pytest

pytest.importorskip("mx_neuron")   # restores np.bool, then imports mxnet
pytest.importorskip("mxnet")


@pytest.fixture
def fp32(monkeypatch):
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")


@pytest.fixture
def hardware(monkeypatch):
    monkeypatch.setenv("NEURON_SIM_PRECISION", "hardware")
