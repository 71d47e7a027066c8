"""Training augmentation for image-sensor data: uint8 in, uint8 out.

Composition: a random mosaic (off by default: an image is replaced, with
probability ``mosaic``, by a k×k grid of itself and k²−1 other images of its
batch, each at 1/k side, k uniform in ``2..mosaic_grid``: small subjects among
clutter, for data a teacher labels, since a mosaic's class is not any one
tile's label).
Geometric: a random zoom (off by default: a square crop whose side is uniform
in ``[1 - zoom, 1]`` of the image's, at a uniform position, resized back
bilinearly: the subject nearer or farther), horizontal flip, and a random
shift of up to ``shift * size`` pixels in each direction (the sensor's field
of view moving; the uncovered border is filled per ``pad_mode``, reflection
by default).
Tone (what GLT's learned thresholds should absorb), composed in this order into
one per-image curve, evaluated in float32 and rounded once:

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

_PAD_MODES = ("reflect", "symmetric", "edge", "constant")


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of each augmentation; 0 (or False) disables it."""

    flip: bool = True  # horizontal flip with probability 1/2
    shift: float = 0.125  # max shift, as a fraction of the image side (12 px at 96)
    pad_mode: str = "reflect"  # uncovered border: reflect | symmetric | edge | constant (0)
    brightness: float = 0.3
    contrast: float = 0.3
    gamma: float = 0.3
    zoom: float = 0.0  # crop side uniform in [1 - zoom, 1] of the image side, resized back; 0: off
    mosaic: float = 0.0  # probability an image becomes a mosaic of batch images; 0: off
    mosaic_grid: int = 2  # largest mosaic: k x k tiles at 1/k side, k uniform in 2..mosaic_grid
    # (tiles come from the batch, cyclically: a batch smaller than k*k repeats some)

    def __post_init__(self):
        if self.pad_mode not in _PAD_MODES:
            raise ValueError(f"pad_mode must be one of {_PAD_MODES}, got {self.pad_mode!r}")
        for name in ("shift", "brightness", "contrast", "gamma", "zoom", "mosaic"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"augmentation strength {name} must be >= 0, got {value}")
        if self.zoom >= 1.0:
            raise ValueError(f"zoom is the share of the side a crop may lose and must be < 1, got {self.zoom}")
        if self.mosaic > 1.0:
            raise ValueError(f"mosaic is a probability and must be <= 1, got {self.mosaic}")
        if not 2 <= self.mosaic_grid <= 4:
            raise ValueError(f"mosaic_grid is the largest grid side and must be in 2..4, got {self.mosaic_grid}")
        if self.shift >= 0.5:
            raise ValueError(
                f"shift is a fraction of the image side and must be < 0.5, got {self.shift}"
            )

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENT = AugmentConfig(flip=False, shift=0.0, brightness=0.0, contrast=0.0, gamma=0.0)


def _uniform(shape, seed, low, high):
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def _source_index(i, size: int, mode: str):
    """Map padded coordinates (-pad..size-1+pad) to source coordinates, like the
    padding modes of ``numpy.pad``; ``constant`` clamps here and is masked later."""
    last = size - 1
    if mode == "reflect":
        i = tf.abs(i)
        return last - tf.abs(last - i)
    if mode == "symmetric":
        i = tf.where(i < 0, -i - 1, i)
        return tf.where(i > last, 2 * last + 1 - i, i)
    return tf.clip_by_value(i, 0, last)  # edge, constant


def _geometry(x, seed, flip: bool, pad: int, mode: str):
    """Flip and shift as two batched row gathers: rows, then (after a transpose) columns.
    Padding is folded into the indices, so no padded copy is made."""
    b, h, w = tf.shape(x)[0], x.shape[1], x.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    rows = tf.range(h)[None, :]
    cols = tf.range(w)[None, :]
    if flip:
        flipped = tf.random.stateless_uniform([b, 1], seed=seeds[0]) < 0.5
        cols = tf.where(flipped, w - 1 - cols, cols)
    else:
        cols = tf.tile(cols, [b, 1])
    if pad:
        offsets = tf.random.stateless_uniform(
            [2, b, 1], seed=seeds[1], minval=-pad, maxval=pad + 1, dtype=tf.int32
        )
        rows, cols = rows + offsets[0], cols + offsets[1]
    else:
        rows = tf.tile(rows, [b, 1])
    y = tf.gather(x, _source_index(rows, h, mode), axis=1, batch_dims=1)
    y = tf.transpose(y, [0, 2, 1, 3])
    y = tf.gather(y, _source_index(cols, w, mode), axis=1, batch_dims=1)
    y = tf.transpose(y, [0, 2, 1, 3])
    if pad and mode == "constant":
        inside_r = (rows >= 0) & (rows < h)
        inside_c = (cols >= 0) & (cols < w)
        inside = inside_r[:, :, None, None] & inside_c[:, None, :, None]
        y = tf.where(inside, y, tf.zeros_like(y))
    return y


