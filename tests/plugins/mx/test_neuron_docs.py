"""The Neuron SDK's documented MXNet code, run as written (each workflow in a fresh process, where
`import mxnet as mx` comes first), against MXNet's own CPU outputs.

Adapted only where this machine forces it: no downloads (a small ResNet-style checkpoint with
random weights stands in for ResNet-50 under the tutorial's file names, a random image for the
kitten, ten made-up class names for synset.txt), and a `np.save` line after the documented output
so the test can compare it. The documents: the mxnet-neuron ResNet-50 Symbol API notebook
(src/examples/mxnet/resnet50/resnet50.ipynb), the MXNet 1.8 Gluon notebook
(src/examples/mxnet/mxnet-gluon-tutorial.ipynb), the Compilation Python API's "Extract
Compilation Statistics" snippet (archive/mxnet-neuron/api-compilation-python-api.rst), FlexEG's
`mx.neuron(i)` binding (archive/appnotes/mxnet-neuron/flex-eg.rst) and the neuron-cc command-line
reference's MXNet compile (compiler/neuron-cc/command-line-reference.rst).
"""
from __future__ import annotations

import json
import pickle
import shlex

import numpy as np
import pytest

mx_neuron = pytest.importorskip("mx_neuron")
mx = pytest.importorskip("mxnet")

from neuron_core import runtime  # noqa: E402
from neuron_core.errors import FrontendError, NeuronError, UnsupportedOpError  # noqa: E402
from neuron_core.bridge.plugin import find  # noqa: E402
from neuron_core.tools.neuron_cc import main as neuron_cc  # noqa: E402

from ..fresh_process import run_python  # noqa: E402
from .mx_helpers import BF16_TOL, FP32_TOL, rel_err  # noqa: E402

S = mx.sym
SIDE = 224           # the tutorials' image size, as their snippets write it
CLASSES = 10


def _cosine(got, want) -> float:
    """Cosine of the two outputs' deviations from their means: softmax probabilities of random
    weights sit near 1/CLASSES, so a plain cosine would be ~1 for any output."""
    got, want = (np.asarray(a, np.float64).ravel() for a in (got, want))
    got, want = got - got.mean(), want - want.mean()
    return float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))


def _small_resnet(middle=None):
    """conv-bn-relu, one residual block, global pool, fc, SoftmaxOutput (as ResNet-50 ends)."""
    x = S.Convolution(S.var("data"), num_filter=8, kernel=(3, 3), stride=(2, 2), pad=(1, 1),
                      no_bias=True, name="conv0")
    x = S.Activation(S.BatchNorm(x, fix_gamma=False, name="bn0"), act_type="relu", name="relu0")
    y = S.Convolution(x, num_filter=8, kernel=(3, 3), pad=(1, 1), no_bias=True, name="conv1")
    y = S.Activation(S.BatchNorm(y, fix_gamma=False, name="bn1"), act_type="relu", name="relu1")
    if middle is not None:
        y = middle(y)
    y = S.BatchNorm(S.Convolution(y, num_filter=8, kernel=(3, 3), pad=(1, 1), no_bias=True,
                                  name="conv2"), fix_gamma=False, name="bn2")
    x = S.Activation(x + y, act_type="relu", name="relu2")
    x = S.Flatten(S.Pooling(x, global_pool=True, kernel=(1, 1), pool_type="avg", name="pool"))
    x = S.FullyConnected(x, num_hidden=CLASSES, name="fc1")
    return S.SoftmaxOutput(x, name="softmax")


def _params(sym, data_shape, seed=0):
    rng = np.random.default_rng(seed)
    arg_shapes, _, aux_shapes = sym.infer_shape(data=data_shape)
    args = {n: mx.nd.array(rng.uniform(-1, 1, s) * (3 if n.startswith("fc") else 1))
            for n, s in zip(sym.list_arguments(), arg_shapes) if n not in ("data",
                                                                             "softmax_label")}
    aux = {n: mx.nd.array(rng.uniform(0.5, 1.5, s) if n.endswith("var") else
                          rng.uniform(-0.2, 0.2, s))
           for n, s in zip(sym.list_auxiliary_states(), aux_shapes)}
    return args, aux


