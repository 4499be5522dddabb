"""The ONE conversion table of the MXNet plugin: MXNet operator name -> core (ONNX-semantics) ops.

Rules are split by op family (`nn`, `elementwise`, `tensor`); each is called as
`rule(cv, attrs, *inputs)` where `attrs` is the node's parsed `Attrs` and every input is a core
Value. The supported-op list is derived from the table (`supported_ops()`), never typed twice.
"""
from __future__ import annotations

from neuron_core.bridge import ConversionTable

TABLE = ConversionTable("MXNet", "mxnet")

from . import elementwise, nn, tensor  # noqa: E402,F401  (register their rules on TABLE)


def supported_ops() -> list[str]:
    """The MXNet operator names that have a Neuron conversion, sorted."""
    return TABLE.supported()
