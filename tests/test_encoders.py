import numpy as np
import pytest

import larq_glt  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from larq_glt import encoders


def _image(seed=0, shape=(2, 5, 7, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _glt_reference(x, logits, k, channels):
    """NumPy reference of GLT's forward: thresholds from gaps, round, compare."""
    e = np.exp(logits - logits.max(-1, keepdims=True))
    soft = e / e.sum(-1, keepdims=True)
    gaps = 1.0 + (256.0 - (k + 1)) * soft
    t = np.round(np.cumsum(gaps, -1)[:, :k])
    if t.shape[0] == 1:
        t = np.repeat(t, channels, 0)
    planes = np.where(x[..., :, None] >= t, 1.0, -1.0)  # (..., C, K)
    return planes.reshape(*x.shape[:-1], channels * k), t


@pytest.mark.parametrize("per_channel", [True, False])
def test_glt_forward_matches_numpy(per_channel):
    x = _image()
    layer = encoders.GLT(levels=5, per_channel=per_channel, logit_scale=1.0)  # the reference's θ
    layer.build(x.shape)
    logits = np.random.default_rng(1).normal(size=layer.logits.shape).astype(np.float32) * 2
    layer.logits.assign(logits)
    want, t = _glt_reference(x, logits, 5, 3)
    np.testing.assert_array_equal(layer(x).numpy(), want)
    np.testing.assert_array_equal(layer.thresholds(), t.astype(np.int32))


def test_thermometer_forward_matches_numpy():
    x = _image(2)
    out = encoders.Thermometer(levels=8)(x).numpy()
    t = np.round(256 * np.arange(1, 9) / 9)
    want = np.where(x[..., None] >= t, 1.0, -1.0).reshape(*x.shape[:-1], 24)
    np.testing.assert_array_equal(out, want)


def test_nbc_forward_matches_numpy():
    x = _image(3)
    out = encoders.NaturalBinary()(x).numpy()
    bits = (x[..., None] >> np.arange(8)) & 1
    np.testing.assert_array_equal(out, np.where(bits == 1, 1.0, -1.0).reshape(*x.shape[:-1], 24))


def test_float_forward_matches_numpy():
    x = _image(4)
    np.testing.assert_allclose(encoders.FloatInput()(x).numpy(), x / 127.5 - 1.0, atol=1e-6)


@pytest.mark.parametrize("name", ["glt", "thermo", "nbc"])
def test_lut_equals_layer_on_all_values(name):
    layer = encoders.get(name, levels=6)
    x = np.zeros((1, 256, 1, 3), np.uint8)
    layer(x)
    if name == "glt":
        layer.logits.assign(np.random.default_rng(5).normal(size=layer.logits.shape) * 3)
    lut = layer.lut()
    k = layer.planes_per_channel
    assert lut.shape == (3, 256, k)
    # Every channel sees a different permutation of all 256 values at once.
    rng = np.random.default_rng(6)
    img = np.stack([rng.permutation(256) for _ in range(3)], -1).astype(np.uint8)[None, :, None, :]
    out = layer(img).numpy()[0, :, 0, :].reshape(256, 3, k)
    for c in range(3):
        np.testing.assert_array_equal(out[:, c, :], lut[c][img[0, :, 0, c]])


def test_preactivation_sign_equals_binary_output():
    x = _image(7, (1, 16, 16, 3))
    for name in ("glt", "thermo", "nbc"):
        binary = encoders.get(name)
        binary(x)
        pre = encoders.get(name, output="preactivation")
        pre(x)
        pre.set_weights(binary.get_weights())
        z = pre(x).numpy()
        np.testing.assert_array_equal(np.where(z >= 0, 1.0, -1.0), binary(x).numpy(), err_msg=name)


def test_glt_initial_thresholds_are_uniform_thermometer():
    layer = encoders.GLT(levels=8)
    layer(_image())
    np.testing.assert_array_equal(layer.thresholds(), np.tile(encoders.uniform_thresholds(8), (3, 1)))


def test_gradients_reach_thresholds_and_input():
    layer = encoders.GLT(levels=8)
    x = tf.constant(_image(8, (4, 8, 8, 3)).astype(np.float32))
    layer(tf.cast(x, tf.uint8))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = layer(x)  # float input works too (cast is a no-op in value)
        loss = tf.reduce_sum(y * tf.random.stateless_normal(y.shape, (1, 2)))
    g = tape.gradient(loss, layer.logits)
    assert g is not None and np.abs(g.numpy()).sum() > 0


def test_thresholds_stay_increasing_and_integer_after_training():
    layer = encoders.GLT(levels=16)
    x = _image(9, (8, 8, 8, 3))
    layer(x)
    opt = keras.optimizers.Adam(0.5)  # large steps to push the gaps around
    target = tf.constant(np.random.default_rng(10).choice([-1.0, 1.0], (8, 8, 8, 48)), tf.float32)
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer(x) - target) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, layer.trainable_weights), layer.trainable_weights))
    t = layer.thresholds()
    assert np.all(np.diff(t, axis=1) >= 1), t
    assert t.min() >= 1 and t.max() <= 255
    np.testing.assert_array_equal(t, np.round(layer.continuous_thresholds()))
    assert not np.array_equal(t[0], encoders.uniform_thresholds(16)), "training did not move thresholds"


def test_extreme_logits_still_valid():
    layer = encoders.GLT(levels=32)
    layer(_image())
    logits = np.full(layer.logits.shape, -50.0, np.float32)
    logits[:, 0] = 50.0  # all slack in the first gap
    layer.logits.assign(logits)
    t = layer.thresholds()
    assert np.all(np.diff(t, axis=1) >= 1) and t.max() <= 255 and t.min() >= 1


