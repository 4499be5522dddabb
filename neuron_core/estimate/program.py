"""The estimate of one program on Inf1 instance sizes, from the timing model (no execution).

Data parallel (the default): every used NeuronCore holds a replica of the model; the cores of one
chip share its DRAM bandwidth, so a replica's execution time depends on how many cores of its chip
are in use. Pipeline (a NEFF compiled with --neuroncore-pipeline-cores N): the instruction stream is
cut into N contiguous stages balanced by time, one per core; throughput = one request per slowest
stage (the client keeps the pipeline full); latency = the sum of the stage times plus the hand-offs
between cores (`stage_sync_s` + bytes over NeuronLink), where each stage counts from the arrival of
its inputs: a stage of a full pipeline is launched ahead of its request and waits for the previous
core, so its weight DMAs, which do not depend on the request, run ahead into the SBUF room kept for
streaming (`sbuf_stream_bytes`) while it waits.

Requests: a NEFF runs a fixed batch (its inputs' first dimension). A batch size N other than the
compiled batch B runs as ceil(N/B) executions back to back on one core, or one slowest stage apart
through a pipeline (the last one padded when B does not divide N). `inflight` requests per core are kept outstanding (default 1): with 1, a request
pays its PCIe transfers, execution and host time in turn; with more, transfers and host work overlap
other requests' executions and the P50 latency follows Little's law (in flight / throughput).

`host_ms` adds host time per request (host-fallback parts of a partitioned model run on the CPU).

    est = estimate_program(program, metadata, instance="inf1.xlarge")
    print(est.format())
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..errors import NeuronError
from ..hw import INF1, INF1_INSTANCES, NeuronCoreConfig
from ..runtime.timing import compute_seconds, gathers, simulate


@dataclass
class InstanceEstimate:
    """The estimate for one Inf1 size: cores used, latency P50 and throughput of requests of
    `batch_size` samples; the per-request parts (device, PCIe transfers, host) in ms."""

    cores: int
    batch_size: int
    latency_ms_p50: float | None
    throughput_per_s: float | None
    replicas: int = 0
    chips: int = 0
    device_ms: float = 0.0
    transfer_ms: float = 0.0
    host_ms: float = 0.0
    note: str = ""

    def to_json(self) -> dict:
        out = asdict(self)
        for key in ("latency_ms_p50", "throughput_per_s", "device_ms", "transfer_ms", "host_ms"):
            if out[key] is not None:
                out[key] = round(out[key], 4)
        if not out["note"]:
            del out["note"]
        return out


@dataclass
class Estimate:
    """Estimates per instance size, with what they assumed."""

    model: str
    compiled_batch: int
    batch_size: int
    executions_per_request: int
    pipeline_cores: int
    inflight: int
    host_ms: float
    transfer_bytes: int
    instances: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"model": self.model, "compiled_batch": self.compiled_batch,
                "batch_size": self.batch_size,
                "executions_per_request": self.executions_per_request,
                "pipeline_cores": self.pipeline_cores, "inflight": self.inflight,
                "host_ms": self.host_ms, "transfer_bytes": self.transfer_bytes,
                "instances": {k: v.to_json() for k, v in self.instances.items()},
                "notes": list(self.notes)}

    def format(self) -> str:
        mode = (f"pipeline over {self.pipeline_cores} NeuronCores, kept full"
                if self.pipeline_cores > 1 else f"data parallel, one replica per NeuronCore, "
                f"{self.inflight} request(s) in flight each")
        lines = [f"Estimate for {self.model} on Inf1 (timing model; {mode}; batch size "
                 f"{self.batch_size}, compiled batch {self.compiled_batch})",
                 f"{'instance':14s} {'cores':>5s} {'latency P50 ms':>14s} {'throughput /s':>13s} "
                 f"{'device ms':>9s} {'PCIe ms':>8s} {'host ms':>8s}"]
        for name, e in self.instances.items():
            if e.latency_ms_p50 is None:
                lines.append(f"{name:14s} {e.cores:5d}  {e.note}")
                continue
            lines.append(f"{name:14s} {e.cores:5d} {e.latency_ms_p50:14.2f} "
                         f"{e.throughput_per_s:13.1f} {e.device_ms:9.2f} {e.transfer_ms:8.3f} "
                         f"{e.host_ms:8.2f}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def check_host_ms(host_ms) -> None:
    """Host time per request must be a number of milliseconds >= 0."""
    if not isinstance(host_ms, (int, float)) or host_ms < 0:
        raise NeuronError(f"host_ms must be a number of milliseconds >= 0, got {host_ms!r}")


def compiled_batch(metadata: dict) -> int:
    """The batch a NEFF was compiled for: its first input's first dimension (1 for scalars)."""
    inputs = metadata.get("inputs") or []
    shape = inputs[0].get("shape") if inputs else None
    return int(shape[0]) if shape and isinstance(shape[0], int) and shape[0] > 0 else 1


