"""Calibration of the timing model: estimated vs published Inf1 numbers (DESIGN.md §4).

    python bench/bench_calibration.py            # the table with the constants in neuron_core/hw.py
    python bench/bench_calibration.py --fit      # also search the calibrated constants again

Builds BERT-base (seq 128; batch 1, 3, 6; batch 1 pipelined over 16 cores), DistilBERT (BERT with
6 layers, batch 8) and ResNet-50 (batch 5 with the default --fast-math; batch 10 with
fp32-cast-all-fp16), compiles them, and prints for every published row the estimated latency P50 and
throughput, the published ones and their ratios; the target is every ratio within 0.75..1.25.
Conditions inferred from the published figures, not fitted: the 4-core BERT batch-6 row keeps 2
requests in flight per core (Little's law: 40.6 ms x 1180.7/s / 6 = 8 requests on 4 cores), all
others 1; DistilBERT runs on inf1.xlarge (the source gives no instance).

The fit: the five constants marked "calibrated" in `NeuronCoreConfig` (GRID below), all others as
published or assumed. With pe_efficiency 0.47, instr_overhead_s 0.5 us, launch_overhead_s 50 us,
dram_efficiency 0.9 and core_dma_bytes_per_s 21 GB/s (estimated / published):

    published row                        est /s  pub /s ratio  est P50 ms  pub ms ratio
    BERT-base seq128 b1, 1 core            123.1   121.6  1.01        8.12     8.2  0.99
    BERT-base seq128 b3, 1 core            249.6   284.6  0.88       12.02    10.5  1.14
    BERT-base b6, inf1.xlarge (4 cores)   1006.9  1180.7  0.85       47.67    40.6  1.17
    BERT-base pipeline 16 cores b1        1973.2  2009.0  0.98        5.80     5.9  0.98
    ResNet-50 fp16 b10, inf1.xlarge       2644.1  2207.0  1.20       15.13    17.8  0.85
    ResNet-50 b5, inf1.xlarge             2200.6   921.5  2.39        9.09    21.6  0.42  (out)
    DistilBERT b8, inf1.xlarge            2026.8  1875.0  1.08       15.79       -     -

6 of 7 rows within ±25%. The pipeline row had a P50 of 7.85 ms (1.33) before a pipeline stage's
latency counted from its inputs' arrival, with the weight loads it starts while it waits for them
(`neuron_core.runtime.timing`); its throughput and all other rows are unchanged by that. The
ResNet-50 b5 row cannot be met together with the b10 one: a published 5-image execution takes
longer (21.7 ms) than a 10-image one (18.1 ms), both one request per core; the argument is in the
docstring of `neuron_core.runtime.timing`. `--fit` after the pipeline change prefers
pe_efficiency 0.5, instr_overhead_s 1.5 us, launch_overhead_s 200 us, dram_efficiency 0.8 with an
RMS log ratio of 0.116 against 0.118 and the same rows inside ±20%, so the constants were kept.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import neuron_core  # noqa: E402,F401  (picks the BLAS kernel before numpy loads)

from neuron_core.compiler import compile_graph, parse_compiler_args  # noqa: E402
from neuron_core.frontends.onnx_import import from_onnx  # noqa: E402
from neuron_core.hw import INF1  # noqa: E402
from neuron_core.models import builders  # noqa: E402
from neuron_core.estimate import estimate_program  # noqa: E402

#: model key -> (builder, compiler args)
MODELS = {
    "bert_b1": (lambda: builders.bert(batch=1), []),
    "bert_b1_pipe16": (lambda: builders.bert(batch=1), ["--neuroncore-pipeline-cores", "16"]),
    "bert_b3": (lambda: builders.bert(batch=3), []),
    "bert_b6": (lambda: builders.bert(batch=6), []),
    "distilbert_b8": (lambda: builders.bert(layers=6, batch=8), []),
    "resnet50_b5": (lambda: builders.resnet(50, batch=5), []),
    "resnet50_b10_fp16": (lambda: builders.resnet(50, batch=10), ["--fast-math",
                                                                  "fp32-cast-all-fp16"]),
}

#: (row, model key, instance, cores, inflight, published throughput /s, published P50 ms)
ROWS = [
    ("BERT-base seq128 b1, 1 core", "bert_b1", "inf1.xlarge", 1, 1, 121.6, 8.2),
    ("BERT-base seq128 b3, 1 core", "bert_b3", "inf1.xlarge", 1, 1, 284.6, 10.5),
    ("BERT-base b6, inf1.xlarge (4 cores)", "bert_b6", "inf1.xlarge", None, 2, 1180.7, 40.6),
    ("BERT-base pipeline 16 cores b1", "bert_b1_pipe16", "inf1.6xlarge", None, 1, 2009.0, 5.9),
    ("ResNet-50 fp16 b10, inf1.xlarge", "resnet50_b10_fp16", "inf1.xlarge", None, 1, 2207.0,
     17.8),
    ("ResNet-50 b5, inf1.xlarge", "resnet50_b5", "inf1.xlarge", None, 1, 921.5, 21.6),
    ("DistilBERT b8, inf1.xlarge", "distilbert_b8", "inf1.xlarge", None, 1, 1875.0, None),
]

#: the constants marked "calibrated" in NeuronCoreConfig, and the grid --fit searches
GRID = {"pe_efficiency": (0.4, 0.45, 0.47, 0.5, 0.55),
        "instr_overhead_s": (0.5e-6, 1e-6, 1.5e-6, 3e-6),
        "launch_overhead_s": (50e-6, 100e-6, 200e-6),
        "dram_efficiency": (0.7, 0.8, 0.9),
        "core_dma_bytes_per_s": (18e9, 21e9, 24e9)}
TOLERANCE = 0.25
FIT_TOLERANCE = 0.20  # the fit aims inside ±20%, keeping a margin on the ±25% target


def compile_all(keys) -> dict:
    """Compile every model; the pipelined BERT reuses the ONNX model of batch 1."""
    built, out = {}, {}
    for key in keys:
        build, args = MODELS[key]
        started = time.perf_counter()
        source = key.removesuffix("_pipe16")
        if source not in built:
            built[source] = build()
        compiled = compile_graph(from_onnx(built[source]), parse_compiler_args(args), source=key)
        out[key] = compiled
        print(f"  compiled {key:18s} in {time.perf_counter() - started:5.1f} s "
              f"({len(compiled.program.instrs)} instructions)", flush=True)
    return out


def evaluate(compiled: dict, hw) -> list:
    """(row, est thr, pub thr, est lat, pub lat) per published row."""
    out = []
    for row, key, inst, cores, inflight, thr, lat in ROWS:
        c = compiled[key]
        e = estimate_program(c.program, c.metadata, instance=inst, cores=cores,
                             inflight=inflight, name=key, hw=hw).instances[inst]
        out.append((row, e.throughput_per_s, thr, e.latency_ms_p50, lat))
    return out


def score(results: list, skip: tuple = ()) -> tuple:
    """(rows outside ±FIT_TOLERANCE, RMS of the log ratios) over the rows not in `skip`."""
    misses, logs = 0, []
    for row, et, pt, el, pl in results:
        if row in skip:
            continue
        ratios = [est / pub for est, pub in ((et, pt), (el, pl)) if pub]
        misses += any(abs(r - 1) > FIT_TOLERANCE for r in ratios)
        logs += [math.log(r) ** 2 for r in ratios]
    return misses, math.sqrt(sum(logs) / len(logs))


def fit(compiled: dict) -> tuple:
    """Grid search of the calibrated constants: fewest rows outside ±20%, then the smallest RMS
    log ratio. The ResNet-50 b5 row is left out: with the same TensorEngine speed for FP16 and BF16
    (AWS docs) it cannot meet the FP16 b10 row too (2.4x the time per image)."""
    skip = ("ResNet-50 b5, inf1.xlarge",)
    best = ((math.inf, math.inf), None)
    keys = list(GRID)
    for values in itertools.product(*(GRID[k] for k in keys)):
        hw = dataclasses.replace(INF1, **dict(zip(keys, values)))
        result = score(evaluate(compiled, hw), skip)
        if result < best[0]:
            best = (result, dict(zip(keys, values)))
    return best


def print_table(results: list) -> int:
    print(f"\n{'published row':38s} {'est /s':>9s} {'pub /s':>8s} {'ratio':>6s} "
          f"{'est P50 ms':>10s} {'pub ms':>7s} {'ratio':>6s}  within ±{TOLERANCE:.0%}")
    met = 0
    for row, et, pt, el, pl in results:
        r_t = et / pt
        r_l = el / pl if pl else None
        ok = abs(r_t - 1) <= TOLERANCE and (r_l is None or abs(r_l - 1) <= TOLERANCE)
        met += ok
        print(f"{row:38s} {et:9.1f} {pt:8.1f} {r_t:6.2f} {el:10.2f} "
              f"{(f'{pl:.1f}' if pl else '-'):>7s} {(f'{r_l:.2f}' if r_l else '-'):>6s}  "
              f"{'yes' if ok else 'NO'}")
    print(f"{met} of {len(results)} rows within ±{TOLERANCE:.0%} (latency and throughput)")
    return met


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="grid-search the calibrated constants")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print("Compiling (fast-math default; ResNet-50 b10 with fp32-cast-all-fp16):")
    compiled = compile_all(MODELS)
    for key in ("bert_b1", "bert_b1_pipe16"):
        c = compiled[key]
        t0 = time.perf_counter()
        estimate_program(c.program, c.metadata, name=key)
        print(f"estimating {key} (all instance sizes) took {time.perf_counter() - t0:.3f} s")
    print("calibrated constants: " + ", ".join(
        f"{k}={getattr(INF1, k):g}" for k in GRID))
    print_table(evaluate(compiled, INF1))
    if args.fit:
        (misses, rms), best = fit(compiled)
        print(f"\nbest grid point ({misses} rows outside ±{FIT_TOLERANCE:.0%}, RMS log ratio "
              f"{rms:.3f}; ResNet-50 b5 left out): {best}")
        print_table(evaluate(compiled, dataclasses.replace(INF1, **best)))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
