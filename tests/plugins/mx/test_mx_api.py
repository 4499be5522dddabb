"""The user-facing API: Module / Symbol.bind / simple_bind with mx.neuron(), mx.infa(), mx.cpu();
mx.contrib.neuron.compile; Gluon blocks; a model split by an unsupported op and its estimate;
excl_node_names; the log lines; and clear errors for bad inputs and options."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

mx_neuron = pytest.importorskip("mx_neuron")
mx = pytest.importorskip("mxnet")

from neuron_core.errors import CompilerOptionError, NeuronError  # noqa: E402

from ..estimates import check_split_estimate  # noqa: E402
from .mx_helpers import BF16_TOL, FP32_TOL, rel_err, run_bound  # noqa: E402

S = mx.sym
SHAPE = (2, 3, 16, 16)


def _cnn(middle=None):
    """conv-bn-relu [-> middle] -> conv-relu -> pool -> fc, with random params."""
    x = S.var("data")
    y = S.Convolution(x, num_filter=8, kernel=(3, 3), pad=(1, 1), name="conv1")
    y = S.Activation(S.BatchNorm(y, fix_gamma=False, name="bn1"), act_type="relu", name="relu1")
    if middle is not None:
        y = middle(y)
    y = S.Activation(S.Convolution(y, num_filter=8, kernel=(3, 3), pad=(1, 1), name="conv2"),
                     act_type="relu", name="relu2")
    y = S.Pooling(y, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool")
    sym = S.FullyConnected(y, num_hidden=10, name="fc")
    arg_shapes, _, aux_shapes = sym.infer_shape(data=SHAPE)
    rng = np.random.default_rng(0)
    args = {n: mx.nd.array(rng.uniform(-0.5, 0.5, s)) for n, s in
            zip(sym.list_arguments(), arg_shapes) if n != "data"}
    aux = {n: mx.nd.array(rng.uniform(0.5, 1.0, s)) for n, s in
           zip(sym.list_auxiliary_states(), aux_shapes)}
    x = rng.uniform(-1, 1, SHAPE).astype(np.float32)
    ref = sym.bind(mx.cpu(), {"data": mx.nd.array(x), **args}, aux_states=aux).forward()[0]
    return sym, args, aux, x, ref.asnumpy()


def _compile(sym, args, aux, **kw):
    kw.setdefault("cost_aware", False)
    return mx_neuron.compile(sym, args, aux, inputs={"data": SHAPE}, **kw)


def test_module_api_neuron_context_matches_mxnet(fp32):
    sym, args, aux, x, ref = _cnn()
    csym, cargs, caux = _compile(sym, args, aux)
    assert any(n["op"] == "_neuron_subgraph_op" for n in json.loads(csym.tojson())["nodes"])
    mod = mx.mod.Module(csym, data_names=["data"], label_names=None, context=mx.neuron(0))
    mod.bind(data_shapes=[("data", SHAPE)], for_training=False)
    mod.set_params(cargs, caux)
    mod.forward(mx.io.DataBatch([mx.nd.array(x)]), is_train=False)
    assert rel_err(mod.get_outputs()[0].asnumpy(), ref) < FP32_TOL


def test_simple_bind_infa_and_cpu_agree(fp32):
    sym, args, aux, x, ref = _cnn()
    csym, cargs, caux = _compile(sym, args, aux)
    exe = csym.simple_bind(mx.infa(), data=SHAPE, grad_req="null")
    exe.copy_params_from(cargs, caux)
    on_infa = exe.forward(data=mx.nd.array(x))[0].asnumpy()
    on_cpu, = run_bound(csym, cargs, caux, ctx=mx.cpu(), data=x)
    assert rel_err(on_infa, ref) < FP32_TOL
    np.testing.assert_array_equal(on_infa, on_cpu)


def test_neuron_context_is_cpu_to_mxnet():
    ctx = mx.neuron(1)
    assert isinstance(ctx, mx.Context) and repr(ctx) == "neuron(1)" and ctx.neuron_core == 1
    assert ctx.device_type == "cpu" and ctx == mx.cpu(0)
    with mx.neuron(0):
        assert mx.nd.zeros((2,)).context == mx.cpu(0)
    with pytest.raises(NeuronError, match="core must be a NeuronCore index >= 0, got -1"):
        mx.neuron(-1)


def test_contrib_neuron_compile_is_the_older_entry_point(fp32):
    from mxnet.contrib import neuron
    sym, args, aux, x, ref = _cnn()
    csym, cargs, caux = neuron.compile(sym, args, aux, inputs={"data": SHAPE}, cost_aware=False)
    assert rel_err(run_bound(csym, cargs, caux, data=x)[0], ref) < FP32_TOL


def test_unsupported_op_in_middle_splits_and_runs(fp32, caplog):
    sym, args, aux, x, ref = _cnn(middle=lambda y: S.sin(y, name="odd_sin"))
    with caplog.at_level(logging.INFO, logger="Neuron"):
        csym, cargs, caux = _compile(sym, args, aux)
    plan = mx_neuron.last_plan()
    assert len(plan.calls) == 2
    nodes = json.loads(csym.tojson())["nodes"]
    assert [n["name"] for n in nodes if n["op"] == "sin"] == ["odd_sin"]
    assert rel_err(run_bound(csym, cargs, caux, data=x)[0], ref) < FP32_TOL
    text = caplog.text
    assert "Unsupported operators: mxnet::sin (1)" in text
    assert "The neuron partitioner created 2 sub-graphs" in text
    assert "MXNet operators placed on Neuron: Convolution: 2" in text
    assert "MXNet operators left on MXNet: sin: 1" in text
    assert "Fix first (fragments each unsupported op type causes): mxnet::sin" in text
    assert "'sin' has no Neuron conversion" in plan.report.to_json()
    assert "Estimated on inf1.xlarge (timing model, batch 2, 4 NeuronCores): P50" in text


def test_estimate_includes_subgraphs_transfers_and_measured_host_time():
    sym, args, aux, _, _ = _cnn(middle=lambda y: S.sin(y, name="odd_sin"))
    csym, cargs, caux = _compile(sym, args, aux)
    check_split_estimate(mx_neuron.estimate(csym, cargs, caux), "fc")
    assert mx.contrib.neuron.estimate(csym, cargs, host_ms=0.0).instances[
        "inf1.xlarge"].host_ms == 0.0
    with pytest.raises(NeuronError, match="'fc' was not compiled by this mx_neuron"):
        mx_neuron.estimate(sym, args)
    with pytest.raises(NeuronError, match=r"args lack the NEFF param\(s\) \['neuron_subgraph_0"):
        mx_neuron.estimate(csym, args)
    with pytest.raises(NeuronError, match="estimate takes a symbol compiled by mx_neuron"):
        mx_neuron.estimate("model.json")


def test_excl_node_names_keeps_node_on_mxnet(fp32):
    sym, args, aux, x, ref = _cnn()
    # single_fusion_ratio_threshold=1: keep both sides of relu1, not only the dominant one
    csym, cargs, caux = _compile(sym, args, aux, excl_node_names=["relu1"],
                                 single_fusion_ratio_threshold=1.0)
    nodes = json.loads(csym.tojson())["nodes"]
    assert [n["op"] for n in nodes if n["name"] == "relu1"] == ["Activation"]
    assert len(mx_neuron.last_plan().calls) == 2
    # the weights of compiled regions left the params; relu1's region boundary is native
    assert "conv1_weight" not in cargs and len([k for k in cargs if k.endswith("_neff")]) == 2
    assert rel_err(run_bound(csym, cargs, caux, data=x)[0], ref) < FP32_TOL


def test_gluon_block_compiles_to_symbol_block(fp32):
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv2D(4, 3, padding=1, activation="relu"), mx.gluon.nn.BatchNorm(),
            mx.gluon.nn.GlobalAvgPool2D(), mx.gluon.nn.Dense(5))
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 3, 8, 8))
    ref = net(x).asnumpy()
    cnet = mx_neuron.compile(net, inputs={"data": x}, cost_aware=False)
    assert isinstance(cnet, mx.gluon.SymbolBlock)
    assert rel_err(cnet(x).asnumpy(), ref) < FP32_TOL
    assert mx_neuron.last_plan().on_neuron_ratio == 1.0
    est = mx_neuron.estimate(cnet, instance="inf1.xlarge")
    assert est.model == "HybridSequential" and est.instances["inf1.xlarge"].device_ms > 0


def test_flags_and_pipeline_cores_are_accepted(hardware):
    sym, args, aux, x, ref = _cnn()
    csym, cargs, caux = _compile(sym, args, aux, flags=["--fast-math", "none"],
                                 **{"--neuroncore-pipeline-cores": 2})
    assert rel_err(run_bound(csym, cargs, caux, data=x)[0], ref) < BF16_TOL


def test_analyze_reports_support():
    sym, args, aux, _, _ = _cnn(middle=lambda y: S.sin(y))
    info = mx_neuron.analyze(sym, args, aux, inputs={"data": SHAPE})
    assert info["unsupported_operators"] == {"sin": 1}
    assert info["operator_count"]["Convolution"] == 2
    assert info["total_count"] == 8


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(inputs=None), NeuronError, "inputs must be a non-empty dict"),
    (dict(inputs={"data": (2, 0, 16, 16)}), NeuronError, "every dimension must be a positive"),
    (dict(inputs={"image": SHAPE}), NeuronError, r"inputs names \['image'\], which are not"),
    (dict(inputs={"data": (2, 5, 16, 16)}), NeuronError, "MXNet cannot infer the model's shapes"),
    (dict(inputs={"data": SHAPE}, excl_node_names=["relu_1"]), NeuronError,
     r"'relu_1', which is not an operator node of the symbol; did you mean 'relu1'"),
    (dict(inputs={"data": SHAPE}, min_segment_size=2), NeuronError,
     r"unknown compile option\(s\) \['min_segment_size'\]"),
    (dict(inputs={"data": SHAPE}, flags=["--fast-math", "quick"]), CompilerOptionError,
     "'quick' is not valid"),
])
def test_bad_inputs_and_options_fail_clearly(kwargs, error, match):
    sym, args, aux, _, _ = _cnn()
    with pytest.raises(error, match=match):
        mx_neuron.compile(sym, args, aux, **kwargs)


def test_bad_object_and_missing_params_fail_clearly():
    sym, args, aux, _, _ = _cnn()
    with pytest.raises(NeuronError, match="expects an mx.sym.Symbol or a Gluon HybridBlock, got "
                                          "dict"):
        mx_neuron.compile({"sym": sym}, inputs={"data": SHAPE})
    args.pop("conv2_weight")
    with pytest.raises(NeuronError, match=r"argument\(s\) \['conv2_weight'\] have no value"):
        mx_neuron.compile(sym, args, aux, inputs={"data": SHAPE})


def test_bind_with_other_shape_names_the_compiled_shape(caplog):
    sym, args, aux, x, _ = _cnn()
    csym, cargs, caux = _compile(sym, args, aux)
    with pytest.raises(RuntimeError, match=r"neuron_subgraph_0: Shape inconsistent"):
        csym.simple_bind(mx.neuron(), data=(4, 3, 16, 16), grad_req="null")
    assert "input 'data' has shape (4, 3, 16, 16), compiled for (2, 3, 16, 16)" in caplog.text
