"""The error measure every plugin test compares the simulator with its framework by."""
from __future__ import annotations

import numpy as np


def rel_err(got, want) -> float:
    """max |got - want| relative to max |want| (numpy arrays, or tensors of any framework)."""
    got, want = (np.asarray(x.detach() if hasattr(x, "detach") else x, np.float64)
                 for x in (got, want))
    assert got.shape == want.shape, (got.shape, want.shape)
    return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-12))
