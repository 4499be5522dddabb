import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if "NEURON_SIM_CACHE_DIR" not in os.environ:
    # the suite's built programs go to a cache of its own (the workers inherit it), not the user's
    _cache = tempfile.mkdtemp(prefix="neuron-sim-test-cache-")
    os.environ["NEURON_SIM_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, True)