def _zoom(x, seed, zoom: float):
    """Per image, a square crop of side ``u·S`` (``u`` uniform in ``[1 - zoom, 1]``)
    at a uniform position, resized back to ``S`` (bilinear, rounded)."""
    b = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    side = tf.random.stateless_uniform([b, 1], seed=seeds[0], minval=1.0 - zoom, maxval=1.0)
    corner = tf.random.stateless_uniform([b, 2], seed=seeds[1]) * (1.0 - side)
    boxes = tf.concat([corner, corner + side], axis=1)  # y1, x1, y2, x2 in [0, 1]
    size = (x.shape[1], x.shape[2])
    y = tf.image.crop_and_resize(tf.cast(x, tf.float32), boxes, tf.range(b), size, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(y), 0.0, 255.0), tf.uint8)


def mosaic_grid(x, k: int = 2):
    """Each image of ``x`` (uint8 ``[B, H, W, C]``) as the top-left tile of a
    k×k grid whose other tiles are the next k²−1 images of the batch
    (cyclically, row by row), every tile the whole image at 1/k side (area
    resampling)."""
    h, w = x.shape[1], x.shape[2]
    tile = tf.image.resize(tf.cast(x, tf.float32), (h // k, w // k), method="area")
    rows = [tf.concat([tf.roll(tile, -(r * k + c), axis=0) for c in range(k)], axis=2) for r in range(k)]
    grid = tf.concat(rows, axis=1)
    if grid.shape[1] != h or grid.shape[2] != w:  # sides not divisible by k: stretch the grid by a pixel or two
        grid = tf.image.resize(grid, (h, w), method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(grid), 0.0, 255.0), tf.uint8)


def _mosaic(x, seed, p: float, largest: int = 2):
    """Replace each image by its :func:`mosaic_grid` with probability ``p``,
    the grid side uniform in ``2..largest``."""
    chosen = tf.random.stateless_uniform([tf.shape(x)[0]], seed=seed) < p
    scene = mosaic_grid(x)
    if largest > 2:
        # Its own stream, so that largest=2 draws exactly as before the option existed.
        side = tf.random.stateless_uniform([tf.shape(x)[0]], seed=tf.random.experimental.stateless_fold_in(seed, 0x6A1D),
                                           minval=2, maxval=largest + 1, dtype=tf.int32)
        for k in range(3, largest + 1):
            scene = tf.where((side == k)[:, None, None, None], mosaic_grid(x, k), scene)
    return tf.where(chosen[:, None, None, None], scene, x)


def _tone(x, seeds, config: "AugmentConfig"):
    """Per-image tone curve applied as a 256-entry lookup table.

    gamma and gain are per-pixel maps; the contrast pivot (the mean after them) is
    computed from each image's histogram, so the whole change is one LUT per image,
    evaluated in float32 on 256 values and rounded once.
    """
    b = tf.shape(x)[0]
    v = tf.range(256, dtype=tf.float32)[None, :]
    f = tf.tile(v, [b, 1])
    if config.gamma:
        log_g = math.log1p(config.gamma)
        g = tf.exp(_uniform([b, 1], seeds[0], -log_g, log_g))
        f = 255.0 * tf.pow(v / 255.0, g)
    if config.brightness:
        s = config.brightness
        f = f * _uniform([b, 1], seeds[1], max(0.0, 1 - s), 1 + s)
    # Flat indices into the stacked [b * 256] tables: faster than batch_dims gathers.
    flat = tf.cast(tf.reshape(x, [b, -1]), tf.int32) + 256 * tf.range(b)[:, None]
    if config.contrast:
        s = config.contrast
        c = _uniform([b, 1], seeds[2], max(0.0, 1 - s), 1 + s)
        hist = tf.math.bincount(
            tf.reshape(flat, [-1]), minlength=256 * b, maxlength=256 * b, dtype=tf.float32
        )
        hist = tf.reshape(hist, [b, 256])
        m = tf.reduce_sum(hist * f, axis=1, keepdims=True) / tf.cast(tf.shape(flat)[1], tf.float32)
        f = m + (f - m) * c
    lut = tf.cast(tf.clip_by_value(tf.round(f), 0.0, 255.0), tf.uint8)
    return tf.reshape(tf.gather(tf.reshape(lut, [-1]), flat), tf.shape(x))


def augment_batch(images: tf.Tensor, seed, config: AugmentConfig = AugmentConfig()) -> tf.Tensor:
    """Augment a batch ``uint8 [B, H, W, C]`` with per-image random parameters."""
    if images.dtype != tf.uint8:
        raise ValueError(f"augment_batch takes uint8 images, got {images.dtype.name}")
    if images.shape.rank != 4 or images.shape[1] is None or images.shape[2] is None:
        raise ValueError(f"augment_batch needs [B, H, W, C] with static H, W, got {images.shape}")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    x = images
    if config.mosaic:
        # Its own stream too; first, so the grid is flipped, shifted and toned as one scene.
        x = _mosaic(x, tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 0x3051C), config.mosaic,
                    config.mosaic_grid)
    if config.zoom:
        # Its own stream (folded from the seed), so a config without zoom
        # augments exactly as before.
        x = _zoom(x, tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), 0x200E), config.zoom)
    pad = int(round(config.shift * min(images.shape[1], images.shape[2])))
    if config.flip or pad:
        x = _geometry(x, seeds[0], config.flip, pad, config.pad_mode)
    if config.gamma or config.brightness or config.contrast:
        x = _tone(x, seeds[1:], config)
    return x