def _mxnet_cpu(sym, args, aux, x) -> np.ndarray:
    """The oracle: MXNet's own forward of the original symbol on the CPU."""
    feed = {"data": mx.nd.array(x), "softmax_label": mx.nd.zeros((x.shape[0],)), **args}
    return sym.bind(mx.cpu(), feed, aux_states=aux, grad_req="null").forward()[0].asnumpy()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The stand-in "resnet-50" checkpoint, an image, synset.txt and MXNet's CPU output."""
    tmp = tmp_path_factory.mktemp("mx_docs")
    sym = _small_resnet()
    args, aux = _params(sym, (1, 3, SIDE, SIDE))
    mx.model.save_checkpoint(str(tmp / "resnet-50"), 0, sym, args, aux)
    img = np.random.default_rng(1).uniform(0, 255, (1, 3, SIDE, SIDE)).astype(np.float32)
    np.save(tmp / "img.npy", img)
    (tmp / "synset.txt").write_text("".join(f"n0000000{i} class {i}\n" for i in range(CLASSES)))
    ref = _mxnet_cpu(sym, args, aux, img)
    assert ref.max() > 3 / CLASSES   # the weights spread the classes: the comparison can fail
    return tmp, sym, ref


def _check(proc, got, ref):
    """The documented run succeeded, its output matches MXNet's and it printed MXNet's top-5."""
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = np.squeeze(ref)
    assert _cosine(got, ref) >= 0.99 and rel_err(got, ref) < BF16_TOL
    printed = [line for line in proc.stdout.splitlines() if line.startswith("probability=")]
    want = np.argsort(ref.ravel())[::-1][:5]
    assert [line.split("class=")[1] for line in printed] == [f"n0000000{i} class {i}"
                                                             for i in want]


def test_docs_symbol_api_resnet50_tutorial(checkpoint):
    """resnet50.ipynb: contrib.neuron.compile, save_checkpoint, load_checkpoint, bind with
    ctx=mx.neuron(), forward, top-5 (at hardware precision, the tutorial's default)."""
    tmp, _, ref = checkpoint
    proc = run_python("""
        import mxnet as mx
        import numpy as np

        sym, args, aux = mx.model.load_checkpoint('resnet-50', 0)

        # Compile for Inferentia using Neuron
        inputs = { "data" : mx.nd.ones([1,3,224,224], name='data', dtype='float32') }
        sym, args, aux = mx.contrib.neuron.compile(sym, args, aux, inputs)

        #save compiled model
        mx.model.save_checkpoint("resnet-50_compiled", 0, sym, args, aux)

        import mxnet as mx
        import numpy as np

        img = mx.nd.array(np.load("img.npy"))

        sym, args, aux = mx.model.load_checkpoint('resnet-50_compiled', 0)
        softmax = mx.nd.random_normal(shape=(1,))
        args['softmax_label'] = softmax
        args['data'] = img

        # Inferentia context
        ctx = mx.neuron()

        exe = sym.bind(ctx=ctx, args=args, aux_states=aux, grad_req='null')

        with open('synset.txt', 'r') as f:
             labels = [l.rstrip() for l in f]

        exe.forward(data=img)
        prob = exe.outputs[0].asnumpy()# print the top-5
        prob = np.squeeze(prob)
        a = np.argsort(prob)[::-1]
        for i in a[0:5]:
             print('probability=%f, class=%s' %(prob[i], labels[i]))
        np.save("symbol_prob.npy", prob)
    """, tmp, precision=None)
    _check(proc, np.load(tmp / "symbol_prob.npy"), ref)
    nodes = json.loads((tmp / "resnet-50_compiled-symbol.json").read_text())["nodes"]
    assert sorted({n["op"] for n in nodes}) == ["_neuron_subgraph_op", "null"]


