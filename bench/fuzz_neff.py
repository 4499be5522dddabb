"""Coverage-guided fuzzing of damaged NEFF artifacts: every defect must be a NeuronError.

A damaged NEFF (or a `.neuron.onnx` model holding NEFFs) may be refused, with an error derived
from neuron_core.errors.NeuronError, or it may run and give the unedited model's output bit for
bit. Anything else is a finding, which the target raises for libFuzzer to report (and write to
--artifacts): another exception type, or, for `edit`, a different output.

    python bench/fuzz_neff.py --target neff --seconds 60
    python bench/fuzz_neff.py --target edit --seconds 60 --runs 5000
    python bench/fuzz_neff.py --target onnx --seconds 60
    python bench/fuzz_neff.py --target edit --replay /tmp/findings/crash-...   # one finding again

  neff  raw bytes, mutated by libFuzzer from small valid NEFFs (a Gemm + LeakyRelu model and the
        bundled small CNN). The first byte of an input picks the kernels and whether the section
        and header hashes are recomputed after mutation (otherwise nearly every mutation stops
        at the first hash check).
  edit  structured edits of a valid NEFF's metadata, program and weights.index, driven by
        FuzzedDataProvider and re-written with neuron_core.neff.to_bytes, so every hash is
        valid. The result must be a NeuronError or the unedited output, bit-identical. The edit
        families, and the edits not generated because they make a different valid program, are
        listed in neff_edits.py.
  onnx  mutated bytes of a small fallback `.neuron.onnx` model (NeuronCore part + host part).

The run stops by itself (libFuzzer's -max_total_time, and -runs with --runs); a single input is
limited by libFuzzer's -timeout and -rss_limit_mb. No threads or alarms of our own. For a table
of outcomes over many cases without atheris, see neff_census.py.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]
import tempfile  # noqa: E402

from neff_cases import (CASE_TIMEOUT_S, KERNELS, classify, fallback_onnx_bytes,  # noqa: E402
                        quiet_environment, rehash, run_neff, run_onnx, seeds)
from neff_edits import edited_neff  # noqa: E402
from neff_values import provider_chooser  # noqa: E402


# ------------------------------------------------------------------------------------- fuzzing

class Finding(Exception):
    """What the fuzz targets raise for libFuzzer to report: a non-NeuronError or a wrong output."""


def check(outcome: str, detail: str, desc: str) -> None:
    if outcome in ("other", "different"):
        raise Finding(f"{outcome}: {detail}\n  input: {desc}")


def target_neff(data: bytes) -> None:
    if len(data) < 2:
        return
    flags, body = data[0], data[1:]
    if flags & 1:
        body = rehash(body)
    kernels = KERNELS[(flags >> 1) % 3]
    check(*classify(lambda: run_neff(body, None, kernels)), f"{len(body)} NEFF bytes, kernels={kernels}")


def target_edit(data: bytes) -> None:
    import atheris
    fdp = atheris.FuzzedDataProvider(data)
    ch = provider_chooser(fdp)
    model = ch.pick(seeds())
    kernels = ch.pick(KERNELS)
    desc, write = edited_neff(ch, model)
    check(*classify(lambda: run_neff(write(), model.inputs, kernels), model.baseline(kernels)),
          f"[{model.name}, kernels={kernels}] {desc}")


def target_onnx(data: bytes) -> None:
    check(*classify(lambda: run_onnx(data)), f"{len(data)} .neuron.onnx bytes")


def fuzz(args) -> None:
    import atheris
    quiet_environment()
    # coverage of neuron_core's own code; the numba kernels of _jit are compiled from bytecode,
    # which instrumentation would change
    with atheris.instrument_imports(include=["neuron_core"], exclude=["neuron_core._jit"]):
        import neuron_core.neff          # noqa: F401
        import neuron_core.onnx          # noqa: F401
        import neuron_core.runtime       # noqa: F401
    corpus = args.corpus or tempfile.mkdtemp(prefix=f"neff-fuzz-{args.target}-")
    os.makedirs(corpus, exist_ok=True)
    artifacts = args.artifacts or tempfile.mkdtemp(prefix="neff-fuzz-findings-")
    os.makedirs(artifacts, exist_ok=True)
    if args.target == "neff":
        seed_inputs = [bytes([flags]) + s.data for s in seeds() for flags in range(6)]
        target = target_neff
    elif args.target == "edit":
        rng = random.Random(0)
        seed_inputs = [bytes(rng.randrange(256) for _ in range(64)) for _ in range(16)]
        target = target_edit
    else:
        seed_inputs = [fallback_onnx_bytes()]
        target = target_onnx
    for k, data in enumerate(seed_inputs):
        with open(os.path.join(corpus, f"seed{k}"), "wb") as f:
            f.write(data)
    for s in seeds():       # the baselines, computed before fuzzing starts
        for kernels in KERNELS:
            s.baseline(kernels)
    flags = [sys.argv[0], f"-max_total_time={args.seconds}", f"-timeout={int(CASE_TIMEOUT_S)}",
             "-rss_limit_mb=6144", f"-artifact_prefix={artifacts.rstrip('/')}/", "-print_final_stats=1",
             f"-seed={args.seed + 1}", args.replay or corpus]
    if args.runs:
        flags.insert(1, f"-runs={args.runs}")
    print(f"fuzzing target {args.target} for {args.seconds} s; corpus in {corpus}, findings go to "
          f"{artifacts}", flush=True)
    atheris.Setup(flags, target)
    atheris.Fuzz()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--target", choices=["neff", "edit", "onnx"], default="edit")
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time limit")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many inputs as well")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's random seed (+1)")
    parser.add_argument("--artifacts", help="where libFuzzer writes findings (default: a temp dir)")
    parser.add_argument("--replay", help="run the target once on this input file (a finding)")
    parser.add_argument("--corpus", help="the working corpus, seeded here (default: a new temp dir)")
    fuzz(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
