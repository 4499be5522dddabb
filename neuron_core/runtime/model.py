"""The framework-free runtime API: load a NEFF onto a simulated NeuronCore and run it.

    model = neuron_core.runtime.load("model.neff")
    outputs = model.run({"x": x})
"""
from __future__ import annotations

import logging
import os
import time

import numpy as np

from .. import dtypes
from ..compiler.program import Program
from ..errors import BadInputError, NeffFormatError, NeuronError
from .device import get_device_manager
from .executor import PRECISIONS, Executor

log = logging.getLogger("Neuron")


class Model:
    """A NEFF loaded on a NeuronCore. Call `run(inputs)`; `unload()` frees its device memory."""

    def __init__(self, neff, precision: str, core: int | None = None):
        self.neff = neff
        self.metadata = neff.metadata
        self.precision = precision
        try:
            self.program = Program.from_json(neff.program)
        except (KeyError, TypeError, ValueError) as exc:
            raise NeffFormatError(f"NEFF program section is malformed: {exc}") from None
        self.inputs = [(d["name"], tuple(d["shape"]), d["dtype"]) for d in self.metadata["inputs"]]
        self.outputs = [(d["name"], tuple(d["shape"]), d["dtype"]) for d in self.metadata["outputs"]]
        owner = f"pid {os.getpid()}: {self.metadata.get('source') or neff.path or 'model'}"
        self.allocation = get_device_manager().allocate(
            int(self.program.memory.get("total_bytes", 0)), owner=owner, core=core)
        try:
            self._executor = Executor(self.program, neff.weights, precision)
        except BaseException:
            get_device_manager().free(self.allocation)
            raise
        self.loaded = True

    @property
    def core(self) -> int:
        return self.allocation.core

    def _check_inputs(self, inputs) -> list:
        expected = self.inputs
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, dict):
            names = [n for n, _, _ in expected]
            unknown = [k for k in inputs if k not in names]
            missing = [n for n in names if n not in inputs]
            if unknown or missing:
                raise BadInputError(f"inputs by name do not match the model: missing {missing}, "
                                    f"unknown {unknown}; the model's inputs are {names}")
            inputs = [inputs[n] for n in names]
        inputs = list(inputs)
        if len(inputs) != len(expected):
            raise BadInputError(f"model takes {len(expected)} inputs "
                                f"({', '.join(n for n, _, _ in expected)}), got {len(inputs)}")
        checked = []
        for arr, (name, shape, dtype) in zip(inputs, expected):
            if not isinstance(arr, np.ndarray):
                raise BadInputError(f"input {name!r} must be a numpy array, got "
                                    f"{type(arr).__name__}")
            if tuple(arr.shape) != shape:
                raise BadInputError(f"input {name!r} has shape {tuple(arr.shape)}, expected {shape}")
            if arr.dtype != dtypes.to_numpy(dtype):
                raise BadInputError(f"input {name!r} has dtype {arr.dtype.name}, expected {dtype}; "
                                    f"convert it with .astype(np.{dtype})")
            checked.append(arr)
        return checked

    def run(self, inputs) -> list:
        """Execute once. `inputs`: one array, a list in declared order, or a name -> array dict.
        Returns the outputs as a list of numpy arrays in declared order."""
        if not self.loaded:
            raise NeuronError("model was unloaded; load the NEFF again to run it")
        args = self._check_inputs(inputs)
        started = time.perf_counter()
        outs = self._executor.run(args)
        log.debug("executed %s in %.2f ms", self.metadata.get("source"),
                  1e3 * (time.perf_counter() - started))
        result = []
        for arr, (_, _, dtype) in zip(outs, self.outputs):
            want = dtypes.to_numpy(dtype)
            if (arr.dtype != want or arr.base is not None or not arr.flags.writeable
                    or any(np.may_share_memory(arr, a) for a in args)):
                arr = np.array(arr, dtype=want)
            result.append(arr)
        return result

    def unload(self) -> None:
        """Free the device memory this model holds (idempotent)."""
        if self.loaded:
            get_device_manager().free(self.allocation)
            self.loaded = False
            self._executor = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unload()

    def __repr__(self) -> str:
        ins = ", ".join(f"{n}: {dtypes.SHORT[d]}{list(s)}" for n, s, d in self.inputs)
        return f"<neuron Model ({ins}) on core {self.core}, precision={self.precision}>"


def load(neff, precision: str | None = None, core: int | None = None) -> Model:
    """Load a NEFF (path or bytes) onto a simulated NeuronCore.

    Args:
        neff: path to a .neff file, or its bytes.
        precision: "hardware" (BF16/FP16 as compiled, the default) or "fp32" (every cast skipped);
            defaults to $NEURON_SIM_PRECISION or "hardware".
        core: NeuronCore index, or None for the first visible core with room.

    Example:
        >>> model = load("model.neff")                    # doctest: +SKIP
        >>> y, = model.run({"x": np.zeros((1, 3, 224, 224), np.float32)})  # doctest: +SKIP
    """
    from ..neff import read_neff
    precision = precision or os.environ.get("NEURON_SIM_PRECISION", "hardware")
    if precision not in PRECISIONS:
        raise NeuronError(f"precision {precision!r} is not valid; choose from {', '.join(PRECISIONS)}"
                          " (argument precision= or $NEURON_SIM_PRECISION)")
    started = time.perf_counter()
    model = Model(read_neff(neff), precision, core)
    log.debug("loaded NEFF in %.1f ms", 1e3 * (time.perf_counter() - started))
    return model
