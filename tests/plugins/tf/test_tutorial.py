"""The TensorFlow tutorial runs as a script and reports agreement with TensorFlow."""
from __future__ import annotations

import re

import pytest

from ..fresh_process import run_tutorial

pytest.importorskip("tensorflow")


def test_tutorial_keras_cnn_runs(tmp_path):
    done = run_tutorial("tensorflow_keras_cnn.py", str(tmp_path), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"compiled in [\d.]+ s: \{'OnNeuronRatio': 1\.0\}", out), out
    fp32 = float(re.search(r"fp32 precision: max error relative to TensorFlow (\S+),", out)[1])
    hw = float(re.search(r"hardware precision: max error relative to TensorFlow (\S+),", out)[1])
    assert fp32 < 1e-4 and 0 < hw < 5e-2, out
    assert "outputs agree: True" in out
    assert "Estimate for mobilenet (serve" in out and "inf1.24xlarge" in out, out
