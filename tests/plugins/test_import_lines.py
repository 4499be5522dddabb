"""The Neuron SDK's import lines run as written: `import torch.neuron`, `import tensorflow.neuron as
tfn`, `import tensorflow_neuron`, `import mxnet as mx` then `mx.neuron()`, each in a fresh
interpreter with no plugin imported first (neuron_sim_hooks.py, installed as a .pth)."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env}, cwd=str(ROOT.parent))


def _ok(code: str, **env) -> str:
    out = _python(code, **env)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_the_hook_is_installed_and_imports_nothing_heavy_at_start():
    assert (Path(sysconfig.get_paths()["purelib"]) / "neuron_sim_hooks.pth").is_file()
    seen = _ok("import sys; print('neuron_sim_hooks' in sys.modules); print(sorted(m for m in "
               "('torch', 'tensorflow', 'mxnet', 'numpy', 'neuron_core') "
               "if m in sys.modules))").split()
    assert seen == ["True", "[]"]


def test_the_hook_costs_about_a_millisecond_at_start():
    """With bytecode cached (Python's default), importing the hook at interpreter start takes well
    under 5 ms."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    run = [sys.executable, "-X", "importtime", "-c", "pass"]
    subprocess.run(run, env=env, capture_output=True, check=True)  # writes the bytecode once
    best = min(next(int(line.split("|")[1]) for line in subprocess.run(
        run, env=env, capture_output=True, text=True, check=True).stderr.splitlines()
        if line.rstrip().endswith(" neuron_sim_hooks")) for _ in range(3))
    assert best < 5000, f"importing neuron_sim_hooks took {best} us"


def test_import_torch_neuron_without_torch_neuron_first():
    pytest.importorskip("torch")
    out = _ok("import torch.neuron\nimport torch\nimport torch_neuron\n"
              "print(torch.neuron.trace is torch_neuron.trace, "
              "torch.neuron.DataParallel is torch_neuron.DataParallel)")
    assert out.split() == ["True", "True"]


def test_import_tensorflow_neuron_as_tfn_and_tensorflow_neuron():
    pytest.importorskip("tensorflow")
    out = _ok("import tensorflow.neuron as tfn\nimport tensorflow as tf\nimport tensorflow_neuron\n"
              "import tf_neuron\n"
              "print(tfn.saved_model.compile is tf_neuron.saved_model.compile, "
              "tf.neuron.trace is tf_neuron.trace, "
              "tensorflow_neuron.predictor is tf_neuron.predictor)",
              TF_CPP_MIN_LOG_LEVEL="3")
    assert out.split() == ["True", "True", "True"]


def test_import_mxnet_first_then_mx_neuron_context():
    pytest.importorskip("mx_neuron")
    out = _ok("import mxnet as mx\nprint(callable(mx.contrib.neuron.compile), "
              "type(mx.neuron()).__name__)")
    assert out.split() == ["True", "NeuronContext"]


def test_the_hooks_can_be_turned_off():
    out = _python("import tensorflow_neuron", NEURON_SIM_NO_IMPORT_HOOKS="1")
    assert out.returncode != 0 and "No module named 'tensorflow_neuron'" in out.stderr
