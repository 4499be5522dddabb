"""Peak memory of loading and running a NEFF, against its file size and the memory it declares.

    python bench/bench_load_memory.py [--models mlp resnet50 bert_base] [--kernels fast instruction reference]

Each case runs in a fresh process: it imports the suite, loads and runs a tiny model (so
onnxruntime and the kernels' one-time state are in the baseline), records the RSS, then loads
the model's NEFF from disk and runs it once (Linux: the peak is reset through
/proc/self/clear_refs before the load). It prints the growth of the peak RSS beside the bound
the NEFF verifier's limits are meant to keep: 2 x the file size + the model's declared device
memory (`program.memory.total_bytes`), and the ratio growth / bound (target <= 1).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys
import numpy as np
from neuron_core import runtime
from neuron_core.neff import read_neff
path, tiny, kernels = sys.argv[1:4]
warm = runtime.load(tiny, kernels=kernels)
warm.run([np.zeros(shape, np.float32) for _, shape, _ in warm.inputs])
def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")                    # the peak RSS (VmHWM) starts again from the current RSS
base = status("VmRSS")
model = runtime.load(path, kernels=kernels)
model.run([np.zeros(shape, dtype) for _, shape, dtype in model.inputs])
peak = status("VmHWM")
print(json.dumps({"grown": peak - base,
                  "declared": read_neff(path).program["memory"]["total_bytes"]}))
"""


def _models(names: list) -> dict:
    from onnx import TensorProto, helper, numpy_helper
    import numpy as np

    from neuron_core.models.builders import bert, resnet
    out = {}
    for name in names:
        if name == "mlp":          # 4 x 2048x2048 fp32 weights: 64 MiB, little else
            rng = np.random.default_rng(0)
            inits, nodes, x = [], [], "x"
            for i in range(4):
                inits.append(numpy_helper.from_array(rng.standard_normal((2048, 2048), np.float32)
                                                     * 0.02, f"w{i}"))
                nodes += [helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]),
                          helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
                x = f"r{i}"
            graph = helper.make_graph(
                nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 2048])],
                [helper.make_tensor_value_info(x, TensorProto.FLOAT, [8, 2048])], inits)
            out[name] = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        elif name == "resnet50":
            out[name] = resnet(50)
        elif name == "bert_base":
            out[name] = bert()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mlp", "resnet50"])
    parser.add_argument("--kernels", nargs="+", default=["fast", "instruction", "reference"])
    args = parser.parse_args(argv)
    from neuron_core.compiler import compile_graph, parse_compiler_args
    from neuron_core.frontends.onnx_import import from_onnx
    from neuron_core.models.builders import small_cnn
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        tiny = os.path.join(tmp, "tiny.neff")
        compile_graph(from_onnx(small_cnn()), parse_compiler_args([])).save(tiny)
        print(f"{'model':<10} {'kernels':<12} {'file MiB':>9} {'declared MiB':>13} "
              f"{'peak grew MiB':>14} {'bound MiB':>10} {'ratio':>6}")
        for name, model in _models(args.models).items():
            path = os.path.join(tmp, f"{name}.neff")
            size = compile_graph(from_onnx(model), parse_compiler_args([])).save(path)
            for kernels in args.kernels:
                done = subprocess.run([sys.executable, "-c", CHILD, path, tiny, kernels], env=env,
                                      capture_output=True, text=True, timeout=900)
                if done.returncode:
                    print(f"{name:<10} {kernels:<12} failed: {done.stderr.strip()[-400:]}")
                    return 1
                got = json.loads(done.stdout.strip().splitlines()[-1])
                bound = 2 * size + got["declared"]
                ratio = got["grown"] / bound
                worst = max(worst, ratio)
                print(f"{name:<10} {kernels:<12} {size / 2**20:9.1f} {got['declared'] / 2**20:13.1f}"
                      f" {got['grown'] / 2**20:14.1f} {bound / 2**20:10.1f} {ratio:6.2f}")
    print(f"worst ratio {worst:.2f} (target <= 1)")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
