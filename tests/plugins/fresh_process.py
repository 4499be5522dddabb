"""Run Python as a user would, in a fresh process: saved models and tutorials are checked there,
where nothing the test process imported or registered can help."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

TUTORIALS = Path(__file__).resolve().parents[2] / "tutorials"


def run_python(script: str, cwd, precision: str | None = "fp32",
               timeout: float = 180, **extra_env: str) -> subprocess.CompletedProcess:
    """Run `script` (dedented) with `python -c` in `cwd`; `precision` sets NEURON_SIM_PRECISION
    (None: the default, hardware precision); `extra_env` adds environment variables."""
    env = {k: v for k, v in os.environ.items() if k != "NEURON_SIM_PRECISION"}
    if precision:
        env["NEURON_SIM_PRECISION"] = precision
    env.update(extra_env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_tutorial(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run tutorials/`name` with its default (hardware) precision, as the tutorial says to."""
    env = {k: v for k, v in os.environ.items() if k != "NEURON_SIM_PRECISION"}
    return subprocess.run([sys.executable, str(TUTORIALS / name), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
