"""Damaged NEFFs and `.neuron.onnx` models fail with a NeuronError or run as the undamaged model:
the coverage-guided harness (bench/fuzz_neff.py) for a few seconds per target, and a property
test over valid-hash edits."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from neuron_core.errors import NeuronError

ROOT = Path(__file__).resolve().parents[2]
FUZZ_SECONDS = 3
HARD_TIMEOUT_S = 120     # startup (seed compilation, JIT warm-up) + fuzzing + slack
sys.path.insert(0, str(ROOT / "bench"))
import neff_cases  # noqa: E402  (bench/: the harness's cases, edits and choosers)
import neff_edits  # noqa: E402
import neff_values  # noqa: E402


@pytest.mark.parametrize("target", ["neff", "edit", "onnx"])
def test_fuzzing_finds_nothing(target, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
               NEURON_SIM_CACHE_DIR="off", NEURON_SIM_HOST_DIR=str(tmp_path / "state"))
    artifacts = tmp_path / "findings"
    proc = subprocess.run([sys.executable, "-m", "bench.fuzz_neff", "--target", target,
                           "--seconds", str(FUZZ_SECONDS), "--artifacts", str(artifacts),
                           "--corpus", str(tmp_path / "corpus")],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=HARD_TIMEOUT_S)
    findings = sorted(p.name for p in artifacts.iterdir()) if artifacts.exists() else []
    log = "\n".join(line for line in proc.stdout.splitlines() if "[E:onnxruntime" not in line)
    start = log.find("Uncaught Python exception")
    tail = log[start:start + 2500] if start >= 0 else log[-2500:]
    assert proc.returncode == 0 and not findings, f"exit {proc.returncode}, findings {findings}:\n{tail}"
    runs = re.search(r"stat::number_of_executed_units: *(\d+)", log)
    assert runs and int(runs.group(1)) >= 20, tail       # it did fuzz, not just start


@settings(max_examples=150, deadline=None, database=None, derandomize=True,
          phases=(Phase.explicit, Phase.generate),    # no shrinking: each failure names its edit
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_a_valid_hash_edit_is_refused_or_runs_as_the_original(data):
    ch = neff_values.Chooser(lambda n: data.draw(st.integers(0, n - 1)) if n > 1 else 0)
    model = ch.pick(neff_cases.seeds())
    kernels = ch.pick(neff_cases.KERNELS)
    desc, write = neff_edits.edited_neff(ch, model)
    note(f"[{model.name}, kernels={kernels}] {desc}")
    want = model.baseline(kernels)
    try:
        got = neff_cases.run_neff(write(), model.inputs, kernels)
    except NeuronError:
        return
    assert neff_cases.same_outputs(got, want), neff_cases._difference(got, want)


def test_the_harness_tells_findings_from_refusals():
    """What the targets judge by: a NeuronError is fine, another exception or another output is
    a finding, and a re-hashed mutation gets past the hash checks to the JSON."""
    import numpy as np
    from neuron_core.errors import NeffFormatError
    from neuron_core.neff import read_neff
    assert neff_cases.classify(lambda: 1 // 0)[0] == "other"
    assert neff_cases.classify(lambda: (_ for _ in ()).throw(NeffFormatError("x")))[0] == \
        "NeuronError:NeffFormatError"
    one = [np.ones(2, np.float32)]
    assert neff_cases.classify(lambda: [np.zeros(2, np.float32)], one)[0] == "different"
    assert neff_cases.classify(lambda: [np.ones(2, np.float32)], one)[0] == "identical"
    data = bytearray(neff_cases.seeds()[0].data)
    table = neff_cases.section_table(bytes(data))[1]
    _, offset, _, _ = next(s for s in table if s[0] == b"metadata")
    data[offset] = ord("[")           # the metadata is no longer a JSON object
    with pytest.raises(NeffFormatError, match="sha256"):
        read_neff(bytes(data))
    with pytest.raises(NeffFormatError, match="not valid UTF-8 JSON|must hold a JSON object"):
        read_neff(neff_cases.rehash(bytes(data)))


def test_the_census_counts_a_crash_and_a_hang_and_goes_on():
    import neff_census
    worker = neff_census.Worker(subprocess.DEVNULL, case_timeout=2, first_timeout=30)
    try:
        answers = [worker.ask("selfcheck", 0, i)["outcome"] for i in (2, 0, 2, 1, 2)]
    finally:
        worker.stop()
    assert answers == ["identical", "crash", "identical", "timeout", "identical"]
