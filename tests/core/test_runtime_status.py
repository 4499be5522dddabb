"""Runtime status codes, the execution timeout on simulated device time, and run_async's bounded
queue: every runtime error carries its nrt status (as `err.status`, an IntEnum, and first in its
message), and many threads queueing at once get exactly the serial results."""
from __future__ import annotations

import concurrent.futures
import threading
import time

import numpy as np
import pytest

from neuron_core.compiler import compile_graph, parse_compiler_args
from neuron_core.errors import (BadInputError, NeffFormatError, NeffVersionError, RuntimeStatusError,
                                Status)
from neuron_core.frontends.onnx_import import from_onnx
from neuron_core.models.builders import resnet, small_cnn
from neuron_core.runtime import load
from neuron_core.runtime import model as runtime_model

X = np.random.default_rng(0).standard_normal((1, 3, 32, 32), np.float32)


@pytest.fixture(scope="module")
def data() -> bytes:
    return compile_graph(from_onnx(small_cnn()), parse_compiler_args([])).to_bytes()


def test_status_codes_are_nrt_s_numbers():
    assert (Status.SUCCESS, Status.RESOURCE, Status.TIMEOUT, Status.QUEUE_FULL,
            Status.LOAD_NOT_ENOUGH_NC, Status.UNSUPPORTED_NEFF_VERSION, Status.CLOSED,
            Status.EXEC_BAD_INPUT) == (0, 4, 5, 7, 9, 10, 14, 1002)
    assert NeffFormatError.status == Status.INVALID
    assert NeffVersionError.status == Status.UNSUPPORTED_NEFF_VERSION
    assert str(RuntimeStatusError("x", "TIMEOUT")) == "[TIMEOUT] x"


def test_running_an_unloaded_model_is_closed(data):
    model = load(data)
    model.unload()
    for call in (model.run, model.run_async):
        with pytest.raises(RuntimeStatusError, match=r"^\[CLOSED\] .* was unloaded") as caught:
            call([X])
        assert caught.value.status is Status.CLOSED


def test_bad_input_is_exec_bad_input(data):
    with pytest.raises(BadInputError) as caught:
        load(data).run([X[:, :2]])
    assert caught.value.status == 1002 and str(caught.value).startswith("[EXEC_BAD_INPUT]")


def test_the_timeout_is_measured_in_simulated_device_time(data, monkeypatch):
    model = load(data)
    device_s = model.timeline().device_s
    monkeypatch.setenv("NEURON_RT_EXEC_TIMEOUT", repr(device_s / 2))
    with pytest.raises(RuntimeStatusError, match=r"^\[TIMEOUT\] .*more than "
                                                 r"NEURON_RT_EXEC_TIMEOUT") as caught:
        model.run([X])
    assert caught.value.status is Status.TIMEOUT
    monkeypatch.setenv("NEURON_RT_EXEC_TIMEOUT", repr(device_s * 2))
    assert model.run([X])[0].shape == (1, 10)
    monkeypatch.setenv("NEURON_RT_EXEC_TIMEOUT", "soon")
    with pytest.raises(RuntimeStatusError, match=r"NEURON_RT_EXEC_TIMEOUT='soon' is not"):
        model.run([X])


