"""torch.neuron.DataParallel: replicas on several NeuronCores, dynamic batching, and its errors."""
from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch")
torch_neuron = pytest.importorskip("torch_neuron")

from neuron_core.errors import BadInputError, NeuronError  # noqa: E402
from neuron_core.runtime.device import get_device_manager  # noqa: E402

from .nets import family  # noqa: E402


def _small():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(8 * 6 * 6, 5)).eval()


@pytest.fixture(scope="module")
def traced():
    model = _small()
    return model, torch.neuron.trace(model, torch.randn(2, 3, 8, 8))


def test_dynamic_batching_splits_any_batch_over_the_cores(traced, fp32):
    model, neuron = traced
    parallel = torch.neuron.DataParallel(neuron, device_ids=[1, 2, 3])
    before = {c: u.used for c, u in get_device_manager().usage().items()}
    x = torch.randn(7, 3, 8, 8)   # slices 3, 2, 2; the slice of 3 runs as 2 + 1 padded to 2
    with torch.no_grad():
        got, want = parallel(x), model(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    after = get_device_manager().usage()
    assert all(after[c].used > before[c] for c in (1, 2, 3)), (before, after)


def test_a_replica_reuses_the_model_already_loaded_on_its_core(fp32):
    before = {c: u.used for c, u in get_device_manager().usage().items()}
    neuron = torch.neuron.trace(_small(), torch.randn(2, 3, 8, 8))   # runs it: loads it
    used = {c: u.used for c, u in get_device_manager().usage().items()}
    core, = [c for c in used if used[c] > before[c]]                 # where it landed
    torch.neuron.DataParallel(neuron, device_ids=[core])(torch.randn(4, 3, 8, 8))
    assert get_device_manager().usage()[core].used == used[core]


def test_without_dynamic_batching_the_batch_is_cores_times_compiled(traced, fp32):
    model, neuron = traced
    parallel = torch.neuron.DataParallel(neuron, device_ids=[0, 1])
    parallel.disable_dynamic_batching()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(parallel(x), model(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(BadInputError, match=r"input.shape\[0\]=6 .* 2 NeuronCores.* = 4"):
        parallel(torch.randn(6, 3, 8, 8))


def test_structured_outputs_and_a_loaded_model(tmp_path, fp32):
    class Two(torch.nn.Module):
        def forward(self, x, y):
            return {"sum": torch.relu(x + y) * 2.0, "prod": torch.tanh(x * y) + 1.0}
    model = Two().eval()
    example = (torch.randn(1, 6), torch.randn(1, 6))
    torch.jit.save(torch.neuron.trace(model, example), str(tmp_path / "two.pt"))
    parallel = torch.neuron.DataParallel(torch.jit.load(str(tmp_path / "two.pt")))
    x, y = torch.randn(5, 6), torch.randn(5, 6)
    got, want = parallel(x, y), model(x, y)
    assert set(got) == {"sum", "prod"}
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-6)


def test_model_traced_with_dynamic_batch_takes_whole_slices(fp32):
    # traced with a batch of 1, as users do: the batch must not be specialised to 1
    model = family("resnet")
    neuron = torch.neuron.trace(model, torch.randn(1, 3, 32, 32), dynamic_batch_size=True)
    parallel = torch.neuron.DataParallel(neuron, device_ids=[0, 1])
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(parallel(x), model(x), rtol=1e-4, atol=1e-4)


def test_dim_other_than_zero_splits_that_dim_without_dynamic_batching(fp32, caplog):
    model = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 1), torch.nn.ReLU()).eval()
    neuron = torch.neuron.trace(model, torch.randn(2, 3, 5))
    with caplog.at_level(logging.WARNING, logger="Neuron"):
        parallel = torch.neuron.DataParallel(neuron, device_ids=[0, 1], dim=2)
    assert not parallel.dynamic_batching and "dynamic batching is off" in caplog.text
    x = torch.randn(2, 3, 10)   # 2 cores x the traced length 5
    with torch.no_grad():
        torch.testing.assert_close(parallel(x), model(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(BadInputError, match=r"input.shape\[2\]=8 .* = 10"):
        parallel(torch.randn(2, 3, 8))
    with pytest.raises(NeuronError, match=r"dim=3 is not a dimension .* \(2, 3, 5\)"):
        torch.neuron.DataParallel(neuron, dim=3)


def test_outputs_that_do_not_carry_the_batch_are_refused(fp32):
    class WithTotal(torch.nn.Module):
        def forward(self, x):
            y = torch.relu(x * 2.0)
            return y, y.sum()
    neuron = torch.neuron.trace(WithTotal().eval(), torch.randn(2, 4))
    parallel = torch.neuron.DataParallel(neuron, device_ids=[0, 1])
    for batch in (4, 3):   # slices equal to the traced batch, and padded pieces
        with pytest.raises(BadInputError, match=r"output 1 has shape \(\) .*reduce after"):
            parallel(torch.randn(batch, 4))


def test_a_copy_runs_on_its_own_threads(traced, fp32):
    import copy
    parallel = torch.neuron.DataParallel(traced[1], device_ids=[0, 1])
    x = torch.randn(3, 3, 8, 8)
    first = parallel(x)
    torch.testing.assert_close(copy.deepcopy(parallel)(x), first)


@pytest.mark.parametrize("kwargs, match", [
    (dict(device_ids=[0, 99]), r"device_ids=\[0, 99\] must name distinct NeuronCores visible"),
    (dict(device_ids=[1, 1]), r"distinct"),
    (dict(device_ids=["gpu"]), r"device_ids holds 'gpu'"),
    (dict(device_ids=7), r"device_ids=7 must name distinct NeuronCores visible"),
    (dict(dim=-1), r"dim must be a non-negative int"),
])
def test_bad_arguments_say_what_to_do(traced, kwargs, match):
    with pytest.raises(NeuronError, match=match):
        torch.neuron.DataParallel(traced[1], **kwargs)


def test_an_untraced_module_is_refused():
    with pytest.raises(NeuronError, match="torch.neuron.trace"):
        torch.neuron.DataParallel(_small())


def test_inputs_of_different_batch_sizes_are_refused(fp32):
    model = torch.nn.Bilinear(3, 4, 2).eval()
    neuron = torch.neuron.trace(model, (torch.randn(2, 3), torch.randn(2, 4)))
    parallel = torch.neuron.DataParallel(neuron, device_ids=[0, 1])
    with pytest.raises(BadInputError, match=r"sizes there differ: \{0: 4, 1: 3\}"):
        parallel(torch.randn(4, 3), torch.randn(3, 4))
    with pytest.raises(BadInputError, match="empty batch"):
        parallel(torch.randn(0, 3), torch.randn(0, 4))


def test_device_ids_count_the_visible_cores_from_zero(traced, fp32, fresh_runtime, monkeypatch):
    """As in torch-neuron, with NEURON_RT_VISIBLE_CORES=2-3 'nc:0' is NeuronCore 2."""
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "2-3")
    model, neuron = traced
    parallel = torch.neuron.DataParallel(neuron, device_ids=["nc:0", 1])
    assert parallel.device_ids == [2, 3]
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(parallel(x), model(x), rtol=1e-5, atol=1e-6)
    assert all(u.used > 0 for u in fresh_runtime.devices.usage().values())
    with pytest.raises(NeuronError, match=r"counted from 0: 0 to 1 \(they are NeuronCores \[2, 3\]"):
        torch.neuron.DataParallel(neuron, device_ids=[2])
