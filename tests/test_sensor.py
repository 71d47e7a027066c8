"""The linear sensor model (larq_glt/data/sensor.py): its statistics against its
formulas, clipping, determinism, and its place in the data pipeline."""
import larq_glt  # noqa: F401  (selects legacy Keras before TensorFlow)
import numpy as np
import pytest
import tensorflow as tf

from larq_glt import data
from larq_glt.data import sensor
from larq_glt.data.sensor import SensorConfig

GREY = 128  # sRGB mid-grey: linear 0.216


def patch(value, n=4, size=64):
    return np.full((n, size, size, 3), value, np.uint8)


def test_srgb_curve_round_trips_and_has_the_standard_values():
    v = np.linspace(0, 1, 101)
    np.testing.assert_allclose(sensor.linear_to_srgb(sensor.srgb_to_linear(v)), v, atol=1e-12)
    assert sensor.srgb_to_linear(0.5) == pytest.approx(0.2140, abs=1e-4)
    assert sensor.srgb_to_linear(GREY / 255) == pytest.approx(0.2158, abs=1e-4)


@pytest.mark.parametrize("exposure", [0.25, 1.0])
def test_mean_code_of_a_grey_patch_matches_the_formula(exposure):
    codes = sensor.linear_sensor(patch(GREY), seed=[3, 4], exposure=exposure).astype(np.float64)
    expected = 255 * exposure * sensor.srgb_to_linear(GREY / 255)
    assert sensor.mean_code(GREY, exposure) == pytest.approx(expected, rel=1e-6)
    # 49,152 samples of a variance ~2.4: the standard error of the mean is < 0.01
    assert codes.mean() == pytest.approx(expected, abs=0.05)


@pytest.mark.parametrize("full_well,read_noise", [(6000.0, 3.0), (600.0, 30.0)])
def test_noise_variance_is_shot_plus_read_noise(full_well, read_noise):
    cfg = SensorConfig(full_well=full_well, read_noise=read_noise)
    codes = sensor.linear_sensor(patch(GREY), seed=[5, 6], config=cfg, exposure=1.0).astype(np.float64)
    mu = sensor.srgb_to_linear(GREY / 255) * full_well
    expected = (255 / full_well) ** 2 * (mu + read_noise ** 2) + 1 / 12
    assert sensor.code_variance(GREY, 1.0, cfg) == pytest.approx(expected, rel=1e-6)
    assert codes.var() == pytest.approx(expected, rel=0.05)
    # without read noise the variance drops to the shot noise (+ quantisation)
    quiet = SensorConfig(full_well=full_well, read_noise=0.0)
    q = sensor.linear_sensor(patch(GREY), seed=[5, 6], config=quiet, exposure=1.0).astype(np.float64)
    assert q.var() == pytest.approx((255 / full_well) ** 2 * mu + 1 / 12, rel=0.05)
    assert q.var() < codes.var()


def test_full_well_clips_highlights_and_dark_stays_at_zero():
    bright = sensor.linear_sensor(patch(230), seed=[1, 1], exposure=2.0)  # 2 x 0.79 of full well
    assert (bright == 255).mean() > 0.99
    white = sensor.linear_sensor(patch(255), seed=[1, 2], exposure=1.0)
    # mean at full well: half the Poisson draws clip, the others fall ~3 LSB short
    assert 253.0 < white.mean() < 255.0 and (white == 255).mean() > 0.4
    over = sensor.linear_sensor(patch(255), seed=[1, 4], exposure=4.0)
    assert (over == 255).all()  # saturates, never wraps
    black = sensor.linear_sensor(patch(0), seed=[1, 3], exposure=1.0)
    assert black.max() <= 1 and black.dtype == np.uint8


def test_most_of_a_photo_lands_in_the_dark_codes():
    # a flat sRGB histogram (every value equally often) exposed at the training
    # range's geometric mean: half its pixels are below code ~20 of 255
    x = np.tile(np.arange(256, dtype=np.uint8)[None, :, None, None], (8, 1, 16, 3))
    codes = sensor.linear_sensor(x, seed=[0, 0], exposure=np.sqrt(1 / 8))
    assert np.median(codes) < 20


def test_deterministic_per_seed_and_random_exposure_in_range():
    x = np.random.default_rng(0).integers(0, 256, (16, 12, 12, 3), dtype=np.uint8)
    a = sensor.linear_sensor(x, seed=[9, 9])
    np.testing.assert_array_equal(a, sensor.linear_sensor(x, seed=[9, 9]))
    assert not np.array_equal(a, sensor.linear_sensor(x, seed=[9, 10]))
    # per-image seeds: an image's codes do not depend on its batch
    seeds = sensor.validation_seeds(0, tf.range(16))
    whole = sensor.linear_sensor_per_image(x, seeds).numpy()
    part = sensor.linear_sensor_per_image(x[5:9], seeds[5:9]).numpy()
    np.testing.assert_array_equal(whole[5:9], part)
    # drawn exposures lie in [1/8, 1]: a white image's mean code is 255 g
    white = sensor.linear_sensor(patch(255, n=64, size=16), seed=[2, 2]).astype(np.float64)
    gains = white.mean(axis=(1, 2, 3)) / 255
    assert gains.min() > 0.12 and gains.max() < 1.005 and gains.std() > 0.1


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        sensor.linear_sensor(np.zeros((1, 4, 4, 3), np.float32), seed=[0, 0])
    with pytest.raises(ValueError):
        SensorConfig(exposure_min=2.0, exposure_max=1.0)
    with pytest.raises(ValueError, match="need --sensor linear"):
        sensor.from_options("srgb", {"full_well": 100.0})
    with pytest.raises(ValueError, match="unknown"):
        sensor.from_options("linear", {"gain": 2.0})


def test_srgb_exposure_is_the_identity_at_one():
    x = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(sensor.srgb_exposure(x, 1.0), x)
    assert sensor.srgb_exposure(x, 0.25)[255] == 137  # two stops under: white -> sRGB 0.537


def test_pipeline_validation_is_fixed_and_training_changes_per_epoch():
    splits = data.load("synthetic", image_size=16, batch_size=32, seed=3, augment=False, sensor="linear",
                       num_train=64, num_val=48)
    assert splits.info.extra["sensor"]["full_well"] == 6000.0
    v1 = np.concatenate([x.numpy() for x, _ in splits.val])
    v2 = np.concatenate([x.numpy() for x, _ in splits.val])
    np.testing.assert_array_equal(v1, v2)
    raw = splits.arrays("val")[0]
    assert v1.mean() < raw.mean() / 2  # linear and under-exposed: much darker than the sRGB photo
    np.testing.assert_array_equal(v1, splits.sensor_codes(raw))  # the same codes, outside the pipeline
    other = data.load("synthetic", image_size=16, batch_size=16, seed=3, augment=False, sensor="linear",
                      num_train=64, num_val=48)
    np.testing.assert_array_equal(v1, np.concatenate([x.numpy() for x, _ in other.val]))  # batch size free
    e0 = [x.numpy() for x, _ in splits.train_epoch(0)]
    np.testing.assert_array_equal(e0[0], next(iter(splits.train_epoch(0)))[0].numpy())
    e1 = [x.numpy() for x, _ in splits.train_epoch(1)]
    assert not np.array_equal(np.sort(np.concatenate(e0).ravel()), np.sort(np.concatenate(e1).ravel()))
