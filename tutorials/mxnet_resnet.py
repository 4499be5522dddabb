"""Tutorial: compile a Gluon model_zoo ResNet for the (simulated) NeuronCore with mx_neuron.

Run it:  python tutorials/mxnet_resnet.py [--workdir DIR]

Steps: build resnet18_v1 (random weights, nothing downloaded), export it to a Symbol, compile it
with `mx_neuron.compile`, bind the compiled symbol with `ctx=mx.neuron()` through the Module API,
compare with MXNet on the CPU, save it with `sym.save` / `mx.nd.save`, load it back and run again,
and estimate its latency and throughput on each Inf1 size.
"""
from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

import mx_neuron  # first: restores the numpy alias MXNet 1.9.1 needs, then imports mxnet
import mxnet as mx
from mxnet.gluon.model_zoo import vision

SHAPE = (1, 3, 64, 64)   # small images keep the tutorial fast; 224 works the same way


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="where to save the compiled model")
    workdir = Path(parser.parse_args().workdir or tempfile.mkdtemp(prefix="mx_neuron_"))
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")

    # 1. A model_zoo CNN, exported to a Symbol with its params.
    mx.random.seed(0)
    net = vision.get_model("resnet18_v1", pretrained=False)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    x = mx.nd.random.uniform(-1, 1, shape=SHAPE)
    expected = net(x).asnumpy()                      # the oracle: MXNet on the CPU
    sym = net(mx.sym.var("data"))
    params = {p.name: p.data() for p in net.collect_params().values()}
    args = {k: params[k] for k in sym.list_arguments() if k in params}
    aux = {k: params[k] for k in sym.list_auxiliary_states() if k in params}

    # 2. Compile: supported regions become _neuron_subgraph_op nodes (the log shows the report).
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": SHAPE},
                                          model_name="resnet18_v1")
    print(f"compiled in {mx_neuron.last_plan().compile_seconds:.2f} s; "
          f"{100 * mx_neuron.last_plan().on_neuron_ratio:.1f}% of operations on Neuron")

    # 3. Bind with mx.neuron() and run with the Module API.
    mod = mx.mod.Module(csym, data_names=["data"], label_names=None, context=mx.neuron(0))
    mod.bind(data_shapes=[("data", SHAPE)], for_training=False)
    mod.set_params(cargs, caux)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    got = mod.get_outputs()[0].asnumpy()
    err = np.abs(got - expected).max() / np.abs(expected).max()
    # default "hardware" precision casts to BF16 (8-bit mantissa): expect ~1e-2 relative error
    print(f"max error relative to MXNet: {err:.2e} (top-1 agrees: "
          f"{bool(got.argmax() == expected.argmax())})")

    # 4. Save with MXNet's own formats; the NEFFs are uint8 params in the .params file.
    prefix = str(workdir / "resnet18_neuron")
    csym.save(f"{prefix}-symbol.json")
    mx.nd.save(f"{prefix}-0000.params", {**{f"arg:{k}": v for k, v in cargs.items()},
                                         **{f"aux:{k}": v for k, v in caux.items()}})
    print(f"saved {prefix}-symbol.json and {prefix}-0000.params")

    # 5. Load (any process that did `import mx_neuron`) and run with Symbol.bind.
    lsym, largs, laux = mx.model.load_checkpoint(prefix, 0)
    exe = lsym.bind(mx.neuron(), {"data": x, **largs}, aux_states=laux)
    again = exe.forward()[0].asnumpy()
    print(f"reloaded model matches: {bool(np.array_equal(again, got))}")

    # 6. Latency and throughput on Inf1 sizes: the timing model of the compiled sub-graphs plus
    # the MXNet work measured at compile time (saved in the symbol).
    print(mx_neuron.estimate(lsym, largs).format())


if __name__ == "__main__":
    main()
