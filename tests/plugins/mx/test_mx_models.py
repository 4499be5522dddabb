"""Numeric parity with MXNet on the CPU for the gluon model_zoo families and a Gluon BERT-style
encoder: exact fp32 simulation within FP32_TOL, hardware (BF16) precision within BF16_TOL."""
from __future__ import annotations

import numpy as np
import pytest

mx_neuron = pytest.importorskip("mx_neuron")
mx = pytest.importorskip("mxnet")

from mxnet.gluon.model_zoo import vision  # noqa: E402

from .mx_encoder import Encoder  # noqa: E402
from .mx_helpers import BF16_TOL, FP32_TOL, export, rel_err, run_bound  # noqa: E402

# (model, image size): the smallest size each architecture allows (fixed-size final pools need
# 224 for SqueezeNet and DenseNet, 299 for Inception v3)
FAMILIES = [("resnet18_v1", 64), ("resnet18_v2", 64), ("mobilenet1.0", 64),
            ("mobilenetv2_1.0", 64), ("squeezenet1.0", 224), ("vgg11", 32), ("alexnet", 64)]


def _zoo(name: str, size: int, seed: int = 0):
    mx.random.seed(seed)
    net = vision.get_model(name, pretrained=False)
    net.initialize(mx.init.Xavier(magnitude=2.0))
    x = mx.nd.random.uniform(-1, 1, shape=(1, 3, size, size))
    return net, x


def _compile_and_run(net, x, **kw):
    sym, args, aux, (ref,) = export(net, x)
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": x.shape}, **kw)
    got, = run_bound(csym, cargs, caux, data=x)
    return got, ref, mx_neuron.last_plan()


@pytest.mark.parametrize("name,size", FAMILIES, ids=[f for f, _ in FAMILIES])
def test_model_zoo_fp32_matches_mxnet(fp32, name, size):
    net, x = _zoo(name, size)
    got, ref, plan = _compile_and_run(net, x)
    assert plan.report.percent_arithmetic_supported >= 95.0
    assert len(plan.calls) == 1
    assert got.shape == ref.shape
    assert rel_err(got, ref) < FP32_TOL


def test_densenet121_fp32_matches_mxnet(fp32):
    net, x = _zoo("densenet121", 224)
    got, ref, plan = _compile_and_run(net, x)
    assert plan.on_neuron_ratio == 1.0
    assert rel_err(got, ref) < FP32_TOL


def test_inceptionv3_fp32_matches_mxnet(fp32):
    net, x = _zoo("inceptionv3", 299)
    got, ref, plan = _compile_and_run(net, x)
    assert plan.on_neuron_ratio == 1.0
    assert rel_err(got, ref) < FP32_TOL


@pytest.mark.parametrize("name", ["resnet18_v1", "mobilenetv2_1.0"])
def test_model_zoo_hardware_within_bf16(hardware, name):
    net, x = _zoo(name, 64, seed=1)
    got, ref, _ = _compile_and_run(net, x)
    err = rel_err(got, ref)
    assert err < BF16_TOL
    assert err > 1e-6   # bf16 casting really happened: hardware precision is not exact


def _encoder(seed: int = 0, dtype: str = "float32"):
    mx.random.seed(seed)
    net = Encoder(vocab=500, units=64, heads=4, hidden=128, layers=2)
    net.initialize(mx.init.Normal(0.05))
    net.hybridize()
    ids = np.random.default_rng(seed).integers(0, 500, (2, 16))
    ids[0, :4] = [257, 259, 499, 498]   # ids bf16 cannot hold exactly
    return net, mx.nd.array(ids, dtype=dtype)


def test_encoder_fp32_matches_mxnet(fp32):
    net, tokens = _encoder()
    ref = [o.asnumpy() for o in net(tokens)]
    # this test-sized encoder moves more bytes than it computes: the cost model would keep it on
    # MXNet (the benchmark's encoder is large enough to pass it)
    cnet = mx_neuron.compile(net, inputs={"tokens": tokens}, cost_aware=False)
    plan = mx_neuron.last_plan()
    # float32 token ids: only the lookup stays on MXNet (bf16 cannot hold ids > 256 exactly)
    host = {r["name"] for r in plan.report.nodes if r["placement"] != "neuron"}
    assert host == {"encoder0_embedding0_fwd"} and len(plan.calls) == 1
    assert "batch_dot" in _compiled_ops(plan) and "LayerNorm" in _compiled_ops(plan)
    got = [o.asnumpy() for o in cnet(tokens)]
    assert [g.shape for g in got] == [(2, 16, 64), (2, 64)]
    for g, r in zip(got, ref):
        assert rel_err(g, r) < FP32_TOL


def test_encoder_hardware_within_bf16(hardware):
    net, tokens = _encoder(seed=3, dtype="int32")
    ref = [o.asnumpy() for o in net(tokens)]
    cnet = mx_neuron.compile(net, inputs={"tokens": tokens})
    assert mx_neuron.last_plan().on_neuron_ratio == 1.0   # int32 ids: the lookup runs on Neuron
    for g, r in zip(cnet(tokens), ref):
        assert rel_err(g.asnumpy(), r) < BF16_TOL


def _compiled_ops(plan) -> set:
    return {n.native.op for n in plan.graph.nodes if n.native is not None}
