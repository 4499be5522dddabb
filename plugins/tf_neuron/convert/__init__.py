"""The one conversion table of the TensorFlow plugin: TF op type -> core op, split by op family
(`nn`, `math`, `linalg`, `array`). The plugin's supported-op list is `TABLE.supported()`."""
from __future__ import annotations

from neuron_core.bridge import ConversionTable

from ..plugin import PLUGIN

TABLE = ConversionTable.of(PLUGIN)

from . import array, linalg, math, nn  # noqa: E402,F401  (each module registers its rules)
from ._util import TFConverter  # noqa: E402

__all__ = ["TABLE", "TFConverter"]
