"""Tiny Keras/Larq models converted with the LCE converter, for kernel tests.

Models take raw uint8 pixels through a thermometer encoder written with plain
TF ops (CAST, TILE, SUB), which the converter keeps in the graph in front of
LceQuantize, like the project's encoders. Batch-norm statistics are random
(negative gammas included) so fused multipliers, biases and thresholds take
every sign. Conversions are slow (seconds each): build few, cache per session.
"""
from __future__ import annotations

import larq_glt  # noqa: F401  (selects legacy Keras before TensorFlow is imported)

import numpy as np
import larq as lq
import larq_compute_engine as lce
import tensorflow as tf

BINARY = dict(
    input_quantizer="ste_sign",
    kernel_quantizer="ste_sign",
    kernel_constraint="weight_clip",
    use_bias=False,
)


class Thermometer(tf.keras.layers.Layer):
    """uint8 -> K thermometer planes per channel (>= 0 means x >= threshold),
    channel layout k-major like tf.tile: plane k of channel c at k * C + c."""

    def __init__(self, thresholds, **kwargs):
        super().__init__(**kwargs)
        self.thresholds = np.asarray(thresholds, dtype=np.float32)

    def call(self, x):
        x = tf.cast(x, tf.float32)
        levels = self.thresholds.size // x.shape[-1]
        return tf.tile(x, [1, 1, 1, levels]) - self.thresholds


def thermometer(x, levels: int, rng: np.random.Generator):
    channels = x.shape[-1]
    t = np.sort(rng.integers(1, 255, size=(levels, channels)), axis=0).astype(np.float32) - 0.5
    return Thermometer(t.reshape(-1))(x)


def randomize_batchnorm(model: tf.keras.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            n = gamma.shape[0]
            gamma = rng.uniform(0.2, 2.0, n) * rng.choice([-1.0, 1.0], n, p=[0.3, 0.7])
            beta = rng.normal(0.0, 3.0, n)
            mean = rng.normal(0.0, 4.0, n)
            var = rng.uniform(0.5, 20.0, n)
            layer.set_weights([w.astype(np.float32) for w in (gamma, beta, mean, var)])


def randomize_kernels(model: tf.keras.Model, rng: np.random.Generator) -> None:
    for layer in model.layers:
        if isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense)):
            w = layer.get_weights()
            w[0] = rng.uniform(-1, 1, w[0].shape).astype(np.float32)
            layer.set_weights(w)


def body_model(seed: int = 0) -> tf.keras.Model:
    """Encoder, binary convs with bit-packed, zero-padded, grouped, strided,
    dilated and 1x1 variants, binary max pools, float output."""
    rng = np.random.default_rng(seed)
    inp = tf.keras.Input((9, 7, 3), dtype=tf.uint8)
    x = thermometer(inp, 11, rng)  # 33 planes: 2 words, padding bits in use
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(64, 3, strides=2, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPool2D(2, strides=1, padding="same")(x)
    x = lq.layers.QuantConv2D(64, 3, padding="same", pad_values=0.0, groups=2, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)  # zero-padding: float output, then LceQuantize
    x = lq.layers.QuantConv2D(96, 2, dilation_rate=2, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPool2D(2, padding="valid")(x)
    x = lq.layers.QuantConv2D(33, 1, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    model = tf.keras.Model(inp, x)
    randomize_kernels(model, rng)
    randomize_batchnorm(model, rng)
    return model


def head_model(seed: int = 1) -> tf.keras.Model:
    """Encoder, a VALID strided conv, a relu-fused float conv, global average pooling,
    a binary dense layer and softmax; outputs (logits, probabilities)."""
    rng = np.random.default_rng(seed)
    inp = tf.keras.Input((12, 10, 3), dtype=tf.uint8)
    x = thermometer(inp, 10, rng)  # 30 planes: one word
    x = lq.layers.QuantConv2D(64, 3, strides=(2, 1), padding="valid", **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(48, 3, padding="same", pad_values=1.0, activation="relu", **BINARY)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    logits = lq.layers.QuantDense(10, **BINARY)(x)
    probs = tf.keras.layers.Softmax()(logits)
    model = tf.keras.Model(inp, [logits, probs])
    randomize_kernels(model, rng)
    randomize_batchnorm(model, rng)
    return model


def convert(model: tf.keras.Model) -> bytes:
    return lce.convert_keras_model(model)
