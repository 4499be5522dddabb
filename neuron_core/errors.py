"""The one error hierarchy of neuron-sim: every error raised on purpose derives from NeuronError,
and each carries the Neuron runtime (nrt) status it stands for as `err.status`."""
from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """The Neuron runtime's status codes (NRT_<name>), by the numbers nrt gives them."""

    SUCCESS = 0
    FAILURE = 1
    INVALID = 2
    INVALID_HANDLE = 3
    RESOURCE = 4
    TIMEOUT = 5
    HW_ERROR = 6
    QUEUE_FULL = 7
    LOAD_NOT_ENOUGH_NC = 9
    UNSUPPORTED_NEFF_VERSION = 10
    FAIL_HOST_MEM_ALLOC = 11
    UNINITIALIZED = 13
    CLOSED = 14
    EXEC_BAD_INPUT = 1002
    EXEC_COMPLETED_WITH_ERR = 1004
    EXEC_NC_BUSY = 1005

    def __str__(self) -> str:
        return self.name


class NeuronError(Exception):
    """Base of every error neuron-sim raises on purpose."""

    status = Status.FAILURE


class IRError(NeuronError):
    """A graph is malformed (found by the verifier or while building it)."""


class ShapeInferenceError(NeuronError):
    """An op cannot infer its output types from the given inputs."""


class UnsupportedOpError(NeuronError):
    """One or more nodes cannot run on the NeuronCore."""


class FallbackDisabledError(UnsupportedOpError, AttributeError):
    """fallback=False, and some nodes cannot run on the NeuronCore. It is also an AttributeError,
    which is what the Neuron SDK's torch-neuron documents for this case."""


class FrontendError(NeuronError):
    """A model file or graph cannot be read into the IR."""


class CompilerError(NeuronError):
    """A compiler pass failed; the message names the pass and those that ran before it."""


class CompilerOptionError(NeuronError):
    """An unknown or malformed compiler option."""


class NeffFormatError(NeuronError):
    """A NEFF file is malformed, truncated or corrupted."""

    status = Status.INVALID


class NeffVersionError(NeffFormatError):
    """A NEFF file was written by an incompatible format major version."""

    status = Status.UNSUPPORTED_NEFF_VERSION


class NeffSourceError(NeuronError, TypeError):
    """What was given as a NEFF is neither a path nor its bytes."""


class RuntimeStatusError(NeuronError):
    """An error of the runtime, its status first in the message: "[TIMEOUT] ...". `status` is a
    Status (a name such as "RESOURCE" is accepted)."""

    status = Status.FAILURE

    def __init__(self, message: str, status: Status | str | None = None):
        if status is not None:
            self.status = status if isinstance(status, Status) else Status[status]
        super().__init__(f"[{self.status}] {message}")


class ResourceError(RuntimeStatusError):
    """Device memory or cores are exhausted."""

    status = Status.RESOURCE


class BadInputError(RuntimeStatusError, ValueError):
    """An execution was given inputs that do not match the model."""

    status = Status.EXEC_BAD_INPUT
