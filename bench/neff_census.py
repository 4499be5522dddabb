"""The NEFF census: N valid-hash edits and N raw mutations (and optionally re-hashed raw
mutations and mutated `.neuron.onnx` models), each judged as bench/fuzz_neff.py judges them, with
a table of outcomes.

    python bench/neff_census.py --cases 10000 --seed 0
    python bench/neff_census.py --case edit:0:123        # re-run one case, full traceback

  edit        N valid-hash edits (see neff_edits.py for the families and what is excluded)
  raw         N raw mutations without fixing hashes: bit flips, byte changes, truncations,
              splices, section swaps (what a damaged file on disk looks like)
  raw+rehash  --rehashed N raw mutations whose hashes are then recomputed; their outputs are not
              judged (a changed weight byte is a legitimate change), only their exceptions
  onnx        --onnx N bit flips, byte changes and truncations of a fallback `.neuron.onnx`
              model; exceptions judged only (a changed host initializer is legitimate)

Each case runs in one worker process, in-process there; the parent waits for each answer with a
time limit, and a worker that hangs (killed) or dies (a crash) is counted and started again, so
nothing is lost. Every case is rebuilt from (group, seed, index) alone.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import random
import re
import select
import subprocess
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]
import time
from collections import Counter

from neff_cases import (CASE_TIMEOUT_S, FIRST_CASE_TIMEOUT_S, KERNELS, _difference, classify,
                        fallback_onnx_bytes, quiet_environment, raw_mutation, rehash, run_neff,
                        run_onnx, same_outputs, seeds)
from neff_edits import edited_neff
from neff_values import random_chooser

def build_case(group: str, seed: int, index: int):
    """(description, run, expected outputs or None when not judged) of one case, rebuilt from
    (group, seed, index) alone: the same case in every run and process."""
    rng = random.Random(f"{seed}:{group}:{index}")
    if group == "onnx":
        desc, data = onnx_mutation(rng)
        return f"[fallback .neuron.onnx] {desc}", lambda: run_onnx(data), None
    models = seeds()
    model = rng.choice(models)
    kernels = rng.choice(KERNELS)
    want = model.baseline(kernels)
    if group == "edit":
        desc, write = edited_neff(random_chooser(rng), model)
    else:
        desc, data = raw_mutation(rng, model.data, rng.choice(models).data)
        if group == "raw+rehash":
            data, want = rehash(data), None
        write = lambda: data      # noqa: E731
    return (f"[{model.name}, kernels={kernels}] {desc}",
            lambda: run_neff(write(), model.inputs, kernels), want)


def census_case(group: str, seed: int, index: int) -> tuple[str, str, str]:
    """(outcome, detail, description) of one case."""
    desc, run, want = build_case(group, seed, index)
    outcome, detail = classify(run, want)
    return outcome, detail, desc


_FALLBACK: list = []


def onnx_mutation(rng: random.Random) -> tuple[str, bytes]:
    """A raw mutation of the fallback `.neuron.onnx` bytes; only its exceptions are judged (a
    changed initializer of the host part is a legitimate change)."""
    if not _FALLBACK:
        _FALLBACK.append(fallback_onnx_bytes())
    data = bytearray(_FALLBACK[0])
    kind = rng.choice(["bitflip", "bytes", "truncate"])
    if kind == "bitflip":
        bit = rng.randrange(len(data) * 8)
        data[bit // 8] ^= 1 << (bit % 8)
        return f"bit {bit} flipped", bytes(data)
    k = rng.randrange(len(data))
    if kind == "bytes":
        data[k] = rng.randrange(256)
        return f"byte {k} = {data[k]}", bytes(data)
    return f"truncated to {k} bytes", bytes(data[:k])


def worker_main() -> None:
    """Read `group seed index` lines, answer one JSON line each (on the original stdout)."""
    quiet_environment()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)           # anything the code prints goes to stderr, not into the protocol
    for line in sys.stdin:
        group, seed, index = line.split()
        case = _selfcheck if group == "selfcheck" else functools.partial(census_case, group)
        started = time.perf_counter()
        try:
            outcome, detail, desc = case(int(seed), int(index))
        except Exception as exc:    # noqa: BLE001  (the harness's own failure, not a finding)
            outcome, detail, desc = "harness error", f"{type(exc).__name__}: {exc}", ""
        out.write(json.dumps({"outcome": outcome, "detail": detail, "desc": desc,
                              "seconds": time.perf_counter() - started}) + "\n")
        out.flush()


def _selfcheck(seed: int, index: int) -> tuple[str, str, str]:
    """Cases that check the census itself: 0 kills the worker, 1 hangs, 2 answers."""
    if index == 0:
        os.abort()
    if index == 1:
        time.sleep(3600)
    return "identical", "", "selfcheck"


class Worker:
    """One worker process; a case that outlives its time limit or kills the worker is counted
    and the worker is started again."""

    def __init__(self, log, case_timeout: float = CASE_TIMEOUT_S,
                 first_timeout: float = FIRST_CASE_TIMEOUT_S):
        self.log, self.proc, self.first = log, None, True
        self.case_timeout, self.first_timeout = case_timeout, first_timeout

    def start(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, bufsize=1)
        self.first = True

    def ask(self, group: str, seed: int, index: int) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        limit = self.first_timeout if self.first else self.case_timeout
        try:
            self.proc.stdin.write(f"{group} {seed} {index}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._dead()
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if not ready:
            self.stop()
            return {"outcome": "timeout", "detail": f"no answer in {limit:.0f} s", "desc": ""}
        line = self.proc.stdout.readline()
        if not line:
            return self._dead()
        self.first = False
        return json.loads(line)

    def _dead(self) -> dict:
        code = self.proc.wait()
        self.proc = None
        return {"outcome": "crash", "detail": f"worker exit status {code}", "desc": ""}

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def census(cases: int, seed: int, rehashed: int, onnx: int, log_path: str | None, examples: int = 3) -> dict:
    """N edited and N raw cases (and `rehashed` raw+rehash ones, `onnx` mutated fallback models)
    through one worker process."""
    groups = [("edit", cases), ("raw", cases), ("raw+rehash", rehashed), ("onnx", onnx)]
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    worker = Worker(log)
    results: dict = {}
    started = time.perf_counter()
    try:
        for group, n in groups:
            counts, findings, slowest = Counter(), {}, (0.0, "")
            t0 = time.perf_counter()
            for index in range(n):
                answer = worker.ask(group, seed, index)
                outcome = answer["outcome"]
                counts[outcome] += 1
                slowest = max(slowest, (answer.get("seconds", 0.0), f"{group}:{seed}:{index}"))
                if outcome in ("other", "different", "timeout", "crash", "harness error"):
                    key = (outcome, _pattern(outcome, answer["detail"], answer["desc"]))
                    entry = findings.setdefault(key, {"count": 0, "cases": [], "detail": answer["detail"],
                                                      "desc": answer["desc"]})
                    entry["count"] += 1
                    if len(entry["cases"]) < examples:
                        entry["cases"].append(f"{group}:{seed}:{index}")
            results[group] = {"counts": counts, "findings": findings, "slowest": slowest,
                              "seconds": time.perf_counter() - t0}
    finally:
        worker.stop()
    results["seconds"] = time.perf_counter() - started
    return results


def _pattern(outcome: str, detail: str, desc: str) -> str:
    """What groups findings: an exception's type and innermost place; for a different output,
    the edit's family and field (indices, names and numbers dropped)."""
    if outcome == "different":
        edit = desc.split("] ", 1)[-1].split(" = ")[0]
        return re.sub(r"'[^']*'", "'*'", re.sub(r"\d+", "N", edit))[:90]
    head = detail.split(": ", 1)[0]
    return head if " at " in head else re.sub(r"\d+", "N", detail)[:90]


