import numpy as np

from tests.helpers import assert_matches_ort


def test_relu_basic():
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    assert_matches_ort("Relu", [x])


def test_add_broadcast():
    rng = np.random.default_rng(1)
    assert_matches_ort("Add", [rng.standard_normal((2, 3, 4)).astype(np.float32),
                               rng.standard_normal((3, 1)).astype(np.float32)])
