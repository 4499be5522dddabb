"""A BERT-style encoder written in Gluon for the tests and the benchmark: token + position
embeddings, post-LN transformer layers (self-attention with batch_dot, GELU feed-forward, dropout),
and a tanh pooler over the first token."""
from __future__ import annotations

import math

import mx_neuron  # noqa: F401  (restores np.bool before mxnet is imported)
from mxnet.gluon import HybridBlock, nn


class SelfAttention(HybridBlock):
    def __init__(self, units: int, heads: int, **kwargs):
        super().__init__(**kwargs)
        self.units, self.heads = units, heads
        with self.name_scope():
            self.qkv = nn.Dense(3 * units, flatten=False)
            self.proj = nn.Dense(units, flatten=False)

    def hybrid_forward(self, F, x):
        h = self.heads

        def split_heads(t):   # (B, T, C) -> (B*H, T, C/H)
            t = F.transpose(F.reshape(t, shape=(0, 0, h, -1)), axes=(0, 2, 1, 3))
            return F.reshape(t, shape=(-3, 0, 0))

        q, k, v = F.split(self.qkv(x), num_outputs=3, axis=-1)
        scores = F.batch_dot(split_heads(q), split_heads(k), transpose_b=True)
        attn = F.softmax(scores / math.sqrt(self.units // h), axis=-1)
        out = F.batch_dot(attn, split_heads(v))                       # (B*H, T, D)
        out = F.transpose(F.reshape(out, shape=(-4, -1, h, 0, 0)), axes=(0, 2, 1, 3))
        return self.proj(F.reshape(out, shape=(0, 0, -1)))


class EncoderLayer(HybridBlock):
    def __init__(self, units: int, heads: int, hidden: int, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.attn = SelfAttention(units, heads)
            self.ln1 = nn.LayerNorm(epsilon=1e-12)
            self.ffn1 = nn.Dense(hidden, flatten=False)
            self.act = nn.GELU()
            self.ffn2 = nn.Dense(units, flatten=False)
            self.ln2 = nn.LayerNorm(epsilon=1e-12)
            self.drop = nn.Dropout(dropout)

    def hybrid_forward(self, F, x):
        x = self.ln1(x + self.drop(self.attn(x)))
        return self.ln2(x + self.drop(self.ffn2(self.act(self.ffn1(x)))))


class Encoder(HybridBlock):
    """tokens (B, T) float32 ids -> (sequence output (B, T, C), pooled (B, C))."""

    def __init__(self, vocab: int = 1000, units: int = 64, heads: int = 4, hidden: int = 256,
                 layers: int = 2, max_len: int = 128, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.word = nn.Embedding(vocab, units)
            self.pos = self.params.get("pos_embed", shape=(1, max_len, units))
            self.ln = nn.LayerNorm(epsilon=1e-12)
            self.layers = nn.HybridSequential()
            for _ in range(layers):
                self.layers.add(EncoderLayer(units, heads, hidden))
            self.pooler = nn.Dense(units, activation="tanh", flatten=False)
            self.max_len = max_len

    def hybrid_forward(self, F, tokens, pos):
        x = self.word(tokens)
        x = F.broadcast_add(x, F.slice_like(pos, x, axes=(1,)))
        seq = self.layers(self.ln(x))
        first = F.squeeze(F.slice_axis(seq, axis=1, begin=0, end=1), axis=1)
        return seq, self.pooler(first)
