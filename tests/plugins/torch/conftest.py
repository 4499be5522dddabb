import pytest

torch = pytest.importorskip("torch")


@pytest.fixture
def fp32(monkeypatch):
    """Exact fp32 simulation: results must match eager PyTorch up to summation order."""
    monkeypatch.setenv("NEURON_SIM_PRECISION", "fp32")


@pytest.fixture
def hardware(monkeypatch):
    monkeypatch.setenv("NEURON_SIM_PRECISION", "hardware")
