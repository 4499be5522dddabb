"""neuron-cc estimate, and neuron-ls / neuron-top / neuron-monitor on a model loaded in another
process, through the runtime's published state files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from neuron_core import runtime
from neuron_core.hw import INF1_INSTANCES
from neuron_core.models.builders import small_cnn
from neuron_core.runtime.state import PUBLISH_INTERVAL_S, read_states
from neuron_core.tools import neuron_cc
from tests.core.neff_fixtures import neff  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[2]

#: loads the NEFF, says "ready", runs it every 20 ms until the stop file appears, then unloads
HOLDER = """
import os, sys, time
import numpy as np
from neuron_core import runtime
neff, stop = sys.argv[1], sys.argv[2]
model = runtime.load(neff)
x = np.zeros(model.inputs[0][1], np.float32)
model.run(x)
print("ready", flush=True)
deadline = time.time() + 60
while not os.path.exists(stop) and time.time() < deadline:
    model.run(x)
    time.sleep(0.02)
model.unload()
"""


@pytest.fixture
def env(fresh_runtime, monkeypatch):
    """The environment of the tools run: the fresh runtime's state dir, no NEURON_PROFILE."""
    monkeypatch.delenv("NEURON_PROFILE", raising=False)
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture
def holder(neff, env, tmp_path):
    """A real process holding the model on NeuronCore 0; stopped and reaped afterwards."""
    stop = tmp_path / "stop"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(neff), str(stop)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        yield proc
    finally:
        stop.touch()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def _tool(name: str, *args: str, env: dict) -> str:
    out = subprocess.run([sys.executable, "-m", f"neuron_core.tools.{name}", *args], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_neuron_ls_shows_the_other_process(holder, env):
    text = _tool("neuron_ls", env=env)
    assert f"{holder.pid}: nc0" in text and "cnn.neff" in text
    inv = json.loads(_tool("neuron_ls", "--json", env=env))
    assert len(inv["devices"]) == 1 and inv["devices"][0]["cores"] == 4
    proc = next(p for p in inv["processes"] if p["pid"] == holder.pid)
    assert proc["cores"] == [0] and proc["models"] == ["cnn.neff"]
    core0 = inv["neuroncores"][0]
    assert core0["processes"] == [holder.pid] and 0 < core0["memory_used"] < core0["memory_total"]
    for flag in ("-j", "--json-output"):  # the Neuron tools' shape, as scripts and Ray read it
        devices = json.loads(_tool("neuron_ls", flag, env=env))
        assert [d["nc_count"] for d in devices] == [4] and devices[0]["neuron_device"] == 0
        assert devices[0]["memory_size"] == inv["devices"][0]["memory_total"]
        assert holder.pid in [p["pid"] for p in devices[0]["neuron_processes"]]


def test_neuron_monitor_reports_one_json_line(holder, env):
    lines = _tool("neuron_monitor", "-p", "0.6", "--iterations", "1", env=env).splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    hw = report["neuron_hardware_info"]
    assert hw["neuron_device_count"] == 1 and hw["neuroncore_per_device_count"] == 4
    data = next(d for d in report["neuron_runtime_data"] if d["pid"] == holder.pid)
    r = data["report"]
    util = r["neuroncore_counters"]["neuroncores_in_use"]["0"]["neuroncore_utilization"]
    assert 0 < util <= 100
    stats = r["execution_stats"]
    assert stats["total"] > 0 and stats["errors"] == 0
    assert set(stats["latency_ms"]) == {"p0", "p1", "p25", "p50", "p75", "p99", "p100"}
    assert 0 < stats["latency_ms"]["p0"] <= stats["latency_ms"]["p50"] <= stats["latency_ms"]["p100"]
    assert r["memory_used"]["neuron_runtime_used_bytes"]["neuron_device"] > 0
    assert r["memory_used"]["loaded_models"][0]["name"] == "cnn.neff"


def test_neuron_top_once_shows_cores_and_models(holder, env):
    text = _tool("neuron_top", "--once", "-d", "0.3", env=env)
    assert "nc0" in text and "nc3" in text and "cnn.neff" in text
    row = next(line for line in text.splitlines() if line.strip().startswith(str(holder.pid)))
    assert row.split()[1] == "0"  # its core
    assert "\033[" not in text  # no screen control codes outside a terminal


def test_state_file_goes_when_the_process_ends(holder, env, tmp_path):
    state = Path(env["NEURON_SIM_HOST_DIR"])
    assert (state / f"{holder.pid}.json").exists()
    (tmp_path / "stop").touch()
    holder.wait(timeout=10)
    assert not (state / f"{holder.pid}.json").exists()
    assert holder.pid not in [s["pid"] for s in read_states()]


def test_stale_state_of_a_dead_process_is_ignored(env):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    state = Path(env["NEURON_SIM_HOST_DIR"])
    state.mkdir(parents=True)
    (state / f"{dead}.json").write_text(json.dumps({"pid": int(dead), "models": []}))
    assert read_states() == []
    assert not (state / f"{dead}.json").exists()
    assert f"{dead}:" not in _tool("neuron_ls", env=env)


def test_publishing_is_throttled_and_catches_up(neff, env):
    state = Path(env["NEURON_SIM_HOST_DIR"]) / f"{os.getpid()}.json"

    def total() -> int:  # cumulative over this (test worker) process
        return json.loads(state.read_text())["executions"]["total"]
    with runtime.load(neff) as model:
        at_load = total()  # written on load
        ours = max(m["loaded_at"] for m in json.loads(state.read_text())["models"])
        x = np.zeros((1, 3, 32, 32), np.float32)
        started = time.monotonic()
        for _ in range(5):
            model.run(x)
        if time.monotonic() - started < PUBLISH_INTERVAL_S / 2:
            assert total() < at_load + 5  # not rewritten on every run
        time.sleep(PUBLISH_INTERVAL_S + 0.3)
        assert total() == at_load + 5  # a timer publishes what the throttle held back
    # unloaded: gone from the file (which goes too unless this process holds other models)
    assert not state.exists() or ours not in [m["loaded_at"]
                                              for m in json.loads(state.read_text())["models"]]


# ------------------------------------------------------------------------- neuron-cc estimate

def test_estimate_json_schema(neff, capsys):
    assert neuron_cc.main(["estimate", str(neff), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["instances"]) == list(INF1_INSTANCES)
    for name, e in data["instances"].items():
        assert {"cores", "batch_size", "latency_ms_p50", "throughput_per_s"} <= set(e)
        assert e["batch_size"] == 1 and e["latency_ms_p50"] > 0 and e["throughput_per_s"] > 0
    assert data["instances"]["inf1.24xlarge"]["cores"] == 64


def test_estimate_text_with_instance_cores_and_batch(neff, capsys):
    assert neuron_cc.main(["estimate", str(neff), "--instance", "inf1.6xlarge", "--cores", "2",
                           "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "latency P50 ms" in out and "throughput /s" in out and "PCIe ms" in out
    row = next(line for line in out.splitlines() if line.startswith("inf1.6xlarge"))
    assert row.split()[1] == "2"
    assert "inf1.xlarge" not in out
    assert "batch size 4 runs as 4 execution(s) of the compiled batch 1" in out


def test_estimate_matches_the_loaded_model(neff, env, capsys):
    assert neuron_cc.main(["estimate", str(neff), "--instance", "inf1.xlarge", "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)["instances"]["inf1.xlarge"]
    with runtime.load(neff) as model:
        api = model.estimate("inf1.xlarge").instances["inf1.xlarge"].to_json()
    assert api == cli


def test_estimate_bad_inputs_are_one_line_errors(tmp_path, capsys):
    missing = str(tmp_path / "missing.neff")
    assert neuron_cc.main(["estimate", missing]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.neff" in err
    with pytest.raises(SystemExit):
        neuron_cc.main(["estimate", missing, "--batch-size", "0"])
    assert "not a positive integer" in capsys.readouterr().err


def test_compile_prints_the_estimate(tmp_path, capsys):
    import onnx
    src = tmp_path / "cnn.onnx"
    onnx.save(small_cnn(), src)
    assert neuron_cc.main(["compile", str(src), "--framework", "ONNX", "--output",
                           str(tmp_path / "cnn.neff")]) == 0
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("Estimated on Inf1"))
    assert "on 1 NeuronCore" in line and "inf1.xlarge (4 cores)" in line
    assert f"neuron-cc estimate {tmp_path / 'cnn.neff'}" in out
