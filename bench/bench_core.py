"""Core benchmark: ResNet-50 and BERT-base built in code, compiled, loaded and run on the simulated
NeuronCore (hardware precision) against onnxruntime on the CPU, interleaved in one run.

    python bench/bench_core.py [--repeat 10] [--models resnet50 bert_base] [--kernels fast]

Prints compile time, NEFF load time, and the simulated/onnxruntime run-time ratio (medians of
interleaved runs, so that the shared machine's noise hits both sides alike), and the kernels the
simulator ran on (`--kernels reference`: every instruction on NumPy).
"""
from __future__ import annotations

import argparse
import statistics
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
from neuron_core.frontends.onnx import from_onnx  # noqa: E402
from neuron_core.models.builders import bert, resnet  # noqa: E402

TARGETS = {"run_ratio": 1.5, "compile_s": {"resnet50": 5.0, "bert_base": 10.0},
           "load_s": {"resnet50": 0.5}}


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
    return (f"simulator kernels: {choose(kernels)} (see neuron_core/runtime/kernels.py), "
            f"NumPy's BLAS {blas_kernel()}")


def blas_kernel() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i['internal_api']} {i.get('architecture')} x{i['num_threads']}"
                     for i in infos) or "none found"


def bench(name: str, build, feed: dict, repeat: int, kernels: str) -> dict:
    model = build()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.neff"
        started = time.perf_counter()
        compiled = compile_graph(from_onnx(model), parse_compiler_args([]))
        compiled.save(path)
        compile_s = time.perf_counter() - started
        loads = []
        for _ in range(3):
            started = time.perf_counter()
            m = runtime.load(path, kernels=kernels)
            loads.append(time.perf_counter() - started)
            m.unload()
        sim = runtime.load(path, kernels=kernels)
        on_fast = f"{sim._executor.fast_kernels} of {len(sim.program.instrs)} instructions"
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
        sim.unload()
    err = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
    return {"compile_s": compile_s, "load_s": min(loads), "sim_ms": 1e3 * statistics.median(t_sim),
            "ort_ms": 1e3 * statistics.median(t_ort),
            "ratio": statistics.median(t_sim) / statistics.median(t_ort), "rel_err": err,
            "neff_mib": compiled.metadata["memory"]["weights_bytes"] / 2 ** 20, "on_fast": on_fast}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=["resnet50", "bert_base"])
    parser.add_argument("--kernels", choices=["fast", "reference"], default="fast")
    args = parser.parse_args(argv)
    models = _models()
    print(f"{simulator_kernels(args.kernels)}; onnxruntime {ort.__version__} "
          f"(CPUExecutionProvider, default threads)")
    print(f"{'model':10s} {'compile s':>9s} {'load s':>7s} {'sim ms':>8s} {'ort ms':>8s} "
          f"{'sim/ort':>7s} {'bf16 err':>8s}")
    for name in args.models:
        build, feed = models[name]
        r = bench(name, build, feed, args.repeat, args.kernels)
        print(f"{name:10s} {r['compile_s']:9.2f} {r['load_s']:7.3f} {r['sim_ms']:8.1f} "
              f"{r['ort_ms']:8.1f} {r['ratio']:7.2f} {r['rel_err']:8.2e}")
        notes = [f"run ratio target <= {TARGETS['run_ratio']}: "
                 f"{verdict(r['ratio'] <= TARGETS['run_ratio'])}"]
        if name in TARGETS["compile_s"]:
            t = TARGETS["compile_s"][name]
            notes.append(f"compile target <= {t} s: {verdict(r['compile_s'] <= t)}")
        if name in TARGETS["load_s"]:
            t = TARGETS["load_s"][name]
            notes.append(f"load target <= {t} s: {verdict(r['load_s'] <= t)}")
        print("           " + "; ".join(notes) + f"; on the fast kernels: {r['on_fast']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
