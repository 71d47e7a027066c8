"""Grouped convolutions on TensorFlow's own kernel (larq_glt.grouped_conv)."""
import numpy as np
import pytest

import larq_glt  # noqa: F401
import larq as lq
import tensorflow as tf

from larq_glt import grouped_conv, models
from tf_keras.src.layers.convolutional import base_conv


def _per_group(x, kernel, groups, pad_values=None):
    """The same binary convolution computed group by group, without keras."""
    xs = tf.split(tf.sign(x), groups, axis=-1)
    ks = tf.split(tf.sign(kernel), groups, axis=-1)
    if pad_values is not None:
        xs = [tf.pad(a, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=pad_values) for a in xs]
    padding = "VALID" if pad_values is not None else "SAME"
    return tf.concat([tf.nn.conv2d(a, b, 1, padding) for a, b in zip(xs, ks)], axis=-1)


@pytest.fixture(autouse=True)
def native_installed():
    grouped_conv.install()
    yield
    grouped_conv.install()  # whatever a test did, the next one starts from the default


def test_building_a_model_installs_the_native_kernel_where_it_works():
    grouped_conv.uninstall()
    models.compact(models.ModelConfig(input_size=32))
    assert grouped_conv.native_grouped_conv_works()  # this machine's TensorFlow runs it
    assert grouped_conv.installed() and grouped_conv.install()  # idempotent
    assert base_conv.Conv._jit_compiled_convolution_op.__name__ == "_native_convolution_op"


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_binary_conv_equals_the_per_group_convolution(groups):
    rng = np.random.default_rng(groups)
    x = tf.constant(rng.standard_normal((3, 6, 6, 32 * groups)), tf.float32)
    layer = lq.layers.QuantConv2D(16 * groups, 3, groups=groups, padding="same", pad_values=1.0,
                                  input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(y * y)
    np.testing.assert_array_equal(y.numpy(), _per_group(x, layer.kernel, groups, pad_values=1.0).numpy())
    gx, gk = tape.gradient(loss, [x, layer.kernel])
    # The gradients through ste_sign of the per-group reference, up to float rounding.
    k = tf.convert_to_tensor(layer.kernel)
    with tf.GradientTape() as tape:
        tape.watch([x, k])
        xq, kq = lq.quantizers.ste_sign(x), lq.quantizers.ste_sign(k)
        y_ref = tf.concat([tf.nn.conv2d(tf.pad(a, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1.0), b, 1,
                                        "VALID")
                           for a, b in zip(tf.split(xq, groups, axis=-1), tf.split(kq, groups, axis=-1))], axis=-1)
        loss_ref = tf.reduce_sum(y_ref * y_ref)
    rx, rk = tape.gradient(loss_ref, [x, k])
    np.testing.assert_allclose(gx.numpy(), rx.numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(gk.numpy(), rk.numpy(), rtol=1e-5, atol=1e-4)


def test_where_the_native_kernel_fails_keras_keeps_xla(monkeypatch):
    original = base_conv.Conv._jit_compiled_convolution_op
    monkeypatch.delattr(base_conv.Conv, grouped_conv._INSTALLED_FLAG)
    monkeypatch.setattr(grouped_conv, "native_grouped_conv_works", lambda: False)
    assert grouped_conv.install() is False
    assert base_conv.Conv._jit_compiled_convolution_op is original  # untouched
    assert not grouped_conv.installed()


def test_a_failing_native_op_reads_as_not_working(monkeypatch):
    def refuse(*args, **kwargs):
        raise tf.errors.UnimplementedError(None, None, "no grouped conv here")

    monkeypatch.setattr(tf.nn, "conv2d", refuse)
    assert grouped_conv.native_grouped_conv_works() is False


def test_uninstall_restores_keras_xla_path_and_install_returns():
    native = base_conv.Conv._jit_compiled_convolution_op
    try:
        grouped_conv.uninstall()
        assert not grouped_conv.installed()
        assert base_conv.Conv._jit_compiled_convolution_op is not native
        assert base_conv.Conv._jit_compiled_convolution_op.__name__ == "_jit_compiled_convolution_op"
    finally:
        assert grouped_conv.install()
    assert base_conv.Conv._jit_compiled_convolution_op.__name__ == "_native_convolution_op"


def test_inside_keras_xla_a_new_model_keeps_keras_path():
    with grouped_conv.keras_xla():
        models.compact(models.ModelConfig(input_size=32))  # would install the native path
        assert not grouped_conv.installed()
        assert base_conv.Conv._jit_compiled_convolution_op.__name__ == "_jit_compiled_convolution_op"
    assert grouped_conv.installed()
