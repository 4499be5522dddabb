"""PyTorch plugin benchmark: ResNet-50 (224 px, batch 1) and BERT-base (seq 128, batch 1) traced
with torch.neuron.trace and run on the simulated NeuronCore (hardware precision) against eager
PyTorch on the CPU, interleaved in one run; trace time and the share of arithmetic on Neuron.

    python bench/bench_torch.py [--repeat 10] [--models resnet50 bert_base]

Run times are medians of interleaved calls, so the shared machine's noise hits both sides alike.
Trace time covers the whole `torch.neuron.trace` (export, convert, partition, compile, rebuild,
TorchScript trace). Both sides run under torch.no_grad(). "% arith on Neuron" is the share of
arithmetic operations placed inside a Neuron subgraph.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch_neuron  # noqa: E402,F401  (first: neuron_core picks the BLAS kernel before numpy)

import torch  # noqa: E402
import transformers  # noqa: E402

from bench_core import settle, simulator_kernels, verdict  # noqa: E402

TARGETS = {"run_ratio": 1.5, "trace_s": {"resnet50": 10.0, "bert_base": 20.0},
           "arith_on_neuron": 95.0}
nn = torch.nn


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


def resnet50(classes: int = 1000) -> nn.Module:
    """torchvision's ResNet-50 v1.5 layout (stride in the 3x3 convolution), random weights."""
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
              nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for stage, (width, blocks) in enumerate(zip([64, 128, 256, 512], [3, 4, 6, 3])):
        for b in range(blocks):
            layers.append(Bottleneck(cin, width, 2 if b == 0 and stage > 0 else 1))
            cin = 4 * width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
    return nn.Sequential(*layers).eval()


def bert_base() -> nn.Module:
    return transformers.BertModel(transformers.BertConfig(), add_pooling_layer=True).eval()


MODELS = {
    "resnet50": (resnet50, lambda: (torch.randn(1, 3, 224, 224),)),
    "bert_base": (bert_base, lambda: (torch.randint(0, 30522, (1, 128)),
                                      torch.ones(1, 128, dtype=torch.int64))),
}


def _first(out) -> torch.Tensor:
    return out["last_hidden_state"] if isinstance(out, dict) else out


def bench(name: str, repeat: int) -> dict:
    build, example = MODELS[name]
    torch.manual_seed(0)
    model, args = build(), example()
    started = time.perf_counter()
    traced = torch.neuron.trace(model, args, strict=False)
    trace_s = time.perf_counter() - started
    t_sim, t_eager = [], []
    with torch.no_grad():
        got, want = traced(*args), model(*args)   # warm-up both (first call loads the NEFF)
        for _ in range(repeat):
            settle()
            started = time.perf_counter()
            got = traced(*args)
            t_sim.append(time.perf_counter() - started)
            settle()
            started = time.perf_counter()
            want = model(*args)
            t_eager.append(time.perf_counter() - started)
    a, b = _first(got), _first(want)
    report = traced.neuron_report
    return {"trace_s": trace_s, "arith": report.percent_arithmetic_on_neuron,
            "sim_ms": 1e3 * statistics.median(t_sim), "eager_ms": 1e3 * statistics.median(t_eager),
            "run_ratio": statistics.median(t_sim) / statistics.median(t_eager),
            "rel_err": float((a - b).norm() / b.norm())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    logging.getLogger("Neuron").setLevel(logging.WARNING)
    print(f"{simulator_kernels()}; PyTorch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")
    print(f"{'model':10s} {'trace s':>8s} {'% arith on Neuron':>17s} {'sim ms':>8s} {'eager ms':>9s} "
          f"{'sim/eager':>9s} {'bf16 err':>8s}")
    for name in args.models:
        r = bench(name, args.repeat)
        print(f"{name:10s} {r['trace_s']:8.2f} {r['arith']:17.1f} {r['sim_ms']:8.1f} "
              f"{r['eager_ms']:9.1f} {r['run_ratio']:9.2f} {r['rel_err']:8.2e}")
        limit = TARGETS["trace_s"][name]
        print(f"           run ratio target <= {TARGETS['run_ratio']}: "
              f"{verdict(r['run_ratio'] <= TARGETS['run_ratio'])}; trace target <= {limit} s: "
              f"{verdict(r['trace_s'] <= limit)}; on-Neuron target >= "
              f"{TARGETS['arith_on_neuron']}%: {verdict(r['arith'] >= TARGETS['arith_on_neuron'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
