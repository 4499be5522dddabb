"""The MXNet tutorial runs as users run it (a fresh process) and prints what it promises."""
from __future__ import annotations

import re

import pytest

from ..fresh_process import run_tutorial

pytest.importorskip("mx_neuron")
pytest.importorskip("mxnet")


def test_tutorial_mxnet_resnet_runs(tmp_path):
    proc = run_tutorial("mxnet_resnet.py", "--workdir", str(tmp_path), timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "100.0% of operations on Neuron" in out
    err = float(re.search(r"max error relative to MXNet: (\S+)", out).group(1))
    assert 0 < err < 5e-2   # bf16 hardware precision: inexact, within BF16 tolerance
    assert "reloaded model matches: True" in out
    assert (tmp_path / "resnet18_neuron-symbol.json").exists()
    assert (tmp_path / "resnet18_neuron-0000.params").stat().st_size > 10_000_000
    assert "MXNet operators placed on Neuron: Convolution: 20" in proc.stderr
    assert "Estimated on inf1.xlarge (timing model, batch 1, 4 NeuronCores)" in proc.stderr
    assert "Estimate for resnet18_v1 on Inf1" in out and "inf1.24xlarge" in out
