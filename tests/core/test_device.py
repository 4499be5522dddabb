"""The simulated device manager: memory accounting, out-of-memory messages, env parsing, threads."""
from __future__ import annotations

import threading

import pytest

from neuron_core.errors import NeuronError, ResourceError, Status
from neuron_core.runtime.device import (CORE_MEMORY_BYTES, CORES_PER_CHIP, DeviceManager, get_device_manager,
                                        make_devices, parse_core_list, parse_group_sizes,
                                        reset_device_manager)

GiB, MiB = 1024**3, 1024**2


pytestmark = pytest.mark.usefixtures("fresh_runtime")


def test_default_is_one_chip_of_four_cores():
    m = DeviceManager.from_env()
    assert CORES_PER_CHIP == 4 and CORE_MEMORY_BYTES == 2 * GiB
    assert len(m.devices) == 1 and m.devices[0].memory_bytes == 8 * GiB
    assert m.visible_cores == (0, 1, 2, 3)
    assert all(u.total == 2 * GiB and u.used == 0 and u.owners == () for u in m.usage().values())


def test_allocate_and_free_accounting():
    """Loads go to the least used core (fewest allocations, then the lowest index) where they fit,
    as the Neuron runtime places models."""
    m = DeviceManager()
    a = m.allocate(GiB, owner="bert")
    b = m.allocate(512 * MiB, owner="resnet")
    c = m.allocate(GiB, owner="bert")
    d = m.allocate(GiB, owner="bert")
    e = m.allocate(1536 * MiB, owner="big")  # every core holds one: core 0 has no room, core 1 has
    assert (a.core, b.core, c.core, d.core, e.core) == (0, 1, 2, 3, 1)
    usage = m.usage()
    assert usage[1].used == 2 * GiB and usage[1].owners == ("resnet", "big")
    assert usage[0].free == GiB and usage[2].used == GiB
    m.free(a)
    m.free(a)  # idempotent
    assert m.usage()[0].used == 0 and m.allocate(GiB, owner="x").core == 0
    assert m.allocate(GiB, owner="x", core=1 + 1).core == 2
    for x in (b, c, d, e):
        m.free(x)
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


def test_group_sizes_place_loads_group_after_group():
    """The torch-neuron placement guide's NEURONCORE_GROUP_SIZES=2,2 example: successive loads go
    to group 0, 1, 0, ..., each on its group's first core; a 2-core pipeline takes a whole group."""
    m = DeviceManager(groups="2,2")
    assert m.groups == ((0, 1), (2, 3))
    pipes = [[a.core for a in m.allocate_span([10, 10], owner=f"m{i}")] for i in range(2)]
    singles = [m.allocate(10, owner=f"m{i}").core for i in range(2, 5)]
    assert pipes == [[0, 1], [2, 3]] and singles == [0, 2, 0]


@pytest.mark.parametrize("text, sizes", [("2,2", [2, 2]), ("1,1,1,1", [1] * 4), ("4x1", [1] * 4),
                                         (" 1 , 3 ", [1, 3]), ("2x2", [2, 2])])
def test_group_sizes_forms(text, sizes):
    assert parse_group_sizes(text) == sizes


@pytest.mark.parametrize("text", ["", "0", "2,,2", "-1", "a", "0x2", "2x0"])
def test_bad_group_sizes(text):
    with pytest.raises(NeuronError, match=r"NEURONCORE_GROUP_SIZES=.* is invalid: expected group"):
        parse_group_sizes(text)


def test_group_sizes_within_visible_cores(monkeypatch):
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1-3")
    monkeypatch.setenv("NEURONCORE_GROUP_SIZES", "1,1")
    m = DeviceManager.from_env()
    assert m.groups == ((1,), (2,)) and m.visible_cores == (1, 2) and m.core_at(1) == 2
    monkeypatch.setenv("NEURONCORE_GROUP_SIZES", "2,2")
    with pytest.raises(ResourceError, match=r"NEURONCORE_GROUP_SIZES=2,2 asks for 4 NeuronCores but "
                                            r"3 are visible \(1-3\)") as info:
        DeviceManager.from_env()
    assert info.value.status == Status.LOAD_NOT_ENOUGH_NC


def test_a_pipeline_needs_its_cores():
    m = DeviceManager(visible_cores=[0, 1])
    with pytest.raises(ResourceError, match=r"'bert' runs on 4 NeuronCores \(compiled with "
                                            r"--neuroncore-pipeline-cores 4\) but this process has 2"):
        m.allocate_span([1] * 4, owner="bert")
    with pytest.raises(ResourceError, match=r"from NeuronCore 1, but this process has only 1 from"):
        m.allocate_span([1, 1], owner="bert", core=1)
    assert [a.core for a in m.allocate_span([1, 1], owner="bert")] == [0, 1]
    with pytest.raises(ResourceError, match=r"needs 2048.0 MiB .* on one NeuronCore \(its largest of "
                                            r"2 pipeline stages\)"):
        m.allocate_span([2 * GiB, 1], owner="big")


def test_core_at_counts_the_visible_cores():
    m = DeviceManager(visible_cores=[2, 3])
    assert [m.core_at(i) for i in (0, 1)] == [2, 3]
    with pytest.raises(ResourceError, match=r"NeuronCore index 2 is out of range: use 0 to 1"):
        m.core_at(2)
