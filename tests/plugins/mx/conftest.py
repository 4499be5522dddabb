"""The MXNet plugin tests need mx_neuron, which restores np.bool before importing mxnet."""
from __future__ import annotations

import pytest

pytest.importorskip("mx_neuron")
pytest.importorskip("mxnet")
