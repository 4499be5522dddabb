"""`import neuron_core` in a fresh process: it leaves the environment as it found it, and OpenBLAS
still gets the kernel chosen from the CPU's feature flags while numpy loads."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from neuron_core._cpu import ENV_CORETYPE, cpu_flags, openblas_coretype

SCRIPT = """
import json, logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
before = dict(os.environ)
import neuron_core
after = dict(os.environ)
print(json.dumps({"before": before, "after": after, "numpy": "numpy" in sys.modules}))
"""


def _import_in_fresh_process(**env: str) -> tuple[dict, str]:
    environ = {k: v for k, v in os.environ.items() if k != ENV_CORETYPE}
    environ.update(env, OPENBLAS_VERBOSE="2")  # OpenBLAS prints the kernel it loads with
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=environ, capture_output=True,
                          text=True, timeout=120, check=True)
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def test_import_leaves_environ_unchanged():
    seen, _ = _import_in_fresh_process()
    assert seen["numpy"]
    assert seen["after"] == seen["before"]
    assert ENV_CORETYPE not in seen["after"]


def test_import_keeps_the_users_coretype():
    seen, stderr = _import_in_fresh_process(OPENBLAS_CORETYPE="Prescott")
    assert seen["after"] == seen["before"] and seen["after"][ENV_CORETYPE] == "Prescott"
    assert "OpenBLAS kernel for numpy: Prescott, from $OPENBLAS_CORETYPE" in stderr


def test_import_gives_openblas_the_kernel_of_the_cpu_flags():
    chosen = openblas_coretype(cpu_flags())
    if chosen is None:
        pytest.skip("this CPU has neither AVX2+FMA nor AVX-512: OpenBLAS chooses by itself")
    _, stderr = _import_in_fresh_process()
    assert f"Neuron OpenBLAS kernel for numpy: {chosen}" in stderr  # logged at DEBUG
    if "Core: " in stderr:  # numpy's OpenBLAS is a DYNAMIC_ARCH build: it says what it loaded
        assert f"Core: {chosen}" in stderr


def test_openblas_coretype_from_flags():
    assert openblas_coretype("avx512bw avx512f avx2 fma") == "SkylakeX"
    assert openblas_coretype("avx2 fma") == "Haswell"
    assert openblas_coretype("avx2") is None and openblas_coretype("neon asimd") is None
