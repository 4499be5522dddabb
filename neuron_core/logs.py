"""The `Neuron` logger's default output: the `INFO:Neuron:...` lines torch-neuron prints at every
trace, on stderr, for as long as the application has not configured logging itself.

    import torch_neuron            # the plugins call install(); a trace then prints
    # INFO:Neuron:The neuron partitioner created 1 sub-graphs
    logging.basicConfig(...)       # from now on the application's handlers print them, once

The default handler stands aside (prints nothing) whenever another handler would receive the
record: one on the root logger or on the `Neuron` logger. So it never doubles a line.
"""
from __future__ import annotations

import logging
import sys

#: the logger every part of the suite writes to (the Neuron SDK's name)
LOGGER = "Neuron"
#: torch-neuron's line format, which is logging.basicConfig's
FORMAT = "%(levelname)s:%(name)s:%(message)s"


class DefaultHandler(logging.Handler):
    """Writes INFO and above to the current `sys.stderr` while nothing else is configured."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.setFormatter(logging.Formatter(FORMAT))

    def handle(self, record) -> bool:
        if application_configured():
            return False
        return super().handle(record)

    def emit(self, record) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break the caller
            self.handleError(record)


def application_configured() -> bool:
    """True when the application has a handler of its own on the root or `Neuron` logger."""
    neuron = logging.getLogger(LOGGER)
    if any(not isinstance(h, DefaultHandler) for h in neuron.handlers):
        return True
    return neuron.propagate and bool(logging.getLogger().handlers)


def install() -> None:
    """Give the `Neuron` logger its default handler (once) and, when its level was never set,
    level INFO: the compile-time lines then print as torch-neuron's do."""
    neuron = logging.getLogger(LOGGER)
    if not any(isinstance(h, DefaultHandler) for h in neuron.handlers):
        neuron.addHandler(DefaultHandler())
    if neuron.level == logging.NOTSET:
        neuron.setLevel(logging.INFO)
