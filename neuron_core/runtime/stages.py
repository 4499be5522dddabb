"""Where a pipelined NEFF's memory goes: a NEFF compiled with --neuroncore-pipeline-cores N loads
on N consecutive NeuronCores, each holding the weights and buffers of its stage.

The stages are the estimate's cut (`estimate.program.split_stages` on the fast stage cost model:
contiguous runs of instructions balanced by time). A stage's bytes are the weights its
instructions read (a weight read by two stages is on both), the model inputs it reads and the
outputs it writes, the activations handed to it by earlier stages or written for later ones, and
the peak of the scratch buffers live within it.
"""
from __future__ import annotations

from ..compiler.memory import _align


def stage_bounds(program, cores: int) -> list[tuple[int, int]]:
    """The (start, stop) instruction ranges of the `cores` stages."""
    from ..estimate.program import split_stages, stage_cost_model
    from ..hw import INF1
    if cores <= 1:
        return [(0, len(program.instrs))]
    cost = stage_cost_model(program, INF1, min(cores, INF1.cores_per_chip))
    return split_stages(cost, cores, len(program.instrs))


def _reads(instr) -> list[int]:
    return [b for b in list(instr.inputs) + [i for p in instr.post for i in p["inputs"]]
            if b is not None and b >= 0]


def stage_bytes(program, bounds: list[tuple[int, int]]) -> list[int]:
    """Device bytes each stage holds on its NeuronCore."""
    buffers = {b.id: b for b in program.buffers}
    stage_of = {}
    for s, (a, b) in enumerate(bounds):
        for i in range(a, b):
            stage_of[i] = s
    first_def, last_use = {}, {}
    for idx, instr in enumerate(program.instrs):
        for b in instr.outputs:
            first_def.setdefault(b, idx)
        for b in _reads(instr) + list(instr.outputs):
            last_use[b] = idx
    held: list[set] = [set() for _ in bounds]
    for idx, instr in enumerate(program.instrs):
        s = stage_of[idx]
        for b in _reads(instr) + list(instr.outputs):
            buf = buffers.get(b)
            if buf is None:
                continue
            if buf.kind != "internal":
                held[s].add(b)
            elif stage_of[first_def.get(b, idx)] != s:   # handed over from an earlier stage
                held[s].add(b)
                held[stage_of[first_def[b]]].add(b)
    delta: list[dict] = [{} for _ in bounds]    # per stage: instruction -> change of live bytes
    for buf in buffers.values():
        start = first_def.get(buf.id)
        if buf.kind != "internal" or start is None:
            continue
        s = stage_of[start]
        if buf.id in held[s]:
            continue
        stop = min(last_use.get(buf.id, start), bounds[s][1] - 1) + 1
        delta[s][start] = delta[s].get(start, 0) + _align(buf.nbytes)
        delta[s][stop] = delta[s].get(stop, 0) - _align(buf.nbytes)
    totals = []
    for s in range(len(bounds)):
        live = peak = 0
        for idx in sorted(delta[s]):
            live += delta[s][idx]
            peak = max(peak, live)
        totals.append(sum(_align(buffers[i].nbytes) for i in held[s]) + peak)
    return totals