def print_census(results: dict, cases: int, seed: int) -> None:
    print(f"NEFF census: seed {seed}, {results['seconds']:.0f} s in all")
    for group in ("edit", "raw", "raw+rehash", "onnx"):
        if group not in results or not sum(results[group]["counts"].values()):
            continue
        r = results[group]
        total = sum(r["counts"].values())
        print(f"\n{group}: {total} cases in {r['seconds']:.0f} s (slowest case {r['slowest'][0]:.2f} s: "
              f"{r['slowest'][1]})")
        for outcome, n in sorted(r["counts"].items(), key=lambda kv: -kv[1]):
            print(f"  {outcome:40s} {n:6d}")
        if r["findings"]:
            print("  findings (type / place, count, example cases, example):")
            for (outcome, pattern), f in sorted(r["findings"].items(), key=lambda kv: -kv[1]["count"]):
                print(f"  - {outcome}: {pattern}  x{f['count']}  {' '.join(f['cases'])}")
                print(f"      {f['desc']}")
                print(f"      {f['detail'][:300]}")


def replay(spec: str) -> None:
    """Re-run one census case in this process, printing its traceback if it raises."""
    quiet_environment()
    group, seed, index = spec.split(":")
    desc, run, want = build_case(group, int(seed), int(index))
    print(desc)
    got = run()
    if want is None:
        print("ran (outputs not judged)")
    else:
        print("identical" if same_outputs(got, want) else f"different: {_difference(got, want)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=1000, help="edited and raw cases each")
    parser.add_argument("--rehashed", type=int, default=0, help="raw+rehash cases")
    parser.add_argument("--onnx", type=int, default=0, help="mutated .neuron.onnx cases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker-log", help="the worker's stderr goes here (default: discarded)")
    parser.add_argument("--json", help="also write the results here as JSON")
    parser.add_argument("--examples", type=int, default=3, help="case ids kept per finding")
    parser.add_argument("--case", help="re-run one case in this process, e.g. edit:0:123")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main()
    elif args.case:
        replay(args.case)
    else:
        results = census(args.cases, args.seed, args.rehashed, args.onnx, args.worker_log, args.examples)
        print_census(results, args.cases, args.seed)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({g: {"counts": r["counts"], "seconds": r["seconds"], "slowest": r["slowest"],
                               "findings": [{"outcome": k[0], "pattern": k[1], **v}
                                            for k, v in r["findings"].items()]}
                           for g, r in results.items() if isinstance(r, dict)}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
