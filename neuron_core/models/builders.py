"""ONNX models built in code with seeded random weights: ResNet (v1.5 bottleneck/basic), a BERT-style
encoder and a small CNN. Used by the demo, the tests and the benchmarks; nothing is downloaded.

    model = resnet(depth=50)          # onnx.ModelProto, input "input" f32[1,3,224,224]
    model = bert(layers=12)           # inputs "input_ids" i64[1,128]
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


class _Builder:
    """Appends nodes and seeded random initializers; names are unique and readable."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], {}

    def name(self, base: str) -> str:
        self.count[base] = self.count.get(base, 0) + 1
        return f"{base}{self.count[base]}"

    def const(self, base: str, array) -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, base: str, shape, fan_in: int) -> str:
        w = self.rng.standard_normal(shape).astype(np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        return self.const(base, w)

    def op(self, op_type: str, inputs, base: str | None = None, n_out: int = 1, **attrs):
        name = self.name(base or op_type.lower())
        outs = [name] if n_out == 1 else [f"{name}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    # -- CNN pieces ---------------------------------------------------------------------------------
    def conv_bn(self, x, cin, cout, k, stride=1, relu=True, groups=1):
        w = self.weight("w", (cout, cin // groups, k, k), cin // groups * k * k)
        y = self.op("Conv", [x, w], "conv", kernel_shape=[k, k], strides=[stride, stride],
                    pads=[k // 2] * 4, group=groups)
        gamma = self.const("gamma", self.rng.uniform(0.5, 1.5, cout).astype(np.float32))
        beta = self.const("beta", self.rng.uniform(-0.2, 0.2, cout).astype(np.float32))
        mean = self.const("mean", self.rng.uniform(-0.2, 0.2, cout).astype(np.float32))
        var = self.const("var", self.rng.uniform(0.5, 1.5, cout).astype(np.float32))
        y = self.op("BatchNormalization", [y, gamma, beta, mean, var], "bn", epsilon=1e-5)
        return self.op("Relu", [y]) if relu else y

    def dense(self, x, cin, cout):
        w = self.weight("fc_w", (cin, cout), cin)
        b = self.const("fc_b", np.zeros(cout, np.float32))
        return self.op("Add", [self.op("MatMul", [x, w], "matmul"), b], "bias")

    def model(self, inputs, outputs, name: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="neuron-sim builders")
        model.ir_version = 8
        return model


_RESNET_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


def resnet(depth: int = 50, batch: int = 1, image: int = 224, num_classes: int = 1000,
           width: int = 64, seed: int = 0) -> onnx.ModelProto:
    """ResNet-18/34 (basic blocks) or 50/101 (bottlenecks), as torchvision builds them."""
    b = _Builder(seed)
    bottleneck = depth >= 50
    x = b.conv_bn("input", 3, width, 7, stride=2)
    x = b.op("MaxPool", [x], "pool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    cin = width
    for stage, blocks in enumerate(_RESNET_BLOCKS[depth]):
        mid = width * 2 ** stage
        cout = mid * 4 if bottleneck else mid
        for i in range(blocks):
            stride = 2 if stage > 0 and i == 0 else 1
            if bottleneck:
                y = b.conv_bn(x, cin, mid, 1)
                y = b.conv_bn(y, mid, mid, 3, stride)
                y = b.conv_bn(y, mid, cout, 1, relu=False)
            else:
                y = b.conv_bn(x, cin, mid, 3, stride)
                y = b.conv_bn(y, mid, cout, 3, relu=False)
            short = b.conv_bn(x, cin, cout, 1, stride, relu=False) if stride != 1 or cin != cout \
                else x
            x = b.op("Relu", [b.op("Add", [y, short], "residual")])
            cin = cout
    x = b.op("GlobalAveragePool", [x], "gap")
    x = b.op("Flatten", [x], "flatten", axis=1)
    w = b.weight("fc_w", (num_classes, cin), cin)
    bias = b.const("fc_b", np.zeros(num_classes, np.float32))
    y = b.op("Gemm", [x, w, bias], "fc", transB=1)
    return b.model([helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                  [batch, 3, image, image])],
                   [helper.make_tensor_value_info(y, TensorProto.FLOAT, [batch, num_classes])],
                   f"resnet{depth}")


def small_cnn(batch: int = 1, image: int = 32, num_classes: int = 10, seed: int = 0):
    """A ResNet-18-shaped network scaled down (8 channels, 32x32 images): the bundled demo model."""
    return resnet(18, batch=batch, image=image, num_classes=num_classes, width=8, seed=seed)


def bert(layers: int = 12, hidden: int = 768, heads: int = 12, seq: int = 128, batch: int = 1,
         intermediate: int | None = None, vocab: int = 30522, seed: int = 0) -> onnx.ModelProto:
    """A BERT encoder: embeddings (Gather) + post-LN transformer layers with exact (Erf) GELU."""
    b = _Builder(seed)
    inter = intermediate or 4 * hidden
    head = hidden // heads
    table = b.const("word_emb", (b.rng.standard_normal((vocab, hidden)) * 0.02).astype(np.float32))
    pos = b.const("pos_emb", (b.rng.standard_normal((1, seq, hidden)) * 0.02).astype(np.float32))
    x = b.op("Add", [b.op("Gather", [table, "input_ids"], "embed"), pos], "embed_pos")
    x = _layer_norm(b, x, hidden)
    split_shape = b.const("heads_shape", np.asarray([batch, seq, heads, head], np.int64))
    merge_shape = b.const("merge_shape", np.asarray([batch, seq, hidden], np.int64))
    scale = b.const("scale", np.float32(1.0 / np.sqrt(head)))
    for _ in range(layers):
        q, k, v = (b.op("Transpose", [b.op("Reshape", [b.dense(x, hidden, hidden), split_shape])],
                        perm=perm) for perm in ([0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3]))
        scores = b.op("Mul", [b.op("MatMul", [q, k], "scores"), scale], "scaled")
        probs = b.op("Softmax", [scores], axis=-1)
        ctx = b.op("Transpose", [b.op("MatMul", [probs, v], "context")], perm=[0, 2, 1, 3])
        ctx = b.op("Reshape", [ctx, merge_shape])
        x = _layer_norm(b, b.op("Add", [x, b.dense(ctx, hidden, hidden)], "residual"), hidden)
        h = b.dense(x, hidden, inter)
        gelu = b.op("Mul", [b.op("Mul", [h, b.const("half", np.float32(0.5))]),
                            b.op("Add", [b.op("Erf", [b.op("Div", [h, b.const(
                                "sqrt2", np.float32(np.sqrt(2.0)))])]),
                                b.const("one", np.float32(1.0))])], "gelu")
        x = _layer_norm(b, b.op("Add", [x, b.dense(gelu, inter, hidden)], "residual"), hidden)
    return b.model([helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq])],
                   [helper.make_tensor_value_info(x, TensorProto.FLOAT, [batch, seq, hidden])],
                   f"bert_l{layers}_h{hidden}")


def _layer_norm(b: _Builder, x, hidden: int):
    gamma = b.const("ln_g", np.ones(hidden, np.float32))
    beta = b.const("ln_b", np.zeros(hidden, np.float32))
    return b.op("LayerNormalization", [x, gamma, beta], "ln", axis=-1, epsilon=1e-12)
