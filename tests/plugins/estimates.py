"""The checks every plugin's estimate of a model split by a host op shares."""
from __future__ import annotations

import pytest


def check_split_estimate(est, name: str) -> None:
    """Neuron sub-graphs with framework work between them: device, PCIe and host time all count,
    on every Inf1 size; more NeuronCores give more throughput, not less latency."""
    assert est.model == name and len(est.instances) == 4
    row = est.instances["inf1.xlarge"]
    assert row.host_ms > 0 and row.device_ms > 0 and row.transfer_ms > 0
    assert row.latency_ms_p50 == pytest.approx(row.device_ms + row.transfer_ms + row.host_ms,
                                               rel=0.05)
    big = est.instances["inf1.6xlarge"]
    assert big.throughput_per_s == pytest.approx(4 * row.throughput_per_s, rel=1e-6)
    assert big.latency_ms_p50 == pytest.approx(row.latency_ms_p50)
