"""Small Keras models standing for the keras.applications families (same layers, few of them),
a small transformer encoder, and the numeric comparison the tests share."""
from __future__ import annotations

import numpy as np

from ..numerics import rel_err  # noqa: F401  (shared)

keras = __import__("keras")
L = keras.layers

#: bf16 keeps 8 mantissa bits: ~0.4% relative rounding per stored tensor. Through a few dozen
#: layers with normalised activations the errors mostly average out (measured: 0.1-1% of the
#: output's max norm); 5% is the bound that still catches a wrong op (those give O(1) errors).
BF16_TOL = 5e-2
#: full-fp32 simulation: only summation order differs from TensorFlow's kernels
FP32_RTOL = FP32_ATOL = 1e-4



def randomize_batchnorm(model, seed: int = 0) -> None:
    """Give BatchNormalization layers non-trivial statistics (fresh ones are identities)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            for w in layer.weights:
                positive = any(k in w.name for k in ("gamma", "variance"))
                arr = rng.uniform(0.5, 1.5, w.shape) if positive else rng.normal(0, 0.2, w.shape)
                w.assign(arr.astype(np.float32))


def _finish(inputs, outputs, name):
    model = keras.Model(inputs, outputs, name=name)
    randomize_batchnorm(model)
    return model


def mobilenet_like(size=32):
    """MobileNetV2 layers: ZeroPadding, strided conv, depthwise, BN, ReLU6, inverted residual."""
    x0 = keras.Input((size, size, 3))
    x = L.ZeroPadding2D(((0, 1), (0, 1)))(x0)
    x = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, use_bias=False)(x)))
    y = L.ReLU(6.0)(L.BatchNormalization()(L.Conv2D(32, 1, use_bias=False)(x)))
    y = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(y)))
    y = L.BatchNormalization()(L.Conv2D(16, 1, use_bias=False)(y))
    x = L.Add()([x, y])
    x = L.DepthwiseConv2D(3, strides=2, depth_multiplier=2, padding="same")(x)
    x = L.GlobalAveragePooling2D()(x)
    return _finish(x0, L.Dense(10)(x), "mobilenet_like")


def efficientnet_like(size=32):
    """EfficientNet layers: swish, depthwise, squeeze-excite (pool, reshape, 1x1 convs, multiply),
    dropout, residual."""
    x0 = keras.Input((size, size, 3))
    x = L.Activation("swish")(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, padding="same")(x0)))
    y = L.Activation("swish")(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(x)))
    se = L.GlobalAveragePooling2D()(y)
    se = L.Reshape((1, 1, 16))(se)
    se = L.Conv2D(4, 1, activation="swish")(se)
    se = L.Conv2D(16, 1, activation="sigmoid")(se)
    y = L.Multiply()([y, se])
    y = L.Dropout(0.2)(L.BatchNormalization()(L.Conv2D(16, 1)(y)))
    x = L.Add()([x, y])
    x = L.GlobalAveragePooling2D()(x)
    return _finish(x0, L.Dense(10)(x), "efficientnet_like")


def densenet_like(size=32):
    """DenseNet layers: BN-ReLU-conv blocks joined by channel Concatenate, average-pool
    transition, max pooling."""
    x0 = keras.Input((size, size, 3))
    x = L.Conv2D(16, 3, padding="same", use_bias=False)(x0)
    x = L.MaxPooling2D(3, strides=2, padding="same")(x)
    for _ in range(2):
        y = L.Conv2D(16, 1, use_bias=False)(L.ReLU()(L.BatchNormalization()(x)))
        y = L.Conv2D(8, 3, padding="same", use_bias=False)(L.ReLU()(L.BatchNormalization()(y)))
        x = L.Concatenate()([x, y])
    x = L.Conv2D(16, 1, use_bias=False)(L.ReLU()(L.BatchNormalization()(x)))
    x = L.AveragePooling2D(2, strides=2)(x)
    x = L.GlobalAveragePooling2D()(x)
    return _finish(x0, L.Dense(10)(x), "densenet_like")


def inception_like(size=32):
    """Inception layers: parallel 1x1 / 3x3 / 1x3+3x1 / pooled branches concatenated."""
    x0 = keras.Input((size, size, 3))
    x = L.Conv2D(16, 3, strides=2, activation="relu")(x0)
    b1 = L.Conv2D(8, 1, activation="relu")(x)
    b2 = L.Conv2D(8, 3, padding="same", activation="relu")(L.Conv2D(8, 1)(x))
    b3 = L.Conv2D(8, 1, activation="relu")(x)
    b3 = L.Concatenate()([L.Conv2D(4, (1, 3), padding="same")(b3),
                          L.Conv2D(4, (3, 1), padding="same")(b3)])
    b4 = L.Conv2D(8, 1)(L.AveragePooling2D(3, strides=1, padding="same")(x))
    x = L.Concatenate()([b1, b2, b3, b4])
    x = L.MaxPooling2D(3, strides=2)(x)
    return _finish(x0, L.Dense(10)(L.Flatten()(x)), "inception_like")


def vgg_like(size=32):
    """VGG layers: conv stacks, max pooling, flatten, dense."""
    x0 = keras.Input((size, size, 3))
    x = x0
    for width in (16, 32):
        x = L.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = L.Conv2D(width, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D(2)(x)
    x = L.Dense(32, activation="relu")(L.Flatten()(x))
    return _finish(x0, L.Dense(10)(x), "vgg_like")


def transformer_encoder(seq=16, dim=32, heads=4):
    """One encoder layer: MultiHeadAttention, residual, LayerNormalization, GELU MLP (Dense on
    3-D inputs), residual, LayerNormalization, and a pooled classifier head."""
    x0 = keras.Input((seq, dim))
    a = L.MultiHeadAttention(heads, dim // heads)(x0, x0)
    x = L.LayerNormalization()(x0 + a)
    f = L.Dense(2 * dim, activation="gelu")(x)
    x = L.LayerNormalization()(x + L.Dense(dim)(f))
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(x0, L.Dense(8)(x), name="transformer_encoder")


FAMILIES = {"mobilenet": mobilenet_like, "efficientnet": efficientnet_like,
            "densenet": densenet_like, "inception": inception_like, "vgg": vgg_like}
