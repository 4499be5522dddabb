"""Fixtures shared by the plugin tests: the simulator's precision for one test."""
from __future__ import annotations

import pytest


@pytest.fixture
def fp32(monkeypatch):
    """Exact fp32 simulation: results must match the host framework up to summation order."""
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")


@pytest.fixture
def hardware(monkeypatch):
    """The NeuronCore's own numerics (BF16 matmul/conv inputs, fp32 accumulation)."""
    monkeypatch.setenv("NEURON_SIM_PRECISION", "hardware")
