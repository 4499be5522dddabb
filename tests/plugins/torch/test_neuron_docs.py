"""The torch-neuron documentation's own code, run as written.

Each test holds the code of one documented example (the torch-neuron API reference, the
DataParallel examples, the ResNet-50, BERT, NeuronCore-pipeline and manual-partition tutorials),
adapted only where this machine forces it: torchvision cannot load beside this torch, so a small
ResNet written here stands in for `models.resnet50(pretrained=True)`; weights are random; images
are 32x32 instead of 224x224; 4 NeuronCores instead of 16; the BERT tutorial's
`import tensorflow` (a protobuf workaround of its environment) is left out. Outputs are checked
against eager PyTorch: exact-fp32 simulation up to summation order (1e-4), hardware precision
(BF16 matmul inputs) by cosine >= 0.99.
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch_neuron = pytest.importorskip("torch_neuron")
import torch.nn as nn  # noqa: E402

from neuron_core.errors import NeuronError  # noqa: E402

from ..numerics import rel_err  # noqa: E402


def _cosine(a, b) -> float:
    a, b = (np.asarray(x.detach(), np.float64).ravel() for x in (a, b))
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class _Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                  nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.down(x))


class _ResNet(nn.Module):
    """What `models.resnet50()` is to the docs: conv, pooling, residual stages, a classifier."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _Block(8, 8, 1)
        self.layer2 = _Block(8, 16, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class models:  # noqa: N801 - stands in for torchvision.models in the docs' code
    @staticmethod
    def resnet50(pretrained=False):
        torch.manual_seed(0)
        return _ResNet()


# -- torch-neuron API reference (api-compilation-python-api) --------------------------------------
def test_api_function_compilation(tmp_path, monkeypatch, fp32):
    monkeypatch.chdir(tmp_path)

    def foo(x, y):
        return 2 * x + y

    # Run `foo` with the provided inputs and record the tensor operations
    traced_foo = torch.neuron.trace(foo, (torch.rand(3), torch.rand(3)))

    # `traced_foo` can now be run with the TorchScript interpreter or saved
    # and loaded in a Python-free environment
    torch.jit.save(traced_foo, 'foo.pt')
    traced_foo = torch.jit.load('foo.pt')

    x, y = torch.rand(3), torch.rand(3)
    assert rel_err(traced_foo(x, y), foo(x, y)) < 1e-6


def test_api_module_compilation_and_strict_false_dict_output(fp32):
    class Net(nn.Module):
        def __init__(self):
            super(Net, self).__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv(x) + 1

    n = Net()
    n.eval()

    inputs = torch.rand(1, 1, 3, 3)

    # Trace a specific method and construct `ScriptModule` with
    # a single `forward` method
    neuron_forward = torch.neuron.trace(n.forward, inputs)

    # Trace a module (implicitly traces `forward`) and constructs a
    # `ScriptModule` with a single `forward` method
    neuron_net = torch.neuron.trace(n, inputs)
    assert rel_err(neuron_forward(inputs), n(inputs)) < 1e-5
    assert rel_err(neuron_net(inputs), n(inputs)) < 1e-5

    class Model(nn.Module):
        def __init__(self):
            super(Model, self).__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return {'conv': self.conv(x) + 1}

    model = Model()
    model.eval()

    inputs = torch.rand(1, 1, 3, 3)

    # use the strict=False kwarg to compile a model with dictionary outputs
    # the model output format does not change
    model_neuron = torch.neuron.trace(model, inputs, strict=False)
    assert rel_err(model_neuron(inputs)['conv'], model(inputs)['conv']) < 1e-5


def test_api_dynamic_batching(fp32):
    # Load the model and set it to evaluation mode
    model = models.resnet50(pretrained=True)
    model.eval()

    # Compile with an example input of batch size 1
    image = torch.rand([1, 3, 32, 32])
    model_neuron = torch.neuron.trace(model, image, dynamic_batch_size=True)

    # Execute with a batch of 7 images
    batch = torch.rand([7, 3, 32, 32])
    results = model_neuron(batch)
    assert rel_err(results, model(batch)) < 1e-4


def test_api_manual_partitioning(caplog):
    class ExampleConvolutionLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv(x) + 1

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = ExampleConvolutionLayer()

        def forward(self, x):
            return self.layer(x) * 100

    def subgraph_builder_function(node) -> bool:
        """Select if the node will be included in the Neuron graph"""

        # Node names are tuples of Module names.
        if 'ExampleConvolutionLayer' in node.name:
            return True

        # Ignore all operations not in the example convolution layer
        return False

    model = Model()
    model.eval()

    inputs = torch.rand(1, 1, 3, 3)

    # Log output shows that `aten::_convolution` and `aten::add` are compiled
    # but `aten::mul` is not. This will seamlessly switch between Neuron/CPU
    # execution in a single graph.
    with caplog.at_level(logging.INFO, logger="Neuron"):
        neuron_model = torch_neuron.trace(
            model,
            inputs,
            subgraph_builder_function=subgraph_builder_function
        )
    log = caplog.text
    assert " => aten::convolution: 1" in log and " => aten::add: 1" in log
    compiled = log.split("Compiled these operators (and operator counts) to Neuron:")[1]
    compiled, host = compiled.split("Not compiled operators (and operator counts) to Neuron:")
    assert "aten::mul" not in compiled and " => aten::mul: 1" in host
    assert neuron_model.neuron_report.compiled_ops == {"Conv": 1, "Add": 1}
    assert _cosine(neuron_model(inputs), model(inputs)) > 0.99


def test_api_fallback_false_raises_attribute_error():
    class WithSort(nn.Module):
        def forward(self, x):
            return torch.sort(x, dim=-1).values * 2

    with pytest.raises(AttributeError, match="fallback=False"):
        torch.neuron.trace(WithSort(), torch.rand(2, 5), fallback=False)


def test_api_optimization_float32_to_float16(fp32):
    model = models.resnet50()
    model.eval()
    image = torch.rand([1, 3, 32, 32])
    model_neuron = torch.neuron.trace(
        model, image, optimizations=[torch_neuron.Optimization.FLOAT32_TO_FLOAT16])
    neff_io = model_neuron.neuron_report.subgraphs[0]
    assert [i["dtype"] for i in neff_io["inputs"]] == ["float16"]
    # accepts float32 and float16 inputs; the NeuronCore's inputs and outputs are float16
    for x in (image, image.half()):
        out = model_neuron(x)
        assert out.dtype == torch.float16
        # fp16 input rounding (2^-11) through a small network: well under 1e-2
        assert rel_err(out.float(), model(image)) < 1e-2


def test_api_unknown_keyword_is_refused_before_compiling():
    model = nn.Linear(3, 3).eval()
    with pytest.raises(NeuronError, match="bogus"):
        torch.neuron.trace(model, torch.rand(1, 3), bogus=1)


# -- DataParallel examples -------------------------------------------------------------------------
def _resnet_neuron():
    model = models.resnet50(pretrained=True)
    model.eval()
    image = torch.rand([1, 3, 32, 32])
    return model, torch.neuron.trace(model, image)


def test_dataparallel_examples(fp32):
    model, model_neuron = _resnet_neuron()

    # default: every visible NeuronCore, any batch size
    model_parallel = torch.neuron.DataParallel(model_neuron)
    batch_size = 5
    image_batched = torch.rand([batch_size, 3, 32, 32])
    output = model_parallel(image_batched)
    assert rel_err(output, model(image_batched)) < 1e-4

    # specify NeuronCores
    model_parallel = torch.neuron.DataParallel(model_neuron, device_ids=['nc:0', 'nc:1', 'nc:2'])
    assert model_parallel.device_ids == [0, 1, 2]
    assert rel_err(model_parallel(image_batched), model(image_batched)) < 1e-4

    # dynamic batching
    model_parallel = torch.neuron.DataParallel(model_neuron)
    batch_sizes = [2, 3, 4, 5, 6]
    for batch_size in batch_sizes:
        image_batched = torch.rand([batch_size, 3, 32, 32])
        output = model_parallel(image_batched)
        assert output.shape == (batch_size, 10)

    # disable dynamic batching
    model_parallel = torch.neuron.DataParallel(model_neuron, device_ids=[0, 1, 2, 3], dim=0)
    model_parallel.disable_dynamic_batching()
    with pytest.raises(ValueError):       # 8 / 4 cores != the traced batch of 1
        model_parallel(torch.rand([8, 3, 32, 32]))
    batch_size = 4
    image_batched = torch.rand([batch_size, 3, 32, 32])
    output = model_parallel(image_batched)
    assert rel_err(output, model(image_batched)) < 1e-4


def test_dataparallel_dim_neq_zero(fp32):
    # Create an example model
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3)

        def forward(self, x):
            return self.conv(x) + 1

    model = Model()
    model.eval()

    # Compile with an example input
    image = torch.rand([1, 3, 8, 8])
    model_neuron = torch.neuron.trace(model, image)

    # Create the DataParallel module using 4 NeuronCores and dim = 2
    model_parallel = torch.neuron.DataParallel(model_neuron, device_ids=[0, 1, 2, 3], dim=2)

    # Create a batched input
    # Note that image_batched.shape[dim] / len(device_ids) == image.shape[dim]
    batch_size = 4 * 8
    image_batched = torch.rand([1, 3, batch_size, 8])

    # Run inference with a batched input
    output = model_parallel(image_batched)

    # each core ran one 8-row slice; the outputs are joined along dim 2
    want = torch.cat([model(s) for s in image_batched.split(8, dim=2)], dim=2)
    assert output.shape == (1, 3, 24, 6)
    assert rel_err(output, want) < 1e-5


