"""The tensorflow-neuron (Inf1) documentation's own code, run as written, against TensorFlow.

Each workflow test copies the documented lines (aws-neuron-sdk: the ResNet-50 saved_model.compile
notebook, keras_resnet50/pb2sm_compile.py and infer_resnet50_keras_loadtest.py, the TF2 tracing
API reference, the TF2 FAQ, the auto-multicore API reference, the HuggingFace DistilBERT
notebook). They are changed only where this machine forces it, each change marked `# here:`:
random weights and small models instead of downloads (no ImageNet weights, no kitten image, no
decode_predictions class list), small batches and loop counts, 4 NeuronCores instead of 16,
TensorFlow 2 names for TF1 calls (tf.compat.v1.*), Keras 3's `Input((3,))` for `Input(3)`, and
transformers 5 ships no TF models, so the DistilBERT tutorial gets a small Keras model with the
same input and output dicts. Outputs are compared with TensorFlow's own at hardware precision
(BF16 matmul inputs): cosine >= 0.99.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

tf = pytest.importorskip("tensorflow")

import numpy as np  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2)

import tensorflow.neuron as tfn  # noqa: E402  (the Neuron SDK's import line)
from neuron_core.errors import BadInputError, NeuronError, UnsupportedOpError  # noqa: E402

from .models import mobilenet_like  # noqa: E402

keras = pytest.importorskip("keras")
L = keras.layers

pytestmark = pytest.mark.usefixtures("hardware")


def cosine(got, want) -> float:
    a = np.asarray(got, np.float64).ravel()
    b = np.asarray(want, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def log_cosine(got, want) -> float:
    """Cosine of centred log-probabilities: softmax outputs of random weights are close to
    uniform, so their own cosine is near 1 whatever the logits; their logs are the logits up to a
    constant."""
    def centred(p):
        lp = np.log(np.asarray(p, np.float64))
        return lp - lp.mean(axis=-1, keepdims=True)
    return cosine(centred(got), centred(want))


def small_cnn(size=32):
    """The image classifier standing for Keras ResNet50: convs, batch norm, residual, softmax."""
    base = mobilenet_like(size)
    return keras.Model(base.input, L.Softmax(name="probs")(base.output * 4.0))


def frozen_pb(model, input_name="input_1", output_name="probs/Softmax", dtype=tf.float32):
    """The model as a frozen TF1 GraphDef with input placeholder `input_name` and output node
    `output_name`: what gen_resnet50_keras.py writes (Keras 3 has no TF1 session to freeze from,
    so its function is frozen instead)."""
    spec = tf.TensorSpec([None, *model.input_shape[1:]], dtype)
    frozen = convert_variables_to_constants_v2(
        tf.function(lambda x: model(x)).get_concrete_function(spec))
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(dtype, spec.shape, name=input_name)
        y, = tf.graph_util.import_graph_def(
            frozen.graph.as_graph_def(), input_map={frozen.inputs[0].name: x},
            return_elements=[frozen.outputs[0].name], name="model")
        tf.identity(y, name=output_name)
    return graph.as_graph_def()


def images(n, size=32, seed=0, dtype="float32"):
    return np.random.default_rng(seed).uniform(0, 1, (n, size, size, 3)).astype(dtype)


# -- workflows ----------------------------------------------------------------------------------

def test_doc_resnet50_saved_model_compile_tutorial(tmp_path, monkeypatch):
    """tensorflow_resnet50/resnet50.ipynb: simple_save, tfn.saved_model.compile, then
    tf.contrib.predictor on the compiled model."""
    monkeypatch.chdir(tmp_path)
    # here: a small CNN with random weights for ResNet50(weights='imagenet'); Keras 3 has no
    # session, so its frozen graph is imported into one for simple_save
    model = small_cnn()
    WORKSPACE = './ws_resnet50'
    os.makedirs(WORKSPACE, exist_ok=True)
    model_dir = os.path.join(WORKSPACE, 'resnet50')
    compiled_model_dir = os.path.join(WORKSPACE, 'resnet50_neuron')
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.rmtree(compiled_model_dir, ignore_errors=True)
    frozen = frozen_pb(model)
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        tf.graph_util.import_graph_def(frozen, name="")
        graph = session.graph
        # Export SavedModel
        tf.compat.v1.saved_model.simple_save(
            session            = session,
            export_dir         = model_dir,
            inputs             = {'input': graph.get_tensor_by_name("input_1:0")},
            outputs            = {'output': graph.get_tensor_by_name("probs/Softmax:0")})
    # Compile using Neuron
    result = tfn.saved_model.compile(model_dir, compiled_model_dir)
    assert result["OnNeuronRatio"] > 0.9

    img_arr3 = images(1, seed=1)   # here: for the kitten image, preprocessed
    COMPILED_MODEL_DIR = './ws_resnet50/resnet50_neuron/'
    predictor_inferentia = tf.contrib.predictor.from_saved_model(COMPILED_MODEL_DIR)
    model_feed_dict={'input': img_arr3}
    infa_rslts = predictor_inferentia(model_feed_dict);
    # here: no decode_predictions (its class list is a download); compare with Keras instead
    want = model(img_arr3).numpy()
    assert infa_rslts["output"].shape == want.shape
    assert log_cosine(infa_rslts["output"], want) >= 0.99


def test_doc_keras_resnet50_pb2sm_compile_and_loadtest(tmp_path, monkeypatch):
    """keras_resnet50: a frozen .pb to a TF1 SavedModel whose signature keys are tensor names
    (pb2sm_compile.py), compiled with dynamic batch; then infer_resnet50_keras_loadtest.py's
    predictors in threads, one NeuronCore group each."""
    monkeypatch.chdir(tmp_path)
    model = small_cnn()
    with open("resnet50_fp16_keras_opt.pb", "wb") as f:
        f.write(frozen_pb(model).SerializeToString())   # here: an fp32 model (the doc's is fp16)

    def pb_to_saved_model(pb_path, input_names, output_names, model_dir):
        graph_def = tf.compat.v1.GraphDef()             # here: tf.compat.v1 for TF1 names
        graph_def.ParseFromString(open(pb_path, 'rb').read())
        with tf.compat.v1.Session(graph=tf.Graph()) as sess:
            tf.compat.v1.import_graph_def(graph_def, name='')
            inputs = {name: sess.graph.get_tensor_by_name(ts_name) for name, ts_name in input_names.items()}
            outputs = {name: sess.graph.get_tensor_by_name(ts_name) for name, ts_name in output_names.items()}
            tf.compat.v1.saved_model.simple_save(sess, model_dir, inputs, outputs)

    saved_model_dir = "rn50_fp16"
    shutil.rmtree(saved_model_dir, ignore_errors=True)
    pb_to_saved_model("resnet50_fp16_keras_opt.pb", {"input_1:0": "input_1:0"}, {"probs/Softmax:0" : "probs/Softmax:0"}, saved_model_dir)
    batch_size = 2                                     # here: 2 for 5
    neuroncore_pipeline_cores = 1
    img_arr = np.zeros([batch_size, 32, 32, 3], dtype='float32')   # here: 32x32 fp32
    compiled_saved_model_dir = saved_model_dir + "_compiled_b" + str(batch_size) + "_nc" + str(neuroncore_pipeline_cores)
    shutil.rmtree(compiled_saved_model_dir + "/1", ignore_errors=True)
    compiler_args = ['--neuroncore-pipeline-cores', str(neuroncore_pipeline_cores)]
    workdir = "compiler_workdir"
    shutil.rmtree(workdir, ignore_errors=True)
    rslts = tfn.saved_model.compile(saved_model_dir, compiled_saved_model_dir + "/1",
                   model_feed_dict={'input_1:0' : img_arr},
                   compiler_workdir=workdir,
                   dynamic_batch_size=True,
                   compiler_args = compiler_args)
    perc_on_inf = rslts['OnNeuronRatio'] * 100
    assert perc_on_inf >= 50
    assert os.path.isfile(os.path.join(workdir, "serving_default", "report.json"))
    shutil.make_archive('./' + compiled_saved_model_dir, 'zip', './', compiled_saved_model_dir)
    assert os.path.isfile(compiled_saved_model_dir + ".zip")

    # infer_resnet50_keras_loadtest.py
    neuron_ls_output = subprocess.run([sys.executable, "-m", "neuron_core.tools.neuron_ls", "-j"],   # here: neuron-ls
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, encoding="utf-8")
    neuron_ls_json = json.loads(neuron_ls_output.stdout)
    avail_neuroncores = neuron_ls_json[0]["nc_count"]
    USER_BATCH_SIZE = 2 * batch_size
    NUM_LOOPS_PER_THREAD = 2                            # here: 2 for 400
    COMPILED_MODEL_DIR = "./rn50_fp16_compiled_b" + str(batch_size) + "_nc" + str(neuroncore_pipeline_cores) + "/1"
    num_groups = avail_neuroncores // neuroncore_pipeline_cores
    group_sizes = [str(neuroncore_pipeline_cores)] * num_groups
    monkeypatch.setenv('NEURONCORE_GROUP_SIZES', ','.join(group_sizes))   # here: for os.environ
    img_arr3 = images(USER_BATCH_SIZE, seed=2)
    pred_list = [tf.contrib.predictor.from_saved_model(COMPILED_MODEL_DIR) for _ in range(num_groups)]
    pred_list = pred_list * neuroncore_pipeline_cores
    model_feed_dict={'input_1:0': img_arr3}
    results = []

    def one_thread(pred, model_feed_dict, index):
        for i in range(NUM_LOOPS_PER_THREAD):
            results.append(pred(model_feed_dict))

    from concurrent import futures
    with futures.ThreadPoolExecutor(max_workers=len(pred_list)) as executor:
        for job in [executor.submit(one_thread, pred, model_feed_dict, i)
                    for i, pred in enumerate(pred_list)]:
            job.result()
    want = model(img_arr3).numpy()
    assert len(results) == len(pred_list) * NUM_LOOPS_PER_THREAD
    for result in results:
        assert set(result) == {"probs/Softmax:0"}
        assert log_cosine(result["probs/Softmax:0"], want) >= 0.99


def test_doc_tracing_api_reference(tmp_path, monkeypatch):
    """api-tracing-python-api.rst: both examples."""
    monkeypatch.chdir(tmp_path)
    input0 = tf.keras.layers.Input((3,))   # here: Keras 3 takes a shape tuple
    dense0 = tf.keras.layers.Dense(3)(input0)
    model = tf.keras.Model(inputs=[input0], outputs=[dense0])
    example_inputs = tf.random.uniform([1, 3])
    model_neuron = tfn.trace(model, example_inputs)  # trace
    # check to see how much of the model was compiled successfully
    print(model_neuron.on_neuron_ratio)
    assert model_neuron.on_neuron_ratio == 1.0
    model_dir = './model_neuron'
    model_neuron.save(model_dir)
    model_neuron_reloaded = tf.keras.models.load_model(model_dir)
    want = model(example_inputs).numpy()
    assert cosine(model_neuron(example_inputs), want) >= 0.99
    assert cosine(model_neuron_reloaded(example_inputs), want) >= 0.99
    assert model_neuron_reloaded.on_neuron_ratio == 1.0

    input0 = tf.keras.layers.Input((3,))
    dense0 = tf.keras.layers.Dense(3)(input0)
    reshape0 = tf.keras.layers.Reshape([1, 3])(dense0)
    output0 = tf.keras.layers.Dense(2)(reshape0)
    model = tf.keras.Model(inputs=[input0], outputs=[output0])
    example_inputs = tf.random.uniform([1, 3])
    seen = []

    def subgraph_builder_function(node):
        seen.append(node.op)
        return node.op == 'MatMul'

    model_neuron = tfn.trace(
        model, example_inputs,
        subgraph_builder_function=subgraph_builder_function,
    )
    assert "MatMul" in seen and "BiasAdd" in seen
    rows = model_neuron.report.nodes
    assert {r["op_type"] for r in rows if r["placement"] == "neuron"} <= {"Gemm"}, rows
    assert all("subgraph_builder_function" in r["reason"] for r in rows if r["op_type"] == "Add")
    assert cosine(model_neuron(example_inputs), model(example_inputs)) >= 0.99


def test_doc_tf2_faq_compile_and_deploy(tmp_path, monkeypatch):
    """tf2_faq.rst: trace a Keras model and a loaded SavedModel's signature, save, reload with
    tf.keras.models.load_model, and save for TensorFlow Serving with tf.saved_model.save."""
    monkeypatch.chdir(tmp_path)
    inputs = keras.Input((32, 32, 3), name="image")
    outputs = mobilenet_like()(inputs)
    example_inputs = images(1, seed=4)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    model.export('./model_dir', verbose=False)   # here: the SavedModel the FAQ loads
    model_neuron = tfn.trace(model, example_inputs)
    model_neuron.save('./model_neuron_dir')
    model_loaded = tf.saved_model.load('./model_dir')
    predict_func = model_loaded.signatures['serving_default']   # here: the FAQ's
    # model_loaded['serving_default'] is not TensorFlow's API
    example_inputs2 = {'image': tf.constant(example_inputs)}     # signatures take keywords
    model_loaded_neuron = tfn.trace(predict_func, example_inputs2)
    model_loaded_neuron.save('./model_loaded_neuron_dir')

    model = tf.keras.models.load_model('./model_loaded_neuron_dir')
    output = model(example_inputs2)
    want = predict_func(**example_inputs2)
    assert set(output) == set(want)
    key = next(iter(want))
    assert cosine(output[key], want[key]) >= 0.99
    assert cosine(tf.keras.models.load_model('./model_neuron_dir')(example_inputs),
                  want[key]) >= 0.99

    tf.saved_model.save(model_neuron, './model_neuron_dir/1')
    served = tf.saved_model.load('./model_neuron_dir/1').signatures["serving_default"]
    got = served(input_0=tf.constant(example_inputs))
    assert cosine(next(iter(got.values())), want[key]) >= 0.99


def test_doc_tensorflow_serving_tutorial(tmp_path, monkeypatch):
    """tensorflow_serving_tutorial.rst: trace, then tf.keras.models.save_model into a version
    directory that TensorFlow Serving reads (its serving_default signature)."""
    monkeypatch.chdir(tmp_path)
    # here: no tf.keras.backend.set_learning_phase in Keras 3 (inference is the default)
    tf.keras.backend.set_image_data_format('channels_last')
    image_sizes = [32, 32]                       # here: 32 for 224
    model = small_cnn()                          # here: for ResNet50(weights='imagenet')
    example_inputs = tf.random.uniform([1, *image_sizes, 3], dtype=tf.float32)
    model(example_inputs)   # here: the docs' "model_neuron(example_inputs)" names the model
    # before it exists
    model_neuron = tfn.trace(model, example_inputs)
    tf.keras.models.save_model(model_neuron, './resnet50_inf1/1')
    served = tf.saved_model.load('./resnet50_inf1/1').signatures["serving_default"]
    got = served(input_0=example_inputs)
    assert log_cosine(next(iter(got.values())), model(example_inputs)) >= 0.99


def test_doc_auto_multicore(tmp_path, monkeypatch, fresh_runtime):
    """api-auto-replication-api.rst: both Python examples, on 4 NeuronCores."""
    monkeypatch.chdir(tmp_path)
    input0 = tf.keras.layers.Input((3,))   # here: Keras 3 takes a shape tuple
    dense0 = tf.keras.layers.Dense(3)(input0)
    inputs = [input0]
    outputs = [dense0]
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    input0_tensor = tf.random.uniform([1, 3])
    model_neuron = tfn.trace(model, input0_tensor)

    num_cores = 4
    multicore_model = tfn.auto_multicore(model_neuron, input0_tensor, num_cores=num_cores)
    multicore_model(input0_tensor)

    want = model(input0_tensor).numpy()
    assert multicore_model.cores == [0, 1, 2, 3]
    turns = []
    for _ in range(num_cores):
        turns.append(int(multicore_model.turn.numpy()) % num_cores)
        assert cosine(multicore_model(input0_tensor), want) >= 0.99
    assert sorted(turns) == [0, 1, 2, 3]
    neff = model_neuron.neffs[0].numpy()
    from neuron_core.neff import neff_key
    loaded_on = {core for (key, _, core), m in fresh_runtime.plugin_models.items()
                 if key == neff_key(neff) and m.loaded}
    assert {0, 1, 2, 3} <= loaded_on

    model_dir = './model_neuron'
    model_neuron.save(model_dir)
    input0_tensor = tf.random.uniform([1, 3])
    num_cores = 4
    reload_model = tf.saved_model.load(model_dir)   # here: the docs'
    # tensorflow.python.saved_model.load is a module in TensorFlow 2.21
    multicore_model = tfn.auto_multicore(reload_model, input0_tensor, num_cores=num_cores)
    assert cosine(multicore_model(input0_tensor), model(input0_tensor)) >= 0.99
    multicore_model.save('./multicore')
    again = tf.keras.models.load_model('./multicore')
    before = int(again.turn.numpy())
    assert cosine(again(input0_tensor), model(input0_tensor)) >= 0.99
    assert int(again.turn.numpy()) == before + 1


class DictEncoder(keras.Model):
    """Stands for TFDistilBertModel: takes {'input_ids', 'attention_mask'}, returns
    {'last_hidden_state'} (embedding, masked, dense GELU, layer norm)."""

    def __init__(self, vocab=50, dim=16):
        super().__init__()
        self.embed = L.Embedding(vocab, dim)
        self.dense = L.Dense(dim, activation="gelu")
        self.norm = L.LayerNormalization()

    def call(self, inputs):
        mask = tf.cast(inputs["attention_mask"], tf.float32)[..., None]
        h = self.embed(inputs["input_ids"]) * mask
        return {"last_hidden_state": self.norm(h + self.dense(h))}


def test_doc_huggingface_distilbert_wrapper(tmp_path, monkeypatch):
    """huggingface_bert.ipynb: a wrapper taking a list, traced, saved, reloaded with
    tf.keras.models.load_model and run from threads."""
    monkeypatch.chdir(tmp_path)

    class DistilBertWrapper(tf.keras.Model):
        def __init__(self, model):
            super().__init__()
            self.model = model
        def __call__(self, example_inputs):
            return self.model({'input_ids' : example_inputs[0], 'attention_mask' : example_inputs[1]})

    model = DistilBertWrapper(DictEncoder())   # here: for TFDistilBertModel.from_pretrained
    batch_size = 4                             # here: 4 for 16
    rng = np.random.default_rng(5)
    ids = rng.integers(1, 50, (batch_size, 16)).astype(np.int32)   # here: for the tokenizer
    mask = np.ones_like(ids)
    mask[:, 12:] = 0
    encoded_input = {'input_ids': tf.constant(ids), 'attention_mask': tf.constant(mask)}
    example_input = [encoded_input['input_ids'], encoded_input['attention_mask']]
    model_neuron = tfn.trace(model, example_input)
    print("Running on neuron:", model_neuron(example_input))
    model_neuron.save('./distilbert-neuron-b16')

    reloaded_neuron_model = tf.keras.models.load_model('./distilbert-neuron-b16')
    print("Reloaded model running on neuron:", reloaded_neuron_model(example_input))
    num_threads = 4
    num_inferences = 8                         # here: 8 for 1000
    latency_list = []

    def inference_with_latency_calculation(example_input):
        start = time.time()
        result = reloaded_neuron_model(example_input)
        end = time.time()
        latency_list.append((end-start) * 1000)
        return result

    import concurrent.futures
    want = model(example_input)["last_hidden_state"].numpy()
    with concurrent.futures.ThreadPoolExecutor(max_workers=num_threads) as executor:
        futures = []
        for i in range(num_inferences):
            futures.append(executor.submit(inference_with_latency_calculation, example_input))
        for future in concurrent.futures.as_completed(futures):
            get_result = future.result()
            assert cosine(get_result["last_hidden_state"], want) >= 0.99
    assert len(latency_list) == num_inferences
    assert model_neuron.on_neuron_ratio > 0.5


# -- unit tests of the fixes --------------------------------------------------------------------

def _two_input_fn(a, b):
    return tf.nn.relu(tf.matmul(a, b)) * 2.0


def test_trace_example_input_forms():
    """A tuple is positional arguments, a dict keyword arguments, a list one argument; the
    traced model is called the same way and says so when called otherwise."""
    a = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    want = _two_input_fn(a, b).numpy()
    by_tuple = tfn.trace(_two_input_fn, (a, b), minimum_segment_size=1)
    assert cosine(by_tuple(a, b), want) >= 0.99
    by_dict = tfn.trace(_two_input_fn, {"a": a, "b": b}, minimum_segment_size=1)
    assert cosine(by_dict(a=a, b=b), want) >= 0.99
    assert cosine(by_dict({"a": a, "b": b}), want) >= 0.99
    by_list = tfn.trace(lambda pair: _two_input_fn(*pair), [a, b], minimum_segment_size=1)
    assert cosine(by_list([a, b]), want) >= 0.99
    with pytest.raises(BadInputError, match="traced with one list argument, got 2"):
        by_list(a, b)
    with pytest.raises(BadInputError, match="keyword arguments"):
        by_dict(a, b)
    with pytest.raises(NeuronError, match="example_inputs is empty"):
        tfn.trace(_two_input_fn, [])


def test_trace_dynamic_batch_size_takes_any_batch(tmp_path):
    x = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    w = np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32)
    traced = tfn.trace(lambda v: _two_input_fn(v, w), x, dynamic_batch_size=True,
                       minimum_segment_size=1)
    big = np.concatenate([x, x, x[:1]])
    assert cosine(traced(big), _two_input_fn(big, w)) >= 0.99
    traced.save(tmp_path / "dyn")
    assert cosine(tf.keras.models.load_model(str(tmp_path / "dyn"))(big),
                  _two_input_fn(big, w)) >= 0.99


def _cumsum_fn(x):
    return tf.math.cumsum(tf.nn.relu(x * 2.0 + 1.0), axis=1) + 1.0


def test_trace_and_compile_fallback_false_list_unsupported_ops(tmp_path):
    x = np.ones((2, 5), np.float32)
    with pytest.raises(UnsupportedOpError, match=r"(?s)fallback=False but 1 of \d+ nodes cannot "
                       r"run on Neuron:.*Cumsum.*fallback=True"):
        tfn.trace(_cumsum_fn, x, fallback=False)
    assert tfn.trace(_cumsum_fn, x).on_neuron_ratio < 1.0   # the default falls back

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32)])
        def serve(self, x):
            return {"y": _cumsum_fn(x)}
    m = M()
    tf.saved_model.save(m, str(tmp_path / "sm"), signatures={"serving_default": m.serve})
    with pytest.raises(UnsupportedOpError, match="Cumsum"):
        tfn.saved_model.compile(tmp_path / "sm", tmp_path / "out", fallback=False)
    assert not (tmp_path / "out").exists()


def test_compile_logs_the_operation_counts(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="Neuron"):
        tfn.trace(_cumsum_fn, np.ones((2, 5), np.float32), minimum_segment_size=1,
                  cost_aware=False)
    counts = {k: int(v) for k, v in re.findall(
        r"Number of operations (in TensorFlow session|after tf\.neuron optimizations|placed on "
        r"Neuron runtime): (\d+)", caplog.text)}
    assert len(counts) == 3, caplog.text
    session, after, placed = (counts["in TensorFlow session"],
                              counts["after tf.neuron optimizations"],
                              counts["placed on Neuron runtime"])
    assert session >= after > placed > 0   # Cumsum stays on TensorFlow
    assert "Operations left on TensorFlow: Cumsum: 1" in caplog.text


def test_tf1_signature_keys_survive_compile(tmp_path):
    """The compiled SavedModel keeps the source's tensor-name keys ('input_1:0') wherever
    TensorFlow reads them: the SignatureDef and the reloaded signature function."""
    from tensorflow.core.protobuf import saved_model_pb2
    with tf.compat.v1.Session(graph=tf.Graph()) as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="input_1")
        y = tf.identity(tf.nn.relu(x * 3.0 - 1.0) * 2.0, name="out")
        tf.compat.v1.saved_model.simple_save(sess, str(tmp_path / "sm"), {"input_1:0": x},
                                             {"out:0": y})
    tfn.saved_model.compile(tmp_path / "sm", tmp_path / "out", batch_size=2,
                            minimum_segment_size=1, cost_aware=False)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((tmp_path / "out" / "saved_model.pb").read_bytes())
    assert list(proto.meta_graphs[0].signature_def["serving_default"].inputs) == ["input_1:0"]
    fn = tf.saved_model.load(str(tmp_path / "out")).signatures["serving_default"]
    assert list(fn.structured_input_signature[1]) == ["input_1:0"]
    v = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_allclose(fn(**{"input_1:0": v})["out:0"].numpy(),
                               np.maximum(v * 3 - 1, 0) * 2, rtol=1e-2, atol=1e-2)


def test_keras_save_and_load_leave_other_models_to_keras(tmp_path):
    model = keras.Sequential([keras.Input((3,)), L.Dense(2)])
    tf.keras.models.save_model(model, str(tmp_path / "m.keras"))
    again = tf.keras.models.load_model(str(tmp_path / "m.keras"))
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(again(x).numpy(), model(x).numpy())
    model.export(str(tmp_path / "plain"), verbose=False)
    with pytest.raises(ValueError, match="TFSMLayer|not supported"):   # Keras' own error
        tf.keras.models.load_model(str(tmp_path / "plain"))


def test_auto_multicore_errors(fresh_runtime):
    x = np.ones((1, 4), np.float32)
    traced = tfn.trace(lambda v: tf.nn.relu(v * 2.0) + 1.0, x)
    with pytest.raises(NeuronError, match=r"num_cores=5 but this process sees 4 NeuronCore"):
        tfn.auto_multicore(traced, x, num_cores=5)
    with pytest.raises(NeuronError, match="num_cores must be a positive int"):
        tfn.auto_multicore(traced, x, num_cores=0)
    with pytest.raises(NeuronError, match="takes a model returned by tfn.trace"):
        tfn.auto_multicore(keras.Sequential([keras.Input((4,)), L.Dense(2)]), x, num_cores=2)
    with pytest.raises(BadInputError, match="example_inputs do not fit"):
        tfn.auto_multicore(traced, np.ones((3, 7), np.float32), num_cores=2)
    piped = tfn.trace(lambda v: tf.nn.relu(v * 2.0) + 1.0, x,
                      compiler_args=["--neuroncore-pipeline-cores", "2"])
    with pytest.raises(NeuronError, match="compiled with --neuroncore-pipeline-cores 2"):
        tfn.auto_multicore(piped, x, num_cores=2)


# -- neuron-cc compile --framework TENSORFLOW -----------------------------------------------------

def _neuron_cc(*argv):
    from neuron_core.tools.neuron_cc import main
    return main(list(argv))


def test_neuron_cc_compiles_a_frozen_pb_and_a_saved_model(tmp_path, capsys):
    from neuron_core.bridge import run_neff
    model = small_cnn()
    pb = tmp_path / "model.pb"
    pb.write_bytes(frozen_pb(model, "input", "output").SerializeToString())
    io = json.dumps({"inputs": {"input:0": [[1, 32, 32, 3], "float32"]}, "outputs": ["output:0"]})
    assert _neuron_cc("compile", str(pb), "--framework", "TENSORFLOW", "--io-config", io,
                      "--output", str(tmp_path / "pb.neff")) == 0, capsys.readouterr().err
    x = images(1, seed=6)
    want = model(x).numpy()
    got, = run_neff((tmp_path / "pb.neff").read_bytes(), [x])
    assert log_cosine(got, want) >= 0.99

    model.export(str(tmp_path / "sm"), verbose=False)
    assert _neuron_cc("compile", str(tmp_path / "sm"), "--framework", "TENSORFLOW",
                      "--output", str(tmp_path / "sm.neff")) == 0, capsys.readouterr().err
    got, = run_neff((tmp_path / "sm.neff").read_bytes(), [x])
    assert log_cosine(got, want) >= 0.99


def test_neuron_cc_tensorflow_errors(tmp_path, capsys):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 5], name="input")
        tf.identity(tf.math.cumsum(x * 2.0, axis=1), name="output")
    pb = tmp_path / "cumsum.pb"
    pb.write_bytes(graph.as_graph_def().SerializeToString())
    out = str(tmp_path / "x.neff")
    assert _neuron_cc("compile", str(pb), "--framework", "TENSORFLOW", "--output", out) == 1
    assert "needs --io-config" in capsys.readouterr().err
    io = json.dumps({"inputs": {"input:0": [[1, 5], "float32"]}, "outputs": ["output:0"]})
    assert _neuron_cc("compile", str(pb), "--framework", "TENSORFLOW", "--io-config", io,
                      "--output", out) == 1
    assert re.search(r"(?s)cannot run on Neuron:.*Cumsum", capsys.readouterr().err)
    bad = json.dumps({"inputs": {"nope:0": [[1, 5], "float32"]}, "outputs": ["output:0"]})
    assert _neuron_cc("compile", str(pb), "--framework", "TENSORFLOW", "--io-config", bad,
                      "--output", out) == 1
    assert "'nope:0' is not in the graph" in capsys.readouterr().err


def test_doc_neuron_cc_flags_workdir_and_dynamic_batch(tmp_path, monkeypatch):
    """The tracing API's "Special Flags": NEURON_CC_FLAGS='--workdir ./artifacts' and
    '--dynamic-batch-size' (the U-Net tutorial's way to serve other batch sizes), with a compiler
    argument beside them."""
    monkeypatch.chdir(tmp_path)
    model = small_cnn()
    monkeypatch.setenv("NEURON_CC_FLAGS", "--workdir ./artifacts --dynamic-batch-size "
                                          "--fast-math fp32-cast-matmult")
    model_neuron = tfn.trace(model, tf.random.uniform([3, 32, 32, 3], seed=3))
    batch = tf.random.uniform([5, 32, 32, 3], seed=4)     # not the traced batch of 3
    assert log_cosine(model_neuron(batch).numpy(), model(batch).numpy()) >= 0.99
    artifacts = tmp_path / "artifacts"
    assert (artifacts / "report.json").is_file()
    from neuron_core.neff import read_neff
    neff = read_neff((artifacts / "neuron_subgraph_0" / "model.neff").read_bytes())
    assert neff.metadata["options"]["fast_math"] == ["fp32-cast-matmult"]