def test_docs_gluon_tutorial_with_compile_statistics(checkpoint):
    """mxnet-gluon-tutorial.ipynb (SymbolBlock.imports with data and softmax_label, compile,
    export, re-import, block(img, softmax)), then the Compilation Python API's statistics snippet
    on the original and the exported compiled symbol."""
    tmp, sym, ref = checkpoint
    proc = run_python("""
        import os
        import mxnet as mx
        import mx_neuron as neuron
        import numpy as np

        block = mx.gluon.nn.SymbolBlock.imports('resnet-50-symbol.json',\\
            ['data', 'softmax_label'], 'resnet-50-0000.params', ctx=mx.cpu())

        block.hybridize()

        # Compile for Inferentia using Neuron
        inputs = { "data" : mx.nd.ones([1,3,224,224], name='data', dtype='float32'), 'softmax_label' : mx.nd.ones([1], name='data', dtype='float32') }
        block = neuron.compile(block, inputs=inputs)

        #save compiled model
        block.export("resnet-50_compiled", 0, block)

        import numpy as np
        import mxnet as mx
        import mx_neuron as neuron

        img = mx.nd.array(np.load("img.npy"))

        block = mx.gluon.nn.SymbolBlock.imports('resnet-50_compiled-symbol.json',\\
            ['data', 'softmax_label'], 'resnet-50_compiled-0000.params', ctx=mx.cpu())
        softmax = mx.nd.random_normal(shape=(1,))

        out = block(img, softmax).asnumpy()

        with open('synset.txt', 'r') as f:
            labels = [l.rstrip() for l in f]

        out = block(img, softmax).asnumpy()

        prob = np.squeeze(out)
        a = np.argsort(prob)[::-1]
        for i in a[0:5]:
            print('probability=%f, class=%s' %(prob[i], labels[i]))
        np.save("gluon_prob.npy", prob)

        sym = mx.sym.load('resnet-50-symbol.json')
        csym = mx.sym.load('resnet-50_compiled-symbol.json')
        import json

        # Return list of nodes from MXNet symbol
        def sym_nodes(sym):
          return json.loads(sym.tojson())['nodes']

        # Return number of operations in node list
        def count_ops(graph_nodes):
          return len([x['op'] for x in graph_nodes if x['op'] != 'null'])

        # Return triplet of compile statistics
        # - count of operations in symbol database
        # - number of Neuron subgraphs
        # - number of operations compiled to Neuron runtime
        def get_compile_stats(sym):
          cnt = count_ops(sym_nodes(sym))
          neuron_subgraph_cnt = 0
          neuron_compiled_cnt = 0
          for g in sym_nodes(sym):
            if g['op'] == '_neuron_subgraph_op':
              neuron_subgraph_cnt += 1
              for sg in g['subgraphs']:
                neuron_compiled_cnt += count_ops(sg['nodes'])
          return (cnt, neuron_subgraph_cnt, neuron_compiled_cnt)

        original_cnt = count_ops(sym_nodes(sym))
        post_compile_cnt, neuron_subgraph_cnt, neuron_compiled_cnt = get_compile_stats(csym)
        print("INFO:mxnet: Number of operations in original model: ", original_cnt)
        print("INFO:mxnet: Number of operations in compiled model: ", post_compile_cnt)
        print("INFO:mxnet: Number of Neuron subgraphs in compiled model: ", neuron_subgraph_cnt)
        print("INFO:mxnet: Number of operations placed on Neuron runtime: ", neuron_compiled_cnt)
    """, tmp, precision=None)
    _check(proc, np.load(tmp / "gluon_prob.npy"), ref)
    ops = len([n for n in json.loads(sym.tojson())["nodes"] if n["op"] != "null"])
    assert ops == 14
    assert f"Number of operations in original model:  {ops}\n" in proc.stdout
    assert "Number of operations in compiled model:  1\n" in proc.stdout
    assert "Number of Neuron subgraphs in compiled model:  1\n" in proc.stdout
    assert f"Number of operations placed on Neuron runtime:  {ops}\n" in proc.stdout


