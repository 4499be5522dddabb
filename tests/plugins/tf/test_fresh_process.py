"""A compiled SavedModel loads, predicts and estimates (with the host work measured at compile
time) in a new process after `import tf_neuron`, and fails at load, saying to import tf_neuron,
without it."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

tf = pytest.importorskip("tensorflow")

import numpy as np  # noqa: E402

import tf_neuron  # noqa: E402

from .models import FP32_ATOL, FP32_RTOL, transformer_encoder  # noqa: E402

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    if sys.argv[2] == "with-plugin":
        import tf_neuron
    try:
        loaded = tf.saved_model.load(sys.argv[1])
    except Exception as exc:
        print("LOAD-ERROR", type(exc).__name__, str(exc).replace("\\n", " "))
        raise SystemExit(0)
    x = np.load(sys.argv[1] + "/../x.npy")
    fn = loaded.signatures["serving_default"]
    name = next(iter(fn.structured_input_signature[1]))
    np.save(sys.argv[1] + "/../got.npy", fn(**{name: x})["output_0"].numpy())
    print("PREDICTED")
    row = tf_neuron.estimate(loaded).instances["inf1.xlarge"]
    print("ESTIMATE host", row.host_ms, "device", row.device_ms)
""")


def _run(model_dir, mode):
    env = dict(os.environ, NEURON_SIM_PRECISION="fp32", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", SCRIPT, str(model_dir), mode], env=env,
                          capture_output=True, text=True, timeout=180)


def test_saved_model_loads_in_fresh_process(tmp_path):
    model = transformer_encoder()
    model.export(str(tmp_path / "sm"), verbose=False)
    tf_neuron.saved_model.compile(tmp_path / "sm", tmp_path / "neuron")
    x = np.random.default_rng(0).standard_normal((1, 16, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    done = _run(tmp_path / "neuron", "with-plugin")
    assert "PREDICTED" in done.stdout, done.stderr[-3000:]
    host, device = map(float, done.stdout.split("ESTIMATE host ")[1].split(" device "))
    assert host > 0 and device > 0, done.stdout
    np.testing.assert_allclose(np.load(tmp_path / "got.npy"), model(x).numpy(), rtol=FP32_RTOL,
                               atol=FP32_ATOL)
    failed = _run(tmp_path / "neuron", "without-plugin")
    assert "LOAD-ERROR" in failed.stdout, failed.stderr[-3000:]
    assert "run `import tf_neuron` before loading" in failed.stdout
