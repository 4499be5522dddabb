"""The compiler pipeline, in order, as code. A failing pass is named with the passes that ran before it.

    compiled = compile_graph(graph, parse_compiler_args("--fast-math all"))
    compiled.save("model.neff")
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass

from tqdm import tqdm

from .. import __version__
from ..errors import CompilerError, NeuronError
from ..ir import Graph, verify
from .lowering import lower
from .memory import plan_memory
from .options import CompilerOptions
from .passes import check_support, fold_batchnorm, fold_constants, infer_types, remove_identities
from .program import Program

log = logging.getLogger("Neuron")

#: graph passes, in the order they run
GRAPH_PASSES = [
    ("infer_types", infer_types),
    ("fold_constants", fold_constants),
    ("remove_identities", remove_identities),
    ("fold_batchnorm", fold_batchnorm),
    ("check_support", check_support),
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


def run_passes(graph: Graph, passes, bar=None) -> Graph:
    """Run graph passes in order; verify after each when NEURON_VERIFY=1."""
    check = os.environ.get("NEURON_VERIFY") == "1"
    done = []
    for name, fn in passes:
        started = time.perf_counter()
        try:
            graph = fn(graph)
            if check:
                verify(graph)
        except NeuronError:
            raise
        except Exception as exc:
            raise CompilerError(f"compiler pass {name!r} failed (after {', '.join(done) or 'none'}): "
                                f"{type(exc).__name__}: {exc}") from exc
        log.debug("pass %s: %d nodes, %.1f ms", name, len(graph.nodes),
                  1e3 * (time.perf_counter() - started))
        done.append(name)
        if bar is not None:
            bar.update(1)
    return graph


def compile_graph(graph: Graph, options: CompilerOptions, *, framework: str = "ONNX",
                  source: str = "") -> Compiled:
    """Compile a graph whose every node runs on the NeuronCore into a program and NEFF metadata."""
    started = time.perf_counter()
    big = len(graph.nodes) >= PROGRESS_MIN_NODES
    with tqdm(total=len(GRAPH_PASSES) + 2, desc="neuron-cc", unit="pass",
              disable=None if big else True, leave=False) as bar:
        graph = run_passes(graph, GRAPH_PASSES, bar)
        try:
            program, weights = lower(graph, options.policy)
            bar.update(1)
            memory = plan_memory(program)
            bar.update(1)
        except NeuronError:
            raise
        except Exception as exc:
            raise CompilerError(f"compiler pass 'lower' failed (after "
                                f"{', '.join(n for n, _ in GRAPH_PASSES)}): "
                                f"{type(exc).__name__}: {exc}") from exc
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
        "cast_points": sum(1 for i in program.instrs if i.op == "_cast"),
        "memory": memory,
        "flops": sum(i.flops for i in program.instrs),
    }
    log.info("compiled %d nodes into %d instructions in %.2f s (%s)", len(graph.nodes),
             len(program.instrs), time.perf_counter() - started, options.policy.describe())
    return Compiled(program, weights, metadata)


def _io(value) -> dict:
    return {"name": value.name, "shape": list(value.type.shape), "dtype": value.type.dtype}
