"""Datasets for larq-glt as tf.data pipelines of raw ``uint8`` pixels.

Every dataset yields ``(images uint8 [B, S, S, 3], labels int32 [B])``: pixels stay
the sensor's 0..255 values until the model's input encoder (no float
normalisation here). Entry point::

    from larq_glt import data
    splits = data.load("vww", data_dir="path/to/vw_coco2014_96")
    model.fit(splits.train, validation_data=splits.val, epochs=10)
    x_val, y_val = splits.arrays("val")          # NumPy, for benchmarks

Datasets (``DATASETS``): ``vww`` (MLPerf Tiny Visual Wake Words; downloaded when
absent), ``stl10`` (tensorflow-datasets), ``folder`` (``train/<class>/``,
``val/<class>/``), ``synthetic`` (generated, for tests). See each module.

Image files are decoded once up front (``images.py``): unreadable ones are counted,
logged and skipped (``splits.info.skipped``), other sizes are centre-cropped and
resized, grayscale/RGBA become RGB. Decoded images are kept in memory when they fit
in ``memory_limit_mb`` and otherwise decoded again each epoch.
"""
from __future__ import annotations

import inspect
import logging

from . import folder, sensor, stl10, synthetic, tone, unlabelled, vww
from .augment import NO_AUGMENT, AugmentConfig, augment_batch
from .download import default_cache_dir
from .errors import DatasetError
from .info import DatasetInfo
from .pipeline import DatasetSplits
from .sensor import from_options as from_sensor_options
from .sources import ArraySource
from .unlabelled import UNLABELLED, pool as unlabelled_pool
from .sources import CACHE_MODES, concat

__all__ = [
    "DATASETS",
    "AugmentConfig",
    "DatasetError",
    "DatasetInfo",
    "DatasetSplits",
    "NO_AUGMENT",
    "UNLABELLED",
    "augment_batch",
    "default_cache_dir",
    "load",
    "sensor",
    "tone",
]

log = logging.getLogger("larq_glt.data")

DATASETS = {
    "vww": vww.prepare,
    "stl10": stl10.prepare,
    "folder": folder.prepare,
    "synthetic": synthetic.prepare,
    "unlabelled": unlabelled.prepare,
}

_COMMON = {"data_dir", "image_size", "seed", "val_fraction", "limit", "cache", "memory_limit_mb"}


def _check_trainable(info, limit) -> None:
    """A classifier needs two classes with training images, and a validation split."""
    present = [n for n, c in zip(info.class_names, info.train_class_counts) if c > 0]
    where = f" in {info.root}" if info.root else ""
    teacher_labelled = info.num_train > 0 and not any(info.train_class_counts)  # its prepare checks the classes
    if len(present) < 2 and not teacher_labelled:
        raise DatasetError(f"{info.name}: the training images{where} hold {len(present)} class(es) "
                           f"{present}; a classifier needs at least 2 (one subfolder of images per class)"
                           + (f"; --limit {limit} may have cut the others" if limit else ""))
    if info.num_val < 1:
        raise DatasetError(f"{info.name}: the validation split is empty; raise --val-fraction "
                           f"(now {info.val_fraction}) or add a val/ folder")


def load(
    name: str,
    data_dir=None,
    image_size: int = 96,
    batch_size: int = 32,
    seed: int = 0,
    augment: bool | AugmentConfig = True,
    val_fraction: float = 0.1,
    limit: int | None = None,
    *,
    cache: str = "auto",
    memory_limit_mb: float = 2048,
    drop_remainder: bool = False,
    unlabelled=(),
    sensor=None,
    **options,
) -> DatasetSplits:
    """Load dataset ``name`` as train/validation pipelines.

    Args:
      name: one of ``DATASETS``.
      data_dir: where the data is (meaning per dataset; ``synthetic`` ignores it).
      image_size: side of the square uint8 images produced.
      batch_size: batch size of ``train`` and ``val``.
      seed: split, shuffle and augmentation seed (same seed, same data, same order).
      augment: ``True`` for the default :class:`AugmentConfig`, ``False`` for none,
        or a config. Only the training pipeline is augmented.
      val_fraction: validation share per class when the dataset has no validation
        split of its own (``vww``, ``folder`` without ``val/``).
      limit: at most this many images in each split (smoke runs); a hashed,
        class-mixed choice.
      cache: ``auto`` | ``memory`` | ``stream`` (see ``sources.choose_storage``).
      memory_limit_mb: budget for ``cache="auto"``.
      drop_remainder: drop the last partial training batch.
      unlabelled: folders of images without labels added to the training set
        (label ``-1``: a teacher labels them; see ``unlabelled.py``).
      sensor: None or ``"srgb"`` (the images as stored), ``"linear"`` (the
        default :class:`sensor.SensorConfig`) or a config: both splits become a
        linear sensor's ADC codes (see ``sensor.py``).
      options: dataset-specific (``download=False`` for vww/stl10; ``num_train``,
        ``num_val``, ``num_classes`` for synthetic).
    """
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    if int(image_size) != image_size or not 8 <= image_size <= 1024:
        raise DatasetError(f"image_size must be an integer in 8..1024, got {image_size}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise DatasetError(f"batch_size must be a positive integer, got {batch_size}")
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if limit is not None and (int(limit) != limit or limit < 1):
        raise DatasetError(f"limit must be a positive integer or None, got {limit}")
    if cache not in CACHE_MODES:
        raise DatasetError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    if augment is True:
        augment = AugmentConfig()
    elif augment is False or augment is None:
        augment = None
    elif not isinstance(augment, AugmentConfig):
        raise DatasetError(f"augment must be a bool or an AugmentConfig, got {augment!r}")
    prepare = DATASETS[name]
    accepted = set(inspect.signature(prepare).parameters) - _COMMON
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise DatasetError(
            f"dataset {name!r} has no option(s) {unknown}; "
            f"its options: {sorted(accepted) or 'none'}"
        )
    prepared = prepare(
        data_dir,
        image_size=int(image_size),
        seed=int(seed),
        val_fraction=float(val_fraction),
        limit=limit,
        cache=cache,
        memory_limit_mb=memory_limit_mb,
        **options,
    )
    info = prepared.info
    _check_trainable(info, limit)
    if unlabelled:
        if cache == "auto":
            cache = "memory" if isinstance(prepared.train, ArraySource) else "stream"
        extra = unlabelled_pool(list(unlabelled), image_size=int(image_size), seed=int(seed), cache=cache,
                                memory_limit_mb=memory_limit_mb)
        prepared.train = concat(prepared.train, extra.train)
        info.skipped = list(info.skipped) + list(extra.info.skipped)
        info.extra["unlabelled"] = {"dirs": [str(d) for d in unlabelled], "images": len(extra.train)}
        info.num_train = len(prepared.train)
    info.augment = augment.to_dict() if augment is not None else None
    try:
        sensor = from_sensor_options(sensor)
    except ValueError as e:
        raise DatasetError(str(e)) from None
    if sensor is not None:
        info.extra["sensor"] = {"model": "linear", **sensor.to_dict()}
    splits = DatasetSplits(
        prepared.train,
        prepared.val,
        info,
        batch_size=int(batch_size),
        seed=int(seed),
        augment=augment,
        drop_remainder=drop_remainder,
        cache_val=prepared.cache_val,
        sensor=sensor,
    )
    log.info("%r", splits)
    return splits