def _lenet():
    data = S.var("data", shape=(1, 1, 28, 28))   # what neuron-cc reads without --io-config
    x = S.Activation(S.Convolution(data, kernel=(5, 5), num_filter=20), act_type="tanh")
    x = S.Pooling(x, pool_type="max", kernel=(2, 2), stride=(2, 2))
    x = S.Activation(S.Convolution(x, kernel=(5, 5), num_filter=50), act_type="tanh")
    x = S.Flatten(S.Pooling(x, pool_type="max", kernel=(2, 2), stride=(2, 2)))
    x = S.Activation(S.FullyConnected(x, num_hidden=500), act_type="tanh")
    return S.SoftmaxOutput(S.FullyConnected(x, num_hidden=10), name="softmax")


@pytest.fixture(scope="module")
def lenet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mx_lenet")
    sym = _lenet()
    args, aux = _params(sym, (1, 1, 28, 28))
    args = {k: v * 0.2 for k, v in args.items()}   # tanh layers: keep them out of saturation
    mx.model.save_checkpoint(str(tmp / "lenet"), 1, sym, args, aux)
    return tmp, sym, args, aux


@pytest.mark.parametrize("command", [
    # the reference's example: the input shape comes from the symbol's data variable
    "compile lenet-symbol.json lenet-0001.params --framework MXNET --neuroncore-pipeline-cores 2 "
    "--output file.neff",
    # with --io-config, for symbols whose variables carry no shape
    "compile lenet-symbol.json lenet-0001.params --framework MXNET --io-config "
    "'{\"inputs\": {\"data\": [[1,1,28,28], \"float32\"]}}' --output x.neff"])
def test_docs_neuron_cc_compile_mxnet(lenet, monkeypatch, command):
    """The neuron-cc reference's MXNet compile; the NEFF run at hardware precision against
    MXNet's forward of the checkpoint."""
    tmp, sym, args, aux = lenet
    monkeypatch.chdir(tmp)
    argv = shlex.split(command)
    assert neuron_cc(argv) == 0
    x = np.random.default_rng(2).uniform(-1, 1, (1, 1, 28, 28)).astype(np.float32)
    with runtime.load((tmp / argv[-1]).read_bytes(), precision="hardware") as model:
        assert [name for name, _, _ in model.inputs] == ["data"]   # the label is not an input
        got = model.run([x])[0]
    ref = _mxnet_cpu(sym, args, aux, x)
    assert _cosine(got, ref) >= 0.99 and rel_err(got, ref) < BF16_TOL


# -- the fixes behind them, one by one -------------------------------------------------------------

def test_gluon_compile_keeps_label_input_and_exports(checkpoint, tmp_path, fp32):
    tmp, _, ref = checkpoint
    block = mx.gluon.nn.SymbolBlock.imports(str(tmp / "resnet-50-symbol.json"),
                                            ["data", "softmax_label"],
                                            str(tmp / "resnet-50-0000.params"), ctx=mx.cpu())
    compiled = mx_neuron.compile(block, inputs={"data": (1, 3, SIDE, SIDE),
                                                "softmax_label": (1,)})
    assert compiled._cached_graph[1].list_inputs()[:2] == ["data", "softmax_label"]
    img = mx.nd.array(np.load(tmp / "img.npy"))
    a = compiled(img, mx.nd.array([3.0])).asnumpy()
    b = compiled(img, mx.nd.array([7.0])).asnumpy()
    assert np.array_equal(a, b) and rel_err(a, ref) < FP32_TOL   # the label is not read
    compiled.export(str(tmp_path / "c"), 0)
    saved = mx.nd.load(str(tmp_path / "c-0000.params"))
    assert "arg:neuron_subgraph_0_neff" in saved


