"""Elementwise arithmetic with broadcasting, run on the VectorEngine."""
from __future__ import annotations

import numpy as np

from ._elementwise import Binary
from .registry import INDEX, FLOATS, register_op


@register_op("Add")
class Add(Binary):
    """a + b, broadcast."""

    input_dtypes = (FLOATS + INDEX,)

    def reference(self, a, b):
        return np.add(a, b)
