"""Import MXNet 1.9.1 under numpy 1.24+: restore the `np.bool` alias it still references, and say
what to do when mxnet was already imported (and failed) before this plugin could restore it."""
from __future__ import annotations

import importlib.util
import sys

import numpy as np

from neuron_core._cpu import openblas_kernel
from neuron_core.errors import NeuronError


class MXNetMissingError(NeuronError, ImportError):
    """mxnet is not installed (an ImportError too, so `pytest.importorskip` skips)."""


def import_mxnet():
    """Return the `mxnet` module, importing it with the numpy aliases MXNet 1.9.1 needs."""
    if importlib.util.find_spec("mxnet") is None:
        raise MXNetMissingError("mx_neuron needs MXNet 1.9.1: pip install 'neuron-sim[mx]' "
                                "(mxnet==1.9.1 with numpy<2)")
    major = int(np.__version__.split(".")[0])
    if major >= 2:
        raise NeuronError(f"mx_neuron: MXNet 1.9.1 needs numpy < 2, found numpy {np.__version__}; "
                          "install numpy 1.26 (pip install 'numpy<2')")
    if np.__dict__.get("bool") is not bool:
        # numpy 1.24 removed the alias; MXNet 1.9.1 still uses it in its type tables
        np.bool = bool  # type: ignore[attr-defined]
    if "mxnet" not in sys.modules:
        # An earlier `import mxnet` that failed on the missing alias leaves its submodules in
        # sys.modules but not the package: drop them so mxnet imports whole, in order
        for name in [m for m in sys.modules if m.startswith("mxnet.")]:
            del sys.modules[name]
    try:
        with openblas_kernel("mxnet"):   # MXNet loads an OpenBLAS of its own
            import mxnet
    except Exception as exc:
        raise NeuronError(f"mx_neuron: importing mxnet 1.9.1 failed ({type(exc).__name__}: "
                          f"{exc}). "
                          "Import mx_neuron before mxnet (or run `import numpy as np; np.bool = "
                          "bool` first) in a fresh Python process, with numpy < 2 "
                          "installed") from exc
    return mxnet
