"""neuron-ls: the simulated Neuron devices, their cores and memory, and the processes using them.

    neuron-ls            # one table of devices, one of NeuronCores
    neuron-ls --json
    neuron-ls -j         # the Neuron tools' JSON shape: [{"neuron_device": 0, "nc_count": 4, ...}]

The machine has $NEURON_SIM_NUM_CHIPS chips (default 1) of 4 NeuronCores with 2 GiB of device
memory each. Processes publish what they hold in the directory of their simulated host,
$NEURON_SIM_HOST_DIR (neuron_core.runtime.state), and each core's lock file there names the process
owning it (neuron_core.runtime.host).
"""
from __future__ import annotations

import argparse
import json
import sys

from ..errors import NeuronError


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n < 2**30 else f"{n / 2**30:.2f} GiB"


def _span(cores: list) -> str:
    cores = sorted(cores)
    if len(cores) > 2 and cores == list(range(cores[0], cores[-1] + 1)):
        return f"nc{cores[0]}-{cores[-1]}"
    return ",".join(f"nc{c}" for c in cores) or "-"


def inventory(states: list, owners: dict | None = None) -> dict:
    """Devices and cores with the memory and processes on each (what neuron-ls prints); `owners`
    (core -> {"pid", "command"}, from `runtime.host.owners`) names the process owning each core."""
    from ..runtime.device import CORE_MEMORY_BYTES, CORES_PER_CHIP
    from .neuron_monitor import machine_chips
    chips = machine_chips(states)
    owners = owners or {}
    chips = max([chips] + [c // CORES_PER_CHIP + 1 for c in owners])
    cores = [{"core": c, "device": c // CORES_PER_CHIP, "memory_used": 0,
              "memory_total": CORE_MEMORY_BYTES, "owner": owners.get(c, {}).get("pid"),
              "processes": [], "models": []}
             for c in range(chips * CORES_PER_CHIP)]
    processes = []
    for s in states:
        held = []
        for key, c in s.get("cores", {}).items():
            core = int(key)
            if core >= len(cores) or not (c.get("memory_used") or c.get("models")):
                continue
            held.append(core)
            cores[core]["memory_used"] += c.get("memory_used", 0)
            cores[core]["processes"].append(s["pid"])
            cores[core]["models"] += c.get("models", [])
        processes.append({"pid": s["pid"], "command": s.get("command", ""), "cores": sorted(held),
                          "owned_cores": s.get("owned_cores", []),
                          "visible_cores": s.get("visible_cores", []),
                          "models": [m["name"] for m in s.get("models", [])]})
    devices = []
    for d in range(chips):
        mine = cores[d * CORES_PER_CHIP:(d + 1) * CORES_PER_CHIP]
        devices.append({"device": d, "cores": len(mine),
                        "memory_used": sum(c["memory_used"] for c in mine),
                        "memory_total": sum(c["memory_total"] for c in mine),
                        "processes": sorted({p for c in mine for p in c["processes"]})})
    return {"devices": devices, "neuroncores": cores, "processes": processes}


def device_list(inv: dict) -> list:
    """The inventory as neuron-ls -j lists it: one entry per device, its NeuronCore count
    (`nc_count`, what Ray's resource detection reads), memory in bytes and the processes on it."""
    from .. import __version__
    procs = {p["pid"]: p for p in inv["processes"]}
    return [{"neuron_device": d["device"], "bdf": f"sim:{d['device']:02x}", "connected_to": None,
             "nc_count": d["cores"], "memory_size": d["memory_total"],
             "neuron_processes": [{"pid": pid, "command": procs[pid]["command"],
                                   "neuron_runtime_version": f"neuron-sim {__version__}"}
                                  for pid in d["processes"]]}
            for d in inv["devices"]]


def _table(header: list, rows: list) -> list:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    fmt = "| " + " | ".join(f"{{:{w}}}" for w in widths) + " |"
    return [line, fmt.format(*header), line] + [fmt.format(*map(str, r)) for r in rows] + [line]


def format_inventory(inv: dict) -> str:
    procs = {p["pid"]: p for p in inv["processes"]}

    def who(pids):
        return "; ".join(f"{p}: {_span([c for c in procs[p]['cores']])} {procs[p]['command']}"
                         for p in pids) or "-"
    lines = _table(["NEURON DEVICE", "NEURON CORES", "NEURON MEMORY (used / total)",
                    "PROCESSES (pid: cores command)"],
                   [[d["device"], d["cores"], f"{_mib(d['memory_used'])} / {_mib(d['memory_total'])}",
                     who(d["processes"])] for d in inv["devices"]])
    lines += _table(["NEURON CORE", "DEVICE", "OWNER (pid)", "MEMORY (used / total)", "PID",
                     "MODELS"],
                    [[f"nc{c['core']}", c["device"], c["owner"] or "-",
                      f"{_mib(c['memory_used'])} / {_mib(c['memory_total'])}",
                      ",".join(map(str, c["processes"])) or "-", ", ".join(c["models"]) or "-"]
                     for c in inv["neuroncores"]])
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="neuron-ls", description="List the simulated Neuron "
                                     "devices, their NeuronCores and memory, and the processes "
                                     "holding them.")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: devices, NeuronCores and processes")
    parser.add_argument("-j", "--json-output", action="store_true",
                        help="print JSON in the shape of the Neuron tools' neuron-ls -j: a list "
                        "with one entry per device (neuron_device, nc_count, memory_size, "
                        "neuron_processes)")
    args = parser.parse_args(argv)
    from ..runtime.host import host_dir, owners
    from ..runtime.state import read_states
    try:
        inv = inventory(read_states(), owners(host_dir()))
        if args.json_output:
            print(json.dumps(device_list(inv), indent=4))
        else:
            print(json.dumps(inv, indent=2) if args.json else format_inventory(inv))
    except NeuronError as exc:
        print(f"neuron-ls: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
