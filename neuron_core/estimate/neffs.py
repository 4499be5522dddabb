"""The Inf1 estimate of a partitioned model: its Neuron subgraphs run one after another per request,
each paying its own launch and PCIe transfers, and the operations left to the framework add host
time between them. The host time is measured (`host.measure_host_ms`: a run of the example inputs
minus the time spent in NeuronCore calls), so it is this machine's CPU standing in for the
instance's; the estimate shows it apart from device and transfer time.

    est = estimate_neffs([call.neff for call in plan.calls], host_ms=0.8, name="resnet50")
    print(est.format())

A plugin says where a compiled model keeps its NEFFs and measured host time in a `Compiled` record
and calls `estimate_compiled` / `summary` with it.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..neff.verify import verify
from ..neff import Neff, read_neff
from .program import Estimate, InstanceEstimate, check_host_ms, compiled_batch, estimate_program


def read_program(neff) -> tuple:
    """(Program, metadata) of a NEFF (path, bytes or a read `Neff`), verified (neff/verify.py)."""
    if not isinstance(neff, Neff):   # a path, or bytes-like (a numpy array of a NEFF too)
        neff = read_neff(neff if isinstance(neff, (str, os.PathLike)) else bytes(neff))
    return verify(neff, shapes=False), neff.metadata


@dataclass
class Compiled:
    """Where a compiled model keeps what its estimate needs: its NEFFs in execution order, the
    host work per call measured when it was compiled (ms), and its name."""

    neffs: list
    host_ms: float
    name: str = "model"


def estimate_compiled(compiled: Compiled, instance: str | None = None, cores: int | None = None,
                      batch_size: int | None = None, host_ms: float | None = None) -> Estimate:
    """`estimate_neffs` of a plugin's compiled model; `host_ms` replaces the measured host work."""
    return estimate_neffs(compiled.neffs, host_ms=compiled.host_ms if host_ms is None else host_ms,
                          name=compiled.name, instance=instance, cores=cores,
                          batch_size=batch_size)


def summary(compiled: Compiled, how: str, host: str = "host") -> str:
    """One line for the end of a compile: the estimate on the smallest Inf1 size."""
    return summary_line(estimate_compiled(compiled, instance="inf1.xlarge"), how, host=host)


def estimate_neffs(neffs: list, *, host_ms: float = 0.0, name: str = "model",
                   instance: str | None = None, cores: int | None = None,
                   batch_size: int | None = None) -> Estimate:
    """Latency P50 and throughput on each Inf1 size of a model made of `neffs` (run in order on
    one core per replica) plus `host_ms` of framework work per execution of the compiled batch.

    A `batch_size` other than the compiled one runs the whole model ceil(batch_size / compiled)
    times: each subgraph that many executions of its own compiled shape (a later subgraph's first
    dimension need not be the batch), and the host work that many times."""
    check_host_ms(host_ms)
    programs = [read_program(n) for n in neffs]
    if not programs:   # nothing compiled: the framework does all the work
        return _host_only(name, float(host_ms), instance, cores, batch_size)
    batch = compiled_batch(programs[0][1])
    runs = math.ceil(batch_size / batch) if batch_size else 1
    parts = [estimate_program(program, meta, instance=instance, cores=cores,
                              batch_size=batch_size if i == 0 or not batch_size
                              else runs * compiled_batch(meta), name=f"{name} subgraph {i}")
             for i, (program, meta) in enumerate(programs)]
    host_ms = float(host_ms) * runs
    first = parts[0]
    pipeline = max(p.pipeline_cores for p in parts)
    est = Estimate(name, first.compiled_batch, first.batch_size,
                   max(p.executions_per_request for p in parts), pipeline, 1, float(host_ms),
                   sum(p.transfer_bytes for p in parts))
    for inst, head in first.instances.items():
        rows = [p.instances[inst] for p in parts]
        blocked = [r.note for r in rows if r.latency_ms_p50 is None]
        if blocked:
            est.instances[inst] = InstanceEstimate(head.cores, head.batch_size, None, None,
                                                   note=blocked[0])
            continue
        latency = sum(r.latency_ms_p50 for r in rows) + host_ms
        # each part's rate in requests of head.batch_size samples (its own batch may differ)
        part_caps = [r.throughput_per_s / r.batch_size * head.batch_size for r in rows]
        if pipeline > 1:   # each subgraph's pipeline is kept full; the slowest part limits
            caps = part_caps
            if host_ms:   # one host thread per pipeline replica
                caps.append(head.replicas * 1e3 * head.batch_size / host_ms)
            rate = min(caps)
        else:              # a replica runs its request's parts in turn
            rate = min([head.replicas * head.batch_size * 1e3 / latency] + part_caps)
        est.instances[inst] = InstanceEstimate(
            head.cores, head.batch_size, latency, rate, head.replicas, head.chips,
            sum(r.device_ms for r in rows), sum(r.transfer_ms for r in rows), float(host_ms))
    # a later part's own batch arithmetic would only confuse: the first part's note says it
    notes = dict.fromkeys(n for i, p in enumerate(parts) for n in p.notes
                          if i == 0 or not n.startswith("batch size"))
    est.notes.extend(notes)
    if len(parts) > 1:
        est.notes.append(f"{len(parts)} Neuron subgraphs run one after another per request, each "
                         "with its own launch and PCIe transfers")
    if host_ms:
        each = f" ({runs} runs of the compiled batch)" if runs > 1 else ""
        est.notes.append(f"host: {host_ms:.3g} ms per request{each} for the operations left to "
                         "the framework, measured on this machine's CPU, one host thread per "
                         "replica")
    return est


def summary_line(est: Estimate, how: str, instance: str = "inf1.xlarge",
                 host: str = "host") -> str:
    """One line for the end of a compile: the estimate on `instance`, and `how` to see every size."""
    row = est.instances[instance]
    if row.latency_ms_p50 is None:
        return f"Estimated on {instance}: {row.note}"
    return (f"Estimated on {instance} (timing model, batch {row.batch_size}, {row.cores} "
            f"NeuronCores): P50 {row.latency_ms_p50:.2f} ms (device {row.device_ms:.2f}, PCIe "
            f"{row.transfer_ms:.2f}, {host} {row.host_ms:.2f}), {row.throughput_per_s:.1f}/s; "
            f"every size: {how}")


def _host_only(name, host_ms, instance, cores, batch_size) -> Estimate:
    from ..hw import INF1, INF1_INSTANCES
    names = [instance] if instance else list(INF1_INSTANCES)
    est = Estimate(name, batch_size or 1, batch_size or 1, 0, 1, 1, host_ms, 0)
    for inst in names:
        used = cores or INF1_INSTANCES[inst] * INF1.cores_per_chip
        rate = used * est.batch_size * 1e3 / host_ms if host_ms else float("inf")
        est.instances[inst] = InstanceEstimate(used, est.batch_size, host_ms, rate, used, 0, 0.0,
                                               0.0, host_ms)
    est.notes.append("no operation runs on Neuron: the whole model is host work")
    return est
