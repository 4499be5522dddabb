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
    "test_resize_downsample_scales_cubic_antialias": "Resize antialias",
    "test_resize_downsample_scales_linear_antialias": "Resize antialias",
    "test_resize_downsample_sizes_cubic_antialias": "Resize antialias",
    "test_resize_downsample_sizes_linear_antialias": "Resize antialias",
    "test_resize_tf_crop_and_resize": "Resize tf_crop_and_resize",
    "test_resize_tf_crop_and_resize_axes_2_3": "Resize tf_crop_and_resize",
    "test_resize_tf_crop_and_resize_axes_3_2": "Resize tf_crop_and_resize",
    "test_resize_tf_crop_and_resize_extrapolation_value": "Resize tf_crop_and_resize",
    "test_maxpool_with_argmax_2d_precomputed_pads": "MaxPool Indices output",
    "test_maxpool_with_argmax_2d_precomputed_strides": "MaxPool Indices output",
}
#: cases where onnxruntime and the ONNX reference data disagree; the simulator follows onnxruntime
#: (and PyTorch): align_corners with fractional scales divides by the integer output length
#: averagepool_2d_ceil_last_window_starts_on_pad's expected data is rounded to 4 decimals
ORT_ORACLE = {"test_resize_downsample_scales_linear_align_corners",
              "test_resize_downsample_scales_cubic_align_corners",
              "test_averagepool_2d_ceil_last_window_starts_on_pad"}
ALL = applicable_cases()
CASES = {k: v for k, v in ALL.items() if k not in REJECTED}

#: full-FP32 simulation must agree with the spec's expected outputs to float32 rounding
RTOL, ATOL = 1e-5, 1e-6


def _onnxruntime(model, inputs):
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), inputs)})


@pytest.mark.parametrize("name", sorted(CASES))
def test_conformance(name):
    case = CASES[name]
    for (actual, expected), (inputs, _) in zip(run_case(case), case.data_sets):
        if name in ORT_ORACLE:
            expected = _onnxruntime(case.model, inputs)
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
