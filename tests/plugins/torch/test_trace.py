"""torch_neuron.trace against eager PyTorch: CNN families, transformers, fallback, options."""
from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch")
torch_neuron = pytest.importorskip("torch_neuron")

from neuron_core.errors import BadInputError, NeuronError, Status  # noqa: E402

from ..estimates import check_split_estimate  # noqa: E402
from ..numerics import rel_err  # noqa: E402
from .nets import FAMILIES, family  # noqa: E402


def _arith_on_neuron(traced) -> float:
    return traced.neuron_report.percent_on_neuron


@pytest.mark.parametrize("name", FAMILIES)
def test_trace_cnn_family_fp32_matches_eager(name, fp32):
    model = family(name)
    x = torch.randn(2, 3, 32, 32)
    traced = torch.neuron.trace(model, x, cost_aware=False)
    assert isinstance(traced, torch.jit.ScriptModule)
    assert traced.neuron_report.num_subgraphs == 1
    assert _arith_on_neuron(traced) >= 95.0, str(traced.neuron_report)
    # fp32 simulation: only the order of summation differs from eager
    assert rel_err(traced(x), model(x)) < 1e-4


@pytest.mark.parametrize("name", ["resnet", "mobilenet_v2"])
def test_trace_cnn_hardware_precision_within_bf16(name, hardware):
    model = family(name)
    x = torch.randn(2, 3, 32, 32)
    traced = torch.neuron.trace(model, x, cost_aware=False)
    err = rel_err(traced(x), model(x))
    # bf16 keeps 8 significant bits (relative step 2^-8 = 3.9e-3); a dozen layers of rounding
    # stay well under 5e-2 of the output's magnitude, while a wrong op gives O(1) errors
    assert 1e-6 < err < 5e-2


def _hf(kind):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    small = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
    if kind == "bert":
        return transformers.BertModel(transformers.BertConfig(**small)).eval()
    if kind == "roberta":
        return transformers.RobertaModel(transformers.RobertaConfig(**small)).eval()
    return transformers.DistilBertModel(transformers.DistilBertConfig(
        vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
        max_position_embeddings=64)).eval()


@pytest.mark.parametrize("kind", ["bert", "distilbert", "roberta"])
def test_trace_transformer_encoder_matches_eager(kind, fp32):
    model = _hf(kind)
    ids = torch.randint(0, 100, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 12:] = 0
    traced = torch.neuron.trace(model, (ids, mask), strict=False, cost_aware=False)
    got = traced(ids, mask)
    assert isinstance(got, dict) and "last_hidden_state" in got
    want = model(ids, mask).last_hidden_state
    assert rel_err(got["last_hidden_state"], want) < 1e-4
    report = traced.neuron_report
    assert report.percent_arithmetic_supported >= 90.0, str(report)


def test_trace_bert_hardware_precision_within_bf16(hardware):
    model = _hf("bert")
    ids = torch.randint(0, 100, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    traced = torch.neuron.trace(model, (ids, mask), strict=False, cost_aware=False)
    # LayerNorm outputs are O(1): bf16 rounding through 2 layers stays under 5e-2 relative
    assert rel_err(traced(ids, mask)["last_hidden_state"], model(ids, mask).last_hidden_state) \
        < 5e-2


class _WithSin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)

    def forward(self, x):
        y = torch.relu(self.a(x)) * 2.0
        return torch.tanh(self.b(torch.sin(y)) + 1.0)


def test_trace_unsupported_op_in_the_middle_falls_back(fp32, caplog):
    model = _WithSin().eval()
    x = torch.randn(4, 16)
    with caplog.at_level(logging.INFO, logger="Neuron"):
        traced = torch.neuron.trace(model, x, minimum_segment_size=1, cost_aware=False)
    report = traced.neuron_report
    assert report.num_subgraphs == 2
    assert report.unsupported_ops == {"aten::aten.sin.default": 1}
    assert "The neuron partitioner created 2 sub-graphs" in caplog.text
    assert "of all operations" in caplog.text and "Fix first" in caplog.text
    assert "torch.sin" in traced.graph_module.code
    assert rel_err(traced(x), model(x)) < 1e-5