def test_run_async_from_16_threads_gives_the_serial_results(data):
    model = load(data)
    inputs = [np.random.default_rng(i).standard_normal((1, 3, 32, 32), np.float32)
              for i in range(16)]
    serial = [model.run([x])[0] for x in inputs]
    errors, mismatches = [], []

    def client(t: int) -> None:
        try:
            futures, deadline = [], time.monotonic() + 120
            for i in range(100):
                while True:
                    try:
                        futures.append((i, model.run_async([inputs[(t + i) % 16]])))
                        break
                    except RuntimeStatusError as exc:   # queue full: back off, retry
                        if exc.status is not Status.QUEUE_FULL or time.monotonic() > deadline:
                            raise
                        pending = [f for _, f in futures if not f.done()]
                        if pending:                     # the slots may all be other threads'
                            concurrent.futures.wait(pending[:1], timeout=1)
                        else:
                            time.sleep(0.001)
            for i, f in futures:
                if not np.array_equal(f.result(timeout=60)[0], serial[(t + i) % 16]):
                    mismatches.append((t, i))
        except Exception as exc:   # noqa: BLE001  (collected, asserted below)
            errors.append(exc)
    threads = [threading.Thread(target=client, args=(t,)) for t in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and mismatches == []


def test_the_queue_is_bounded_and_a_full_one_says_so(monkeypatch):
    """With one request allowed in flight, a second submitted while the first runs (a ResNet-18:
    milliseconds, against microseconds between the two submissions) is QUEUE_FULL; once the
    first is done the slot is free again."""
    monkeypatch.setenv("NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS", "1")
    model = load(compile_graph(from_onnx(resnet(18, image=64)), parse_compiler_args([])).to_bytes())
    x = np.zeros((1, 3, 64, 64), np.float32)
    first = model.run_async([x])
    with pytest.raises(RuntimeStatusError, match=r"^\[QUEUE_FULL\] .*1 requests are already in "
                                                 "flight") as caught:
        model.run_async([x])
    assert caught.value.status is Status.QUEUE_FULL
    first.result(timeout=60)
    concurrent.futures.wait([model.run_async([x])], timeout=60)


def test_requests_queued_when_the_model_is_unloaded_fail_closed(data):
    model = load(data)
    futures = [model.run_async([X]) for _ in range(20)]
    model.unload()
    outcomes = set()
    for f in futures:
        try:
            f.result(timeout=60)
            outcomes.add("ran")
        except RuntimeStatusError as exc:
            outcomes.add(exc.status)
    assert outcomes <= {"ran", Status.CLOSED}


def test_the_defaults_are_documented_values(monkeypatch):
    monkeypatch.delenv("NEURON_RT_EXEC_TIMEOUT", raising=False)
    monkeypatch.setenv("NEURON_RT_ASYNC_EXEC_MAX_INFLIGHT_REQUESTS", "0")
    assert runtime_model.exec_timeout() == runtime_model.DEFAULT_TIMEOUT_S == 30.0
    assert runtime_model.max_inflight() == runtime_model.DEFAULT_INFLIGHT


def test_a_pipelined_neff_holds_memory_on_its_cores(fresh_runtime, monkeypatch):
    """--neuroncore-pipeline-cores 2: the NEFF loads on 2 consecutive cores, each holding its
    stage's weights; every weight is on the stage that reads it, and the outputs are those of the
    one-core NEFF. A process with one core is LOAD_NOT_ENOUGH_NC."""
    graph = from_onnx(resnet(18, image=32))
    one = load(compile_graph(graph, parse_compiler_args([])).to_bytes())
    want = one.run([X])[0]
    one.unload()
    data = compile_graph(graph, parse_compiler_args(["--neuroncore-pipeline-cores", "2"])).to_bytes()
    model = load(data)
    assert model.cores == [0, 1] and len(model.stages) == 2 and model.stages[0][0] == 0
    used = fresh_runtime.devices.usage()
    assert used[0].used > 0 and used[1].used > 0
    weights = {b.id: b.nbytes for b in model.program.buffers if b.kind == "weight"}
    per_stage = []
    for a, b in model.stages:
        read = {i for ins in model.program.instrs[a:b] for i in ins.inputs if i in weights}
        per_stage.append(sum(weights[i] for i in read))
    assert [x.nbytes >= w for x, w in zip(model.allocations, per_stage)] == [True, True]
    assert sum(per_stage) >= sum(weights.values())
    np.testing.assert_array_equal(model.run([X])[0], want)
    model.unload()
    assert fresh_runtime.devices.usage()[1].used == 0
    fresh_runtime.reset_devices()
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "3")
    with pytest.raises(RuntimeStatusError, match=r"runs on 2 NeuronCores \(compiled with "
                                                 r"--neuroncore-pipeline-cores 2\) but this process "
                                                 r"has 1 \(3\)") as caught:
        load(data)
    assert caught.value.status is Status.LOAD_NOT_ENOUGH_NC


@pytest.mark.parametrize("value", [{"a": 1}, 0, 65, "4", 2.0])
def test_a_damaged_pipeline_option_is_a_format_error(data, value):
    import copy

    from neuron_core.neff import read_neff, to_bytes
    neff = read_neff(data)
    metadata = copy.deepcopy(neff.metadata)
    metadata["options"]["neuroncore_pipeline_cores"] = value
    damaged = to_bytes(metadata, neff.program, dict(neff.weights),
                       compiler_version=neff.compiler_version)
    with pytest.raises(NeffFormatError, match=r"metadata.options.neuroncore_pipeline_cores"):
        load(damaged)
