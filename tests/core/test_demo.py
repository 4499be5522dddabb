"""The main job (`make demo`) runs and reports what it promises."""
from __future__ import annotations

from neuron_core.demo import main


def test_demo_compiles_reports_estimates_and_runs(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "NEFF written to" in out
    assert "Estimated on Inf1" in out
    assert "100.0% of all operations (69 of 69) are supported" in out
    assert "The neuron partitioner created 1 sub-graphs" in out
    assert out.count("top-3 classes") == 3
    assert "inf1.24xlarge     64" in out   # the estimate of every instance size
