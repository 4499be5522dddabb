"""The compile plan a plugin turns into its framework's graph: which native values feed each compiled
subgraph, which it produces, and the NEFF that computes them. Everything else stays native.

A native op converted into several core nodes is placed as one piece: if the partitioner splits its
nodes between the host and Neuron (or two subgraphs), they are all kept on the host and the graph is
partitioned again, so every subgraph boundary is a native value the host framework can hold.
"""
from __future__ import annotations

import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace

from ..compiler import compile_graph, parse_compiler_args
from ..compiler.options import EnvFlags, env_flags, with_env_args
from ..errors import NeuronError
from ..fileio import WorkDir
from ..ir import format_graph
from ..partition import OPTION_NAMES, PartitionOptions, PartitionReport, partition
from .convert import Converter

log = logging.getLogger("Neuron")

#: the plugins' partition keywords: PartitionOptions fields (their names follow the Neuron SDK's)
PARTITION_KEYS = OPTION_NAMES


@dataclass
class NeuronCall:
    """One compiled subgraph: native keys in and out (in order) and its NEFF."""

    index: int
    neff: bytes
    input_keys: list
    output_keys: list
    inputs: list           # [(name, shape, dtype)] as compiled
    outputs: list
    ops: dict = field(default_factory=dict)   # core op type -> count

    def config(self) -> dict:
        """JSON-able description the plugins store next to the NEFF in their native node."""
        return {"index": self.index, "inputs": [list(map(_jsonable, i)) for i in self.inputs],
                "outputs": [list(map(_jsonable, o)) for o in self.outputs]}


@dataclass
class Plan:
    calls: list
    report: PartitionReport
    graph: object
    compile_seconds: float = 0.0
    #: native op type -> count, of the native ops placed in a compiled subgraph and of the rest
    native_compiled: dict = field(default_factory=dict)
    native_host: dict = field(default_factory=dict)

    @property
    def on_neuron_ratio(self) -> float:
        return self.report.on_neuron / self.report.total if self.report.total else 0.0


def _jsonable(x):
    return list(x) if isinstance(x, tuple) else x


def _expand_names(cv: Converter, names) -> tuple:
    """Native node names or native op types -> the core node names that carry them."""
    if not names:
        return ()
    wanted = {names} if isinstance(names, str) else set(names)
    found, hit = [], set()
    for node in cv.graph.nodes:
        nname, nop = cv.native_names.get(id(node), (node.name, node.op_type))
        for w in (nname, nop, node.name, node.op_type):
            if w in wanted:
                found.append(node.name)
                hit.add(w)
    missing = sorted(wanted - hit)
    if missing:
        log.warning("no_fuse_ops/force_fuse_ops name %s, which match no operation of the model",
                    missing)
    return tuple(found)


def _split_natives(part) -> list:
    """Core node names of native ops whose nodes ended up in different places."""
    where = defaultdict(set)
    members = defaultdict(list)
    sub_of = {id(n): s.index for s in part.subgraphs for n in s.nodes}
    for node in part.graph.nodes:
        if node.native is None:
            continue
        where[id(node.native)].add(sub_of.get(id(node), -1))
        members[id(node.native)].append(node.name)
    return [name for k, places in where.items() if len(places) > 1 for name in members[k]]


def native_op_counts(cv: Converter, part) -> tuple[dict, dict]:
    """(compiled, host): native op type -> how many native ops of it run in a Neuron subgraph,
    and how many stay native. A native op is counted once however many core nodes it became;
    ops that became no core node (folded to a constant, a no-op) are not counted."""
    on_neuron = {id(n) for s in part.subgraphs for n in s.nodes}
    seen: dict = {}
    for node in part.graph.nodes:
        named = cv.native_names.get(id(node))
        if named is None:
            continue
        key = id(node.native) if node.native is not None else id(node)
        op, placed = seen.get(key, (named[1], True))
        seen[key] = (op, placed and id(node) in on_neuron)
    compiled, host = defaultdict(int), defaultdict(int)
    for op, placed in seen.values():
        (compiled if placed else host)[op] += 1
    return dict(compiled), dict(host)


def partition_options(options: dict) -> PartitionOptions:
    """PartitionOptions from a compile call's keywords; an unknown keyword is an error listing the
    valid ones."""
    unknown = sorted(set(options) - set(PARTITION_KEYS))
    if unknown:
        raise NeuronError(f"unknown option(s) {unknown}; valid options are "
                          f"{', '.join(PARTITION_KEYS)}")
    return PartitionOptions(**options)


