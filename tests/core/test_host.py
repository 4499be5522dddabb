"""NeuronCores owned per process on a simulated host, with real processes: a core another process
owns cannot be loaded on (LOAD_NOT_ENOUGH_NC naming the owner and the free cores), a killed owner
frees its cores, NEURON_RT_NUM_CORES takes free cores, unloading everything gives them back, and
neuron-ls names the owners."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neuron_core import runtime
from neuron_core.errors import ResourceError, Status
from neuron_core.runtime import host as hosts
from neuron_core.runtime.context import Runtime, use
from tests.core.neff_fixtures import neff  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parents[2]

#: loads the NEFF, prints the cores it owns as JSON, then waits for stdin to close
OWNER = """
import json, os, sys
from neuron_core import runtime
from neuron_core.runtime import context
model = runtime.load(sys.argv[1])
print(json.dumps(list(context.default().devices.owned_cores)), flush=True)
sys.stdin.read()
"""


@pytest.fixture
def start_owner(neff, simulated_host):  # noqa: F811
    """start_owner(**env) -> (process, owned cores): a real process holding a model on the test's
    host; stopped and reaped afterwards."""
    procs = []

    def start(**extra):
        env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
        for var in ("NEURON_RT_VISIBLE_CORES", "NEURON_RT_NUM_CORES", "NEURONCORE_GROUP_SIZES"):
            if var not in extra:
                env.pop(var, None)
        proc = subprocess.Popen([sys.executable, "-c", OWNER, str(neff)], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        procs.append(proc)
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        return proc, json.loads(line)
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.stdin.close()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr, proc.stdin):
            if not stream.closed:
                stream.close()


def _load_elsewhere(neff, **env) -> subprocess.CompletedProcess:  # noqa: F811
    """Another process loading the NEFF on the test's host (and exiting at once)."""
    return subprocess.run([sys.executable, "-c", OWNER, str(neff)], capture_output=True, text=True,
                          input="", timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **env})


@pytest.fixture
def here(monkeypatch, simulated_host):
    """load(neff) in this process, on the test's host, with a fresh runtime per call of it."""
    for var in ("NEURON_RT_VISIBLE_CORES", "NEURON_RT_NUM_CORES", "NEURONCORE_GROUP_SIZES"):
        monkeypatch.delenv(var, raising=False)
    runtimes = []

    def load(path, **env):
        for var, value in env.items():
            monkeypatch.setenv(var, value)
        rt = Runtime.fresh()
        runtimes.append(rt)
        with use(rt):
            return runtime.load(path), rt
    yield load
    for rt in runtimes:
        rt.close()


def test_a_core_another_process_owns_is_not_enough_nc(start_owner, here, neff):  # noqa: F811
    owner, owned = start_owner()
    assert owned == [0, 1, 2, 3]
    with pytest.raises(ResourceError) as caught:
        here(neff)
    text = str(caught.value)
    assert caught.value.status is Status.LOAD_NOT_ENOUGH_NC
    assert text.startswith("[LOAD_NOT_ENOUGH_NC] this process asks for NeuronCore 0-3 (every core")
    assert f"NeuronCore 0-3 are owned by pid {owner.pid} (-c " in text
    assert "free on this host" in text and ": none." in text
    assert "NEURON_SIM_HOST_DIR" in text


def test_a_comma_list_owner_leaves_the_others_free(start_owner, here, neff):  # noqa: F811
    owner, owned = start_owner(NEURON_RT_VISIBLE_CORES="0,2")
    assert owned == [0, 2]
    with pytest.raises(ResourceError, match=rf"NeuronCore 0, 2 are owned by pid {owner.pid} .*free on this "
                                            r"host \(.*\): 1, 3\. To run, use the free ones with "
                                            r"NEURON_RT_VISIBLE_CORES=1,3 or NEURON_RT_NUM_CORES=2"):
        here(neff)
    model, rt = here(neff, NEURON_RT_VISIBLE_CORES="1,3")
    assert rt.devices.owned_cores == (1, 3) and model.core == 1


def test_num_cores_takes_free_cores(start_owner, here, neff):  # noqa: F811
    _, first = start_owner(NEURON_RT_NUM_CORES="2")
    model, rt = here(neff, NEURON_RT_NUM_CORES="2")
    assert first == [0, 1] and rt.devices.owned_cores == (2, 3) and model.core == 2
    third = _load_elsewhere(neff, NEURON_RT_NUM_CORES="1")
    assert third.returncode != 0
    assert re.search(r"asks for 1 of NeuronCore 0-3 \(NEURON_RT_NUM_CORES=1\).*free on this host "
                     r"\(.*\): none", third.stderr), third.stderr


def test_a_killed_owner_frees_its_cores(start_owner, here, neff):  # noqa: F811
    owner, _ = start_owner()
    with pytest.raises(ResourceError):
        here(neff)
    owner.send_signal(signal.SIGKILL)
    owner.wait(timeout=20)
    model, rt = here(neff)
    assert rt.devices.owned_cores == (0, 1, 2, 3) and model.core == 0