# -- tutorials ---------------------------------------------------------------------------------
def test_resnet50_tutorial(tmp_path, monkeypatch, hardware):
    monkeypatch.chdir(tmp_path)
    # Create an example input for compilation
    image = torch.zeros([1, 3, 32, 32], dtype=torch.float32)

    # Load a pretrained ResNet50 model
    model = models.resnet50(pretrained=True)

    # Tell the model we are using it for evaluation (not training)
    model.eval()

    # Analyze the model - this will show operator support and operator count
    torch.neuron.analyze_model(model, example_inputs=[image])

    # Compile the model using torch.neuron.trace to create a Neuron model
    # that that is optimized for the Inferentia hardware
    model_neuron = torch.neuron.trace(model, example_inputs=[image])

    # Save the compiled model
    model_neuron.save("resnet50_neuron.pt")

    model_neuron = torch.jit.load("resnet50_neuron.pt")
    x = torch.rand([1, 3, 32, 32])
    assert _cosine(model_neuron(x), model(x)) > 0.99
    assert model_neuron(x).argmax() == model(x).argmax()


def test_pretrained_bert_tutorial(tmp_path, monkeypatch, hardware):
    transformers = pytest.importorskip("transformers")
    monkeypatch.chdir(tmp_path)
    import os

    import torch.neuron  # noqa: F811 - the tutorial's import line
    from transformers import AutoConfig, AutoModelForSequenceClassification

    monkeypatch.setenv('NEURON_RT_NUM_CORES', '4')   # first: records the value to restore
    num_cores = 4  # This value should be 4 on inf1.xlarge and inf1.2xlarge
    os.environ['NEURON_RT_NUM_CORES'] = str(num_cores)

    # random weights in the architecture of bert-base-cased-finetuned-mrpc, smaller
    config = AutoConfig.for_model("bert", vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, num_labels=2)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    model.config.return_dict = False
    model.eval()

    max_length = 16

    def encode(n):
        ids = torch.zeros(1, max_length, dtype=torch.long)
        ids[0, :n] = torch.randint(1, 120, (n,))
        mask = (ids != 0).long()
        return {"input_ids": ids, "attention_mask": mask,
                "token_type_ids": torch.zeros_like(ids)}
    paraphrase, not_paraphrase = encode(12), encode(9)

    # Run the original PyTorch model on compilation exaple
    paraphrase_classification_logits = model(**paraphrase)[0]

    # Convert example inputs to a format that is compatible with TorchScript tracing
    example_inputs_paraphrase = paraphrase['input_ids'], paraphrase['attention_mask'], paraphrase['token_type_ids']
    example_inputs_not_paraphrase = not_paraphrase['input_ids'], not_paraphrase['attention_mask'], not_paraphrase['token_type_ids']

    # Run torch.neuron.trace to generate a TorchScript that is optimized by AWS Neuron
    model_neuron = torch.neuron.trace(model, example_inputs_paraphrase)

    # Verify the TorchScript works on both example inputs
    paraphrase_classification_logits_neuron = model_neuron(*example_inputs_paraphrase)
    not_paraphrase_classification_logits_neuron = model_neuron(*example_inputs_not_paraphrase)

    # Save the TorchScript for later use
    model_neuron.save('bert_neuron.pt')
    print(model_neuron.graph)

    # Load TorchScript back
    model_neuron = torch.jit.load('bert_neuron.pt')
    # Verify the TorchScript works on both example inputs
    paraphrase_classification_logits_neuron = model_neuron(*example_inputs_paraphrase)
    not_paraphrase_classification_logits_neuron = model_neuron(*example_inputs_not_paraphrase)
    paraphrase_prediction = paraphrase_classification_logits_neuron[0][0].argmax().item()
    not_paraphrase_prediction = not_paraphrase_classification_logits_neuron[0][0].argmax().item()

    assert _cosine(paraphrase_classification_logits_neuron[0],
                   paraphrase_classification_logits) > 0.99
    assert paraphrase_prediction == paraphrase_classification_logits[0].argmax().item()
    assert not_paraphrase_prediction == model(**not_paraphrase)[0][0].argmax().item()


