"""neuron-top: a live terminal view of NeuronCore utilisation and the loaded models.

    neuron-top                  # refresh every second until Ctrl-C
    neuron-top --once           # one frame, no screen clearing (scripts, CI)
    neuron-top --iterations 5 -d 0.5

Utilisation is the share of wall time each process spent executing on a (simulated) core during the
refresh period; see neuron-monitor for the same data as JSON.
"""
from __future__ import annotations

import argparse
import sys
import time

from .neuron_monitor import hardware_info, positive_float, positive_int, process_report, run

CLEAR = "\033[H\033[2J"
BAR = 24


def _mib(n: int) -> str:
    return f"{n / 2**20:8.1f} MiB"


def frame(states: list, previous: dict, since: float, now: float) -> str:
    """One screen of neuron-top."""
    hw = hardware_info(states)
    n_cores = hw["neuron_device_count"] * hw["neuroncore_per_device_count"]
    reports = [process_report(s, previous.get(s["pid"]), since, now) for s in states]
    util = {c: 0.0 for c in range(n_cores)}
    mem = {c: 0 for c in range(n_cores)}
    owners: dict = {c: [] for c in range(n_cores)}
    for s, r in zip(states, reports):
        for core, counters in r["report"]["neuroncore_counters"]["neuroncores_in_use"].items():
            c = int(core)
            if c in util:
                util[c] += counters["neuroncore_utilization"]
                owners[c].append(str(s["pid"]))
        for core, used in r["report"]["memory_used"]["neuron_runtime_used_bytes"][
                "per_core"].items():
            if int(core) in mem:
                mem[int(core)] += used
    lines = [f"neuron-top - {time.strftime('%H:%M:%S', time.localtime(now))}  "
             f"{hw['neuron_device_count']} device(s), {n_cores} NeuronCores (simulated Inf1), "
             f"{len(states)} process(es); period {now - since:.1f} s",
             "", "NeuronCore utilisation (wall time executing)        device memory used"]
    for c in range(n_cores):
        u = min(100.0, util[c])
        filled = int(round(u / 100 * BAR))
        lines.append(f"  nc{c:<3d} [{'#' * filled}{'.' * (BAR - filled)}] {u:5.1f}%   "
                     f"{_mib(mem[c])}   {'pid ' + ','.join(owners[c]) if owners[c] else ''}")
    lines += ["", "Loaded models",
              f"  {'PID':>7s} {'CORE':>4s} {'MODEL':24s} {'MEMORY':>12s} {'EXECS':>7s} "
              f"{'ERRORS':>6s} {'P50 ms':>8s} {'Inf1 ms':>8s}  COMMAND"]
    for s, r in zip(states, reports):
        p50 = r["report"]["execution_stats"]["latency_ms"]["p50"]
        for m in s["models"]:
            dev = m.get("device_latency_ms")
            lines.append(f"  {s['pid']:7d} {m['core']:4d} {m['name'][:24]:24s} "
                         f"{_mib(m['memory_bytes']):>12s} {m['executions']:7d} {m['errors']:6d} "
                         f"{'-' if p50 is None else f'{p50:.2f}':>8s} "
                         f"{'-' if dev is None else f'{dev:.3f}':>8s}  {s.get('command', '')[:40]}")
    if not states:
        lines.append("  (no process has a model loaded)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="neuron-top", description="Live view of the simulated "
                                     "NeuronCores' utilisation and loaded models.")
    parser.add_argument("-d", "--delay", type=positive_float, default=1.0, metavar="SECONDS",
                        help="refresh period (default 1 s)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="print one frame and exit")
    mode.add_argument("--iterations", type=positive_int, metavar="N",
                      help="print N frames and exit (no screen clearing)")
    args = parser.parse_args(argv)
    iterations = 1 if args.once else args.iterations
    live = iterations is None and sys.stdout.isatty()

    def render(*sample) -> str:
        text = frame(*sample)
        return (CLEAR + text + "\n(Ctrl-C to quit)") if live else text + "\n"
    return run("neuron-top", args.delay, iterations, render)


if __name__ == "__main__":
    sys.exit(main())
