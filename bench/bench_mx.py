"""MXNet plugin benchmark: op coverage of every gluon model_zoo family, compile times, and the
compiled model (simulated NeuronCore, hardware precision) against MXNet on the CPU, interleaved in
one run, for ResNet-50 v1 (224 px, batch 1) and a BERT-style Gluon encoder.

    python bench/bench_mx.py [--repeat 10] [--skip-sweep] [--encoder-layers 4]

Coverage is the share of arithmetic MXNet operators placed on Neuron (target >= 95%); run times are
medians of interleaved runs, so that the shared machine's noise hits both sides alike.
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "plugins" / "mx"))
import mx_neuron  # noqa: E402  (neuron_core picks the BLAS kernel, then mxnet is imported)

import mxnet as mx  # noqa: E402
import numpy as np  # noqa: E402
from mxnet.gluon.model_zoo import vision  # noqa: E402

from bench_core import settle, simulator_kernels  # noqa: E402
from mx_encoder import Encoder  # noqa: E402

#: family -> image size (the smallest the fixed-size final pools allow is used for the sweep)
FAMILIES = {"resnet18_v1": 64, "resnet50_v1": 224, "resnet18_v2": 64, "mobilenet1.0": 64,
            "mobilenetv2_1.0": 64, "squeezenet1.0": 224, "densenet121": 224, "inceptionv3": 299,
            "vgg11": 64, "alexnet": 64}
TARGETS = {"coverage": 95.0, "run_ratio": 1.5, "compile_s": 10.0}


def export(net, *examples, names=("data",)):
    net(*examples)
    out = net(*[mx.sym.var(n) for n in names])
    sym = mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out
    params = {p.name: p.data() for p in net.collect_params().values()}
    return (sym, {k: params[k] for k in sym.list_arguments() if k in params},
            {k: params[k] for k in sym.list_auxiliary_states() if k in params})


def zoo(name: str, size: int):
    mx.random.seed(0)
    net = vision.get_model(name, pretrained=False)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, size, size))
    return export(net, x) + ({"data": x},)


def encoder(layers: int):
    mx.random.seed(0)
    net = Encoder(vocab=30522, units=768, heads=12, hidden=3072, layers=layers, max_len=128)
    net.initialize(mx.init.Normal(0.02))
    ids = mx.nd.array(np.random.default_rng(0).integers(0, 30522, (1, 128)), dtype="int32")
    return export(net, ids, names=("tokens",)) + ({"tokens": ids},)


def sweep() -> None:
    print(f"{'model':16s} {'px':>4s} {'arith on Neuron':>16s} {'all on Neuron':>14s} "
          f"{'sub-graphs':>10s} {'compile s':>9s}  host ops")
    for name, size in FAMILIES.items():
        sym, args, aux, feed = zoo(name, size)
        shapes = {k: v.shape for k, v in feed.items()}
        info = mx_neuron.analyze(sym, args, aux, inputs=shapes)
        start = time.perf_counter()
        mx_neuron.compile(sym, args, aux, inputs=shapes)
        seconds = time.perf_counter() - start
        plan = mx_neuron.last_plan()
        low = info["percent_supported_arithmetic"] < TARGETS["coverage"]
        flag = "  BELOW TARGET" if low else ""
        print(f"{name:16s} {size:4d} {info['percent_supported_arithmetic']:15.1f}% "
              f"{100 * plan.on_neuron_ratio:13.1f}% {len(plan.calls):10d} {seconds:9.2f}  "
              f"{info['unsupported_operators'] or '-'}{flag}")


def timed(label: str, sym, args, aux, feed, repeat: int) -> None:
    start = time.perf_counter()
    csym, cargs, caux = mx_neuron.compile(sym, args, aux,
                                          inputs={k: v for k, v in feed.items()})
    compile_s = time.perf_counter() - start
    ref_exe = sym.bind(mx.cpu(), {**feed, **args}, aux_states=aux, grad_req="null")
    exe = csym.bind(mx.neuron(), {**feed, **cargs}, aux_states=caux, grad_req="null")
    first = time.perf_counter()
    got = exe.forward()[0].asnumpy()           # loads the NEFF
    first = time.perf_counter() - first
    want = ref_exe.forward()[0].asnumpy()
    times: dict = {"mxnet": [], "neuron": []}
    for _ in range(repeat):                    # interleaved: the same noise hits both sides
        for key, e in (("mxnet", ref_exe), ("neuron", exe)):
            settle()
            t = time.perf_counter()
            e.forward()[0].wait_to_read()
            times[key].append(time.perf_counter() - t)
    mxt, nt = statistics.median(times["mxnet"]), statistics.median(times["neuron"])
    err = float(np.abs(got - want).max() / np.abs(want).max())
    ratio = nt / mxt
    print(f"{label}: compile {compile_s:.2f} s (target <= {TARGETS['compile_s']} s), first run "
          f"{first * 1e3:.0f} ms; median MXNet CPU {mxt * 1e3:.1f} ms, simulated Neuron "
          f"{nt * 1e3:.1f} ms, ratio {ratio:.2f}x (target <= {TARGETS['run_ratio']}x); "
          f"{100 * mx_neuron.last_plan().on_neuron_ratio:.1f}% on Neuron; bf16 error vs MXNet "
          f"{err:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--encoder-layers", type=int, default=4)
    opts = parser.parse_args()
    logging.getLogger("Neuron").setLevel(logging.WARNING)
    print(f"{simulator_kernels()}; mxnet {mx.__version__}")
    if not opts.skip_sweep:
        sweep()
    timed("resnet50_v1 224px b1", *zoo("resnet50_v1", 224), repeat=opts.repeat)
    timed(f"encoder {opts.encoder_layers}x768 seq128 b1", *encoder(opts.encoder_layers),
          repeat=opts.repeat)


if __name__ == "__main__":
    main()