def compile_subgraphs(part, compiler_options, framework: str, source: str = "subgraph") -> list:
    """Compile every subgraph of partition `part`: [(subgraph, its extracted graph, Compiled)],
    in order; each NEFF's source is "`source` N". With --dump-passes DIR, subgraph N's passes go
    to DIR/subgraph-N."""
    out = []
    for sub in part.subgraphs:
        sg = sub.extract()
        options = compiler_options
        if options.dump_passes:
            options = replace(options, dump_passes=os.path.join(options.dump_passes,
                                                                f"subgraph-{sub.index}"))
        out.append((sub, sg, compile_graph(sg, options, framework=framework,
                                           source=f"{source} {sub.index}")))
    return out


def compile_plan(cv: Converter, *, compiler_args=None, workdir=None, framework: str | None = None,
                 env: EnvFlags | None = None, **options) -> Plan:
    """Partition the converted graph, compile each subgraph, and map it back to native keys.

    Args:
        cv: a Converter whose graph is complete (inputs, nodes, outputs set).
        compiler_args: neuron-cc options (list or string); unknown ones are rejected with the list.
        workdir: if given, each subgraph's IR, NEFF and log, and the report, are written there.
        env: the `NEURON_CC_FLAGS` flags (read from the environment when not given): their
            compiler arguments follow `compiler_args`, their --workdir is used when `workdir`
            is not given.
        **options: minimum_segment_size, no_fuse_ops, force_fuse_ops (native names or op types),
            subgraph_builder_function (called with the native node), single_fusion_ratio_threshold,
            fallback, cost_aware.
    """
    popts = partition_options(options)
    started = time.perf_counter()
    env = env_flags() if env is None else env
    copts = parse_compiler_args(with_env_args(compiler_args, env))
    workdir = workdir or env.workdir
    framework = framework or cv.table.framework
    graph = cv.finish()
    popts.no_fuse_ops = _expand_names(cv, options.get("no_fuse_ops"))
    popts.force_fuse_ops = _expand_names(cv, options.get("force_fuse_ops"))
    part = partition(graph, popts, log_report=False)
    for _ in range(8):
        split = _split_natives(part)
        if not split:
            break
        popts.no_fuse_ops = tuple(popts.no_fuse_ops) + tuple(split)
        part = partition(graph, popts, log_report=False)
    for line in str(part.report).splitlines():
        log.info(line)
    calls = []
    work = WorkDir(workdir) if workdir else None
    for sub, sg, compiled in compile_subgraphs(part, copts, framework, f"{framework} subgraph"):
        neff = compiled.to_bytes()
        call = NeuronCall(
            sub.index, neff, [cv.origin[id(v)] for v in sub.inputs],
            [cv.origin[id(v)] for v in sub.outputs],
            [(v.name, tuple(v.type.shape), v.type.dtype) for v in sg.inputs],
            [(v.name, tuple(v.type.shape), v.type.dtype) for v in sg.outputs],
            dict(compiled.metadata.get("op_counts", {})))
        calls.append(call)
        if work:
            _dump(work, sub.index, sg, neff, call)
    plan = Plan(calls, part.report, graph, time.perf_counter() - started,
                *native_op_counts(cv, part))
    if work:
        work.write("report.json", part.report.to_json())
        work.write("partition.dot", part.report.to_dot())
        work.write("graph.txt", format_graph(graph))
    log.info("Compiled %d sub-graph(s) for %s in %.2f s; %.1f%% of operations on Neuron",
             len(calls), framework, plan.compile_seconds, 100 * plan.on_neuron_ratio)
    return plan


def _dump(work: WorkDir, index: int, sg, neff: bytes, call: NeuronCall) -> None:
    d = f"neuron_subgraph_{index}/"
    work.write(d + "graph.txt", format_graph(sg))
    work.write(d + "model.neff", neff)
    work.write(d + "io.json", json.dumps(call.config(), indent=1))
    work.write(d + "compile.log",
               f"sub-graph {index}: {len(sg.nodes)} ops {call.ops}\n"
               f"inputs: {call.inputs}\noutputs: {call.outputs}\nNEFF: {len(neff)} bytes\n"
               f"written by pid {os.getpid()}\n")
