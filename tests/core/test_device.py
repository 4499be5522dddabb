"""The simulated device manager: memory accounting, out-of-memory messages, env parsing, threads."""
from __future__ import annotations

import threading

import pytest

from neuron_core.errors import NeuronError, ResourceError, Status
from neuron_core.runtime.device import (CORE_MEMORY_BYTES, CORES_PER_CHIP, DeviceManager, get_device_manager,
                                        make_devices, parse_core_list, reset_device_manager)

GiB, MiB = 1024**3, 1024**2


pytestmark = pytest.mark.usefixtures("fresh_runtime")


def test_default_is_one_chip_of_four_cores():
    m = DeviceManager.from_env()
    assert CORES_PER_CHIP == 4 and CORE_MEMORY_BYTES == 2 * GiB
    assert len(m.devices) == 1 and m.devices[0].memory_bytes == 8 * GiB
    assert m.visible_cores == (0, 1, 2, 3)
    assert all(u.total == 2 * GiB and u.used == 0 and u.owners == () for u in m.usage().values())


def test_allocate_and_free_accounting():
    m = DeviceManager()
    a = m.allocate(GiB, owner="bert")
    b = m.allocate(512 * MiB, owner="resnet")
    c = m.allocate(GiB, owner="bert")  # 2.5 GiB do not fit on core 0: goes to core 1
    assert (a.core, b.core, c.core) == (0, 0, 1)
    usage = m.usage()
    assert usage[0].used == GiB + 512 * MiB and usage[0].owners == ("bert", "resnet")
    assert usage[0].free == 512 * MiB and usage[1].used == GiB and usage[2].used == 0
    m.free(a)
    m.free(a)  # idempotent
    assert m.usage()[0].used == 512 * MiB and m.usage()[0].owners == ("resnet",)
    assert m.allocate(GiB, owner="x", core=0).core == 0
    m.free(b)
    m.free(c)
    assert m.usage()[1].used == 0


def test_allocation_fills_a_core_exactly():
    m = DeviceManager()
    full = m.allocate(2 * GiB, owner="big", core=3)
    assert m.usage()[3].free == 0
    with pytest.raises(ResourceError):
        m.allocate(1, owner="one byte", core=3)
    m.free(full)
    assert m.allocate(0, owner="nothing", core=3).nbytes == 0


def test_out_of_memory_message_on_one_core():
    m = DeviceManager()
    m.allocate(GiB, owner="bert", core=0)
    with pytest.raises(ResourceError) as info:
        m.allocate(1536 * MiB, owner="resnet50", core=0)
    text = str(info.value)
    assert info.value.status == Status.RESOURCE and text.startswith("[RESOURCE] not enough device memory on NeuronCore 0")
    assert "needs 1536.0 MiB (1610612736 bytes)" in text
    assert ("NeuronCore 0: 1024.0 MiB (1073741824 bytes) of 2048.0 MiB (2147483648 bytes) occupied "
            "(by 'bert'), 1024.0 MiB (1073741824 bytes) free") in text
    assert "Unload a model" in text and "NEURON_RT_VISIBLE_CORES" in text


def test_out_of_memory_message_on_every_visible_core(monkeypatch):
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1-2")
    m = DeviceManager.from_env()
    m.allocate(2 * GiB - 100, owner="a")
    m.allocate(GiB + 1, owner="b")
    with pytest.raises(ResourceError) as info:
        m.allocate(GiB, owner="c")
    text = str(info.value)
    assert "on any of the 2 visible NeuronCores for 'c': needs 1024.0 MiB (1073741824 bytes)" in text
    assert "NeuronCore 1: 2048.0 MiB (2147483548 bytes) of 2048.0 MiB (2147483648 bytes) occupied (by 'a')" in text
    assert "NeuronCore 2: 1024.0 MiB (1073741825 bytes) of 2048.0 MiB (2147483648 bytes) occupied" in text
    assert "NeuronCore 0" not in text


def test_larger_than_a_core_suggests_pipelining():
    with pytest.raises(ResourceError, match="neuroncore-pipeline-cores"):
        DeviceManager().allocate(3 * GiB, owner="gpt")


@pytest.mark.parametrize("core, message", [(7, "does not exist"), (-1, "does not exist"),
                                           ("0", "does not exist"), (2, "not visible")])
def test_bad_core_is_load_not_enough_nc(core, message):
    m = DeviceManager(visible_cores=[0, 1])
    with pytest.raises(ResourceError, match=message) as info:
        m.allocate(10, owner="m", core=core)
    assert info.value.status == Status.LOAD_NOT_ENOUGH_NC