def test_neuroncore_pipeline_tutorial(hardware):
    transformers = pytest.importorskip("transformers")
    import torch_neuron  # noqa: F401,F811
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=2, intermediate_size=64), add_pooling_layer=False)
    model.config.return_dict = False
    model.eval()
    inputs = {"input_ids": torch.randint(1, 120, (1, 16)),
              "attention_mask": torch.ones(1, 16, dtype=torch.long)}

    neuroncore_pipeline_cores = 4  # This string should be '4' on an inf1.xlarge
    neuron_pipeline_model = torch.neuron.trace(model,
                                               example_inputs=(inputs['input_ids'], inputs['attention_mask']),
                                               verbose=1,
                                               compiler_args=['--neuroncore-pipeline-cores', str(neuroncore_pipeline_cores)]
                                               )
    outputs = neuron_pipeline_model(*(inputs['input_ids'], inputs['attention_mask']))
    assert _cosine(outputs[0], model(**inputs)[0]) > 0.99
    est = torch.neuron.estimate(neuron_pipeline_model, "inf1.xlarge")
    assert est.instances["inf1.xlarge"].cores == 4


def test_resnet50_partition_tutorial(tmp_path, monkeypatch, fp32):
    """resnet50_partition.ipynb: each stage traced with fallback=False inside the model, then the
    whole model traced by torch.jit.trace, saved and loaded."""
    monkeypatch.chdir(tmp_path)
    import torch.neuron  # noqa: F811

    class ResNetNeuron(_ResNet):

        def trace(self, x):
            x = self.conv1(x)
            x = self.bn1(x)
            x = self.relu(x)
            x = self.maxpool(x)

            self.layer1 = torch.neuron.trace(self.layer1, x, fallback=False)
            x = self.layer1(x)

            self.layer2 = torch.neuron.trace(self.layer2, x, fallback=False)

        def forward(self, x):
            x = self.conv1(x)
            x = self.bn1(x)
            x = self.relu(x)
            x = self.maxpool(x)

            # After running ResNetNeuron::trace, these layers will be placed on Neuron
            x = self.layer1(x)
            x = self.layer2(x)

            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            x = self.fc(x)

            return x

    model = models.resnet50(pretrained=True).eval()
    image = torch.rand(1, 3, 32, 32)
    model_neuron = ResNetNeuron()
    model_neuron.load_state_dict(model.state_dict())
    model_neuron.eval()
    model_neuron.trace(image)  # this line triggers neuron-cc compiler
    result = model_neuron(image)
    assert rel_err(result, model(image)) < 1e-4

    neuron_trace = torch.jit.trace(model_neuron, example_inputs=image)
    neuron_trace_filename = 'resnet50_neuron_trace.pt'
    neuron_trace.save(neuron_trace_filename)
    neuron_trace_loaded = torch.jit.load(neuron_trace_filename)
    assert rel_err(neuron_trace_loaded(image), model(image)) < 1e-4
    # the two stages are the Neuron-traced modules inside the TorchScript model
    assert str(neuron_trace.graph).count("__torch__.torch_neuron.trace.") == 2


