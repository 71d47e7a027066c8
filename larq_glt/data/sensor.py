r"""A linear image sensor: from an sRGB photo to the 8-bit codes of its ADC.

GLT's thresholds are meant to sit in front of a *linear* sensor: the comparators
see the photo-signal itself, before any gamma or auto-exposure. Photos, in
contrast, have been tone-mapped by a camera already. This module undoes that
and simulates the sensor, so a network can be trained and tested on the codes
an in-sensor thermometer would really see:

```python
from larq_glt.data import sensor
codes = sensor.linear_sensor(images_uint8, seed=[0, 7])               # random exposure per image
dark = sensor.linear_sensor(images_uint8, seed=[0, 7], exposure=1/16)  # fixed exposure: 4 stops under
```

or in training: ``python -m larq_glt.train ... --sensor linear`` (parameters:
``--sensor-full-well``, ``--sensor-read-noise``, ``--sensor-exposure MIN MAX``).

# The model (per pixel and colour channel)

1. Linear light, the inverse sRGB transfer function (IEC 61966-2-1) of the
   stored value ``x`` in 0..255, ``v = x / 255``:
   \\[ L = v / 12.92 \ \text{if}\ v \le 0.04045,\quad
       L = ((v + 0.055) / 1.055)^{2.4}\ \text{otherwise}. \\]
2. Exposure: mean photo-electrons \\( \mu = g \, L \, N_{fw} \\) with a
   per-image exposure gain ``g``. ``g = 1`` puts the photo's white exactly at
   full well (the exposure that made the photo, highlights just clipping);
   ``g = 1/8`` is three stops under. Training draws ``g`` log-uniformly in
   ``[exposure_min, exposure_max]``; the validation split draws it the same
   way but deterministically per (seed, image); evaluation uses fixed values
   (:data:`EVAL_EXPOSURES`).
3. Photon shot noise and full-well clipping:
   \\( n = \min(\mathrm{Poisson}(\mu), N_{fw}) \\) electrons.
4. Read noise: \\( s = n + \mathcal{N}(0, \sigma_r^2) \\) electrons.
5. Uniform 8-bit ADC over the full well (no black-level offset):
   \\( \mathrm{code} = \mathrm{clip}(\mathrm{round}(255\, s / N_{fw}), 0, 255) \\).

So the mean code of a patch away from 0 and 255 is \\( 255\, g\, L \\) and its
variance \\( (255/N_{fw})^2 (\mu + \sigma_r^2) + 1/12 \\) (shot + read noise,
plus the quantisation's 1/12 LSB²). A natural photo's median pixel (sRGB
~100, ``L`` ≈ 0.13) lands on code ~33 at ``g = 1`` and ~8 at ``g = 1/4``: most
of the image sits in the lowest few percent of the ADC range, where a uniform
thermometer has no level.

# Where the default numbers come from

- ``full_well = 6000`` e⁻: the order of magnitude of small-pixel (≈1–2 µm)
  CMOS sensors, whose full-well capacities are a few thousand electrons
  (larger pixels hold tens of thousands). One 8-bit LSB is then 23.5 e⁻, so
  shot noise is 0.2 LSB at code 1 and 2.3 LSB at mid-scale.
- ``read_noise = 3`` e⁻ rms: modern CMOS read chains are at 1–3 e⁻ (camera
  sensor surveys such as R. N. Clark's clarkvision.com sensor summary report
  "under 2 electrons and rarely worse than about 15"); 3 e⁻ is a modest
  low-cost sensor. With an 8-bit ADC it is an eighth of an LSB: the ADC's
  quantisation, not the read noise, limits the dark codes.
- ``exposure_min, exposure_max = 1/8, 1``: three stops of scene-to-scene
  exposure variation with the highlights never pushed past full well in
  training (an always-on sensor without auto-exposure, or with a slow one).
- :data:`EVAL_EXPOSURES`: 1/32 .. 2 in octaves — two stops below the training
  range (under-exposed) to one stop above it (over-exposed: highlights clip).

These are assumptions, not the data sheet of a particular part; all are
options. The model leaves out dark current, fixed-pattern noise, the colour
filter array and demosaicing (the photo's RGB is taken as the three channels'
linear signal).

# Randomness

Stateless and seeded like :mod:`.augment`: ``linear_sensor(images, seed)``
draws every image's exposure and noise from ``seed`` (shape ``[2]``) alone, and
``linear_sensor_per_image(images, seeds)`` from one seed per image — what the
validation pipeline uses with the seed ``[dataset seed + salt, image index]``,
so a validation image's codes do not depend on the batch it lands in.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

__all__ = [
    "SENSORS",
    "SensorConfig",
    "EVAL_EXPOSURES",
    "srgb_to_linear",
    "linear_to_srgb",
    "linear_sensor",
    "linear_sensor_per_image",
    "srgb_exposure",
    "mean_code",
    "code_variance",
]

#: What ``--sensor`` accepts: the stored photo as it is, or the linear sensor.
SENSORS = ("srgb", "linear")

#: Fixed exposures of the evaluation sets, in octaves (see the module docstring).
EVAL_EXPOSURES = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0, 2.0)

_SALT = 0x5E45  # separates sensor seeds from the shuffle and augmentation seeds


@dataclass(frozen=True)
class SensorConfig:
    """Parameters of the linear sensor (see the module docstring)."""

    full_well: float = 6000.0  # electrons at which the pixel saturates (= code 255)
    read_noise: float = 3.0  # electrons rms, Gaussian
    exposure_min: float = 1 / 8  # log-uniform exposure gain range (1 = photo white at full well)
    exposure_max: float = 1.0

    def __post_init__(self):
        if not self.full_well >= 1:
            raise ValueError(f"full_well must be at least 1 electron, got {self.full_well}")
        if not self.read_noise >= 0:
            raise ValueError(f"read_noise must be >= 0 electrons, got {self.read_noise}")
        if not 0 < self.exposure_min <= self.exposure_max:
            raise ValueError(
                f"need 0 < exposure_min <= exposure_max, got {self.exposure_min}, {self.exposure_max}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


# -- the sRGB transfer curve -------------------------------------------------------
def srgb_to_linear(v):
    """Inverse sRGB transfer (IEC 61966-2-1): ``v`` in [0, 1] → linear light in [0, 1]."""
    v = np.asarray(v, np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin):
    """The sRGB transfer (OETF): linear light in [0, 1] → ``v`` in [0, 1]."""
    lin = np.clip(np.asarray(lin, np.float64), 0.0, 1.0)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


_LINEAR_LUT = srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)


# -- the sensor ----------------------------------------------------------------------
def _one_image(image, seed, exposure, config: SensorConfig):
    """uint8 [H, W, C], seed [2] int64, exposure scalar (<= 0: draw it) → uint8 codes."""
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    lo, hi = math.log(config.exposure_min), math.log(config.exposure_max)
    drawn = tf.exp(tf.random.stateless_uniform([], seeds[0], lo, hi))
    g = tf.where(exposure > 0, exposure, drawn)
    lin = tf.gather(tf.constant(_LINEAR_LUT), tf.cast(image, tf.int32))
    fw = tf.constant(config.full_well, tf.float32)
    mu = g * lin * fw
    electrons = tf.random.stateless_poisson(tf.shape(mu), seeds[1], mu, dtype=tf.float32)
    electrons = tf.minimum(electrons, fw)
    if config.read_noise:
        electrons += config.read_noise * tf.random.stateless_normal(tf.shape(mu), seeds[2])
    codes = tf.round(electrons * (255.0 / config.full_well))
    return tf.cast(tf.clip_by_value(codes, 0.0, 255.0), tf.uint8)


def _check(images):
    if images.dtype != tf.uint8:
        raise ValueError(f"the sensor model takes uint8 sRGB images, got {images.dtype.name}")


def linear_sensor_per_image(images, seeds, config: SensorConfig = SensorConfig(), exposure=None) -> tf.Tensor:
    """``uint8 [B, H, W, C]`` sRGB → the linear sensor's ``uint8`` codes, image
    ``i`` drawn from ``seeds[i]`` (``int64 [B, 2]``) only. ``exposure``: None
    (log-uniform per image in the config's range), a number, or ``[B]`` gains."""
    images = tf.convert_to_tensor(images)
    _check(images)
    seeds = tf.cast(seeds, tf.int64)
    b = tf.shape(images)[0]
    if exposure is None:
        gains = tf.zeros([b], tf.float32)  # <= 0: draw
    else:
        gains = tf.broadcast_to(tf.cast(exposure, tf.float32), [b])
        tf.debugging.assert_positive(gains, message="exposure gains must be positive")
    if tf.executing_eagerly():  # an eager map_fn runs image by image in Python: compile it once
        return _compiled(config)(images, seeds, gains)
    return _map(images, seeds, gains, config)


def _map(images, seeds, gains, config):
    return tf.map_fn(
        lambda a: _one_image(a[0], a[1], a[2], config),
        (images, seeds, gains),
        fn_output_signature=tf.TensorSpec(images.shape[1:], tf.uint8),
    )


_COMPILED: dict = {}


def _compiled(config: SensorConfig):
    if config not in _COMPILED:
        _COMPILED[config] = tf.function(lambda x, s, g: _map(x, s, g, config), reduce_retracing=True)
    return _COMPILED[config]


def linear_sensor(images, seed, config: SensorConfig = SensorConfig(), exposure=None):
    """``uint8 [B, H, W, C]`` sRGB images (NumPy or TensorFlow) → the 8-bit codes
    of the linear sensor, of the same kind and shape.

    ``seed``: ``[2]`` integers; the result is a pure function of (images, seed,
    config, exposure). ``exposure``: None (drawn per image, log-uniform in
    ``[config.exposure_min, config.exposure_max]``), one gain for all images, or
    one per image.
    """
    as_numpy = not isinstance(images, (tf.Tensor, tf.Variable))
    images = tf.convert_to_tensor(images)
    _check(images)
    single = images.shape.rank == 3
    if single:
        images = images[None]
    b = tf.shape(images)[0]
    seeds = tf.random.stateless_uniform([b, 2], tf.cast(seed, tf.int64), minval=None, maxval=None, dtype=tf.int64)
    out = linear_sensor_per_image(images, seeds, config, exposure)
    if single:
        out = out[0]
    return out.numpy() if as_numpy else out


def validation_seeds(seed: int, indices) -> tf.Tensor:
    """Per-image seeds ``[B, 2]`` of the validation split: ``[seed + salt, index]``."""
    indices = tf.cast(indices, tf.int64)
    first = tf.fill(tf.shape(indices), tf.constant(int(seed) + (_SALT << 32), tf.int64))
    return tf.stack([first, indices], axis=-1)


def batch_seed(seed) -> tf.Tensor:
    """The training pipeline's sensor seed from a batch's augmentation seed."""
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), _SALT)


