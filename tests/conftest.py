import atexit
import itertools
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if "NEURON_SIM_CACHE_DIR" not in os.environ:
    # the suite's built programs go to a cache of its own (the workers inherit it), not the user's
    _cache = tempfile.mkdtemp(prefix="neuron-sim-test-cache-")
    os.environ["NEURON_SIM_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)

# Each process of the suite (the xdist controller, each worker) is a simulated host of its own, so
# workers never contend for NeuronCores; each test then gives what it spawns a host of its own too
# (see simulated_host).
_hosts = tempfile.mkdtemp(prefix="neuron-sim-test-hosts-")
atexit.register(shutil.rmtree, _hosts, True)
os.environ.pop("NEURON_SIM_STATE_DIR", None)
os.environ["NEURON_SIM_HOST_DIR"] = os.path.join(_hosts, "process")
_tests = itertools.count()


@pytest.fixture(autouse=True)
def simulated_host(monkeypatch) -> Path:
    """The simulated host of one test: $NEURON_SIM_HOST_DIR names a directory of its own (created
    when first used) for the test's fresh runtimes and the processes it starts, while the
    process's default runtime keeps the host of the worker."""
    from neuron_core.runtime import context
    context.default()
    path = Path(_hosts) / f"test-{next(_tests)}"
    monkeypatch.setenv("NEURON_SIM_HOST_DIR", str(path))
    return path


@pytest.fixture
def fresh_runtime(monkeypatch, simulated_host):
    """A fresh neuron_core Runtime as the default for one test: its device manager reads an
    environment without NEURON_SIM_NUM_CHIPS / NEURON_RT_VISIBLE_CORES / NEURON_RT_NUM_CORES /
    NEURONCORE_GROUP_SIZES (set
    them in the test to change it), it owns cores and publishes its state on the test's simulated
    host, and the process's own runtime comes back afterwards as it was. Memos of machine facts
    are shared with it."""
    from neuron_core.runtime.context import Runtime, use
    from neuron_core.runtime.device import (ENV_GROUP_SIZES, ENV_NUM_CHIPS, ENV_NUM_CORES,
                                            ENV_VISIBLE_CORES)
    for var in (ENV_NUM_CHIPS, ENV_VISIBLE_CORES, ENV_NUM_CORES, ENV_GROUP_SIZES):
        monkeypatch.delenv(var, raising=False)
    with use(Runtime.fresh()) as runtime:
        yield runtime
        runtime.close()