def test_quantile_init():
    rng = np.random.default_rng(11)
    images = (rng.beta(2, 5, (64, 8, 8, 3)) * 255).astype(np.uint8)  # dark images
    layer = encoders.GLT(levels=4, init="quantile")
    layer.init_from_data(images)
    t = layer.thresholds()
    q = np.quantile(images[..., 0], [0.2, 0.4, 0.6, 0.8])
    np.testing.assert_allclose(t[0], q, atol=2.5)
    assert np.all(np.diff(t, axis=1) >= 1)


def test_save_load_round_trip(tmp_path):
    inputs = keras.Input((6, 6, 3), dtype="uint8")
    enc = encoders.GLT(levels=8, name="encoder")
    model = keras.Model(inputs, enc(inputs))
    enc.logits.assign(np.random.default_rng(12).normal(size=enc.logits.shape))
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects: registered
    x = _image(13, (3, 6, 6, 3))
    np.testing.assert_array_equal(loaded.get_layer("encoder").thresholds(), enc.thresholds())
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_unknown_encoding_is_clear():
    with pytest.raises(ValueError, match="unknown encoding 'foo'.*glt"):
        encoders.get("foo")


def test_float_has_no_lut():
    with pytest.raises(TypeError):
        encoders.FloatInput().lut(3)


def test_logit_scale_is_a_learning_rate_multiplier_for_the_thresholds(tmp_path):
    """softmax(s θ): the same thresholds as s θ at scale 1; under Adam the
    effective logits move s times as far per step; config, save/load and
    quantile initialisation keep the scale."""
    x = _image(14, (8, 8, 8, 3))
    theta = np.random.default_rng(15).normal(size=(3, 9)).astype(np.float32)
    plain, scaled = encoders.GLT(levels=8, logit_scale=1.0), encoders.GLT(levels=8, logit_scale=10.0)
    plain(x), scaled(x)
    plain.logits.assign(10.0 * theta)
    scaled.logits.assign(theta)
    np.testing.assert_allclose(plain.continuous_thresholds(), scaled.continuous_thresholds(), rtol=1e-5)
    _, want = _glt_reference(x, 10.0 * theta, 8, 3)
    np.testing.assert_array_equal(scaled.thresholds(), want)

    target = tf.constant(np.random.default_rng(16).choice([-1.0, 1.0], (8, 8, 8, 24)), tf.float32)
    moved = {}
    for s in (1.0, 10.0):
        layer = encoders.GLT(levels=8, logit_scale=s)
        layer(x)  # (s = 10 is also the default)
        opt = keras.optimizers.Adam(1e-3)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer(x) - target) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, layer.trainable_weights), layer.trainable_weights))
        moved[s] = np.abs(s * layer.logits.numpy()).max()  # the effective logits started at 0
    assert moved[10.0] == pytest.approx(10.0 * moved[1.0], rel=1e-3)

    assert encoders.GLT.from_config(scaled.get_config()).logit_scale == 10.0
    inputs = keras.Input((8, 8, 3), dtype="uint8")
    model = keras.Model(inputs, scaled(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras").layers[-1]
    np.testing.assert_array_equal(loaded.thresholds(), scaled.thresholds())

    images = (np.random.default_rng(17).beta(2, 5, (64, 8, 8, 3)) * 255).astype(np.uint8)
    a, b = encoders.GLT(levels=4, init="quantile"), encoders.GLT(levels=4, init="quantile", logit_scale=7.0)
    a.init_from_data(images)
    b.init_from_data(images)
    np.testing.assert_array_equal(a.thresholds(), b.thresholds())
    with pytest.raises(ValueError, match="logit_scale must be positive"):
        encoders.GLT(logit_scale=0.0)


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_glt_planes_and_gradients_equal_the_surrogate_sign_of_x_minus_t(per_channel, dtype):
    # The encoder writes the planes by comparison and recomputes x - t in its
    # gradient; the reference is the plain composition it replaces.
    rng = np.random.default_rng(3)
    x = tf.constant(rng.integers(0, 256, (2, 5, 7, 3)).astype(dtype))
    enc = encoders.get("glt", levels=6, per_channel=per_channel)
    enc.build(x.shape)
    enc.logits.assign(rng.standard_normal(enc.logits.shape).astype(np.float32) * 0.1)
    up = tf.constant(rng.standard_normal((2, 5, 7, 18)).astype(np.float32))
    xf = tf.cast(x, tf.float32)

    def run(f):
        with tf.GradientTape() as tape:
            tape.watch(xf)
            y = f()
            loss = tf.reduce_sum(y * up)
        return y, tape.gradient(loss, [enc.logits] + ([xf] if dtype == "float32" else []))

    y, grads = run(lambda: enc(xf if dtype == "float32" else x, training=True))
    y_ref, grads_ref = run(lambda: encoders._surrogate_sign(enc.surrogate_width)(
        enc._planes(xf, enc._integer_thresholds())))
    np.testing.assert_array_equal(y.numpy(), y_ref.numpy())
    assert grads[0] is not None and np.abs(grads[0].numpy()).sum() > 0
    for g, r in zip(grads, grads_ref):
        np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-5, atol=1e-5)


def test_thermometer_planes_equal_the_sign_of_x_minus_t():
    x = tf.constant(np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1))
    enc = encoders.get("thermo", levels=8)
    enc.build(x.shape)
    ref = encoders._sign(enc._planes(tf.cast(x, tf.float32), enc._integer_thresholds()))
    np.testing.assert_array_equal(enc(x).numpy(), ref.numpy())
