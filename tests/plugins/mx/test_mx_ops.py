"""The conversion table, op family by op family: small symbols compiled whole onto Neuron and
checked against MXNet on the CPU (fp32 simulation, so differences are summation order only)."""
from __future__ import annotations

import numpy as np
import pytest

mx_neuron = pytest.importorskip("mx_neuron")
mx = pytest.importorskip("mxnet")

from .mx_helpers import FP32_TOL, rel_err, run_bound  # noqa: E402

S = mx.sym
X, Y = S.var("x"), S.var("y")
W, G = S.var("w"), S.var("g")
R = np.random.default_rng(0)

# id -> (symbol, input shapes, params {name: array}, positive inputs only)
CASES = {
    "reshape_codes_0_-1": (S.Reshape(X, shape=(0, -1)), {"x": (2, 3, 4, 5)}, {}, False),
    "reshape_codes_-3": (S.Reshape(X, shape=(-3, -2)), {"x": (2, 3, 4, 5)}, {}, False),
    "reshape_codes_-4": (S.Reshape(X, shape=(-4, 1, 2, -2)), {"x": (2, 3, 4, 5)}, {}, False),
    "reshape_reverse": (S.Reshape(X, shape=(-1, 0), reverse=True), {"x": (2, 3, 4)}, {}, False),
    "flatten_expand_squeeze": (S.squeeze(S.expand_dims(S.Flatten(X), axis=1), axis=1),
                               {"x": (2, 3, 4)}, {}, False),
    "conv_grouped_dilated": (S.Convolution(X, W, num_filter=4, kernel=(3, 3), dilate=(2, 2),
                                           pad=(2, 1), num_group=2, no_bias=True),
                             {"x": (1, 4, 9, 9)}, {"w": (4, 2, 3, 3)}, False),
    "conv1d_bias": (S.Convolution(X, W, G, num_filter=3, kernel=(3,), stride=(2,)),
                    {"x": (2, 2, 11)}, {"w": (3, 2, 3), "g": (3,)}, False),
    "deconvolution": (S.Deconvolution(X, W, num_filter=3, kernel=(3, 3), stride=(2, 2),
                                      pad=(1, 1), adj=(1, 1)),
                      {"x": (1, 2, 5, 5)}, {"w": (2, 3, 3, 3)}, False),
    "pool_max_full": (S.Pooling(X, kernel=(3, 3), stride=(2, 2), pooling_convention="full"),
                      {"x": (1, 2, 8, 8)}, {}, False),
    "pool_avg_pad_include": (S.Pooling(X, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                                       pool_type="avg"), {"x": (1, 2, 7, 7)}, {}, False),
    "pool_avg_pad_exclude": (S.Pooling(X, kernel=(3, 3), stride=(1, 1), pad=(1, 1),
                                       pool_type="avg", count_include_pad=False),
                             {"x": (1, 2, 6, 6)}, {}, False),
    "pool_sum": (S.Pooling(X, kernel=(2, 2), stride=(2, 2), pool_type="sum"),
                 {"x": (1, 2, 6, 6)}, {}, False),
    "pool_global_max": (S.Pooling(X, kernel=(1, 1), global_pool=True), {"x": (2, 3, 5, 5)}, {},
                        False),
    "activations": (S.Activation(S.Activation(S.Activation(X, act_type="softrelu"),
                                              act_type="tanh"), act_type="softsign")
                    + S.Activation(X, act_type="sigmoid"), {"x": (2, 8)}, {}, False),
    "leaky_variants": (S.LeakyReLU(X, act_type="leaky", slope=0.1)
                       + S.LeakyReLU(X, act_type="elu", slope=0.3)
                       + S.LeakyReLU(X, act_type="selu") + S.LeakyReLU(X, act_type="gelu"),
                       {"x": (2, 8)}, {}, False),
    "prelu": (S.LeakyReLU(X, G, act_type="prelu"), {"x": (2, 3, 4, 4)}, {"g": (3,)}, False),
    "scalar_ops": (((1.5 - X) * 2.0 + 0.5) / 3.0 + 2.0 / X, {"x": (3, 4)}, {}, True),
    "scalar_power_max": (S.maximum(X ** 1.5, 0.7) + S.minimum(2.0 ** X, 2.5), {"x": (3, 4)}, {},
                         True),
    "broadcast_binary": (S.broadcast_sub(S.broadcast_mul(X, Y), S.broadcast_div(X, Y + 3.0))
                         + S.broadcast_maximum(X, Y), {"x": (2, 3, 4), "y": (1, 3, 1)}, {}, True),
    "compare_where": (S.where(S.broadcast_greater(X, Y), X, Y * 2.0),
                      {"x": (2, 5), "y": (2, 5)}, {}, False),
    "unary_math": (S.rsqrt(X) + S.square(X) + S.log(X) + S.exp(-X) + S.sqrt(X) + S.abs(-X),
                   {"x": (4, 4)}, {}, True),
    "clip_add_n": (S.add_n(S.clip(X, -0.2, 0.3), X, S.relu(X)), {"x": (4, 4)}, {}, False),
    "concat_stack": (S.Concat(S.stack(X, Y, axis=1), S.stack(Y, X, axis=1), dim=2),
                     {"x": (2, 3), "y": (2, 3)}, {}, False),
    "split_squeeze": (S.SliceChannel(X, num_outputs=3, axis=1, squeeze_axis=True)[1],
                      {"x": (2, 3, 4)}, {}, False),
    "slices": (S.slice_axis(X, axis=2, begin=1, end=-1)
               + S.slice(X, begin=(None, 0, 0), end=(None, 3, 3)), {"x": (2, 3, 5)}, {}, False),
    "slice_step": (S.slice(X, begin=(0, 4), end=(2, None), step=(1, -2)), {"x": (2, 6)}, {},
                   False),
    "transpose_swap": (S.SwapAxis(S.transpose(X, axes=(0, 2, 1)), dim1=0, dim2=1),
                       {"x": (2, 3, 4)}, {}, False),
    "tile_broadcast_to": (S.tile(X, reps=(2, 1)) + S.broadcast_to(Y, shape=(4, 3)),
                          {"x": (2, 3), "y": (1, 3)}, {}, False),
    "pad_constant": (S.Pad(X, mode="constant", pad_width=(0, 0, 0, 0, 1, 2, 2, 1),
                           constant_value=0.5), {"x": (1, 2, 3, 3)}, {}, False),
    "reductions": (S.sum(X, axis=1, keepdims=True) + S.mean(X, axis=(0, 2), exclude=True,
                                                            keepdims=True)
                   + S.max(X, axis=1, keepdims=True), {"x": (2, 3, 4)}, {}, False),
    "batch_dot_transposes": (S.batch_dot(X, Y, transpose_a=True, transpose_b=True),
                             {"x": (2, 5, 3), "y": (2, 4, 5)}, {}, False),
    "dot_3d_2d": (S.dot(X, W), {"x": (2, 3, 4)}, {"w": (4, 5)}, False),
    "fully_connected_no_flatten": (S.FullyConnected(X, W, G, num_hidden=5, flatten=False),
                                   {"x": (2, 3, 4)}, {"w": (5, 4), "g": (5,)}, False),
    "softmax_family": (S.softmax(X, axis=1, temperature=2.0) + S.log_softmax(X)
                       + S.SoftmaxActivation(X, mode="channel"), {"x": (2, 3, 4)}, {}, False),
    "softmax_output": (S.SoftmaxOutput(X, name="sm"), {"x": (2, 3, 2)}, {}, False),
    "layer_instance_norm": (S.LayerNorm(X, W, G, eps=1e-5)
                            + S.InstanceNorm(X, S.var("ig"), S.var("ib")), {"x": (2, 4, 6)},
                            {"w": (6,), "g": (6,), "ig": (4,), "ib": (4,)}, False),
    "batchnorm_fix_gamma_lrn": (S.LRN(S.BatchNorm(X, S.var("bg"), S.var("bb"), S.var("bm"),
                                                  S.var("bv"), fix_gamma=True), nsize=3),
                                {"x": (1, 4, 3, 3)},
                                {"bg": (4,), "bb": (4,), "bm": (4,), "bv": (4,)}, False),
}


