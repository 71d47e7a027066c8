"""``synthetic``: small, deterministic, learnable images generated in memory,
for tests and smoke runs (no files, no network).

Class ``c`` of ``C`` has a global tone ``48 + 160 c / (C - 1)`` (+-12 per
image), a colour cast (+-28 per channel, one of six patterns), and horizontal
bands whose frequency grows with ``c`` (``c + 1`` periods per image, random
phase), plus Gaussian noise (sigma 8). The tone alone separates the classes; the
colour cast and the bands survive the tone augmentation (which changes all
channels alike), flips and shifts, so a small BNN picks the classes up within an
epoch (checked: a thermometer-input BNN reaches 100% validation accuracy after
one epoch of the 512 default images at 32x32). Train and validation images are
drawn from independent streams of ``numpy.random.default_rng([seed, split])``.
"""
from __future__ import annotations

import numpy as np

from .errors import DatasetError
from .info import DatasetInfo
from .sources import ArraySource, Prepared, class_counts

NUM_TRAIN = 512
NUM_VAL = 128
NUM_CLASSES = 4
# Per-class colour cast: survives gain, gamma and contrast changes, which act on
# all channels alike and keep their order.
_TINTS = 28.0 * np.array(
    [[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1], [-1, 1, 1], [1, -1, 1]], np.float64
)


def tone_level(label, num_classes: int):
    """The mean grey level of class ``label`` (before jitter and noise)."""
    if num_classes == 1:
        return np.full_like(np.asarray(label, np.float64), 128.0)
    return 48.0 + 160.0 * np.asarray(label, np.float64) / (num_classes - 1)


def generate(
    num: int, image_size: int, num_classes: int, seed: int, split: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``num`` images ``uint8 [num, S, S, 3]`` and labels ``int32 [num]`` (balanced)."""
    rng = np.random.default_rng([int(seed), int(split)])
    labels = rng.permutation(np.arange(num) % num_classes).astype(np.int32)
    level = tone_level(labels, num_classes) + rng.uniform(-12, 12, num)
    rows = np.arange(image_size, dtype=np.float64) / image_size
    phase = rng.uniform(0, 2 * np.pi, num)
    bands = 32.0 * np.sin(2 * np.pi * (labels[:, None] + 1) * rows[None, :] + phase[:, None])
    tint = _TINTS[labels % len(_TINTS)][:, None, None, :]
    images = level[:, None, None, None] + bands[:, :, None, None] + tint
    images = images + rng.normal(0.0, 8.0, (num, image_size, image_size, 3))
    images = np.broadcast_to(images, (num, image_size, image_size, 3))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def prepare(
    data_dir,
    *,
    image_size,
    seed,
    val_fraction,
    limit,
    cache,
    memory_limit_mb,
    num_train: int = NUM_TRAIN,
    num_val: int = NUM_VAL,
    num_classes: int = NUM_CLASSES,
) -> Prepared:
    if num_classes < 1 or num_train < 1 or num_val < 1:
        raise DatasetError(
            f"synthetic needs num_classes, num_train and num_val >= 1, got "
            f"{num_classes}, {num_train}, {num_val}"
        )
    if limit is not None:
        num_train, num_val = min(num_train, limit), min(num_val, limit)
    train = ArraySource(*generate(num_train, image_size, num_classes, seed, split=0))
    val = ArraySource(*generate(num_val, image_size, num_classes, seed, split=1))
    names = tuple(f"class_{c}" for c in range(num_classes))
    info = DatasetInfo(
        name="synthetic",
        image_size=image_size,
        class_names=names,
        num_train=len(train),
        num_val=len(val),
        train_class_counts=class_counts(train.labels, num_classes),
        val_class_counts=class_counts(val.labels, num_classes),
        split="generated independently",
        seed=seed,
        storage="memory",
        extra={"limit": limit},
    )
    return Prepared(train, val, info)
