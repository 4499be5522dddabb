"""Execution profiles: a Chrome / Perfetto trace of the timing model's timeline, and operator tables.

With `NEURON_PROFILE=DIR`, every `Model.run` writes `DIR/<model>-pid<pid>-<n>.trace.json` (the
numbering wraps after $NEURON_PROFILE_MAX_FILES files per model and process, default 100, so a hot
loop does not fill the disk). The file is the standard trace-event format and opens as it is in
chrome://tracing, https://ui.perfetto.dev or speedscope:

  * process "NeuronCore <n>: <model> (timing model)": one track per engine (TensorEngine,
    ScalarEngine, VectorEngine, and the DMA queues "DMA in" and "DMA out") plus "host" (PCIe
    transfers of inputs and outputs, launch) and "host fallback" (ops run on the CPU, added by
    partitioned models);
  * process "simulator (measured wall time)": each instruction as the simulator ran it on this
    machine, to find what makes the simulation itself slow.

A partitioned model (`neuron_core.onnx.compile`) also writes `<model>-request-...trace.json` per
request: its Neuron subgraphs' timelines one after another, with the host-fallback work between
them on the "host fallback" track at its measured duration (`request_trace`).

Every event carries `args` {"instruction", "node", "op", "where": "on-core" | "host"}; the operator
table of `neuron-profile view` is computed from them alone.
"""
from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import astuple, dataclass
from pathlib import Path

from ..errors import NeuronError
from ..fileio import atomic_write, check_destination
from ..hw import INF1, NeuronCoreConfig
from .context import default
from .timing import TRACKS

ENV_PROFILE = "NEURON_PROFILE"
ENV_PROFILE_MAX = "NEURON_PROFILE_MAX_FILES"
TRACE_SUFFIX = ".trace.json"
DEVICE_PID, SIM_PID = 1, 2
TIDS = {"host": 1, **{track: k for k, track in enumerate(TRACKS, 2)}, "host fallback": 7}
HOST_TRACKS = ("host", "host fallback")


def _meta(pid: int, tid: int | None, key: str, value) -> dict:
    event = {"name": key, "ph": "M", "pid": pid, "args": {"name": value} if "name" in key
             else {"sort_index": value}}
    if tid is not None:
        event["tid"] = tid
    return event


def _x(name: str, track: str, start_s: float, dur_s: float, args: dict, cat: str,
       pid: int = DEVICE_PID) -> dict:
    ts, end = round(start_s * 1e6, 3), round((start_s + max(dur_s, 0.0)) * 1e6, 3)
    return {"name": name, "cat": cat, "ph": "X", "ts": ts, "dur": round(end - ts, 3), "pid": pid,
            "tid": TIDS.get(track, 1), "args": args}


def _device_tracks(title: str) -> list:
    """The metadata events naming the device process and its tracks, in order."""
    events = [_meta(DEVICE_PID, None, "process_name", title),
              _meta(DEVICE_PID, None, "process_sort_index", 0)]
    for track, tid in TIDS.items():
        events += [_meta(DEVICE_PID, tid, "thread_name", track),
                   _meta(DEVICE_PID, tid, "thread_sort_index", tid)]
    return events


def build_trace(program, timeline, *, model: str, core: int, hw: NeuronCoreConfig = INF1,
                wall_steps: list | None = None, host_ops: list | None = None) -> dict:
    """The trace of one execution. `wall_steps`: measured (instruction, start_s, end_s) of the
    simulator; `host_ops`: (name, start_s, dur_s) of host-fallback ops, times from the request start."""
    in_bytes = sum(b.nbytes for b in program.buffers if b.kind == "input")
    out_bytes = sum(b.nbytes for b in program.buffers if b.kind == "output")
    t_in = hw.pcie_latency_s + in_bytes / hw.pcie_bytes_per_s
    t_out = hw.pcie_latency_s + out_bytes / hw.pcie_bytes_per_s
    base = t_in + hw.launch_overhead_s
    events = _device_tracks(f"NeuronCore {core}: {model} (timing model)")
    host = {"where": "host"}
    events.append(_x("input transfer (PCIe)", "host", 0.0, t_in, {**host, "bytes": in_bytes},
                     "transfer"))
    events.append(_x("launch", "host", t_in, hw.launch_overhead_s, host, "launch"))
    for e in timeline.events:
        instr = program.instrs[e.index] if e.index >= 0 else None
        args = {"instruction": e.index, "node": e.node, "op": instr.op if instr else e.name,
                "engine": e.track, "where": "on-core"}
        if e.nbytes:
            args["bytes"] = e.nbytes
        events.append(_x(e.name, e.track, base + e.start, e.dur, args, e.kind))
    end = base + timeline.device_s
    events.append(_x("output transfer (PCIe)", "host", end, t_out, {**host, "bytes": out_bytes},
                     "transfer"))
    for name, start, dur in host_ops or ():
        events.append(_x(name, "host fallback", start, dur, {**host, "node": name, "op": name},
                         "host"))
    if wall_steps:
        events += [_meta(SIM_PID, None, "process_name", "simulator (measured wall time)"),
                   _meta(SIM_PID, None, "process_sort_index", 1),
                   _meta(SIM_PID, 1, "thread_name", "functional model")]
        t0 = wall_steps[0][1]
        for j, start, stop in wall_steps:
            instr = program.instrs[j]
            events.append(_x(instr.op, "host", start - t0, stop - start,
                             {"instruction": j, "node": instr.node, "op": instr.op,
                              "where": "simulator"}, "measured", pid=SIM_PID))
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"model": model, "core": str(core), "pid": str(os.getpid()),
                          "cycles": str(timeline.cycles),
                          "device_ms": f"{1e3 * timeline.device_s:.4f}",
                          "latency_ms": f"{1e3 * (end + t_out):.4f}",
                          "generator": "neuron-sim timing model"}}