def test_trace_fallback_false_lists_unsupported_ops():
    with pytest.raises(NeuronError, match=r"fallback=False.*\n.*aten.sin"):
        torch.neuron.trace(_WithSin().eval(), torch.randn(4, 16), fallback=False)


def test_trace_rejects_unknown_compiler_option():
    with pytest.raises(NeuronError, match="--fast-math"):
        torch.neuron.trace(family("vgg"), torch.randn(1, 3, 32, 32),
                           compiler_args=["--fastest-math"])


def test_trace_accepts_fast_math_option(fp32):
    model = family("vgg")
    x = torch.randn(1, 3, 32, 32)
    traced = torch.neuron.trace(model, x, compiler_args=["--fast-math", "none"])
    assert rel_err(traced(x), model(x)) < 1e-4


def test_trace_wrong_batch_size_names_expected_and_got():
    traced = torch.neuron.trace(family("vgg"), torch.randn(2, 3, 32, 32))
    # TorchScript re-raises errors of custom ops as RuntimeError carrying the message
    with pytest.raises((BadInputError, RuntimeError),
                       match=r"BadInputError: \[EXEC_BAD_INPUT\] .*shape \(3, 3, 32, 32\), "
                             r"expected \(2, 3, 32, 32\)") as caught:
        traced(torch.randn(3, 3, 32, 32))
    original = torch_neuron.neuron_error(caught.value)
    assert isinstance(original, BadInputError) and original.status == 1002 == Status.EXEC_BAD_INPUT
    assert torch_neuron.neuron_error(RuntimeError("something else")) is None


def test_trace_dynamic_batch_size_runs_other_batches(fp32):
    model = family("resnet")
    traced = torch.neuron.trace(model, torch.randn(2, 3, 32, 32), dynamic_batch_size=True,
                                cost_aware=False)
    x = torch.randn(5, 3, 32, 32)
    got = traced(x)
    assert got.shape == (5, 10)
    assert rel_err(got, model(x)) < 1e-4
    with pytest.raises((BadInputError, RuntimeError), match="only dimension 0"):
        traced(torch.randn(2, 3, 16, 16))


class _Structured(torch.nn.Module):
    def forward(self, ids, pair):
        emb = torch.nn.functional.one_hot(ids, 8).float()
        a, b = pair
        return {"sum": (a + b) * 2, "emb": emb.sum(1)}, [a - b]


def test_trace_structured_inputs_and_outputs(fp32):
    model = _Structured()
    ids = torch.randint(0, 8, (2, 5))
    pair = (torch.randn(2, 3), torch.randn(2, 3))
    traced = torch.neuron.trace(model, (ids, pair), minimum_segment_size=1, cost_aware=False)
    got, (diff,) = traced(ids, pair)
    want, (want_diff,) = model(ids, pair)
    assert set(got) == {"sum", "emb"}
    assert torch.allclose(got["sum"], want["sum"]) and torch.allclose(got["emb"], want["emb"])
    assert torch.allclose(diff, want_diff)


def test_analyze_model_returns_documented_keys():
    info = torch.neuron.analyze_model(_WithSin().eval(), torch.randn(4, 16))
    for key in ("percent_supported", "percent_supported_arithmetic", "supported_count",
                "total_count", "supported_operators", "unsupported_operators", "operator_count"):
        assert key in info
    assert info["unsupported_operators"] == {"aten.sin.default": 1}
    assert info["supported_count"] == info["total_count"] - 1
    assert "aten.addmm.default" in torch.neuron.get_supported_operations()
    assert torch.neuron.is_available()


def test_trace_compiler_workdir_keeps_ir_neff_and_report(tmp_path):
    traced = torch.neuron.trace(_WithSin().eval(), torch.randn(4, 16), minimum_segment_size=1,
                                cost_aware=False, compiler_workdir=tmp_path)
    assert traced.neuron_report.num_subgraphs == 2
    for i in range(2):
        sub = tmp_path / f"neuron_subgraph_{i}"
        assert (sub / "model.neff").read_bytes()[:7] == b"NEFFSIM"
        assert "Gemm" in (sub / "graph.txt").read_text()
    assert "aten.sin" in (tmp_path / "report.json").read_text()


