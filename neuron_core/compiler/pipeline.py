"""The compiler pipeline, in order, as code: every stage from the imported graph to a NEFF's
program runs from the one list PIPELINE, through one loop that names a failing pass with the passes
before it, checks the result after each when NEURON_VERIFY=1, and writes it out after each with
`--dump-passes DIR` (neuron-cc compile, or compiler_args).

    compiled = compile_graph(graph, parse_compiler_args("--fast-math all"))
    compiled.save("model.neff")
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from .. import __version__
from ..errors import CompilerError, CompilerOptionError, NeuronError
from ..hw import INF1, NeuronCoreConfig
from ..ir import Graph, format_graph, verify
from ..ops import CAST
from .lowering import fusion_groups, lower
from .memory import plan_memory
from .options import CompilerOptions
from .passes import check_support, fold_batchnorm, fold_constants, infer_types, remove_identities
from .precision import assign_storage
from .program import Program, format_program, verify_program

log = logging.getLogger("Neuron")


@dataclass
class Compilation:
    """What the passes work on: the graph, then the fusion groups, the storage precision of every
    value, the program and its weights, and the memory plan, each set by the pass that makes it."""

    graph: Graph
    options: CompilerOptions
    hw: NeuronCoreConfig = INF1
    groups: list | None = None
    storage: dict | None = None
    program: Program | None = None
    weights: dict = field(default_factory=dict)
    memory: dict | None = None

    def verify(self) -> None:
        verify(self.graph)
        if self.program is not None:
            verify_program(self.program)

    def dump(self) -> str:
        """The newest stage as text: the program once there is one, else the graph (with the
        fusion groups and storage precisions once they are set)."""
        if self.program is not None:
            return format_program(self.program)
        text = format_graph(self.graph)
        if self.groups is not None:
            text += "\n\ninstructions (fusion groups):\n" + "\n".join(
                "  " + " -> ".join(f"{n.op_type} %{n.name}" for n in g) for g in self.groups)
        if self.storage is not None:
            values = [v for v in self.graph.values.values() if id(v) in self.storage]
            text += "\n\nstorage:\n" + "\n".join(f"  %{v.name}: {self.storage[id(v)]}"
                                                   for v in values)
        return text


@dataclass(frozen=True)
class Pass:
    """One stage of the pipeline: `run(compilation)` updates the compilation in place."""

    name: str
    run: Callable


def graph_pass(name: str, fn: Callable) -> Pass:
    """A Pass of a graph-to-graph function."""
    def run(c: Compilation) -> None:
        c.graph = fn(c.graph)
    return Pass(name, run)


def _fuse(c: Compilation) -> None:
    c.groups = fusion_groups(c.graph)


def _assign_precision(c: Compilation) -> None:
    c.storage = assign_storage(c.graph, c.options.policy, c.groups)


def _lower(c: Compilation) -> None:
    c.program, c.weights = lower(c.graph, c.options.policy, c.hw, c.groups, c.storage)


def _plan_memory(c: Compilation) -> None:
    c.memory = plan_memory(c.program)


#: every stage, in the order it runs
PIPELINE = [
    graph_pass("infer_types", infer_types),
    graph_pass("fold_constants", fold_constants),
    graph_pass("remove_identities", remove_identities),
    graph_pass("fold_batchnorm", fold_batchnorm),
    graph_pass("check_support", check_support),
    Pass("fuse", _fuse),                          # TensorEngine ops + their epilogues
    Pass("assign_precision", _assign_precision),  # the casting policy: every value's storage
    Pass("lower", _lower),                        # instructions, buffers, cast points
    Pass("plan_memory", _plan_memory),            # DRAM offsets, dead buffers per instruction
]

#: graphs with at least this many nodes show a progress bar (on a terminal)
PROGRESS_MIN_NODES = 300


@dataclass
class Compiled:
    """A compiled model: the program, its weights (fp32 as given) and the NEFF metadata."""

    program: Program
    weights: dict
    metadata: dict

    def to_bytes(self) -> bytes:
        from ..neff import to_bytes
        return to_bytes(self.metadata, self.program.to_json(), self.weights,
                        compiler_version=__version__)

    def save(self, path) -> int:
        """Write the NEFF atomically; returns its size in bytes."""
        from ..neff import write_neff
        return write_neff(path, self.metadata, self.program.to_json(), self.weights,
                          compiler_version=__version__)


def run_passes(c: Compilation, passes=None, bar=None, dump_dir=None) -> Compilation:
    """Run `passes` (default PIPELINE) in order on compilation `c`; verify after each when
    NEURON_VERIFY=1; write the result of pass i to `dump_dir`/NN-name.txt when given."""
    passes = PIPELINE if passes is None else passes
    check = os.environ.get("NEURON_VERIFY") == "1"
    if dump_dir is not None:
        dump_dir = _dump_dir(dump_dir, passes)
        (dump_dir / "00-input.txt").write_text(c.dump() + "\n")
    done = []
    for k, step in enumerate(passes, 1):
        started = time.perf_counter()
        try:
            step.run(c)
            if check:
                c.verify()
        except NeuronError:
            raise
        except Exception as exc:
            raise CompilerError(f"compiler pass {step.name!r} failed (after "
                                f"{', '.join(done) or 'none'}): {type(exc).__name__}: {exc}") \
                from exc
        log.debug("pass %s: %d nodes, %.1f ms", step.name, len(c.graph.nodes),
                  1e3 * (time.perf_counter() - started))
        if dump_dir is not None:
            (dump_dir / f"{k:02d}-{step.name}.txt").write_text(c.dump() + "\n")
        done.append(step.name)
        if bar is not None:
            bar.update(1)
    return c


def _dump_dir(path, passes) -> Path:
    """The --dump-passes directory, created if absent; one that holds anything but an earlier dump
    of these passes is refused (the dump would overwrite or mix with the user's files)."""
    path = Path(path)
    ours = {"00-input.txt"} | {f"{k:02d}-{p.name}.txt" for k, p in enumerate(passes, 1)}
    if path.exists() and (not path.is_dir() or any(f.name not in ours for f in path.iterdir())):
        raise CompilerOptionError(f"--dump-passes {str(path)!r} is not an empty directory (nor an "
                                  "earlier dump of these passes); name a new or empty directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompilerOptionError(f"--dump-passes {str(path)!r}: cannot create it: {exc}") from None
    return path


def compile_graph(graph: Graph, options: CompilerOptions, *, framework: str = "ONNX",
                  source: str = "") -> Compiled:
    """Compile a graph whose every node runs on the NeuronCore into a program and NEFF metadata."""
    started = time.perf_counter()
    big = len(graph.nodes) >= PROGRESS_MIN_NODES
    with tqdm(total=len(PIPELINE), desc="neuron-cc", unit="pass",
              disable=None if big else True, leave=False) as bar:
        c = run_passes(Compilation(graph, options), PIPELINE, bar, options.dump_passes)
    graph, program, memory = c.graph, c.program, c.memory
    op_counts = Counter(n.op_type for n in graph.nodes)
    metadata = {
        "framework": framework,
        "target": "inf1",
        "source": source,
        "graph": graph.name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": [_io(v) for v in graph.inputs],
        "outputs": [_io(v) for v in graph.outputs],
        "options": options.to_json(),
        "op_counts": dict(sorted(op_counts.items())),
        "num_nodes": len(graph.nodes),
        "num_instructions": len(program.instrs),
        "engine_counts": program.engine_counts(),
        "cast_points": sum(1 for i in program.instrs if i.op == CAST),
        "memory": memory,
        "flops": sum(i.flops for i in program.instrs),
    }
    log.info("compiled %d nodes into %d instructions in %.2f s (%s)", len(graph.nodes),
             len(program.instrs), time.perf_counter() - started, options.policy.describe())
    return Compiled(program, c.weights, metadata)


def _io(value) -> dict:
    return {"name": value.name, "shape": list(value.type.shape), "dtype": value.type.dtype}