def request_trace(parts: list, *, model: str) -> dict:
    """One request of a partitioned model as one trace. `parts`, in run order: a trace from
    `build_trace` (a Neuron subgraph, timing model), or ("host", node, op, seconds) measured on
    this machine. Instructions become "<part>:<index>" so that subgraphs stay apart."""
    events = _device_tracks(f"{model}: one request (Neuron subgraphs: timing model; host: "
                            "measured)")
    cursor = device = 0.0
    cores = []
    k = -1   # the subgraph's number among the Neuron parts
    for part in parts:
        if isinstance(part, dict):
            k += 1
            end_us = 0.0
            for e in part["traceEvents"]:
                if e.get("ph") != "X" or e.get("pid") != DEVICE_PID:
                    continue
                args = {**e.get("args", {}), "subgraph": k}
                if "instruction" in args:
                    args["instruction"] = f"{k}:{args['instruction']}"
                events.append({**e, "ts": round(e["ts"] + cursor * 1e6, 3), "args": args})
                end_us = max(end_us, e["ts"] + e["dur"])
            cursor += end_us / 1e6
            device += float(part["otherData"]["device_ms"])   # in ms
            cores.append(part["otherData"]["core"])
        else:
            _, node, op, seconds = part
            events.append(_x(node, "host fallback", cursor, seconds,
                             {"where": "host", "node": node, "op": op}, "host"))
            cursor += seconds
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"model": model, "core": ",".join(dict.fromkeys(cores)) or "-",
                          "pid": str(os.getpid()), "device_ms": f"{device:.4f}",
                          "latency_ms": f"{1e3 * cursor:.4f}",
                          "generator": "neuron-sim timing model + measured host fallback"}}


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "model"


def write_profile(directory, trace: dict, model: str) -> Path:
    """Write a trace atomically as DIR/<model>-pid<pid>-<n>.trace.json; returns its path. `n`
    counts per directory and model name in this process, so replicas of one model on several
    NeuronCores (threads) never write the same file."""
    limit = int(os.environ.get(ENV_PROFILE_MAX) or 100)
    directory = Path(directory)
    seq = default().next_profile(str(directory), model)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{_safe(model)}-pid{os.getpid()}-{seq % max(1, limit):05d}{TRACE_SUFFIX}"
    # the ring replaces this process's older traces (or a trace an earlier process of the same
    # pid wrote), never a file of another kind
    check_destination(path, _is_trace, overwrite=False, what="a profile trace written here",
                      advice=f"move it out of {str(directory)!r} or point {ENV_PROFILE} elsewhere")
    atomic_write(path, json.dumps(trace).encode())
    return path


def _is_trace(path: Path) -> bool:
    if path.stat().st_size > 1 << 30:
        return False
    trace = json.loads(path.read_bytes())
    return isinstance(trace, dict) and isinstance(trace.get("traceEvents"), list) and \
        isinstance(trace.get("otherData"), dict) and "model" in trace["otherData"]


# ------------------------------------------------------------------------------ operator table

@dataclass(frozen=True)
class OpRow:
    """One operator of a profile: its time (us), where it ran, its share of the total."""

    operator: str
    op: str
    where: str
    engine: str
    time_us: float
    percent: float
    simulator_us: float


CSV_HEADER = ("operator", "op", "where", "engine", "time_us", "percent", "simulator_us")


