"""NEURON_PROFILE traces (standard Chrome trace events) and `neuron-profile view`."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from neuron_core import runtime
from neuron_core.errors import NeuronError
from neuron_core.runtime.profile import TRACE_SUFFIX
from neuron_core.tools.neuron_profile import main
from tests.core.neff_fixtures import neff  # noqa: F401  (a fixture)

X = np.zeros((1, 3, 32, 32), np.float32)


@pytest.fixture
def profile_dir(fresh_runtime, monkeypatch, tmp_path):
    monkeypatch.delenv("NEURON_PROFILE_MAX_FILES", raising=False)
    monkeypatch.setenv("NEURON_PROFILE", str(tmp_path / "prof"))
    return tmp_path / "prof"


def _run(neff, times: int = 1) -> None:
    with runtime.load(neff) as model:
        for _ in range(times):
            model.run(X)


def test_every_execution_writes_a_chrome_trace(neff, profile_dir):
    _run(neff, 2)
    traces = sorted(profile_dir.glob(f"*{TRACE_SUFFIX}"))
    assert [t.name for t in traces] == [f"cnn.neff-pid{os.getpid()}-0000{i}{TRACE_SUFFIX}"
                                        for i in range(2)]
    trace = json.loads(traces[0].read_text())
    events = trace["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    for e in spans:
        assert {"name", "ph", "ts", "dur", "pid", "tid"} <= set(e)
        assert isinstance(e["ts"], (int, float)) and e["dur"] >= 0
    tid = {e["args"]["name"]: e["tid"] for e in events
           if e["ph"] == "M" and e["name"] == "thread_name" and e["pid"] == 1}
    used = {e["tid"] for e in spans if e["pid"] == 1}
    engines = ("TensorEngine", "ScalarEngine", "VectorEngine", "DMA in", "host")
    assert {tid[t] for t in engines} <= used
    host = [e["name"] for e in spans if e["tid"] == tid["host"] and e["pid"] == 1]
    assert host == ["input transfer (PCIe)", "launch", "output transfer (PCIe)"]
    measured = [e for e in spans if e["pid"] == 2]
    assert len(measured) == len({e["args"]["instruction"] for e in spans
                                 if e["pid"] == 1 and "instruction" in e["args"]})
    device = [e for e in spans if e["pid"] == 1 and e["args"].get("where") == "on-core"]
    launch_end = next(e["ts"] + e["dur"] for e in spans if e["name"] == "launch")
    out_start = next(e["ts"] for e in spans if e["name"] == "output transfer (PCIe)")
    assert min(e["ts"] for e in device) >= launch_end - 1e-6
    assert max(e["ts"] + e["dur"] for e in device) <= out_start + 1e-6
    assert float(trace["otherData"]["device_ms"]) > 0 and int(trace["otherData"]["cycles"]) > 0


def test_replicas_of_one_model_on_two_cores_keep_their_own_files(neff, profile_dir):
    with runtime.load(neff, core=0) as a, runtime.load(neff, core=1) as b:
        a.run(X)
        b.run(X)
    cores = sorted(json.loads(p.read_text())["otherData"]["core"]
                   for p in profile_dir.glob(f"*{TRACE_SUFFIX}"))
    assert cores == ["0", "1"]


def test_profile_files_wrap_after_the_limit(neff, profile_dir, monkeypatch):
    monkeypatch.setenv("NEURON_PROFILE_MAX_FILES", "2")
    _run(neff, 3)
    assert len(list(profile_dir.glob(f"*{TRACE_SUFFIX}"))) == 2


def test_view_prints_the_operator_table(neff, profile_dir, capsys):
    _run(neff)
    assert main(["view", str(profile_dir), "--top", "0"]) == 0
    out = capsys.readouterr().out
    assert "cnn.neff on NeuronCore 0" in out
    assert "launch" in out and "input transfer (PCIe)" in out
    lines = [line for line in out.splitlines() if " on-core " in line]
    assert any(line.split()[1] == "Conv" for line in lines)
    assert main(["view", str(profile_dir), "--by-type"]) == 0
    by_type = capsys.readouterr().out
    conv = next(line for line in by_type.splitlines() if line.startswith("Conv "))
    assert conv.split()[2] == "on-core"


def test_view_exports_csv_with_shares_summing_to_100(neff, profile_dir, tmp_path, capsys):
    _run(neff)
    out = tmp_path / "ops.csv"
    assert main(["view", str(profile_dir), "--csv", str(out)]) == 0
    assert "written to" in capsys.readouterr().out
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == {"operator", "op", "where", "engine", "time_us", "percent",
                            "simulator_us"}
    assert {r["where"] for r in rows} == {"on-core", "host"}
    assert sum(float(r["percent"]) for r in rows) == pytest.approx(100, abs=0.1)
    times = [float(r["time_us"]) for r in rows]
    assert times == sorted(times, reverse=True)


def test_view_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["view", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no profile" in err and "NEURON_PROFILE=" in err
    bad = tmp_path / "bad.trace.json"
    bad.write_text("{}")
    assert main(["view", str(bad)]) == 1
    assert "no \"traceEvents\" list" in capsys.readouterr().err


def test_unwritable_profile_dir_is_a_neuron_error(neff, profile_dir, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("NEURON_PROFILE", str(blocker / "sub"))
    with runtime.load(neff) as model:
        with pytest.raises(NeuronError, match="cannot write the profile"):
            model.run(X)


def test_partitioned_model_writes_one_trace_per_request_with_host_fallback(profile_dir, capsys):
    import neuron_core.onnx as nonnx
    from neuron_core.models.builders import resnet
    model = resnet(18, image=32, width=8, num_classes=10)
    relus = [n for n in model.graph.node if n.op_type == "Relu"]
    relus[len(relus) // 2].op_type = "Softsign"      # no Neuron lowering: runs in onnxruntime
    compiled = nonnx.compile(model, cost_aware=False)
    compiled.run([X])
    requests = sorted(profile_dir.glob(f"*-request-*{TRACE_SUFFIX}"))
    assert requests, sorted(p.name for p in profile_dir.iterdir())
    trace = json.loads(requests[-1].read_text())
    spans = [e for e in trace["traceEvents"] if e["ph"] == "X"]
    host = [e for e in spans if e["tid"] == 7]                    # the "host fallback" track
    assert [e["args"]["op"] for e in host] == ["Softsign"]
    assert host[0]["dur"] == pytest.approx(1e3 * compiled.last_host_ms, rel=1e-3, abs=0.01)
    subgraphs = {e["args"]["subgraph"] for e in spans if "subgraph" in e["args"]}
    assert subgraphs == {0, 1} and host[0]["args"].get("subgraph") is None
    # the host span sits between the two subgraphs' spans, in that order
    first = max(e["ts"] + e["dur"] for e in spans if e["args"].get("subgraph") == min(subgraphs))
    second = min(e["ts"] for e in spans if e["args"].get("subgraph") == max(subgraphs))
    assert first <= host[0]["ts"] + 1e-3 and host[0]["ts"] + host[0]["dur"] <= second + 1e-3
    assert main(["view", str(requests[-1])]) == 0
    out = capsys.readouterr().out
    assert "Softsign" in out and " host " in out and "on-core" in out
