"""The ONE conversion table of the MXNet plugin: MXNet operator name -> core (ONNX-semantics) ops.

Rules are split by op family (`nn`, `elementwise`, `tensor`); each is called as
`rule(cv, attrs, *inputs)` where `attrs` is the node's parsed `Attrs` and every input is a core
Value. The supported-op list is derived from the table (`supported_operators()`), never typed twice.
"""
from __future__ import annotations

from neuron_core.bridge import ConversionTable

from ..plugin import PLUGIN

TABLE = ConversionTable.of(PLUGIN)

from . import elementwise, nn, tensor  # noqa: E402,F401  (register their rules on TABLE)


def supported_operators() -> list[str]:
    """The MXNet operator names that have a Neuron conversion, sorted."""
    return TABLE.supported()


#: the name earlier releases gave `supported_operators`
supported_ops = supported_operators
