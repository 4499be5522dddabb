"""Helpers of the MXNet plugin tests: gluon models exported to (symbol, args, aux), the MXNet CPU
oracle, and the error measure and tolerances the tests compare with."""
from __future__ import annotations

import numpy as np
import pytest

from ..numerics import rel_err  # noqa: F401  (shared)

mx_neuron = pytest.importorskip("mx_neuron")   # restores np.bool, then imports mxnet
mx = pytest.importorskip("mxnet")

# fp32 precision: the simulation is exact up to summation order; deep nets accumulate ~1e-6
# relative differences per layer, so 1e-4 relative to the output's max leaves a wide margin.
FP32_TOL = 1e-4
# hardware precision: every op's inputs are rounded to bf16 (8-bit mantissa, 2^-9 ~ 2e-3 relative
# per rounding); through ~20-50 layers with BatchNorm renormalizing, errors grow to ~1e-2 of the
# output's scale. 5e-2 catches any logic error (those are O(1)) without flaking on rounding.
BF16_TOL = 5e-2



def export(net, *examples, names=("data",)):
    """(symbol, args, aux) of an initialized gluon block, and its outputs on `examples`."""
    outs = net(*examples)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    sym = net(*[mx.sym.var(n) for n in names])
    sym = mx.sym.Group(list(sym)) if isinstance(sym, (list, tuple)) else sym
    params = {p.name: p.data() for p in net.collect_params().values()}
    args = {k: params[k] for k in sym.list_arguments() if k in params}
    aux = {k: params[k] for k in sym.list_auxiliary_states() if k in params}
    return sym, args, aux, [o.asnumpy() for o in outs]


def run_bound(sym, args, aux, ctx=None, **data):
    """Bind with Symbol.bind and run once; numpy outputs."""
    feed = {k: mx.nd.array(v) if not isinstance(v, mx.nd.NDArray) else v for k, v in data.items()}
    exe = sym.bind(ctx or mx.neuron(), {**feed, **args}, aux_states=aux)
    return [o.asnumpy() for o in exe.forward()]
