"""Core benchmark: ResNet-50 and BERT-base built in code, compiled, loaded and run on the simulated
NeuronCore (hardware precision) against onnxruntime on the CPU, side by side in one run.

    python bench/bench_core.py [--repeat 10] [--models resnet50 bert_base] [--kernels fast]
                               [--cold-rounds 3]

Prints the CPU it ran on (the feature flags onnxruntime picks its kernels by, and the channel block
of its blocked convolutions), then per model: compile time, NEFF load time, the steady
simulated/onnxruntime run-time ratio (medians of interleaved runs, so that the shared machine's
noise hits both sides alike) and the kernels the simulator ran on; then the cold start: fresh
processes, alternating, that import, load (the NEFF, or onnxruntime's session on the ONNX file)
and run once, with the simulator's user cache warm (as on a machine that has loaded the NEFF
before) and empty (the first load ever).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import neuron_core  # noqa: E402  (picks the BLAS kernel before numpy loads)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from neuron_core import runtime  # noqa: E402
from neuron_core.compiler import compile_graph, parse_compiler_args  # noqa: E402
from neuron_core.frontends.onnx_import import from_onnx  # noqa: E402
from neuron_core.models.builders import bert, resnet  # noqa: E402

TARGETS = {"run_ratio": 1.2, "compile_s": {"resnet50": 5.0, "bert_base": 10.0},
           "load_s": {"resnet50": 0.3}, "cold_ratio": 1.0, "first_run_ratio": 2.0}


def _models():
    rng = np.random.default_rng(0)
    return {
        "resnet50": (lambda: resnet(50),
                     {"input": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)}),
        "bert_base": (lambda: bert(layers=12, hidden=768, heads=12, seq=128),
                      {"input_ids": rng.integers(0, 30522, (1, 128), dtype=np.int64)}),
    }


#: pause before each timed call: both onnxruntime's and OpenMP's worker threads keep spinning for
#: ~10 ms after a run, and a call started meanwhile on this 2-core machine loses a core to them
SETTLE_S = 0.03


def settle() -> None:
    """Let the previous call's spinning worker threads go idle before timing the next one."""
    time.sleep(SETTLE_S)


def verdict(ok: bool) -> str:
    """How a benchmark reports one target."""
    return "met" if ok else "NOT met"


def simulator_kernels(kernels: str | None = None) -> str:
    """What the simulator ran on, for a benchmark's header: the kernel set (the argument, else
    $NEURON_SIM_KERNELS, else fast) and NumPy's BLAS."""
    from neuron_core.runtime.kernels import choose
    return (f"simulator kernels: {choose(kernels)} (see neuron_core/runtime/kernels/), "
            f"NumPy's BLAS {blas_kernel()}")


def blas_kernel() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i['internal_api']} {i.get('architecture')} x{i['num_threads']}"
                     for i in infos) or "none found"


def cpu() -> str:
    """The CPU, its vector instruction sets and onnxruntime's channel block on it."""
    import platform

    from neuron_core.runtime.cache import cpu_flags
    from neuron_core.runtime.kernels import nchwc_block
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((x.split(":", 1)[1].strip() for x in f if x.startswith("model name")), name)
    except OSError:
        pass
    flags = set(cpu_flags().split())
    shown = [f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                         "avx512_bf16", "amx_bf16") if f in flags]
    block = nchwc_block()
    return (f"CPU: {name}, {os.cpu_count()} cores; {' '.join(shown) or 'no AVX2/AVX-512'}; "
            f"onnxruntime NCHWc block: {block or 'none'}")


def bench(name: str, model, compiled, path: Path, feed: dict, repeat: int, kernels: str) -> dict:
    loads = []
    for _ in range(3):
        started = time.perf_counter()
        m = runtime.load(path, kernels=kernels)
        loads.append(time.perf_counter() - started)
        m.unload()
    sim = runtime.load(path, kernels=kernels)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    sim.run(feed), sess.run(None, feed)  # warm-up both
    t_sim, t_ort = [], []
    for _ in range(repeat):  # interleaved: both sides see the same machine load
        settle()
        started = time.perf_counter()
        ours, = sim.run(feed)
        t_sim.append(time.perf_counter() - started)
        settle()
        started = time.perf_counter()
        theirs, = sess.run(None, feed)
        t_ort.append(time.perf_counter() - started)
    executor = sim._executor
    n = len(sim.program.instrs)
    if kernels == "fast":
        on = (f"{executor.graph_instructions} of {n} instructions in {executor.graphs} "
              "onnxruntime graph(s)")
    else:
        on = f"{executor.fast_kernels} of {n} instructions on the instruction kernels"
    sim.unload()
    err = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
    return {"load_s": min(loads), "sim_ms": 1e3 * statistics.median(t_sim),
            "ort_ms": 1e3 * statistics.median(t_ort),
            "ratio": statistics.median(t_sim) / statistics.median(t_ort), "rel_err": err,
            "on": on}


#: one cold start, in a fresh process: argv = sim|ort, model file, feed (.npz); prints the
#: seconds from the script's start to the end of each phase, as JSON
CHILD = """
import time
started = time.perf_counter()
import json, sys
kind, path, feed_path = sys.argv[1:4]
if kind == "sim":
    import neuron_core
    import numpy as np
    imported = time.perf_counter()
    model = neuron_core.runtime.load(path)
    run = lambda feed: model.run(feed)
else:
    import numpy as np
    import onnxruntime
    imported = time.perf_counter()
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    run = lambda feed: session.run(None, feed)
loaded = time.perf_counter()
feed = dict(np.load(feed_path))
begun = time.perf_counter()
run(feed)
first = time.perf_counter() - begun
time.sleep(0.03)
begun = time.perf_counter()
run(feed)
second = time.perf_counter() - begun
print(json.dumps({"import": imported - started, "load": loaded - imported, "first": first,
                  "total": loaded - started + first, "second": second}))
"""