@pytest.mark.parametrize("nbytes", [-1, 1.5, True])
def test_bad_size(nbytes):
    with pytest.raises(NeuronError, match="non-negative int"):
        DeviceManager().allocate(nbytes, owner="m")


@pytest.mark.parametrize("text, cores", [("0-1", [0, 1]), ("2", [2]), ("0,2,3", [0, 2, 3]),
                                         (" 3, 0-1 ,1", [0, 1, 3]), ("5-5", [5])])
def test_parse_core_list(text, cores):
    assert parse_core_list(text) == cores


@pytest.mark.parametrize("text", ["", "a", "1-", "-1", "3-1", "0;1", "0,,1", "1.5", "0-1-2"])
def test_parse_core_list_rejects(text):
    with pytest.raises(NeuronError, match=r"NEURON_RT_VISIBLE_CORES=.* is invalid: expected .*'0-1'"):
        parse_core_list(text)


def test_visible_cores_restrict_placement(monkeypatch):
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "2-3")
    m = get_device_manager()
    assert m.visible_cores == (2, 3) and list(m.usage()) == [2, 3]
    assert m.allocate(GiB, owner="a").core == 2
    assert m.allocate(1536 * MiB, owner="b").core == 3
    with pytest.raises(ResourceError, match="not visible"):
        m.allocate(1, owner="c", core=0)


def test_num_chips_and_num_cores(monkeypatch):
    monkeypatch.setenv("NEURON_SIM_NUM_CHIPS", "4")
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "4-15")
    monkeypatch.setenv("NEURON_RT_NUM_CORES", "3")
    m = DeviceManager.from_env()
    assert len(m.cores) == 16 and m.cores[13].chip == 3 and m.visible_cores == (4, 5, 6)
    monkeypatch.setenv("NEURON_RT_NUM_CORES", "0")
    assert len(DeviceManager.from_env().visible_cores) == 12


@pytest.mark.parametrize("var, value, expected", [
    ("NEURON_SIM_NUM_CHIPS", "0", "from 1 to 16"),
    ("NEURON_SIM_NUM_CHIPS", "two", "from 1 to 16"),
    ("NEURON_SIM_NUM_CHIPS", "17", "from 1 to 16"),
    ("NEURON_RT_NUM_CORES", "-1", "0 means all"),
    ("NEURON_RT_NUM_CORES", "2.0", "0 means all"),
    ("NEURON_RT_VISIBLE_CORES", "0..3", "'0,2,3'"),
])
def test_invalid_env_names_variable_value_and_form(monkeypatch, var, value, expected):
    monkeypatch.setenv(var, value)
    with pytest.raises(NeuronError) as info:
        get_device_manager()
    assert f"{var}={value!r} is invalid: expected" in str(info.value) and expected in str(info.value)


def test_env_asking_for_missing_cores(monkeypatch):
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "2-5")
    with pytest.raises(ResourceError, match=r"names NeuronCore 4, 5 but this machine has 4") as info:
        DeviceManager.from_env()
    assert info.value.status == Status.LOAD_NOT_ENOUGH_NC
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-1")
    monkeypatch.setenv("NEURON_RT_NUM_CORES", "3")
    with pytest.raises(ResourceError, match=r"NEURON_RT_NUM_CORES=3 asks for 3 NeuronCores but only 2"):
        DeviceManager.from_env()


def test_process_wide_manager_and_reset(monkeypatch):
    m = get_device_manager()
    assert get_device_manager() is m
    stale = m.allocate(GiB, owner="a")
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1")
    reset_device_manager()
    fresh = get_device_manager()
    assert fresh is not m and fresh.visible_cores == (1,)
    fresh.free(stale)  # an allocation of the old manager is ignored
    assert fresh.usage()[1].used == 0


def test_make_devices_numbers_cores_across_chips():
    devices = make_devices(2)
    assert [c.index for d in devices for c in d.cores] == list(range(8))
    assert [c.chip for c in devices[1].cores] == [1] * 4


def test_thread_safety_smoke():
    m = DeviceManager()
    errors: list[BaseException] = []
    peak: list[int] = []

    def worker(i: int) -> None:
        try:
            for j in range(300):
                try:
                    a = m.allocate(300 * MiB, owner=f"t{i}")
                except ResourceError:
                    continue
                peak.append(max(u.used for u in m.usage().values()))
                m.free(a)
                if j % 3 == 0:
                    m.free(a)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert max(peak) <= CORE_MEMORY_BYTES
    assert all(u.used == 0 and u.owners == () for u in m.usage().values())