def test_unloading_everything_gives_the_cores_back(start_owner, here, neff):  # noqa: F811
    model, rt = here(neff)
    other, _ = here(neff)       # a second runtime of this process shares its cores
    assert rt.devices.owned_cores == (0, 1, 2, 3) and hosts.owned(rt.host) == [0, 1, 2, 3]
    proc = _load_elsewhere(neff)
    assert proc.returncode != 0 and f"owned by pid {os.getpid()}" in proc.stderr
    # the runtime's ERROR line (NEURON_RT_LOG_LEVEL's default) comes before the traceback
    assert proc.stderr.startswith("ERROR:Neuron.runtime:[LOAD_NOT_ENOUGH_NC] this process asks")
    model.unload()
    assert hosts.owned(rt.host) == [0, 1, 2, 3]    # the other model still holds them
    other.unload()
    assert hosts.owned(rt.host) == [] and rt.devices.owned_cores == ()
    _, owned = start_owner()
    assert owned == [0, 1, 2, 3]


def test_reset_gives_the_cores_back(here, neff):  # noqa: F811
    _, rt = here(neff)
    assert hosts.owned(rt.host) == [0, 1, 2, 3]
    rt.reset_devices()
    assert hosts.owned(rt.host) == []


def test_neuron_ls_names_the_owner(start_owner, simulated_host):
    owner, _ = start_owner(NEURON_RT_VISIBLE_CORES="1-2")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "neuron_core.tools.neuron_ls", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    inv = json.loads(out.stdout)
    assert [c["owner"] for c in inv["neuroncores"]] == [None, owner.pid, owner.pid, None]
    proc = next(p for p in inv["processes"] if p["pid"] == owner.pid)
    assert proc["owned_cores"] == [1, 2] and proc["cores"] == [1]
    table = subprocess.run([sys.executable, "-m", "neuron_core.tools.neuron_ls"], env=env,
                           capture_output=True, text=True, timeout=60).stdout
    row = next(line for line in table.splitlines() if line.startswith("| nc2 "))
    assert f"| {owner.pid} " in row


def test_a_forked_child_owns_nothing(tmp_path):
    host = tmp_path / "host"
    hosts.claim(host, [0])
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:    # the child: only syscalls and os._exit
            try:
                try:
                    hosts.claim(host, [0])
                    answer = "claimed"
                except hosts.CoresTaken:
                    answer = f"taken {hosts.owned(host)}"
            except BaseException as exc:   # noqa: BLE001
                answer = repr(exc)
            os.write(write, answer.encode())
            os._exit(0)
        os.close(write)
        deadline = time.monotonic() + 30
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("the forked child did not answer")
            time.sleep(0.01)
        assert os.read(read, 200).decode() == "taken []"
        os.close(read)
    finally:
        hosts.release(host, [0])
    assert hosts.owners(host) == {}


def test_host_dir_falls_back_to_the_old_name_and_the_user_dir():
    assert hosts.host_dir({"NEURON_SIM_HOST_DIR": "/a", "NEURON_SIM_STATE_DIR": "/b"}) == Path("/a")
    assert hosts.host_dir({"NEURON_SIM_STATE_DIR": "/b"}) == Path("/b")
    assert hosts.host_dir({}).name == f"neuron-sim-{os.getuid()}"


def test_the_runtime_logs_where_neuron_rt_log_location_says(neff, tmp_path):  # noqa: F811
    log = tmp_path / "nrt.log"
    proc = subprocess.run([sys.executable, "-c", OWNER, str(neff)], capture_output=True, text=True,
                          input="", timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "NEURON_RT_LOG_LEVEL": "info",
                               "NEURON_RT_LOG_LOCATION": str(log)})
    assert proc.returncode == 0, proc.stderr
    text = log.read_text()
    assert re.search(r"INFO Neuron.runtime pid=[0-9]+: this process owns NeuronCore 0-3 on ", text)
    assert "loaded cnn.neff on NeuronCore 0: " in text and "Neuron.runtime" not in proc.stderr


def test_group_sizes_own_the_cores_of_the_groups(start_owner, here, neff):  # noqa: F811
    _, owned = start_owner(NEURONCORE_GROUP_SIZES="1,1")
    model, rt = here(neff, NEURON_RT_NUM_CORES="2")
    assert owned == [0, 1] and rt.devices.owned_cores == (2, 3) and model.core == 2


def test_an_unusable_host_dir_says_so(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    from neuron_core.runtime.device import DeviceManager
    manager = DeviceManager(host=blocker / "host")
    with pytest.raises(ResourceError, match=r"cannot take NeuronCores on the simulated host .*file/host"
                                            r".*point NEURON_SIM_HOST_DIR at one that is"):
        manager.allocate(1, owner="m")
