"""The main job: compile the bundled model with neuron-cc, run it on the simulated NeuronCore, and
compare it with onnxruntime. Run with `make demo` or `python -m neuron_core.demo`."""
from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from . import onnx as neuron_onnx
from . import runtime
from .neff import read_neff
from .tools import neuron_cc

BUNDLED = Path(__file__).parent / "models" / "small_cnn.onnx"


def _onnxruntime(model_path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _where(neff) -> str:
    """What ran where: every instruction's engine, with the ops it carries."""
    by_engine: dict = {}
    for instr in neff.program["instrs"]:
        by_engine.setdefault(instr["engine"], Counter())[instr["op"]] += 1
        for post in instr["post"]:
            by_engine[instr["engine"]][f"+{post['op']}"] += 1
    lines = []
    for engine, ops in sorted(by_engine.items()):
        listed = ", ".join(f"{op} x{n}" for op, n in ops.most_common())
        lines.append(f"  {engine:13s} {sum(ops.values()):4d} instr: {listed}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=BUNDLED, help="ONNX model (default: bundled)")
    parser.add_argument("--fast-math", default="all", help="casting policy (default: all)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        neff_path = Path(tmp) / "model.neff"
        print(f"$ neuron-cc compile {args.model.name} --framework ONNX --fast-math {args.fast_math}")
        rc = neuron_cc.main(["compile", str(args.model), "--framework", "ONNX", "--output",
                             str(neff_path), "--fast-math", *args.fast_math.split()])
        if rc:
            return rc
        neff = read_neff(neff_path)
        meta = neff.metadata
        print("\nPartition report (what runs on the NeuronCore, what on the host, and why):")
        print("  " + str(neuron_onnx.compile(args.model).report).replace("\n", "\n  "))
        print("What runs where on the NeuronCore (instructions per engine, after BN folding):")
        print(_where(neff))

        spec = meta["inputs"][0]
        x = np.random.default_rng(0).standard_normal(spec["shape"]).astype(spec["dtype"])
        expected = _onnxruntime(args.model, x)
        print(f"\nRunning on input {spec['name']!r} {spec['shape']} (seeded random):")
        for precision in ("hardware", "fp32"):
            with runtime.load(neff_path, precision=precision) as model:
                started = time.perf_counter()
                y, = model.run({spec["name"]: x})
                ms = 1e3 * (time.perf_counter() - started)
            err = float(np.max(np.abs(y - expected)))
            rel = err / float(np.max(np.abs(expected)))
            print(f"  precision={precision:8s} top-3 classes {np.argsort(-y[0])[:3].tolist()}  "
                  f"max |diff| vs onnxruntime {err:.2e} ({rel:.2%} of max |y|)  {ms:.1f} ms")
        print(f"  onnxruntime        top-3 classes {np.argsort(-expected[0])[:3].tolist()}")
        with runtime.load(neff_path) as model:
            table = model.estimate().format()
        print("\nOn a real Inf1 instance (timing model; `neuron-cc estimate FILE.neff` gives the "
              "same):")
        print("  " + table.replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
