"""The one error hierarchy of neuron-sim: every error raised on purpose derives from NeuronError."""
from __future__ import annotations


class NeuronError(Exception):
    """Base of every error neuron-sim raises on purpose."""


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


class NeffVersionError(NeffFormatError):
    """A NEFF file was written by an incompatible format major version."""


class NeffSourceError(NeuronError, TypeError):
    """What was given as a NEFF is neither a path nor its bytes."""


class RuntimeStatusError(NeuronError):
    """An error with a Neuron runtime status code (RESOURCE, TIMEOUT, EXEC_BAD_INPUT, ...)."""

    status = "FAIL"

    def __init__(self, message: str, status: str | None = None):
        if status is not None:
            self.status = status
        super().__init__(f"[{self.status}] {message}")


class ResourceError(RuntimeStatusError):
    """Device memory or cores are exhausted."""

    status = "RESOURCE"


class BadInputError(RuntimeStatusError, ValueError):
    """An execution was given inputs that do not match the model."""

    status = "EXEC_BAD_INPUT"
