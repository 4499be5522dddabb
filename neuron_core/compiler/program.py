"""A NeuronCore program: buffers in device memory and the instructions of each engine.

Instructions are coarse (one may stand for a whole tiled matmul) but carry what the functional model
needs (op, attributes, fused epilogue, the dtype every output is rounded to) and what a timing model
counts (engine, FLOPs, bytes, matmul tiles, DMA bytes).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..ops.registry import LEGACY_ENGINES


@dataclass(slots=True)
class Buffer:
    """A tensor in device memory. `dtype` is the logical type; `storage` the precision it holds."""

    id: int
    name: str
    shape: tuple
    dtype: str
    storage: str
    kind: str = "internal"      # input | output | weight | internal
    offset: int = -1            # byte offset in device DRAM (memory plan)
    nbytes: int = 0             # bytes at the storage precision


@dataclass(slots=True)
class Instr:
    """One engine instruction: `outputs = op[attrs](inputs)`, then the fused `post` ops, then a
    round-to-nearest-even to each output buffer's storage dtype."""

    engine: str
    op: str
    inputs: list
    outputs: list
    attrs: dict = field(default_factory=dict)
    post: list = field(default_factory=list)   # [{"op", "attrs", "inputs", "position"}]
    node: str = ""                             # IR node(s) it came from, for profiles
    flops: int = 0
    bytes: int = 0
    matmul: list | None = None                 # [count, m, k, n]
    tiles: dict = field(default_factory=dict)  # tiling plan: pe passes, psum chunks, dma bytes
    free: list = field(default_factory=list)   # buffers dead after this instruction


@dataclass
class Program:
    """Buffers, instructions in issue order, and the program's inputs/outputs (buffer ids)."""

    buffers: list
    instrs: list
    inputs: list
    outputs: list
    memory: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"buffers": [dict(asdict(b), shape=list(b.shape)) for b in self.buffers],
                "instrs": [asdict(i) for i in self.instrs],
                "inputs": self.inputs, "outputs": self.outputs, "memory": self.memory}

    @classmethod
    def from_json(cls, data: dict) -> "Program":
        buffers = [Buffer(**dict(b, shape=tuple(b["shape"]))) for b in data["buffers"]]
        instrs = [Instr(**dict(i, engine=LEGACY_ENGINES.get(i["engine"], i["engine"])))
                  for i in data["instrs"]]  # engines by the short names older NEFFs stored
        return cls(buffers, instrs, list(data["inputs"]), list(data["outputs"]),
                   dict(data.get("memory", {})))

    @classmethod
    def from_neff(cls, neff, section: str = "NEFF program section") -> "Program":
        """The program of a read NEFF; NeffFormatError naming `section` when it is malformed."""
        from ..errors import NeffFormatError
        try:
            return cls.from_json(neff.program)
        except (KeyError, TypeError, ValueError) as exc:
            raise NeffFormatError(f"{section} is malformed: {exc}") from None

    def engine_counts(self) -> dict:
        counts: dict = {}
        for instr in self.instrs:
            counts[instr.engine] = counts.get(instr.engine, 0) + 1
        return counts


def format_program(program: Program) -> str:
    """The program as text: its buffers, then one line per instruction (engine, op, attributes,
    reads -> writes, fused epilogue ops)."""
    from ..ir.printer import format_attr
    lines = [f"program({', '.join(f'b{i}' for i in program.inputs)}) {{"]
    for b in program.buffers:
        where = f" @{b.offset}" if b.offset >= 0 else ""
        lines.append(f"  b{b.id} {b.kind} {b.name!r}: {b.dtype}{list(b.shape)} stored "
                     f"{b.storage}, {b.nbytes} bytes{where}")

    def reads(ids) -> str:
        return ", ".join("acc" if i == -1 else "_" if i is None else f"b{i}" for i in ids)
    for k, instr in enumerate(program.instrs):
        attrs = ", ".join(f"{a}={format_attr(v)}" for a, v in sorted(instr.attrs.items()))
        post = "".join(f" |> {p['op']}({reads(p['inputs'])})" for p in instr.post)
        lines.append(f"  {k:4d} {instr.engine:<12} {instr.op}[{attrs}]({reads(instr.inputs)})"
                     f"{post} -> {reads(instr.outputs)}")
    lines.append(f"  return {reads(program.outputs)}")
    lines.append("}")
    return "\n".join(lines)


def verify_program(program: Program) -> None:
    """Check the program's structure: every buffer an instruction names exists, every buffer it
    reads is a weight, an input or written by an earlier instruction, and every output is
    written. Raises ValueError naming the first fault."""
    count = len(program.buffers)
    ready = {b.id for b in program.buffers if b.kind in ("weight", "input")}
    for k, instr in enumerate(program.instrs):
        reads = [i for i in instr.inputs if i is not None]
        reads += [i for p in instr.post for i in p["inputs"] if i is not None and i != -1]
        for i in reads + list(instr.outputs):
            if not 0 <= i < count:
                raise ValueError(f"instruction {k} ({instr.op}) names buffer {i}; the program "
                                 f"has {count}")
        for i in reads:
            if i not in ready:
                raise ValueError(f"instruction {k} ({instr.op}) reads buffer b{i} before any "
                                 "instruction writes it")
        ready.update(instr.outputs)
    for i in program.outputs:
        if i not in ready:
            raise ValueError(f"program output b{i} is never written")
