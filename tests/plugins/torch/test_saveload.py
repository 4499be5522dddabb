"""A traced model saved with torch.jit.save loads and runs in a fresh process after
`import torch_neuron`, and without the import the error says to import torch_neuron."""
from __future__ import annotations

import numpy as np
import pytest

from ..fresh_process import run_python

torch = pytest.importorskip("torch")
torch_neuron = pytest.importorskip("torch_neuron")


class _WithSin(torch.nn.Module):
    """Two Neuron subgraphs around a host op (sin has no NeuronCore lowering)."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(16, 32)
        self.b = torch.nn.Linear(32, 8)

    def forward(self, x):
        return torch.tanh(self.b(torch.sin(torch.relu(self.a(x)))))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torch_saved")
    torch.manual_seed(0)
    model = _WithSin().eval()
    x = torch.randn(4, 16)
    traced = torch.neuron.trace(model, x, minimum_segment_size=1, cost_aware=False)
    assert traced.neuron_report.num_subgraphs == 2
    torch.jit.save(traced, str(tmp / "model.pt"))
    np.save(tmp / "x.npy", x.numpy())
    with torch.no_grad():
        np.save(tmp / "want.npy", model(x).numpy())
    return tmp


def test_saved_model_runs_in_a_fresh_process_after_import(saved):
    proc = run_python("""
        import numpy as np
        import torch
        import torch_neuron
        model = torch.jit.load("model.pt")
        out = model(torch.from_numpy(np.load("x.npy")))
        np.save("got.npy", out.numpy())
        est = torch.neuron.estimate(model, "inf1.xlarge")
        print("host", est.instances["inf1.xlarge"].host_ms, "model", est.model)
        print("calls", sum(m.code.count("forward_v1") for m in model.modules()))
    """, saved)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got, want = np.load(saved / "got.npy"), np.load(saved / "want.npy")
    # fp32 simulation: only the order of summation differs from eager PyTorch
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert int(proc.stdout.split("calls")[-1]) == 2
    # the host work measured at trace time travels with the model
    assert float(proc.stdout.split("host ")[1].split()[0]) > 0
    assert "model _WithSin" in proc.stdout


def test_saved_model_without_import_says_to_import_torch_neuron(saved):
    proc = run_python("""
        import torch
        try:
            torch.jit.load("model.pt")
        except RuntimeError as exc:
            print("ERROR:", exc)
    """, saved)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Unknown builtin op: neuron::forward_v1" in proc.stdout
    assert "import torch_neuron before torch.jit.load" in proc.stdout
