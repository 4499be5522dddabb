"""Every ONNX conformance case that applies to a registered op, end to end in full-FP32 mode."""
from __future__ import annotations

import numpy as np
import pytest

from neuron_core.errors import UnsupportedOpError
from tests.core.conformance import applicable_cases, run_case

#: cases the NeuronCore path rejects on purpose: each must fail to compile with a reason
REJECTED = {
    "test_batchnorm_epsilon_training_mode": "training-mode BatchNormalization",
    "test_batchnorm_example_training_mode": "training-mode BatchNormalization",
    "test_training_dropout": "training-mode Dropout",
    "test_training_dropout_default": "training-mode Dropout",
    "test_training_dropout_default_mask": "training-mode Dropout",
    "test_training_dropout_mask": "training-mode Dropout",
    "test_training_dropout_zero_ratio": "training-mode Dropout",
    "test_training_dropout_zero_ratio_mask": "training-mode Dropout",
    "test_pow_types_int32_float32": "integer base of Pow",
    "test_pow_types_int64_float32": "integer base of Pow",
}
ALL = applicable_cases()
CASES = {k: v for k, v in ALL.items() if k not in REJECTED}

#: full-FP32 simulation must agree with the spec's expected outputs to float32 rounding
RTOL, ATOL = 1e-5, 1e-6


@pytest.mark.parametrize("name", sorted(CASES))
def test_conformance(name):
    case = CASES[name]
    for actual, expected in run_case(case):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            e = np.asarray(e)
            assert a.shape == e.shape
            assert a.dtype == e.dtype
            np.testing.assert_allclose(a, e, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_conformance_rejected(name):
    with pytest.raises(UnsupportedOpError):
        list(run_case(ALL[name]))


def test_conformance_covers_the_registry():
    """Guard against the harness silently selecting nothing."""
    assert len(CASES) > 150
