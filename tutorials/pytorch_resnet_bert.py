"""Tutorial: trace a PyTorch CNN and a BERT-style encoder for the (simulated) NeuronCore.

Run it:  python tutorials/pytorch_resnet_bert.py [--workdir DIR]

Steps, for each model: trace it with `torch.neuron.trace`, read the partition report (what runs
on the NeuronCore, what stays in PyTorch and why), save it with `torch.jit.save`, load it back
with `torch.jit.load` (after `import torch_neuron`), run it, compare with eager PyTorch, and
estimate its latency and throughput on each Inf1 size.
The CNN is a small ResNet written here; the encoder is a Hugging Face BERT built from a config
(random weights, nothing is downloaded).
"""
from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import torch
import transformers

import torch_neuron  # noqa: F401  registers torch.neuron and the neuron:: operator


class Block(torch.nn.Module):
    """A ResNet basic block: two 3x3 convolutions with batch norm and a shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.short = torch.nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False),
                                             torch.nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.short(x))


def resnet(classes: int = 10) -> torch.nn.Module:
    """A ResNet-10: stem, four stages of one block each, global pooling, classifier."""
    widths = [32, 64, 128, 256]
    layers = [torch.nn.Conv2d(3, 32, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(32),
              torch.nn.ReLU()]
    cin = 32
    for i, width in enumerate(widths):
        layers.append(Block(cin, width, 1 if i == 0 else 2))
        cin = width
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(cin, classes)]
    return torch.nn.Sequential(*layers).eval()


def bert() -> torch.nn.Module:
    config = transformers.BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=512,
                                     max_position_embeddings=128)
    return transformers.BertModel(config).eval()


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


def walk_through(name: str, model: torch.nn.Module, example: tuple, workdir: Path,
                 pick=lambda out: out) -> None:
    print(f"\n=== {name} ===")
    # 1. Trace: capture, partition, compile each Neuron subgraph (the log prints the report).
    traced = torch.neuron.trace(model, example, strict=False)
    report = traced.neuron_report
    print(f"{report.percent_on_neuron:.1f}% of operations on Neuron in "
          f"{report.num_subgraphs} subgraph(s)")
    for op_type, count in sorted(report.unsupported_ops.items()):
        print(f"  stays in PyTorch: {op_type} x{count}")

    # 2. Save with TorchScript's own format; the NEFFs are uint8 buffers inside the file.
    path = workdir / f"{name}_neuron.pt"
    torch.jit.save(traced, str(path))
    print(f"saved {path} ({path.stat().st_size / 1e6:.1f} MB)")

    # 3. Load (any process that did `import torch_neuron`) and run.
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        want = pick(model(*example))
        got = pick(loaded(*example))
    # the default "hardware" precision rounds matmul/conv inputs to BF16 (8 significant
    # bits): expect errors around 1e-2 of the output's magnitude, not 1e-6
    print(f"max error relative to PyTorch: {relative_error(got, want):.2e}")
    print(f"reloaded model matches the traced one: "
          f"{bool(torch.equal(pick(traced(*example)), got))}")

    # 4. Before renting an Inf1 instance: the timing model's latency and throughput per size,
    #    with the host work (measured when tracing) and PCIe transfers shown apart.
    print(torch.neuron.estimate(loaded).format())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="where to save the traced models")
    workdir = Path(parser.parse_args().workdir or tempfile.mkdtemp(prefix="torch_neuron_"))
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.manual_seed(0)

    walk_through("resnet", resnet(), (torch.randn(1, 3, 64, 64),), workdir)

    ids = torch.randint(0, 1000, (1, 64))
    mask = torch.ones(1, 64, dtype=torch.int64)
    walk_through("bert", bert(), (ids, mask), workdir,
                 pick=lambda out: out["last_hidden_state"])


if __name__ == "__main__":
    main()
