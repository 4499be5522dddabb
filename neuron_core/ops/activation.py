"""Activations: elementwise functions run on the ScalarEngine."""
from __future__ import annotations

import numpy as np

from ._elementwise import Unary
from .registry import register_op


@register_op("Relu")
class Relu(Unary):
    """max(x, 0), elementwise."""

    def reference(self, x):
        return np.maximum(x, 0).astype(x.dtype, copy=False)