def _run_case(case_id):
    sym, shapes, param_shapes, positive = CASES[case_id]
    lo = 0.2 if positive else -1.0
    data = {k: R.uniform(lo, 1.5, s).astype(np.float32) for k, s in shapes.items()}
    params = {k: mx.nd.array(R.uniform(0.5 if k in ("bv", "g") else -1, 1, s))
              for k, s in param_shapes.items()}
    arg_names = set(sym.list_arguments())
    args = {k: v for k, v in params.items() if k in arg_names}
    aux = {k: v for k, v in params.items() if k not in arg_names}
    feed = {k: mx.nd.array(v) for k, v in data.items()}
    if "sm_label" in arg_names:
        feed["sm_label"] = mx.nd.zeros(sym.infer_shape(**shapes)[0][
            sym.list_arguments().index("sm_label")])
    ref = sym.bind(mx.cpu(), {**feed, **args}, aux_states=aux).forward()[0].asnumpy()
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs=shapes, minimum_segment_size=1,
                                          cost_aware=False)
    plan = mx_neuron.last_plan()
    if "sm_label" in arg_names:
        data["sm_label"] = feed["sm_label"]
    got = run_bound(csym, cargs, caux, **data)[0]
    return plan, got, ref


@pytest.mark.parametrize("case_id", list(CASES))
def test_op_fp32_matches_mxnet(fp32, case_id):
    plan, got, ref = _run_case(case_id)
    host = [r for r in plan.report.nodes if r["placement"] != "neuron"]
    assert not host, host
    assert got.shape == ref.shape
    assert rel_err(got, ref) < FP32_TOL
