"""The MXNet tutorial runs as users run it (a fresh process) and prints what it promises."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mx_neuron")
pytest.importorskip("mxnet")

TUTORIAL = Path(__file__).resolve().parents[3] / "tutorials" / "mxnet_resnet.py"


def test_tutorial_mxnet_resnet_runs(tmp_path):
    proc = subprocess.run([sys.executable, str(TUTORIAL), "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "100.0% of operations on Neuron" in out
    err = float(re.search(r"max error relative to MXNet: (\S+)", out).group(1))
    assert 0 < err < 5e-2   # bf16 hardware precision: inexact, within BF16 tolerance
    assert "reloaded model matches: True" in out
    assert (tmp_path / "resnet18_neuron-symbol.json").exists()
    assert (tmp_path / "resnet18_neuron-0000.params").stat().st_size > 10_000_000
    assert "MXNet operators placed on Neuron: Convolution: 20" in proc.stderr