def test_compiled_json_is_mxnet_neuron_form_and_round_trips(tmp_path, fp32):
    """Two regions around a host op: the statistics the snippet computes, and every way a symbol
    travels (tojson/load_json, save/load, pickle) keeps it loadable and running."""
    sym = _small_resnet(middle=lambda y: S.sin(y, name="odd_sin"))
    shape = (1, 3, 16, 16)
    args, aux = _params(sym, shape)
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": shape},
                                          cost_aware=False)
    nodes = json.loads(csym.tojson())["nodes"]
    calls = [n for n in nodes if n["op"] == "_neuron_subgraph_op"]
    assert len(calls) == 2 and all("op_type" not in n["attrs"] for n in calls)
    inside = [m["name"] for n in calls for m in n["subgraphs"][0]["nodes"] if m["op"] != "null"]
    original = [n["name"] for n in json.loads(sym.tojson())["nodes"] if n["op"] != "null"]
    assert sorted(inside) == sorted(set(original) - {"odd_sin"})
    x = np.random.default_rng(3).uniform(-1, 1, shape).astype(np.float32)
    ref = _mxnet_cpu(sym, args, aux, x)
    csym.save(str(tmp_path / "c-symbol.json"))
    assert json.loads((tmp_path / "c-symbol.json").read_text())["nodes"] == nodes
    for again in (mx.sym.load_json(csym.tojson()), mx.sym.load(str(tmp_path / "c-symbol.json")),
                  pickle.loads(pickle.dumps(csym))):
        assert again.list_arguments() == csym.list_arguments()
        feed = {"data": mx.nd.array(x), "softmax_label": mx.nd.zeros((1,)), **cargs}
        got = again.bind(mx.neuron(), feed, aux_states=caux).forward()[0].asnumpy()
        assert rel_err(got, ref) < FP32_TOL
    foreign = json.loads(csym.tojson())
    for node in foreign["nodes"]:
        node.get("attrs", {}).pop("config", None)
    with pytest.raises(NeuronError, match="'neuron_subgraph_0' has no 'config' attribute: it was "
                                          "not compiled by this mx_neuron"):
        mx.sym.load_json(json.dumps(foreign))


def test_neuron_context_index_binds_that_core(fresh_runtime, fp32):
    sym = _small_resnet()
    shape = (1, 3, 16, 16)
    args, aux = _params(sym, shape)
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": shape},
                                          cost_aware=False)
    before = csym.tojson()
    ctx = mx.neuron(2)
    assert (str(ctx), repr(ctx), f"{ctx}", str([ctx])) == ("neuron(2)",) * 3 + ("[neuron(2)]",)
    x = mx.nd.zeros(shape, ctx=ctx)   # MXNet's C library is handed str(ctx): it reads cpu(0)
    x[:] = np.random.default_rng(4).uniform(-1, 1, shape)
    ref = _mxnet_cpu(sym, args, aux, x.asnumpy())
    feed = {"data": x, "softmax_label": mx.nd.zeros((1,)), **cargs}
    exe = csym.bind(ctx=ctx, args=feed, aux_states=caux, grad_req="null")
    assert rel_err(exe.forward()[0].asnumpy(), ref) < FP32_TOL
    mod = mx.mod.Module(csym, context=mx.neuron(3))   # data and softmax_label, as the original
    mod.bind(data_shapes=[("data", shape)], for_training=False)
    mod.set_params(cargs, caux)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    assert rel_err(mod.get_outputs()[0].asnumpy(), ref) < FP32_TOL
    # (NEFF, precision, core asked for) -> the core it loaded on; compiling timed the symbol
    # bound on mx.cpu(), which asks for no core and got the first one with room
    asked = {k[2]: m.core for k, m in fresh_runtime.plugin_models.items()}
    assert asked == {None: 0, 0: 0, 2: 2, 3: 3}
    owners = {c: u.owners for c, u in fresh_runtime.devices.usage().items()}
    assert owners[2] and owners[3] and not owners[1]
    assert csym.tojson() == before   # binding on a core changed a copy, not the user's symbol
    with pytest.raises(NeuronError, match=r"mx.neuron 7 is out of range: use 0 to 3: the cores "
                                          r"visible to this process, 0-3"):
        csym.bind(mx.neuron(7), feed, aux_states=caux)


