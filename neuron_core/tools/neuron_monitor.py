"""neuron-monitor: a JSON report of the simulated Neuron devices every period, one line each.

    neuron-monitor                       # every 5 s until interrupted
    neuron-monitor -p 1 --iterations 3   # three reports, one a second

Each line: {"period", "timestamp", "neuron_runtime_data": [{"pid", "neuron_runtime_tag", "error",
"report": {"neuroncore_counters", "execution_stats", "memory_used"}}], "neuron_hardware_info":
{"neuron_device_count", "neuroncore_per_device_count", ...}}. Counters cover the period: core
utilisation is the share of wall time the process spent executing on that (simulated) core;
`latency_ms` are percentiles of the wall time of the executions that ended in the period (null when
there were none); `device_latency_ms` is the timing model's Inf1 estimate of one execution.
Processes publish their state through files in their simulated host's directory,
$NEURON_SIM_HOST_DIR (see neuron_core.runtime.state).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..errors import NeuronError

PERCENTILES = (0, 1, 25, 50, 75, 99, 100)


def percentiles(values: list) -> dict:
    """p0..p100 with linear interpolation; all None for no values."""
    if not values:
        return {f"p{p}": None for p in PERCENTILES}
    xs = sorted(values)
    out = {}
    for p in PERCENTILES:
        pos = p / 100 * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        out[f"p{p}"] = round(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo), 4)
    return out


def machine_chips(states: list) -> int:
    """Chips of the simulated machine: $NEURON_SIM_NUM_CHIPS, or more if a process uses more."""
    from ..runtime.device import DEFAULT_NUM_CHIPS, ENV_NUM_CHIPS, MAX_CHIPS
    text = (os.environ.get(ENV_NUM_CHIPS) or str(DEFAULT_NUM_CHIPS)).strip()
    if not text.isdigit() or not 1 <= int(text) <= MAX_CHIPS:
        raise NeuronError(f"{ENV_NUM_CHIPS}={text!r} is invalid: expected a number of chips from "
                          f"1 to {MAX_CHIPS}")
    return max([int(text)] + [int(s.get("num_chips", 1)) for s in states])


def hardware_info(states: list) -> dict:
    from ..runtime.device import CORE_MEMORY_BYTES, CORES_PER_CHIP
    return {"neuron_device_count": machine_chips(states),
            "neuroncore_per_device_count": CORES_PER_CHIP,
            "neuron_device_memory_size": CORES_PER_CHIP * CORE_MEMORY_BYTES,
            "neuron_device_type": "inferentia (simulated)", "error": ""}


def process_report(state: dict, previous: dict | None, since: float, now: float) -> dict:
    """The report of one process over the period (`since`, `now`] (unix times)."""
    period = max(now - since, 1e-9)
    before = (previous or {}).get("cores", {})
    in_use = {}
    for core, c in state.get("cores", {}).items():
        was = before.get(core, {})
        if previous is None:  # first sight: average over the life of the oldest model
            loaded = [m["loaded_at"] for m in state["models"]] or [now - period]
            period_c, was = max(now - min(loaded), 1e-9), {}
        else:
            period_c = period
        busy = c["busy_s"] - was.get("busy_s", 0.0)
        in_use[core] = {"neuroncore_utilization": round(min(100.0, 100 * busy / period_c), 3),
                        "executions": c["executions"] - was.get("executions", 0),
                        "device_busy_ms": round(1e3 * (c.get("device_busy_s", 0.0)
                                                       - was.get("device_busy_s", 0.0)), 4)}
    total = state["executions"]["total"] - (previous or {}).get("executions", {}).get("total", 0)
    errors = state["executions"]["errors"] - (previous or {}).get("executions", {}).get("errors",
                                                                                          0)
    recent = [ms for t, ms in state.get("latencies", []) if t > since]
    device = [m["device_latency_ms"] for m in state["models"]
              if m.get("device_latency_ms") is not None]
    used = {core: c["memory_used"] for core, c in state.get("cores", {}).items()}
    return {
        "pid": state["pid"], "neuron_runtime_tag": state.get("command", ""), "error": "",
        "report": {
            "neuroncore_counters": {"period": round(period, 3), "neuroncores_in_use": in_use,
                                    "error": ""},
            "execution_stats": {"period": round(period, 3), "total": total, "errors": errors,
                                "cumulative": dict(state["executions"]),
                                "latency_ms": percentiles(recent),
                                "device_latency_ms": percentiles(device), "error": ""},
            "memory_used": {"period": round(period, 3),
                            "neuron_runtime_used_bytes": {"neuron_device": sum(used.values()),
                                                          "per_core": used},
                            "loaded_models": [{k: m[k] for k in ("name", "core", "memory_bytes",
                                                                 "executions", "errors",
                                                                 "device_latency_ms")}
                                              for m in state["models"]],
                            "error": ""}}}


def report(states: list, previous: dict, since: float, now: float) -> dict:
    """One neuron-monitor line: every live process, and the hardware."""
    return {"period": round(now - since, 3), "timestamp": round(now, 3),
            "neuron_runtime_data": [process_report(s, previous.get(s["pid"]), since, now)
                                    for s in states],
            "neuron_hardware_info": hardware_info(states)}


def samples(period: float, iterations: int | None):
    """Yield (states, previous states by pid, period start, period end) every `period` seconds."""
    from ..runtime.state import read_states
    previous = {s["pid"]: s for s in read_states()}
    since = time.time()
    count = 0
    while iterations is None or count < iterations:
        time.sleep(max(0.0, since + period - time.time()))
        now = time.time()
        states = read_states()
        yield states, previous, since, now
        previous, since = {s["pid"]: s for s in states}, now
        count += 1


def run(prog: str, period: float, iterations: int | None, render) -> int:
    """Print `render(states, previous, since, now)` every period; errors as one line."""
    try:
        for sample in samples(period, iterations):
            print(render(*sample), flush=True)
    except NeuronError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, BrokenPipeError):
        return 0
    return 0


def positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = 0.0
    if not x > 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number of seconds")
    return x


def positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive integer")
    return int(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="neuron-monitor", description="Print a JSON report of "
                                     "the simulated Neuron devices and the processes using them "
                                     "every period.")
    parser.add_argument("-p", "--period", type=positive_float, default=5.0, metavar="SECONDS",
                        help="seconds between reports (default 5)")
    parser.add_argument("--iterations", type=positive_int, metavar="N",
                        help="stop after N reports (default: run until interrupted)")
    args = parser.parse_args(argv)
    return run("neuron-monitor", args.period, args.iterations,
               lambda *sample: json.dumps(report(*sample)))


if __name__ == "__main__":
    sys.exit(main())