def srgb_exposure(images, exposure: float):
    """The sRGB counterpart of an exposure change: the photo's linear light times
    ``exposure``, clipped at white, re-encoded with the sRGB curve (no noise).
    What a camera *with* its gamma would output; used to test sRGB-trained models
    on the same exposure axis. NumPy uint8 in and out."""
    lut = np.clip(np.rint(255.0 * linear_to_srgb(exposure * srgb_to_linear(np.arange(256) / 255.0))), 0, 255)
    return lut.astype(np.uint8)[np.asarray(images)]


# -- the formulas the tests check ------------------------------------------------------
def mean_code(srgb_value: int, exposure: float, config: SensorConfig = SensorConfig()) -> float:
    """Expected code of a uniform patch away from 0 and 255: ``255 g L(x)``."""
    return 255.0 * exposure * float(_LINEAR_LUT[int(srgb_value)])


def code_variance(srgb_value: int, exposure: float, config: SensorConfig = SensorConfig()) -> float:
    """Code variance of that patch: ``(255/N_fw)² (μ + σ_r²) + 1/12``."""
    mu = exposure * float(_LINEAR_LUT[int(srgb_value)]) * config.full_well
    return (255.0 / config.full_well) ** 2 * (mu + config.read_noise ** 2) + 1.0 / 12.0


def from_options(sensor: str | SensorConfig | None, params: dict | None = None) -> SensorConfig | None:
    """``--sensor`` and its parameters → a :class:`SensorConfig` (None for ``srgb``)."""
    if isinstance(sensor, SensorConfig):
        return sensor
    if sensor in (None, "srgb"):
        if params:
            raise ValueError(f"sensor parameters {sorted(params)} need --sensor linear")
        return None
    if sensor != "linear":
        raise ValueError(f"sensor must be one of {SENSORS}, got {sensor!r}")
    params = dict(params or {})
    known = set(SensorConfig.__dataclass_fields__)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"unknown sensor parameters {unknown}; known: {sorted(known)}")
    return SensorConfig(**params)
