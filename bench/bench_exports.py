"""Full-size Hugging Face encoders as torch's ONNX exporter writes them, through `neuron-cc`.

    python bench/bench_exports.py [--models bert distilbert roberta] [--exporter torchscript]
                                  [--static]

BERT-base, DistilBERT-base and RoBERTa-base (default configs, seeded random weights: nothing is
downloaded), called with `input_ids` and `attention_mask` (seq 128, batch 1, the last 28 tokens
masked) as every tutorial calls them, exported by `torch.onnx.export` (TorchScript exporter, opset
17, batch and sequence dims dynamic as the tutorials export them; `--exporter dynamo` for the
default exporter, `--static` for fixed shapes), compiled whole with `neuron-cc compile --io-config`
pinning the dynamic dims. Prints per model: ONNX nodes, compile time, the full-FP32 simulation's
normwise relative error against onnxruntime on the same file (target <= 1e-3) and the hardware
precision's cosine similarity (target >= 0.99).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import neuron_core  # noqa: E402,F401  (picks the BLAS kernel before numpy loads)

import onnx  # noqa: E402

from neuron_core import runtime  # noqa: E402
from neuron_core.tools import neuron_cc  # noqa: E402
from tests.core.torch_exports import cosine, export, onnxruntime_outputs, rel_err  # noqa: E402

MODELS = ("bert", "distilbert", "roberta")
TARGETS = {"fp32_rel_err": 1e-3, "hardware_cosine": 0.99}


def bench(kind: str, exporter: str, dynamic: bool, workdir: Path) -> dict:
    started = time.perf_counter()
    proto, feed, io_config = export(kind, exporter, dynamic=dynamic, full_size=True)
    export_s = time.perf_counter() - started
    src, neff = workdir / f"{kind}.onnx", workdir / f"{kind}.neff"
    onnx.save(proto, src)
    expected = onnxruntime_outputs(proto, feed)[0]
    started = time.perf_counter()
    code = neuron_cc.main(["compile", str(src), "--framework", "ONNX", "--io-config",
                           json.dumps(io_config), "--output", str(neff)])
    compile_s = time.perf_counter() - started
    row = {"model": kind, "nodes": len(proto.graph.node), "export_s": export_s,
           "compile_s": compile_s, "compiled": code == 0}
    if code != 0:
        return row
    with runtime.load(str(neff), precision="fp32") as m:
        row["fp32_rel_err"] = rel_err(m.run(feed)[0], expected)
    with runtime.load(str(neff)) as m:
        row["hardware_cosine"] = cosine(m.run(feed)[0], expected)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--exporter", choices=("torchscript", "dynamo"), default="torchscript")
    ap.add_argument("--static", action="store_true", help="export with fixed shapes")
    args = ap.parse_args(argv)
    print(f"exporter: {args.exporter}, {'static' if args.static else 'dynamic batch and sequence'}"
          " axes; inputs input_ids + attention_mask, seq 128, batch 1")
    print(f"{'model':<11} {'nodes':>5} {'export s':>8} {'compile s':>9} {'fp32 rel err':>12} "
          f"{'hw cosine':>9}  verdict")
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        for kind in args.models:
            row = bench(kind, args.exporter, not args.static, Path(tmp))
            if not row["compiled"]:
                ok = False
                print(f"{kind:<11} {row['nodes']:>5} {row['export_s']:>8.1f} "
                      f"{row['compile_s']:>9.1f}  neuron-cc failed (see above)")
                continue
            met = (row["fp32_rel_err"] <= TARGETS["fp32_rel_err"]
                   and row["hardware_cosine"] >= TARGETS["hardware_cosine"])
            ok &= met
            print(f"{kind:<11} {row['nodes']:>5} {row['export_s']:>8.1f} {row['compile_s']:>9.1f} "
                  f"{row['fp32_rel_err']:>12.2e} {row['hardware_cosine']:>9.5f}  "
                  f"{'met' if met else 'NOT met'}", flush=True)
    print(f"targets: fp32 rel err <= {TARGETS['fp32_rel_err']:g}, hardware cosine >= "
          f"{TARGETS['hardware_cosine']:g}: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
