"""The compiled kernels (neuron_core/_jit.py) compile once per machine: a second process loads
them from numba's cache, and the cache goes where $NUMBA_CACHE_DIR says."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba")

USE_EVERY_KERNEL = textwrap.dedent("""
    import json
    import numpy as np
    from neuron_core import dtypes
    from neuron_core.runtime import kernels
    from neuron_core.compiler.program import Instr
    dtypes.load_jit()
    from neuron_core import _jit
    x = np.linspace(-3, 3, 4096, dtype=np.float32)
    dtypes.round_to(x, dtypes.BF16)
    table = np.arange(1 << 16, dtype=np.float32)
    dtypes.bf16_lookup(dtypes.round_to(x, dtypes.BF16), table)
    add = Instr(engine="VectorEngine", op="Add", inputs=[0, 1], outputs=[2], post=[{"op": "Relu",
                "inputs": [-1], "attrs": {}}])
    kernels.vector_kernel(add, [dtypes.BF16])([x, x], None)
    stats = {name: getattr(_jit, name).stats for name in ("round_bf16", "bf16_lookup",
                                                          "fused_elementwise")}
    print(json.dumps({name: [sum(s.cache_hits.values()), sum(s.cache_misses.values())]
                      for name, s in stats.items()}))
""")


def _files(root) -> set:
    return {os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs}


def test_a_second_process_loads_the_kernels_without_compiling(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    reports, files = [], []
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", USE_EVERY_KERNEL], capture_output=True,
                             text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        reports.append(json.loads(out.stdout.strip().splitlines()[-1]))
        files.append(_files(tmp_path / "numba"))
    first, second = reports
    assert all(misses > 0 for _, misses in first.values()), first  # compiled, and stored
    assert all(hits > 0 and misses == 0 for hits, misses in second.values()), second
    assert files[0] and files[1] == files[0], "the second process added cache files"