def test_trace_subgraph_builder_function_keeps_nodes_on_host(fp32):
    model = family("vgg")
    x = torch.randn(1, 3, 32, 32)
    traced = torch.neuron.trace(model, x, cost_aware=False, subgraph_builder_function=lambda n:
                                "addmm" not in str(n.target))
    assert "torch.addmm" in traced.graph_module.code
    assert rel_err(traced(x), model(x)) < 1e-4


def test_trace_bad_example_inputs_say_what_is_wrong():
    with pytest.raises(NeuronError, match="only tensors"):
        torch.neuron.trace(family("vgg"), (torch.randn(1, 3, 32, 32), "text"))
    with pytest.raises(NeuronError, match="optimizations"):
        torch.neuron.trace(family("vgg"), torch.randn(1, 3, 32, 32), optimizations=["x"])


class _SinBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8, 8)

    def forward(self, x):
        return torch.sin(self.fc(x))


def test_report_names_the_module_of_each_host_op(fp32, caplog):
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), _SinBlock(), torch.nn.ReLU()).eval()
    with caplog.at_level(logging.INFO, logger="Neuron"):
        traced = torch.neuron.trace(model, torch.randn(2, 8), cost_aware=False)
    host = [r for r in traced.neuron_report.nodes if r["placement"] == "host"]
    assert [(r["op_type"], r["scope"]) for r in host] == [("aten::aten.sin.default", "1 (_SinBlock)")]
    assert "on the host: sin (aten::aten.sin.default) in 1 (_SinBlock): PyTorch op" in caplog.text


def test_estimate_includes_subgraphs_transfers_and_measured_host_time(caplog):
    model = _WithSin().eval()
    with caplog.at_level(logging.INFO, logger="Neuron"):
        traced = torch.neuron.trace(model, torch.randn(4, 16), minimum_segment_size=1,
                                    cost_aware=False)
    assert "Estimated on inf1.xlarge (timing model, batch 4, 4 NeuronCores): P50" in caplog.text
    check_split_estimate(torch.neuron.estimate(traced), "_WithSin")
    assert torch.neuron.estimate(traced, host_ms=0.0).instances["inf1.xlarge"].host_ms == 0.0
    with pytest.raises(NeuronError, match="torch.neuron.trace"):
        torch.neuron.estimate(model)


def test_dynamic_batch_refuses_a_model_that_computes_otherwise_at_batch_one():
    class ByBatch(torch.nn.Module):
        def forward(self, x):
            return x * 3.0 if x.shape[0] == 1 else x * 2.0
    with pytest.raises(NeuronError, match="computes something else at batch 1"):
        torch.neuron.trace(ByBatch().eval(), torch.randn(1, 4), dynamic_batch_size=True)


def test_a_damaged_neff_in_a_loaded_model_is_a_neff_format_error_through_torchscript(tmp_path):
    """A byte of the NEFF buffer flipped in a saved model: the run raises TorchScript's
    RuntimeError, whose text leads with the NeuronError's class, and neuron_error gives the
    NeffFormatError back (the models the trace loaded are dropped first, as in a new process)."""
    import io

    from neuron_core.bridge.runner import unload_all
    from neuron_core.errors import NeffFormatError
    traced = torch.neuron.trace(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()),
                                torch.zeros(2, 4))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    neff = next(b for n, b in loaded.named_buffers() if n.endswith(".neff"))
    with torch.no_grad():
        neff[-100] ^= 1                     # inside the weights section
    unload_all()
    with pytest.raises(RuntimeError, match=r"NeffFormatError: corrupted: section 'weights'") as e:
        loaded(torch.zeros(2, 4))
    assert isinstance(torch_neuron.neuron_error(e.value), NeffFormatError)
