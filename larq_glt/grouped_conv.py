"""Grouped convolutions on TensorFlow's own kernel instead of XLA.

tf_keras runs every convolution with ``groups > 1`` through an XLA-compiled
function (TensorFlow once had no grouped kernel on CPU). On the CPU builds this
project trains on, XLA's grouped convolution and its gradient are 10-40x slower
than TensorFlow's own grouped ``Conv2D`` (oneDNN), and took about three
quarters of a width-2 training step. :func:`install` routes keras' grouped
convolutions to the native op, the same arithmetic, when this TensorFlow runs it
(checked once, values and gradients, on a tiny case), and otherwise leaves XLA.
``models.compact`` and ``runs.load_model`` call it, not an import: the check
runs an op, and TensorFlow's collective ops (a multi-worker strategy) must be
configured before the first one.
The converted flatbuffer is the same either way: the graph holds the same
``Conv2D`` op, only not wrapped in an XLA cluster.
"""
from __future__ import annotations

import contextlib

import numpy as np

_INSTALLED_FLAG = "_larq_glt_native_groups"
_XLA_OP = "_larq_glt_xla_op"  # keras' own method, kept for uninstall()
_held = 0  # keras_xla() contexts open: install() must not undo them


def native_grouped_conv_works() -> bool:
    """True when ``tf.nn.conv2d`` with a grouped kernel runs here and agrees,
    values and gradients, with the same convolution computed group by group."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 5, 5, 4)), tf.float32)
    k = tf.constant(rng.standard_normal((3, 3, 2, 6)), tf.float32)  # 2 groups of 2 inputs, 3 outputs
    try:
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, k])
            grouped = tf.nn.conv2d(x, k, 1, "SAME")
            split = tf.concat([tf.nn.conv2d(a, b, 1, "SAME")
                               for a, b in zip(tf.split(x, 2, axis=-1), tf.split(k, 2, axis=-1))], axis=-1)
            g_sum, s_sum = tf.reduce_sum(grouped * grouped), tf.reduce_sum(split * split)
        pairs = [(grouped, split)] + list(zip(tape.gradient(g_sum, [x, k]), tape.gradient(s_sum, [x, k])))
    except (tf.errors.OpError, ValueError, NotImplementedError):
        return False
    return all(np.allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5) for a, b in pairs)


def installed() -> bool:
    from tf_keras.src.layers.convolutional import base_conv

    return bool(getattr(base_conv.Conv, _INSTALLED_FLAG, False))


def install() -> bool:
    """Route keras' grouped convolutions to the native op if it works here;
    returns whether they now take it. Idempotent."""
    from tf_keras.src.layers.convolutional import base_conv

    if installed():
        return True
    if _held or not native_grouped_conv_works():
        return False

    def _native_convolution_op(self, inputs, kernel):
        return self.convolution_op(inputs, kernel)

    setattr(base_conv.Conv, _XLA_OP, base_conv.Conv._jit_compiled_convolution_op)
    base_conv.Conv._jit_compiled_convolution_op = _native_convolution_op
    setattr(base_conv.Conv, _INSTALLED_FLAG, True)
    return True


def uninstall() -> None:
    """Give keras its XLA path back (for models traced afterwards; a benchmark
    compares the two)."""
    from tf_keras.src.layers.convolutional import base_conv

    if installed():
        base_conv.Conv._jit_compiled_convolution_op = getattr(base_conv.Conv, _XLA_OP)
        setattr(base_conv.Conv, _INSTALLED_FLAG, False)


@contextlib.contextmanager
def keras_xla():
    """Inside: keras' own XLA path, even for models built meanwhile (whose
    ``compact`` would install the native one); after: the native path again."""
    global _held
    uninstall()
    _held += 1
    try:
        yield
    finally:
        _held -= 1
        if not _held:
            install()