# -- NEURON_CC_FLAGS, and models the plugin used to refuse -------------------------------------
def test_neuron_cc_flags_workdir_dynamic_batch_and_compiler_args(tmp_path, monkeypatch, fp32):
    monkeypatch.setenv("NEURON_CC_FLAGS", f"--workdir {tmp_path / 'artifacts'} "
                                          "--dynamic-batch-size --fast-math fp32-cast-matmult")
    model = models.resnet50().eval()
    model_neuron = torch.neuron.trace(model, torch.rand(3, 3, 32, 32))
    batch = torch.rand(5, 3, 32, 32)                      # not the traced batch of 3
    assert rel_err(model_neuron(batch), model(batch)) < 1e-4
    written = sorted(p.name for p in (tmp_path / "artifacts").iterdir())
    assert "report.json" in written and "neuron_subgraph_0" in written
    from neuron_core.neff import read_neff
    neff = read_neff((tmp_path / "artifacts" / "neuron_subgraph_0" / "model.neff").read_bytes())
    assert neff.metadata["options"]["fast_math"] == ["fp32-cast-matmult"]


def test_complex_values_stay_on_the_host(fp32):
    class Spectrum(nn.Module):
        def forward(self, x):
            y = torch.fft.rfft(x, dim=-1)
            return torch.relu(y.abs() - 1.0) * 2

    model = Spectrum().eval()
    info = torch.neuron.analyze_model(model, torch.rand(2, 16))
    # the FFT makes complex64, and abs reads it: both stay in PyTorch; the rest can compile
    assert info["unsupported_operators"] == {"aten._fft_r2c.default": 1, "aten.abs.default": 1}
    model_neuron = torch.neuron.trace(model, torch.rand(2, 16), cost_aware=False)
    x = torch.rand(2, 16)
    assert rel_err(model_neuron(x), model(x)) < 1e-5
    placed = {r["op_type"]: r["placement"] for r in model_neuron.neuron_report.nodes}
    assert placed["Relu"] == "neuron" and all(
        p == "host" for op, p in placed.items() if "fft" in op or op.endswith("abs.default"))


def test_model_output_containers_are_flattened(fp32):
    pytest.importorskip("transformers")
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=32)).eval()
    ids = torch.randint(0, 50, (1, 8))
    out = torch.neuron.trace(model, ids)(ids)       # a ModelOutput comes back as a dict
    assert set(out) == {"last_hidden_state", "pooler_output"}
    assert rel_err(out["pooler_output"], model(ids).pooler_output) < 1e-4


def test_a_cache_the_model_creates_gets_a_clear_error():
    pytest.importorskip("transformers")
    from transformers import GPT2Config, GPT2Model
    model = GPT2Model(GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2,
                                 bos_token_id=0, eos_token_id=0)).eval()
    with pytest.raises(NeuronError, match=r"returns a .*DynamicCache.*use_cache=False"):
        torch.neuron.trace(model, torch.randint(0, 50, (1, 8)))
    model.config.use_cache = False
    ids = torch.randint(0, 50, (1, 8))
    assert _cosine(torch.neuron.trace(model, ids)(ids)["last_hidden_state"],
                   model(ids).last_hidden_state) > 0.99
