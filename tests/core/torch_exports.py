"""ONNX files as torch's exporters write them, of torch's and Hugging Face's models built from
configs with seeded random weights (nothing is downloaded). Used by tests/core/test_onnx_exports.py
(small configs) and bench/bench_exports.py (full size).

    model, feed, io_config = export("bert", exporter="torchscript")

`exporter` is "torchscript" (`dynamo=False`, opset 17) or "dynamo" (the default exporter, which
needs onnxscript). `dynamic=True` marks batch and sequence dims dynamic as the tutorials do; the
returned io_config pins them to the example's sizes, as `neuron-cc --io-config` takes it.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx

OPSET = 17
VOCAB = 100


def _small(kind: str):
    """A small model of `kind` in eval mode and its example inputs (name -> tensor)."""
    import torch
    import transformers
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (2, 16))
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 11:] = 0
    text = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64, max_position_embeddings=64)
    if kind == "transformer_encoder":
        layer = torch.nn.TransformerEncoderLayer(d_model=32, nhead=4, dim_feedforward=64,
                                                 batch_first=True, dropout=0.0)
        model = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        return model.eval(), {"src": torch.randn(2, 16, 32)}
    if kind == "bert":
        return transformers.BertModel(transformers.BertConfig(**text)).eval(), {"input_ids": ids}
    if kind == "bert_mask":
        model = transformers.BertModel(transformers.BertConfig(**text)).eval()
        return model, {"input_ids": ids, "attention_mask": mask}
    if kind == "distilbert":
        config = transformers.DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4,
                                               hidden_dim=64, max_position_embeddings=64)
        return transformers.DistilBertModel(config).eval(), {"input_ids": ids}
    if kind == "distilbert_mask":
        config = transformers.DistilBertConfig(vocab_size=VOCAB, dim=32, n_layers=2, n_heads=4,
                                               hidden_dim=64, max_position_embeddings=64)
        model = transformers.DistilBertModel(config).eval()
        return model, {"input_ids": ids, "attention_mask": mask}
    if kind == "roberta_mask":
        model = transformers.RobertaModel(transformers.RobertaConfig(**text)).eval()
        return model, {"input_ids": ids % (VOCAB - 2) + 2, "attention_mask": mask}
    if kind == "vit":
        config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32,
                                        num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=64)
        return (transformers.ViTModel(config, add_pooling_layer=False).eval(),
                {"pixel_values": torch.randn(1, 3, 32, 32)})
    if kind == "t5_encoder":
        config = transformers.T5Config(vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64,
                                       num_layers=2, num_heads=4, decoder_start_token_id=0)
        return transformers.T5EncoderModel(config).eval(), {"input_ids": ids}
    if kind == "convnext":
        config = transformers.ConvNextConfig(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1],
                                             image_size=32)
        return (transformers.ConvNextModel(config).eval(),
                {"pixel_values": torch.randn(1, 3, 32, 32)})
    raise ValueError(f"unknown model kind {kind!r}")


def _full(kind: str):
    """BERT-base, DistilBERT-base and RoBERTa-base sized models (seq 128, batch 1) with a mask."""
    import torch
    import transformers
    torch.manual_seed(0)
    ids = torch.randint(5, 1000, (1, 128))
    mask = torch.ones(1, 128, dtype=torch.long)
    mask[0, 100:] = 0
    if kind == "bert":
        model = transformers.BertModel(transformers.BertConfig())
    elif kind == "distilbert":
        model = transformers.DistilBertModel(transformers.DistilBertConfig())
    elif kind == "roberta":
        model = transformers.RobertaModel(transformers.RobertaConfig())
    else:
        raise ValueError(f"unknown full-size model {kind!r}")
    return model.eval(), {"input_ids": ids, "attention_mask": mask}


def _wrapped(model, names: list):
    """A module taking the inputs positionally by `names` and returning the first output (the
    last hidden state): how export scripts call Hugging Face models."""
    import torch

    class ByName(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, *args):
            out = self.m(**dict(zip(names, args)))
            return out if isinstance(out, torch.Tensor) else out[0]
    return ByName().eval()


def _dynamic_axes(feed: dict) -> dict:
    """Batch (and sequence, for 2-D token inputs) dynamic, as the tutorials export them."""
    return {name: ({0: "batch", 1: "sequence"} if t.dim() == 2 else {0: "batch"})
            for name, t in feed.items()}


def export(kind: str, exporter: str = "torchscript", *, dynamic: bool = False,
           full_size: bool = False):
    """(onnx.ModelProto, numpy feed, io_config) of model `kind` exported by `exporter`."""
    import torch
    model, feed = (_full if full_size else _small)(kind)
    names = list(feed)
    model = _wrapped(model, names)
    args = tuple(feed.values())
    buf = io.BytesIO()
    with warnings.catch_warnings():  # (no torch.no_grad: exports are written without it)
        warnings.simplefilter("ignore")
        if exporter == "torchscript":
            torch.onnx.export(model, args, buf, dynamo=False, opset_version=OPSET,
                              input_names=names,
                              dynamic_axes=_dynamic_axes(feed) if dynamic else None)
            proto = onnx.load_from_string(buf.getvalue())
        elif exporter == "dynamo":
            shapes = None
            if dynamic:
                dim = torch.export.Dim.AUTO
                shapes = {"args": tuple({a: dim for a in axes}
                                        for axes in _dynamic_axes(feed).values())}
            with torch.no_grad():  # T5's attention does not export with autograd on
                program = torch.onnx.export(model, args, dynamo=True, dynamic_shapes=shapes,
                                            input_names=names, verbose=False)
            proto = program.model_proto
        else:
            raise ValueError(f"unknown exporter {exporter!r}")
    arrays = {n: t.numpy() for n, t in feed.items()}
    io_config = {"inputs": {n: [list(a.shape), a.dtype.name] for n, a in arrays.items()}}
    return proto, arrays, io_config


def onnxruntime_outputs(proto, feed: dict) -> list:
    import onnxruntime as ort
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feed)


def rel_err(actual, expected) -> float:
    """Normwise relative error ||a - e|| / ||e||."""
    expected = np.asarray(expected, np.float64)
    return float(np.linalg.norm(np.asarray(actual, np.float64) - expected)
                 / np.linalg.norm(expected))


def cosine(actual, expected) -> float:
    a, e = (np.asarray(x, np.float64).ravel() for x in (actual, expected))
    return float(a @ e / (np.linalg.norm(a) * np.linalg.norm(e)))
