"""The one conversion table of torch_neuron: core ATen op (`str(OpOverload)`) -> core op.

Rules are split by op family; each module registers its rules on TABLE when imported. The list
`torch.neuron.get_supported_operations()` prints is derived from it.
"""
from __future__ import annotations

from neuron_core.bridge import ConversionTable

from ..plugin import PLUGIN

TABLE = ConversionTable.of(PLUGIN)

from . import elementwise, nn, shape  # noqa: E402,F401  (register their rules)

__all__ = ["TABLE"]
