"""Partitioner benchmark: partition time on generated graphs of 1k, 10k and 50k nodes (how it grows),
and a model with one unsupported op in the middle, split between the simulated NeuronCore and
onnxruntime, against onnxruntime alone (interleaved in one run).

    python bench/bench_partition.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import neuron_core  # noqa: E402,F401  (picks the BLAS kernel before numpy loads)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

import neuron_core.onnx as nonnx  # noqa: E402
from neuron_core.ir import Graph, TensorType  # noqa: E402
from neuron_core.models.builders import resnet  # noqa: E402
from neuron_core.partition import PartitionOptions, partition  # noqa: E402


def generated(n: int, seed: int = 0, unsupported: float = 0.05) -> Graph:
    """A layered random DAG: each node reads one or two recent values; ~5% are unsupported."""
    rng = np.random.default_rng(seed)
    g = Graph(f"gen{n}")
    t = TensorType((8, 8), "float32")
    values = [g.add_input("x", t)]
    for i in range(n):
        if rng.random() < unsupported:
            node = g.add_node("Sin", [values[-1 - int(rng.integers(0, min(4, len(values))))]])
        elif len(values) > 1 and rng.random() < 0.3:
            a, b = (values[-1 - int(k)] for k in rng.choice(min(8, len(values)), 2, replace=False))
            node = g.add_node("Add", [a, b])
        else:
            node = g.add_node("Relu", [values[-1 - int(rng.integers(0, min(4, len(values))))]])
        node.outputs[0].type = t
        values.append(node.outputs[0])
    g.outputs = [v for v in values[1:] if not v.users]
    return g


def bench_sizes() -> None:
    partition(generated(50), PartitionOptions(cost_aware=False))  # warm-up: op registry import
    print(f"{'nodes':>7s} {'partition s':>11s} {'us/node':>8s} {'subgraphs':>9s}")
    for n in (1_000, 10_000, 50_000):
        g = generated(n)
        started = time.perf_counter()
        part = partition(g, PartitionOptions(cost_aware=False))
        dt = time.perf_counter() - started
        print(f"{len(g.nodes):7d} {dt:11.3f} {1e6 * dt / len(g.nodes):8.1f} "
              f"{part.report.num_subgraphs:9d}")


def bench_split_model(repeat: int = 10) -> None:
    model = resnet(50)
    relus = [n for n in model.graph.node if n.op_type == "Relu"]
    relus[len(relus) // 2].op_type = "Softsign"  # one op with no Neuron lowering, mid-network
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    compiled = nonnx.compile(model)
    print(compiled.report)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    compiled.run([x]), sess.run(None, {"input": x})
    t_split, t_host = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        compiled.run([x])
        t_split.append(time.perf_counter() - started)
        started = time.perf_counter()
        sess.run(None, {"input": x})
        t_host.append(time.perf_counter() - started)
    split, host = statistics.median(t_split), statistics.median(t_host)
    print(f"ResNet-50 with one Softsign mid-network: split {1e3 * split:.1f} ms, onnxruntime alone "
          f"{1e3 * host:.1f} ms, ratio {split / host:.2f} (simulator wall time, not Inf1 time)")


if __name__ == "__main__":
    bench_sizes()
    bench_split_model()
