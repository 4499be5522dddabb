"""The PyTorch tutorial runs as users run it (a fresh process) and prints what it promises."""
from __future__ import annotations

import re

import pytest

from ..fresh_process import run_tutorial

pytest.importorskip("torch_neuron")
pytest.importorskip("transformers")


def test_tutorial_pytorch_resnet_bert_runs(tmp_path):
    proc = run_tutorial("pytorch_resnet_bert.py", "--workdir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    ratios = [float(r) for r in re.findall(r"([\d.]+)% of operations on Neuron", out)]
    assert len(ratios) == 2 and ratios[0] == 100.0 and ratios[1] >= 95.0, out
    errors = [float(e) for e in re.findall(r"max error relative to PyTorch: (\S+)", out)]
    # bf16 hardware precision: inexact, but within what 8 significant bits allow
    assert len(errors) == 2 and all(0 < e < 5e-2 for e in errors), out
    assert out.count("reloaded model matches the traced one: True") == 2
    assert out.count("Estimate for ") == 2 and "inf1.24xlarge" in out
    for name in ("resnet", "bert"):
        assert (tmp_path / f"{name}_neuron.pt").stat().st_size > 1_000_000
    assert "The neuron partitioner created 1 sub-graphs" in proc.stderr