def find_trace(path) -> Path:
    """`path` itself, or the newest trace in directory `path`."""
    path = Path(path)
    if path.is_dir():
        traces = sorted(path.glob(f"*{TRACE_SUFFIX}"), key=lambda p: p.stat().st_mtime)
        if not traces:
            raise NeuronError(f"no profile (*{TRACE_SUFFIX}) in {str(path)!r}; run the model with "
                              f"{ENV_PROFILE}={path} to write one")
        return traces[-1]
    if not path.is_file():
        raise NeuronError(f"profile {str(path)!r} does not exist; give a directory written with "
                          f"{ENV_PROFILE}=DIR or one of its {TRACE_SUFFIX} files")
    return path


def load_trace(path) -> dict:
    try:
        trace = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise NeuronError(f"cannot read profile {str(path)!r}: {exc}") from None
    if not isinstance(trace, dict) or not isinstance(trace.get("traceEvents"), list):
        raise NeuronError(f"{str(path)!r} is not a trace: it has no \"traceEvents\" list")
    return trace


def operator_table(trace: dict, by_type: bool = False) -> list:
    """Rows per operator (or per op type), largest time first. An instruction's time is the longer
    of its compute and its loads (they overlap) plus its stores; host events count as they are."""
    main: dict = {}
    stores: dict = {}
    info: dict = {}
    measured: dict = {}
    host: dict = {}
    for e in trace["traceEvents"]:
        if e.get("ph") != "X":
            continue
        args = e.get("args") or {}
        if args.get("where") == "simulator":
            measured[args.get("node", e["name"])] = measured.get(args.get("node", e["name"]), 0) \
                + e["dur"]
        elif args.get("where") == "host":
            key = (args.get("node") or e["name"], args.get("op") or e["name"])
            host[key] = host.get(key, 0.0) + e["dur"]
        elif "instruction" in args:
            j = args["instruction"]
            info.setdefault(j, (args.get("node", ""), args.get("op", e["name"]), args["engine"]))
            if e.get("cat") == "store":
                stores[j] = stores.get(j, 0.0) + e["dur"]
                continue
            main[j] = max(main.get(j, 0.0), e["dur"])
            if e.get("cat") != "load":  # the engine of the instruction, not of its DMA
                info[j] = (args.get("node", ""), args.get("op", e["name"]), args["engine"])
    rows: dict = {}
    for j, (node, op, engine) in info.items():
        key = op if by_type else node
        t, sim, _, eng = rows.get(key, (0.0, 0.0, op, engine))
        rows[key] = (t + main.get(j, 0.0) + stores.get(j, 0.0), sim + measured.pop(node, 0.0),
                     op, eng)
    total = sum(r[0] for r in rows.values()) + sum(host.values()) or 1.0
    table = [OpRow(key, op, "on-core", eng, t, 100 * t / total, sim)
             for key, (t, sim, op, eng) in rows.items()]
    table += [OpRow(op if by_type else node, op, "host", "host", t, 100 * t / total, 0.0)
              for (node, op), t in host.items()]
    return sorted(table, key=lambda r: -r.time_us)


def format_table(trace: dict, rows: list, source: str = "", top: int | None = None) -> str:
    other = trace.get("otherData") or {}
    on_core = sum(r.time_us for r in rows if r.where == "on-core")
    host = sum(r.time_us for r in rows if r.where != "on-core")
    lines = [f"Profile {source}: {other.get('model', '?')} on NeuronCore {other.get('core', '?')}"
             f" (pid {other.get('pid', '?')}); device {other.get('device_ms', '?')} ms, "
             f"end to end {other.get('latency_ms', '?')} ms (timing model)",
             f"operator time: on-core {on_core / 1e3:.3f} ms, host {host / 1e3:.3f} ms "
             f"(sums of operator times; engines overlap)",
             f"{'operator':40s} {'op':22s} {'where':8s} {'engine':13s} {'time us':>10s} "
             f"{'%':>6s} {'sim us':>10s}"]
    for r in rows[:top] if top else rows:
        lines.append(f"{r.operator[:40]:40s} {r.op[:22]:22s} {r.where:8s} {r.engine:13s} "
                     f"{r.time_us:10.2f} {r.percent:6.2f} {r.simulator_us:10.1f}")
    if top and len(rows) > top:
        lines.append(f"... {len(rows) - top} more (use --top 0 for all)")
    return "\n".join(lines)


def write_csv(rows: list, path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for r in rows:
            writer.writerow([f"{v:.3f}" if isinstance(v, float) else v for v in astuple(r)])
