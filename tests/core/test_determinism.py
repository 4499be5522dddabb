"""Compilation is a pure function of (graph, options): the same model compiled in two fresh processes,
with different string-hash seeds and (through ASLR) different object ids, gives byte-identical
program, weights index and weights sections, and the same metadata but for its `created` time."""
from __future__ import annotations

import json
import os
import subprocess
import sys

#: run in a child process: compile each case and print the sha256 of every NEFF section
CHILD = r"""
import hashlib, json
from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.models.builders import bert, resnet
from neuron_core.neff import read_neff
from neuron_core.partition import PartitionOptions, partition


def sections(neff: bytes) -> dict:
    n = read_neff(neff)
    digests = {s.name: s.sha256.hex() for s in n.sections if s.name != "metadata"}
    meta = {k: v for k, v in n.metadata.items() if k != "created"}
    digests["metadata"] = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()
    return digests


models = {"resnet50": resnet(50, image=32, width=16), "bert": bert(layers=1, hidden=64, heads=2,
                                                                   seq=16, vocab=100)}
out = {}
for name, model in models.items():
    for args in ([], ["--fast-math", "fp32-cast-matmult"]):
        compiled = compile_graph(from_onnx(model), parse_compiler_args(args))
        out[f"{name} {' '.join(args) or 'default'}"] = sections(compiled.to_bytes())
    # partitioned: Add kept on the host splits the graph into many subgraphs
    options = PartitionOptions(no_fuse_ops=("Add",), minimum_segment_size=1, cost_aware=False,
                               single_fusion_ratio_threshold=1.0)
    part = partition(from_onnx(model), options, log_report=False)
    for sub in part.subgraphs:
        compiled = compile_graph(sub.extract(), parse_compiler_args([]))
        out[f"{name} subgraph {sub.index}"] = sections(compiled.to_bytes())
print(json.dumps(out))
"""


def _compile_in_fresh_process(hash_seed: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    return subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_compile_is_byte_identical_across_processes_and_hash_seeds():
    procs = [_compile_in_fresh_process(seed) for seed in ("0", "12345")]
    results = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        results.append(json.loads(stdout))
    first, second = results
    assert len(first) > 6 and any("subgraph" in case for case in first)
    assert first.keys() == second.keys()
    differing = {case: [s for s in first[case] if first[case][s] != second[case][s]]
                 for case in first if first[case] != second[case]}
    assert not differing, f"sections that differ between processes: {differing}"
