"""Training augmentation and the tone functions used for robustness evaluation."""
import larq_glt  # noqa: F401  (selects legacy Keras before TensorFlow)
import numpy as np
import pytest
import tensorflow as tf

from larq_glt.data import NO_AUGMENT, AugmentConfig, augment_batch, tone

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (6, 20, 24, 3), dtype=np.uint8)
SEED = tf.constant([7, 11], tf.int64)


def run(images, config, seed=SEED):
    return augment_batch(tf.constant(images), seed, config).numpy()


def test_keeps_dtype_shape_and_uses_the_range():
    out = augment_batch(tf.constant(IMAGES), SEED, AugmentConfig())
    assert out.dtype == tf.uint8 and out.shape == IMAGES.shape
    assert not np.array_equal(out.numpy(), IMAGES)


def test_tone_saturates_instead_of_wrapping():
    x = np.full((32, 4, 4, 3), 240, np.uint8)
    out = run(x, AugmentConfig(flip=False, shift=0, brightness=0.3, contrast=0, gamma=0))
    assert out.min() >= round(240 * 0.7) - 1
    assert (out == 255).any()  # gains above 1.0625 saturate


def test_seeded_and_no_augment_is_identity():
    cfg = AugmentConfig()
    np.testing.assert_array_equal(run(IMAGES, cfg), run(IMAGES, cfg))
    assert not np.array_equal(run(IMAGES, cfg), run(IMAGES, cfg, tf.constant([7, 12], tf.int64)))
    np.testing.assert_array_equal(run(IMAGES, NO_AUGMENT), IMAGES)


def test_rejects_float_images():
    with pytest.raises(ValueError, match="uint8"):
        augment_batch(tf.zeros([1, 8, 8, 3]), SEED)


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "edge", "constant"])
def test_geometry_is_a_flipped_shifted_crop(mode):
    cfg = AugmentConfig(shift=0.2, pad_mode=mode, brightness=0, contrast=0, gamma=0)
    pad = round(0.2 * 20)
    out = run(IMAGES, cfg)
    h, w = IMAGES.shape[1:3]
    shifts_seen, flips_seen = set(), set()
    for x, y in zip(IMAGES, out):
        padded = np.pad(x, [(pad, pad), (pad, pad), (0, 0)], mode=mode)
        matches = [
            (dy, dx, f)
            for f in (False, True)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if np.array_equal((padded[:, ::-1] if f else padded)[dy:dy + h, dx:dx + w], y)
        ]
        assert matches, "output is not a crop of the padded (flipped) image"
        shifts_seen.add(matches[0][:2])
        flips_seen.add(matches[0][2])
    assert len(shifts_seen) > 1 and flips_seen == {False, True}  # randomised per image


def test_tone_is_a_monotone_curve_per_image():
    cfg = AugmentConfig(flip=False, shift=0)
    out = run(IMAGES, cfg)
    for x, y in zip(IMAGES, out):
        order = np.argsort(x.ravel(), kind="stable")
        xs, ys = x.ravel()[order], y.ravel()[order].astype(int)
        assert (np.diff(ys) >= 0).all()  # order kept: a tone curve, not noise
        for v in np.unique(xs)[:20]:
            assert len(np.unique(ys[xs == v])) == 1  # same input value, same output


def test_brightness_strength_bounds_the_gain():
    s = 0.25
    x = np.full((64, 4, 4, 3), 100, np.uint8)
    out = run(x, AugmentConfig(flip=False, shift=0, brightness=s, contrast=0, gamma=0))
    gains = out[:, 0, 0, 0] / 100.0
    assert gains.min() >= 1 - s - 0.01 and gains.max() <= 1 + s + 0.01
    assert gains.max() - gains.min() > s  # actually spread over the range
    assert (out == out[:, :1, :1, :1]).all()  # a global change


def test_gamma_strength_bounds_the_exponent():
    s = 0.5
    x = np.full((64, 4, 4, 3), 64, np.uint8)
    out = run(x, AugmentConfig(flip=False, shift=0, brightness=0, contrast=0, gamma=s))
    g = np.log(out[:, 0, 0, 0] / 255.0) / np.log(64 / 255.0)
    assert g.min() >= 1 / (1 + s) - 0.02 and g.max() <= 1 + s + 0.02
    assert g.min() < 0.9 and g.max() > 1.1


def test_contrast_keeps_the_mean():
    x = np.stack([np.tile(np.array([60, 180], np.uint8), (4, 2, 3)).reshape(4, 4, 3)] * 32)
    out = run(x, AugmentConfig(flip=False, shift=0, brightness=0, contrast=0.5, gamma=0))
    assert np.abs(out.reshape(32, -1).mean(axis=1) - 120).max() <= 0.5
    spread = out.reshape(32, -1).max(axis=1).astype(int) - out.reshape(32, -1).min(axis=1)
    assert spread.min() < 100 < spread.max()  # contrast both reduced and increased


@pytest.mark.parametrize(
    "kwargs", [dict(shift=0.5), dict(gamma=-0.1), dict(pad_mode="wrap"), dict(brightness=-1)]
)
def test_config_validation(kwargs):
    with pytest.raises(ValueError):
        AugmentConfig(**kwargs)


# -- tone functions -------------------------------------------------------------------
def _ref(values):
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("g", [0.4, 1.0, 2.2])
def test_apply_gamma_matches_formula(g):
    expected = _ref(255.0 * (IMAGES / 255.0) ** g)
    np.testing.assert_array_equal(tone.apply_gamma(IMAGES, g), expected)
    got_tf = tone.apply_gamma(tf.constant(IMAGES), g)
    assert got_tf.dtype == tf.uint8
    np.testing.assert_array_equal(got_tf.numpy(), expected)


@pytest.mark.parametrize("f", [0.0, 0.5, 1.7])
def test_exposure_matches_formula_and_clips(f):
    expected = _ref(IMAGES.astype(np.float64) * f)
    got = tone.exposure(IMAGES, f)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(tone.exposure(tf.constant(IMAGES), f).numpy(), expected)
    if f > 1:
        assert (got[IMAGES > 255 / f] == 255).all()


@pytest.mark.parametrize("pivot", [None, 127.5])
def test_low_contrast_matches_formula(pivot):
    x = IMAGES.astype(np.float64)
    p = x.mean(axis=(1, 2, 3), keepdims=True) if pivot is None else pivot
    expected = _ref(p + (x - p) * 0.3)
    np.testing.assert_array_equal(tone.low_contrast(IMAGES, 0.3, pivot), expected)
    got_tf = tone.low_contrast(tf.constant(IMAGES), 0.3, pivot).numpy()
    assert np.abs(got_tf.astype(int) - expected).max() <= 1
    assert got_tf.dtype == np.uint8
    single = tone.low_contrast(IMAGES[0], 0.3, pivot)  # one [H, W, C] image works too
    np.testing.assert_array_equal(single, expected[0])


def test_tone_functions_check_inputs():
    with pytest.raises(ValueError, match="uint8"):
        tone.exposure(IMAGES.astype(np.float32), 1.0)
    with pytest.raises(ValueError, match="gamma"):
        tone.apply_gamma(IMAGES, 0)
    with pytest.raises(ValueError, match="factor"):
        tone.low_contrast(IMAGES, -1)
