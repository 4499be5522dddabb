"""Every single-node ONNX conformance case in hardware precision (--fast-math all: BF16 everywhere).

Oracle: the ONNX reference evaluator run on the same inputs rounded to bf16 (round-to-nearest-even),
its output rounded to bf16 too. An engine computes in fp32 between its cast points, so the simulator
must agree with that to one bf16 ulp (relative 2^-7): the only other difference is fp32 summation
order, which can move a value across a rounding boundary.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx.reference import ReferenceEvaluator

from tests.core.conformance import applicable_cases, run_case
from tests.core.test_onnx_conformance import ORT_ORACLE, REJECTED, _onnxruntime

BF16_ULP = 2.0 ** -7

CASES = {name: case for name, case in applicable_cases().items()
         if name not in REJECTED and len(case.model.graph.node) == 1}


def _bf16(x):
    x = np.asarray(x)
    if x.dtype != np.float32:
        return x
    return x.astype(ml_dtypes.bfloat16).astype(np.float32)


@pytest.mark.parametrize("name", sorted(CASES))
def test_hardware_precision(name):
    case = CASES[name]
    model = case.model
    names = [vi.name for vi in model.graph.input]
    oracle = ReferenceEvaluator(model)
    if name in ORT_ORACLE:  # onnxruntime is the oracle where it and the reference disagree
        oracle.run = lambda _, feed: _onnxruntime(model, list(feed.values()))
    for (actual, _), (inputs, _) in zip(run_case(case, precision="hardware"), case.data_sets):
        expected = oracle.run(None, {n: _bf16(x) for n, x in zip(names, inputs)})
        for a, e in zip(actual, expected):
            e = np.asarray(e)
            assert a.shape == e.shape and a.dtype == e.dtype
            if e.dtype.kind != "f":
                np.testing.assert_array_equal(a, e)
                continue
            e = _bf16(e)
            finite = np.isfinite(e)
            np.testing.assert_array_equal(np.isfinite(a), finite)
            scale = np.abs(e[finite]).max() if finite.any() else 0.0
            np.testing.assert_allclose(a[finite], e[finite], rtol=BF16_ULP, atol=1e-6 * scale)


def test_hardware_cases_cover_the_ops():
    assert len({c.model.graph.node[0].op_type for c in CASES.values()}) > 60
