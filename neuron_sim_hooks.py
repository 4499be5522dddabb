"""The import lines of the Neuron SDK's own packages, made to work where neuron-sim is installed.

Neuron users write `import torch.neuron`, `import tensorflow.neuron as tfn`, `import
tensorflow_neuron` and `import mxnet as mx` followed by `mx.neuron()`; the real packages answer
those by being installed. Here the plugins are `torch_neuron`, `tf_neuron` and `mx_neuron`, so
installing neuron-sim adds `neuron_sim_hooks.pth` to site-packages, whose one line imports this
module at interpreter start. It only registers a finder (standard library, well under 5 ms); the
finder acts only when one of those names is imported:

  * `torch.neuron`, `tensorflow.neuron`, `tensorflow_neuron`: the plugin is imported and the name
    becomes a module that reads every attribute from it (`torch.neuron.trace` is
    `torch_neuron.trace`);
  * `mxnet`: MXNet 1.9.1 is imported the way `mx_neuron` imports it (with the numpy alias it needs
    under numpy 1.24+), then `mx_neuron`, which adds `mx.neuron()` and `mx.contrib.neuron`.

Set NEURON_SIM_NO_IMPORT_HOOKS=1 to leave those imports to Python alone.
"""
from __future__ import annotations

import _thread
import os
import sys
import types

# the import system's own classes, without importing importlib's modules at interpreter start
ModuleSpec = sys.modules["_frozen_importlib"].ModuleSpec
PathFinder = sys.modules["_frozen_importlib_external"].PathFinder

#: imported name -> the neuron-sim plugin that answers it
ALIASES = {"torch.neuron": "torch_neuron", "tensorflow.neuron": "tf_neuron",
           "tensorflow_neuron": "tf_neuron"}
MXNET = "mxnet"
ENV_OFF = "NEURON_SIM_NO_IMPORT_HOOKS"


def _alias(name: str, target: types.ModuleType) -> types.ModuleType:
    """A module named `name` whose attributes are read from `target` (PEP 562)."""
    module = types.ModuleType(name, target.__doc__)
    module.__getattr__ = lambda attr: getattr(target, attr)
    module.__dir__ = lambda: dir(target)
    module.__all__ = list(getattr(target, "__all__", ()))
    return module


class _Loader:
    """Makes the module by `make()` (the plugin's own import does the work)."""

    def __init__(self, make):
        self._make = make

    def create_module(self, spec):
        return self._make()

    def exec_module(self, module):
        pass


class NeuronImportFinder:
    """Answers the Neuron SDK's import names (see the module docstring); passes on all others."""

    def __init__(self):
        self._busy = _thread._local()

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in ALIASES and fullname != MXNET:
            return None
        if getattr(self._busy, "active", False) or os.environ.get(ENV_OFF) == "1":
            return None
        self._busy.active = True
        try:
            if fullname == MXNET:
                return self._mxnet_spec()
            plugin = ALIASES[fullname]
            if not _findable(plugin):
                return None
        finally:
            self._busy.active = False
        return ModuleSpec(fullname, _Loader(lambda: _alias(fullname, self._import(plugin))))

    def _mxnet_spec(self):
        """MXNet itself, imported through mx_neuron; None when mxnet or mx_neuron is absent."""
        if "mx_neuron" in sys.modules:   # mx_neuron is importing mxnet itself: the real import
            return None
        real = PathFinder.find_spec(MXNET)
        if real is None or not _findable("mx_neuron"):
            return None

        def make():
            self._import("mx_neuron")   # imports mxnet (the real one) and adds mx.neuron()
            return sys.modules[MXNET]
        spec = ModuleSpec(MXNET, _Loader(make), origin=real.origin, is_package=True)
        spec.submodule_search_locations = real.submodule_search_locations
        return spec

    def _import(self, name: str) -> types.ModuleType:
        """Import `name` with this finder out of the way (its own imports are the real ones)."""
        import importlib
        self._busy.active = True
        try:
            return importlib.import_module(name)
        finally:
            self._busy.active = False


def _findable(name: str) -> bool:
    """Whether top-level module `name` can be imported (asked of the other finders)."""
    import importlib.util
    return importlib.util.find_spec(name) is not None


def install() -> None:
    """Register the finder once (what the .pth line does)."""
    if not any(isinstance(f, NeuronImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, NeuronImportFinder())


install()
