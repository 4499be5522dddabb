"""Hugging Face transformers through torch_neuron.trace: GPT-2 against eager PyTorch, and how much of
each small BERT, DistilBERT, RoBERTa and GPT-2 runs on Neuron (the encoders' numerics are checked in
test_trace.py)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
torch_neuron = pytest.importorskip("torch_neuron")
transformers = pytest.importorskip("transformers")

from neuron_core.errors import FrontendError  # noqa: E402

from ..numerics import rel_err  # noqa: E402


VOCAB, SEQ = 100, 16


def _gpt2_config(attention: str = "sdpa"):
    # bos/eos default to GPT-2's 50256, outside this vocabulary
    return transformers.GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=VOCAB,
                                   n_positions=64, use_cache=False, bos_token_id=0,
                                   eos_token_id=0, attn_implementation=attention)


def _model(kind: str, attention: str = "sdpa"):
    torch.manual_seed(0)
    small = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
    if kind == "bert":
        return transformers.BertModel(transformers.BertConfig(**small)).eval()
    if kind == "roberta":
        return transformers.RobertaModel(transformers.RobertaConfig(**small)).eval()
    if kind == "distilbert":
        return transformers.DistilBertModel(transformers.DistilBertConfig(
            vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2, hidden_dim=64,
            max_position_embeddings=64)).eval()
    if kind == "gpt2":
        return transformers.GPT2Model(_gpt2_config(attention)).eval()
    return transformers.GPT2LMHeadModel(_gpt2_config(attention)).eval()


def _inputs(pad_left: bool = False):
    torch.manual_seed(1)
    ids = torch.randint(0, VOCAB, (2, SEQ))
    mask = torch.ones(2, SEQ, dtype=torch.long)
    if pad_left:
        mask[1, :5] = 0
    else:
        mask[1, 12:] = 0
    return ids, mask


def _with_mask(model):
    """GPT-2 takes the mask by keyword (its second positional argument is the cache)."""
    return lambda ids, mask: model(input_ids=ids, attention_mask=mask)


class _SdpaThenView(torch.nn.Module):
    """GPT-2's attention shape in plain PyTorch: heads of one fused projection, SDPA, then the heads
    merged with reshape(...).contiguous() and flattened with view(), as Conv1D does."""

    def __init__(self):
        super().__init__()
        self.qkv, self.proj = torch.nn.Linear(16, 48), torch.nn.Linear(16, 16)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = (t.view(b, n, 4, 4).transpose(1, 2) for t in self.qkv(x).split(16, dim=2))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).reshape(b, n, 16).contiguous()
        return self.proj(y.view(-1, 16)).view(b, n, 16)


def test_sdpa_output_viewed_after_merging_heads_captures(fp32):
    # torch's decomposition of the CPU flash kernel lays its output out differently from the
    # kernel, so run_decompositions alone rejects the view ("Cannot view a tensor ...")
    model = _SdpaThenView().eval()
    x = torch.randn(2, 8, 16)
    traced = torch.neuron.trace(model, x, cost_aware=False)
    assert rel_err(traced(x), model(x)) < 1e-4


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_gpt2_ids_only_matches_eager(attention, fp32):
    model = _model("gpt2", attention)
    ids, _ = _inputs()
    traced = torch.neuron.trace(model, (ids,), strict=False, cost_aware=False)
    got = traced(ids)
    assert isinstance(got, dict) and "last_hidden_state" in got
    # fp32 simulation: only the order of summation differs from eager
    assert rel_err(got["last_hidden_state"], model(ids).last_hidden_state) < 1e-4
    assert traced.neuron_report.num_subgraphs == 1


@pytest.mark.parametrize("pad_left", [False, True])
def test_gpt2_lm_head_causal_and_padding_mask_matches_eager(pad_left, fp32):
    model = _model("gpt2_lm")
    fn = _with_mask(model)
    ids, mask = _inputs(pad_left)
    traced = torch.neuron.trace(fn, (ids, mask), strict=False, cost_aware=False)
    got, want = traced(ids, mask)["logits"], fn(ids, mask).logits
    assert not torch.isnan(got).any()
    assert rel_err(got, want) < 1e-4
    # the mask is an input, not a constant: another padding gives that padding's answer
    other = torch.ones_like(mask)
    other[0, 9:] = 0
    assert rel_err(traced(ids, other)["logits"], fn(ids, other).logits) < 1e-4


def test_gpt2_lm_head_hardware_precision_within_bf16(hardware):
    model = _model("gpt2_lm")
    ids, _ = _inputs()
    traced = torch.neuron.trace(model, (ids,), strict=False, cost_aware=False)
    err = rel_err(traced(ids)["logits"], model(ids).logits)
    # bf16 matmul inputs (8 significant bits) through 2 layers stay far under 5e-2 of the logits'
    # magnitude, while a wrong op gives O(1) errors
    assert 1e-6 < err < 5e-2


@pytest.mark.parametrize("kind", ["gpt2", "bert"])
def test_dynamic_batch_traced_at_batch_one_runs_other_batches(kind, fp32, caplog):
    # GPT-2 takes another branch at batch 1: it is captured at batch 2 and says so
    model = _model(kind)
    ids, _ = _inputs()
    with caplog.at_level("INFO", logger="Neuron"):
        traced = torch.neuron.trace(model, (ids[:1],), strict=False, dynamic_batch_size=True)
    assert ("specialises on a batch of 1" in caplog.text) == (kind == "gpt2")
    for batch in (1, 3):
        more = torch.randint(0, VOCAB, (batch, SEQ))
        got = traced(more)["last_hidden_state"]
        assert rel_err(got, model(more).last_hidden_state) < 1e-4


@pytest.mark.parametrize("kind", ["bert", "distilbert", "roberta", "gpt2"])
def test_transformer_arithmetic_on_neuron_ratio(kind, fp32):
    model = _model(kind)
    ids, mask = _inputs()
    fn = _with_mask(model) if kind == "gpt2" else model
    traced = torch.neuron.trace(fn, (ids, mask), strict=False, cost_aware=False)
    report = traced.neuron_report
    assert report.percent_arithmetic_supported >= 95.0, str(report)
    assert report.percent_arithmetic_on_neuron >= 95.0, str(report)
    assert report.num_subgraphs == 1, str(report)
    # whatever stays in PyTorch says why
    assert all(r["reason"] for r in report.nodes if r["placement"] == "host"), str(report)


def test_gpt2_with_its_cache_on_says_how_to_trace_it():
    config = _gpt2_config()
    config.use_cache = True   # the default of a GPT2Config: outputs carry a DynamicCache
    model = transformers.GPT2LMHeadModel(config).eval()
    ids, _ = _inputs()
    with pytest.raises(FrontendError, match=r"returns a transformers\.cache_utils\.DynamicCache.*"
                                            r"use_cache=False"):
        torch.neuron.trace(model, (ids,), strict=False)
