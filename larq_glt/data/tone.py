"""Global tone changes of uint8 images, for tone-robustness evaluation.

Each function takes ``uint8`` images (NumPy array or TensorFlow tensor, any
leading shape ending in ``[H, W, C]``) and returns ``uint8`` of the same kind and
shape. Results are rounded half-to-even and clipped to 0..255, i.e. what a sensor
with a different exposure or response curve would have written.

``apply_gamma`` and ``exposure`` are per-pixel maps, computed once as a 256-entry
lookup table in float64, so the NumPy and TensorFlow paths agree bit for bit.
"""
from __future__ import annotations

import numpy as np

_LEVELS = np.arange(256, dtype=np.float64)


def _is_tf(x) -> bool:
    return type(x).__module__.startswith("tensorflow")


def _check_uint8(images) -> None:
    dtype = images.dtype
    name = getattr(dtype, "name", str(dtype))
    if name != "uint8":
        raise ValueError(f"tone functions take uint8 images, got dtype {name}")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _apply_lut(images, lut: np.ndarray):
    _check_uint8(images)
    if _is_tf(images):
        import tensorflow as tf

        return tf.gather(tf.constant(lut), tf.cast(images, tf.int32))
    return lut[np.asarray(images)]


def gamma_lut(gamma: float) -> np.ndarray:
    """``round(255 * (v / 255) ** gamma)`` for v = 0..255."""
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    return _to_uint8(255.0 * (_LEVELS / 255.0) ** gamma)


def exposure_lut(factor: float) -> np.ndarray:
    """``clip(round(v * factor), 0, 255)`` for v = 0..255."""
    if not factor >= 0:
        raise ValueError(f"exposure factor must be >= 0, got {factor}")
    return _to_uint8(_LEVELS * factor)


def apply_gamma(images, gamma: float):
    """Gamma curve: ``gamma < 1`` brightens the shadows, ``gamma > 1`` darkens them."""
    return _apply_lut(images, gamma_lut(gamma))


def exposure(images, factor: float):
    """Exposure / analog gain: multiply by ``factor`` and clip (highlights saturate)."""
    return _apply_lut(images, exposure_lut(factor))


def low_contrast(images, factor: float, pivot: float | None = None):
    """Scale deviations from ``pivot`` by ``factor`` (``factor < 1`` washes the image
    out): ``round(pivot + (x - pivot) * factor)``, clipped.

    ``pivot=None`` uses each image's mean over all its pixels and channels, so the
    average brightness is kept; a number gives a fixed pivot (a pure per-pixel map).
    The TensorFlow path computes the mean in float64 like NumPy; it can differ from
    the NumPy result by 1 only when a value falls exactly on a rounding boundary.
    """
    _check_uint8(images)
    if not factor >= 0:
        raise ValueError(f"contrast factor must be >= 0, got {factor}")
    if _is_tf(images):
        import tensorflow as tf

        x = tf.cast(images, tf.float64)
        p = tf.reduce_mean(x, axis=[-3, -2, -1], keepdims=True) if pivot is None else pivot
        y = tf.clip_by_value(tf.round(p + (x - p) * factor), 0.0, 255.0)
        return tf.cast(y, tf.uint8)
    x = np.asarray(images, dtype=np.float64)
    p = x.mean(axis=(-3, -2, -1), keepdims=True) if pivot is None else pivot
    return _to_uint8(p + (x - p) * factor)
