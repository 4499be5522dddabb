"""Memory plan: device DRAM offsets for every buffer, scratch reused by liveness, free lists."""
from __future__ import annotations

ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def plan_memory(program) -> dict:
    """Assign offsets (weights, then inputs/outputs, then reused scratch) and set each
    instruction's `free` list. Returns the byte totals stored in `program.memory`."""
    last_use = {}
    for idx, instr in enumerate(program.instrs):
        for b in list(instr.inputs) + list(instr.outputs) + [
                i for p in instr.post for i in p["inputs"]]:
            if b is not None and b >= 0:
                last_use[b] = idx
    offset = 0
    for kind in ("weight", "input", "output"):
        for buf in program.buffers:
            if buf.kind == kind:
                buf.offset = offset
                offset += _align(buf.nbytes)
    fixed = offset
    # first-fit over live intervals for scratch buffers
    first_def = {}
    for idx, instr in enumerate(program.instrs):
        for b in instr.outputs:
            first_def.setdefault(b, idx)
    scratch = sorted((b for b in program.buffers if b.kind == "internal"),
                     key=lambda b: (first_def.get(b.id, 0), -b.nbytes))
    placed, peak = [], 0
    for buf in scratch:
        start, end = first_def.get(buf.id, 0), last_use.get(buf.id, first_def.get(buf.id, 0))
        live = sorted((o, o + s) for o, s, a, z in placed if not (z < start or a > end))
        at = 0
        for lo, hi in live:
            if at + _align(buf.nbytes) <= lo:
                break
            at = max(at, hi)
        placed.append((at, _align(buf.nbytes), start, end))
        buf.offset = fixed + at
        peak = max(peak, at + _align(buf.nbytes))
    for instr in program.instrs:
        instr.free = []
    for b, idx in last_use.items():
        if program.buffers[b].kind == "internal":
            program.instrs[idx].free.append(b)
    weights = sum(_align(b.nbytes) for b in program.buffers if b.kind == "weight")
    program.memory = {"weights_bytes": weights, "io_bytes": fixed - weights,
                      "scratch_peak_bytes": peak, "total_bytes": fixed + peak}
    return program.memory
