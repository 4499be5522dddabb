import atexit
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


@pytest.fixture
def fresh_runtime(monkeypatch, tmp_path_factory):
    """A fresh neuron_core Runtime as the default for one test: its device manager reads an
    environment without NEURON_SIM_NUM_CHIPS / NEURON_RT_VISIBLE_CORES / NEURON_RT_NUM_CORES (set
    them in the test to change it), it publishes its process state to a directory of its own,
    and the process's own runtime comes back afterwards as it was. Memos of machine facts are
    shared with it."""
    from neuron_core.runtime.context import Runtime, use
    from neuron_core.runtime.device import ENV_NUM_CHIPS, ENV_NUM_CORES, ENV_VISIBLE_CORES
    from neuron_core.runtime.state import ENV_STATE_DIR
    for var in (ENV_NUM_CHIPS, ENV_VISIBLE_CORES, ENV_NUM_CORES):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path_factory.mktemp("runtime") / "state"))
    with use(Runtime.fresh()) as runtime:
        yield runtime
        runtime.close()