def cold_start(neff: Path, onnx_file: Path, feed: dict, rounds: int, kernels: str) -> dict:
    """Median phase times of `rounds` fresh processes per side, alternating: onnxruntime, the
    simulator with its cache warm, the simulator with an empty cache."""
    with tempfile.TemporaryDirectory() as tmp:
        feed_path = Path(tmp) / "feed.npz"
        np.savez(feed_path, **feed)
        warm = Path(tmp) / "warm-cache"
        env = dict(os.environ, NEURON_SIM_KERNELS=kernels)

        def child(kind, path, cache):
            out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), str(feed_path)],
                                 capture_output=True, text=True, timeout=600,
                                 env=dict(env, NEURON_SIM_CACHE_DIR=str(cache)))
            if out.returncode:
                raise SystemExit(f"cold-start {kind} process failed:\n{out.stderr}")
            return json.loads(out.stdout.strip().splitlines()[-1])

        child("sim", neff, warm)  # fills the warm cache
        runs: dict = {"ort": [], "sim (cache warm)": [], "sim (cache empty)": []}
        for k in range(rounds):
            runs["ort"].append(child("ort", onnx_file, warm))
            runs["sim (cache warm)"].append(child("sim", neff, warm))
            runs["sim (cache empty)"].append(child("sim", neff, Path(tmp) / f"empty{k}"))
    return {side: {phase: statistics.median(r[phase] for r in rs) for phase in rs[0]}
            for side, rs in runs.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=["resnet50", "bert_base"])
    parser.add_argument("--kernels", choices=["fast", "instruction", "reference"],
                        default="fast")
    parser.add_argument("--cold-rounds", type=int, default=3,
                        help="fresh processes per side for the cold start (0: skip it)")
    args = parser.parse_args(argv)
    models = _models()
    print(cpu())
    print(f"{simulator_kernels(args.kernels)}; onnxruntime {ort.__version__} "
          f"(CPUExecutionProvider, default threads)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["NEURON_SIM_CACHE_DIR"] = str(Path(tmp) / "cache")  # the user's stays as it is
        print(f"{'model':10s} {'compile s':>9s} {'load s':>7s} {'sim ms':>8s} {'ort ms':>8s} "
              f"{'sim/ort':>7s} {'bf16 err':>8s}")
        built = {}
        for name in args.models:
            build, feed = models[name]
            model = build()
            started = time.perf_counter()
            compiled = compile_graph(from_onnx(model), parse_compiler_args([]))
            path = Path(tmp) / f"{name}.neff"
            compiled.save(path)
            compile_s = time.perf_counter() - started
            onnx_file = Path(tmp) / f"{name}.onnx"
            onnx_file.write_bytes(model.SerializeToString())
            built[name] = path, onnx_file, feed
            r = bench(name, model, compiled, path, feed, args.repeat, args.kernels)
            print(f"{name:10s} {compile_s:9.2f} {r['load_s']:7.3f} {r['sim_ms']:8.1f} "
                  f"{r['ort_ms']:8.1f} {r['ratio']:7.2f} {r['rel_err']:8.2e}")
            notes = [f"run ratio target <= {TARGETS['run_ratio']}: "
                     f"{verdict(r['ratio'] <= TARGETS['run_ratio'])}"]
            if name in TARGETS["compile_s"]:
                t = TARGETS["compile_s"][name]
                notes.append(f"compile target <= {t} s: {verdict(compile_s <= t)}")
            print("           " + "; ".join(notes) + f"; {r['on']}")
        if args.cold_rounds > 0:
            print_cold_start(built, args.cold_rounds, args.kernels)
    return 0


def print_cold_start(built: dict, rounds: int, kernels: str) -> None:
    print(f"\ncold start: fresh processes, median of {rounds} per side, alternating; seconds from "
          "the script's start (import, load, first run) and the second run")
    print(f"{'model':10s} {'side':18s} {'import':>7s} {'load':>7s} {'1st run':>8s} {'total':>7s} "
          f"{'2nd run':>8s}")
    for name, (neff, onnx_file, feed) in built.items():
        sides = cold_start(neff, onnx_file, feed, rounds, kernels)
        for side, r in sides.items():
            print(f"{name:10s} {side:18s} {r['import']:7.3f} {r['load']:7.3f} {r['first']:8.3f} "
                  f"{r['total']:7.3f} {r['second']:8.3f}")
        ort_total, warm = sides["ort"]["total"], sides["sim (cache warm)"]
        cold_ratio, first_ratio = warm["total"] / ort_total, warm["first"] / warm["second"]
        notes = [f"cold start sim/ort {cold_ratio:.2f} (target <= {TARGETS['cold_ratio']}: "
                 f"{verdict(cold_ratio <= TARGETS['cold_ratio'])})",
                 f"first run / second {first_ratio:.2f} (target <= {TARGETS['first_run_ratio']}:"
                 f" {verdict(first_ratio <= TARGETS['first_run_ratio'])})"]
        if name in TARGETS["load_s"]:
            t = TARGETS["load_s"][name]
            notes.append(f"NEFF load in a fresh process {warm['load']:.3f} s (target <= {t} s: "
                         f"{verdict(warm['load'] <= t)})")
        print("           " + "; ".join(notes))


if __name__ == "__main__":
    raise SystemExit(main())