def test_neuron_context_index_is_a_group_with_group_sizes(fresh_runtime, fp32, monkeypatch):
    """With NEURONCORE_GROUP_SIZES, mx.neuron(i) is NeuronCore group i (mxnet-neuron's meaning),
    counted within NEURON_RT_VISIBLE_CORES."""
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "1-3")
    monkeypatch.setenv("NEURONCORE_GROUP_SIZES", "1,2")
    sym = _small_resnet()
    shape = (1, 3, 16, 16)
    args, aux = _params(sym, shape)
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs={"data": shape},
                                          cost_aware=False)
    x = mx.nd.array(np.random.default_rng(5).uniform(-1, 1, shape))
    feed = {"data": x, "softmax_label": mx.nd.zeros((1,)), **cargs}
    ref = _mxnet_cpu(sym, args, aux, x.asnumpy())
    exe = csym.bind(ctx=mx.neuron(1), args=feed, aux_states=caux, grad_req="null")
    assert rel_err(exe.forward()[0].asnumpy(), ref) < FP32_TOL
    assert fresh_runtime.devices.groups == ((1,), (2, 3))
    assert {m.core for k, m in fresh_runtime.plugin_models.items() if k[2] == 2} == {2}
    with pytest.raises(NeuronError, match=r"mx.neuron 2 is out of range: use NeuronCore group 0 "
                                          r"to 1 \(NEURONCORE_GROUP_SIZES=1,2\)"):
        csym.bind(mx.neuron(2), feed, aux_states=caux)


def test_neuron_cc_mxnet_errors(lenet, tmp_path, monkeypatch):
    tmp, _, _, _ = lenet
    monkeypatch.chdir(tmp)
    read = find("MXNET").read_model
    with pytest.raises(FrontendError, match=r"names input\(s\) \['image'\]"):
        read(["lenet-symbol.json", "lenet-0001.params"], {"inputs": {"image": [[1], "float32"]}})
    with pytest.raises(FrontendError, match=r"output\(s\) \['logits'\].*\['softmax_output'\]"):
        read(["lenet-symbol.json", "lenet-0001.params"],
             {"inputs": {"data": [[1, 1, 28, 28], "float32"]}, "outputs": ["logits"]})
    with pytest.raises(FrontendError, match="takes a symbol file"):
        read(["lenet-symbol.json"], {"inputs": {"data": [[1, 1, 28, 28], "float32"]}})
    sym = S.sin(S.FullyConnected(S.var("data"), num_hidden=4, name="fc"), name="odd_sin")
    args = {"fc_weight": mx.nd.ones((4, 8)), "fc_bias": mx.nd.zeros((4,))}
    mx.model.save_checkpoint(str(tmp_path / "odd"), 0, sym, args, {})
    odd = [str(tmp_path / "odd-symbol.json"), str(tmp_path / "odd-0000.params")]
    with pytest.raises(FrontendError, match=r"inputs carry no shapes: give them with --io-config "
                                            r".*\['data'\]"):
        read(odd, None)
    with pytest.raises(UnsupportedOpError, match="sin \\(node 'odd_sin'\\).*mx_neuron.compile"):
        read(odd, {"inputs": {"data": [[1, 8], "float32"]}})


class _Payload:
    def __reduce__(self):
        import os
        return (os.mkdir, ("ran-code-from-the-params-file",))


def test_neuron_cc_mxnet_never_unpickles_the_params(lenet, tmp_path, monkeypatch):
    tmp, _, _, _ = lenet
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil-0000.params").write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(FrontendError, match="cannot read the MXNet checkpoint"):
        find("MXNET").read_model([str(tmp / "lenet-symbol.json"), "evil-0000.params"],
                      {"inputs": {"data": [[1, 1, 28, 28], "float32"]}})
    assert not (tmp_path / "ran-code-from-the-params-file").exists()


def test_compile_work_dir_option_of_mx_neuron_1_8(tmp_path):
    sym = _small_resnet()
    shape = (1, 3, 16, 16)
    args, aux = _params(sym, shape)
    mx_neuron.compile(sym, args, aux, inputs={"data": shape}, work_dir=str(tmp_path / "w"))
    assert (tmp_path / "w" / "neuron_subgraph_0" / "model.neff").stat().st_size > 0
    with pytest.raises(NeuronError, match="different work directories"):
        mx_neuron.compile(sym, args, aux, inputs={"data": shape}, work_dir="a",
                          compiler_workdir="b")