def split_stages(cost, n: int, size: int) -> list:
    """Cut instructions 0..size-1 into `n` contiguous non-empty stages, minimising the largest
    `cost(start, stop)` (which must grow with the stage); returns (start, stop) pairs."""
    if n > size:
        raise NeuronError(f"cannot pipeline {size} instructions over {n} NeuronCores; "
                          f"compile with --neuroncore-pipeline-cores {size} or fewer")

    def cuts(cap: float) -> list:
        out, start = [], 0
        for i in range(1, size):
            if cost(start, i + 1) > cap:
                out.append((start, i))
                start = i
        return out + [(start, size)]

    lo, hi = 0.0, cost(0, size)
    for _ in range(40):
        mid = (lo + hi) / 2
        if len(cuts(mid)) <= n:
            hi = mid
        else:
            lo = mid
    stages = cuts(hi)
    while len(stages) < n:  # split the costliest stage that has more than one instruction
        k = max((i for i, (a, b) in enumerate(stages) if b - a > 1),
                key=lambda i: cost(*stages[i]))
        a, b = stages[k]
        stages[k:k + 1] = [(a, (a + b) // 2), ((a + b) // 2, b)]
    return stages


def stage_cost_model(program, hw: NeuronCoreConfig, active: int):
    """A fast stand-in for simulating a stage: engine time and weight streaming overlap; the SBUF
    keeps as many of the stage's weight bytes as fit (prefix sums, O(1) per stage)."""
    bw = hw.core_dram_bytes_per_s(active)
    room = hw.sbuf_bytes - hw.sbuf_stream_bytes
    comp, wts, other = [0.0], [0], [0]
    for instr in program.instrs:
        w = o = 0
        for b in instr.inputs:
            if b is None:
                continue
            buf = program.buffers[b]
            if buf.kind == "weight" and not gathers(instr, b):
                w += buf.nbytes
            elif buf.kind in ("weight", "input"):
                o += buf.nbytes if buf.kind == "input" else \
                    sum(program.buffers[x].nbytes for x in instr.outputs)
        comp.append(comp[-1] + compute_seconds(instr, program, hw) + hw.instr_overhead_s)
        wts.append(wts[-1] + w)
        other.append(other[-1] + o)

    def cost(a: int, b: int) -> float:
        streamed = max(0, wts[b] - wts[a] - room) + other[b] - other[a]
        return max(comp[b] - comp[a], streamed / bw)
    return cost


def _io_bytes(program) -> int:
    return sum(b.nbytes for b in program.buffers if b.kind in ("input", "output"))


def _handoff_bytes(program, stages: list) -> list:
    """Bytes each stage receives from earlier stages (activations crossing into it)."""
    stage_of = {}
    for s, (a, b) in enumerate(stages):
        for j in range(a, b):
            for buf in program.instrs[j].outputs:
                stage_of[buf] = s
    out = []
    for s, (a, b) in enumerate(stages):
        reads = {x for j in range(a, b) for x in program.instrs[j].inputs if x is not None}
        out.append(sum(program.buffers[x].nbytes for x in reads if stage_of.get(x, s) < s))
    return out


class _Model:
    """The stages of a program (one for data parallel) and their simulated times, cached."""

    def __init__(self, program, pipeline: int, hw: NeuronCoreConfig):
        self.program, self.hw, self.pipeline = program, hw, pipeline
        self._cache: dict = {}
        self.stages = [(0, len(program.instrs))]
        if pipeline > 1:
            self.stages = self._balance()
        self.handoff = _handoff_bytes(program, self.stages)

    def _stage_time(self, a: int, b: int) -> float:
        active = min(self.pipeline, self.hw.cores_per_chip)
        return simulate(self.program, self.hw, active_cores=active,
                        indices=range(a, b)).device_s

    def _balance(self) -> list:
        """Stages balanced on a fast cost model, then refined by moving single instructions
        across the boundaries of the slowest stage while the simulated time shortens."""
        active = min(self.pipeline, self.hw.cores_per_chip)
        cost = stage_cost_model(self.program, self.hw, active)
        stages = split_stages(cost, self.pipeline, len(self.program.instrs))
        times = [self._stage_time(a, b) for a, b in stages]
        for _ in range(4 * len(self.program.instrs)):
            s = max(range(len(stages)), key=times.__getitem__)
            a, b = stages[s]
            moves = []
            if s > 0 and b - a > 1:   # give the first instruction to the previous stage
                moves.append((s - 1, (stages[s - 1][0], a + 1), (a + 1, b)))
            if s + 1 < len(stages) and b - a > 1:   # give the last one to the next stage
                moves.append((s + 1, (b - 1, stages[s + 1][1]), (a, b - 1)))
            best = None
            for t, other, mine in moves:
                new = (self._stage_time(*other), self._stage_time(*mine))
                if max(new) < times[s] and (best is None or max(new) < max(best[1])):
                    best = ((t, other, mine), new)
            if best is None:
                break
            (t, other, mine), (t_other, t_mine) = best
            stages[t], stages[s], times[t], times[s] = other, mine, t_other, t_mine
        return stages

    def stage_seconds(self, busy: int, replica: int, warm: bool = False) -> list:
        """Seconds of each stage of `replica` when `busy` cores run (core i holds stage i % N of
        replica i // N; cores fill the chips in order). A chip's DRAM bandwidth is shared in
        proportion to the bytes each of its cores streams (work-conserving), each core getting at
        most `core_dma_bytes_per_s`. `warm`: the time from the stage's inputs arriving to its
        end, when up to `sbuf_stream_bytes` of its streamed weights were prefetched before."""
        hw, n = self.hw, len(self.stages)
        demand = [self._bytes(a, b) for a, b in self.stages]
        per_chip: dict = {}
        for core in range(busy):
            chip = core // hw.cores_per_chip
            per_chip[chip] = per_chip.get(chip, 0) + demand[core % n]
        chip_bw = hw.dram_bytes_per_s * hw.dram_efficiency
        times = []
        for s, (a, b) in enumerate(self.stages):
            total = per_chip[(replica * n + s) // hw.cores_per_chip]
            share = min(hw.core_dma_bytes_per_s, chip_bw * demand[s] / total if demand[s]
                        else chip_bw)
            key = (a, b, round(share), warm)
            if key not in self._cache:
                self._cache[key] = simulate(self.program, hw, indices=range(a, b), bandwidth=share,
                                            prefetched=hw.sbuf_stream_bytes if warm else 0
                                            ).device_s
            times.append(self._cache[key] + (hw.stage_sync_s + self.handoff[s] /
                                             hw.neuronlink_bytes_per_s if s else 0.0))
        return times

    def _bytes(self, a: int, b: int) -> int:
        key = ("bytes", a, b)
        if key not in self._cache:
            self._cache[key] = simulate(self.program, self.hw, indices=range(a, b)).dram_bytes
        return self._cache[key]


def estimate_program(program, metadata: dict | None = None, *, instance: str | None = None,
                     cores: int | None = None, batch_size: int | None = None,
                     host_ms: float = 0.0, inflight: int = 1, name: str = "model",
                     hw: NeuronCoreConfig = INF1) -> Estimate:
    """Latency P50 and throughput on each Inf1 size (or `instance`), a pure function of the program.

    Args:
        instance: one of INF1_INSTANCES, or None for all.
        cores: NeuronCores used on each instance (default: all of them).
        batch_size: samples per request (default: the compiled batch).
        host_ms: host time per request (e.g. host-fallback ops), added to the latency.
        inflight: requests kept outstanding per replica.
    """
    metadata = metadata or {}
    if instance is not None and instance not in INF1_INSTANCES:
        raise NeuronError(f"unknown instance {instance!r}; choose from "
                          f"{', '.join(INF1_INSTANCES)}")
    for arg, value, low in (("cores", cores, 1), ("batch_size", batch_size, 1),
                            ("inflight", inflight, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
            raise NeuronError(f"{arg} must be an integer >= {low}, got {value!r}")
    check_host_ms(host_ms)
    pipeline = int((metadata.get("options") or {}).get("neuroncore_pipeline_cores", 1) or 1)
    batch = compiled_batch(metadata)
    size = batch_size or batch
    k = math.ceil(size / batch)
    io = _io_bytes(program)
    est = Estimate(name, batch, size, k, pipeline, inflight, float(host_ms), io * k)
    if size != batch:
        pad = k * batch - size
        est.notes.append(f"batch size {size} runs as {k} execution(s) of the compiled batch {batch} "
                         f"back to back on one core" + (f", the last padded with {pad} sample(s)"
                                                        if pad else ""))
    if pipeline > 1 and inflight != 1:
        est.notes.append(f"inflight={inflight} is ignored: a pipeline is estimated kept full")
    model = _Model(program, pipeline, hw)
    host = host_ms / 1e3
    xfer = k * (2 * hw.pcie_latency_s + io / hw.pcie_bytes_per_s)
    names = [instance] if instance else list(INF1_INSTANCES)
    for inst in names:
        total = INF1_INSTANCES[inst] * hw.cores_per_chip
        used = cores or total
        if used > total or used < pipeline:
            need = f"{used} NeuronCores" if used > total else f"{pipeline} NeuronCores (pipeline)"
            est.instances[inst] = InstanceEstimate(used, size, None, None, note=f"needs {need}; "
                                                   f"{inst} has {total}")
            continue
        replicas = used // pipeline
        busy = replicas * pipeline
        rates, latencies, devices = [], [], []
        for r in range(replicas):
            stage = model.stage_seconds(busy, r)
            if pipeline > 1:  # k executions follow each other one slowest stage apart
                warm = model.stage_seconds(busy, r, warm=True)
                device = sum(warm) + (k - 1) * max(stage) + k * hw.launch_overhead_s
            else:
                device = k * (sum(stage) + hw.launch_overhead_s)
            alone = device + xfer + host
            if pipeline > 1:
                service = max(k * max(stage), xfer, host)
                latency = alone
            elif inflight == 1:
                service = latency = alone
            else:
                service = max(device, xfer, host)
                latency = max(alone, inflight * service)
            rates.append(size / service)
            latencies.append(latency)
            devices.append(device)
        chips = math.ceil(busy / hw.cores_per_chip)
        pcie_cap = chips * hw.pcie_bytes_per_s / max(1, io * k) * size
        mid = sorted(range(replicas), key=lambda i: latencies[i])[replicas // 2]
        est.instances[inst] = InstanceEstimate(
            used, size, 1e3 * latencies[mid], min(sum(rates), pcie_cap), replicas, chips,
            1e3 * devices[mid], 1e3 * xfer, host_ms)
    if host_ms:
        est.notes.append(f"includes {host_ms:g} ms of host time per request")
    return est
