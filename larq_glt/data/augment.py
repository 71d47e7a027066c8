"""Training augmentation for image-sensor data: uint8 in, uint8 out.

Geometric: horizontal flip, and a random shift (pad by ``shift * size`` pixels,
then crop back at a random offset: the sensor's field of view moving).
Tone (what GLT's learned thresholds should absorb), applied in this order on
float32 and rounded once at the end:

- gamma: ``255 * (x / 255) ** g`` with ``g`` log-uniform in ``[1/(1+s), 1+s]``;
- brightness: exposure gain ``x * f``, ``f`` uniform in ``[max(0, 1-s), 1+s]``
  (multiplicative, like torchvision's ColorJitter: a sensor's gain, not an offset);
- contrast: ``m + (x - m) * c`` about the image mean ``m``, ``c`` uniform in
  ``[max(0, 1-s), 1+s]`` (same convention as :func:`tone.low_contrast`).

All randomness is stateless and comes from one ``seed`` (shape ``[2]`` integers),
so a batch's augmentation is a pure function of (images, seed, config).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import tensorflow as tf

_PAD_MODES = {"reflect": "REFLECT", "symmetric": "SYMMETRIC", "constant": "CONSTANT"}


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of each augmentation; 0 (or False) disables it."""

    flip: bool = True  # horizontal flip with probability 1/2
    shift: float = 0.125  # max shift, as a fraction of the image side (12 px at 96)
    pad_mode: str = "reflect"  # how the uncovered border is filled: reflect|symmetric|constant
    brightness: float = 0.3
    contrast: float = 0.3
    gamma: float = 0.3

    def __post_init__(self):
        if self.pad_mode not in _PAD_MODES:
            raise ValueError(f"pad_mode must be one of {sorted(_PAD_MODES)}, got {self.pad_mode!r}")
        for name in ("shift", "brightness", "contrast", "gamma"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"augmentation strength {name} must be >= 0, got {value}")
        if self.shift >= 0.5:
            raise ValueError(f"shift is a fraction of the image side and must be < 0.5, got {self.shift}")

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENT = AugmentConfig(flip=False, shift=0.0, brightness=0.0, contrast=0.0, gamma=0.0)


def _uniform(shape, seed, low, high):
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def _shift(x: tf.Tensor, pad: int, mode: str, seed) -> tf.Tensor:
    """Per-image random crop of the padded batch, vectorised with batched gathers."""
    b = tf.shape(x)[0]
    h, w = x.shape[1], x.shape[2]
    padded = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode=_PAD_MODES[mode])
    offsets = tf.random.stateless_uniform(
        [2, b], seed=seed, minval=0, maxval=2 * pad + 1, dtype=tf.int32
    )
    rows = offsets[0][:, None] + tf.range(h)[None, :]
    cols = offsets[1][:, None] + tf.range(w)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)


def augment_batch(images: tf.Tensor, seed, config: AugmentConfig = AugmentConfig()) -> tf.Tensor:
    """Augment a batch ``uint8 [B, H, W, C]`` with per-image random parameters."""
    if images.dtype != tf.uint8:
        raise ValueError(f"augment_batch takes uint8 images, got {images.dtype.name}")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)
    x = images
    b = tf.shape(x)[0]
    if config.flip:
        flip = tf.random.stateless_uniform([b], seed=seeds[0]) < 0.5
        x = tf.where(flip[:, None, None, None], tf.reverse(x, axis=[2]), x)
    pad = int(round(config.shift * images.shape[1])) if images.shape[1] else 0
    if pad > 0:
        x = _shift(x, pad, config.pad_mode, seeds[1])
    if not (config.gamma or config.brightness or config.contrast):
        return x
    y = tf.cast(x, tf.float32)
    if config.gamma:
        log_g = math.log1p(config.gamma)
        g = tf.exp(_uniform([b, 1, 1, 1], seeds[2], -log_g, log_g))
        y = 255.0 * tf.pow(y / 255.0, g)
    if config.brightness:
        y = y * _uniform([b, 1, 1, 1], seeds[3], max(0.0, 1 - config.brightness), 1 + config.brightness)
    if config.contrast:
        c = _uniform([b, 1, 1, 1], seeds[4], max(0.0, 1 - config.contrast), 1 + config.contrast)
        m = tf.reduce_mean(y, axis=[1, 2, 3], keepdims=True)
        y = m + (y - m) * c
    return tf.cast(tf.clip_by_value(tf.round(y), 0.0, 255.0), tf.uint8)
