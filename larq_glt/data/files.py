"""Turning listed image files into train/validation sources (shared by ``folder``
and ``vww``): split, subset, decode once, count unreadable files."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .images import report_skipped
from .info import DatasetInfo
from .sources import Prepared, choose_storage, class_counts, from_files
from .split import split_train_val, subset
from .tree import Listing

log = logging.getLogger("larq_glt.data")


def prepare_files(
    name: str,
    root: Path,
    train: Listing,
    val: Listing | None,
    *,
    image_size: int,
    seed: int,
    val_fraction: float,
    limit: int | None,
    cache: str,
    memory_limit_mb: float,
    extra: dict | None = None,
) -> Prepared:
    """``val=None``: the validation set is split from ``train`` (see ``split.py``)."""
    if val is None:
        train_idx, val_idx = split_train_val(train.names, train.labels, val_fraction, seed)
        val_paths = [train.paths[i] for i in val_idx]
        val_names = [train.names[i] for i in val_idx]
        val_labels = np.asarray(train.labels)[val_idx]
        split = f"{val_fraction:g} of each class by sha1(seed:relative path), seed {seed}"
    else:
        train_idx = np.arange(len(train.paths))
        val_paths, val_names, val_labels = val.paths, val.names, np.asarray(val.labels)
        split = "folders"
        val_fraction = None
    train_idx = subset(train.names, train_idx, limit, seed)
    val_keep = subset(val_names, np.arange(len(val_paths)), limit, seed)
    train_paths = [train.paths[i] for i in train_idx]
    train_labels = np.asarray(train.labels)[train_idx]
    val_paths = [val_paths[i] for i in val_keep]
    val_labels = np.asarray(val_labels)[val_keep]

    total = len(train_paths) + len(val_paths)
    storage = choose_storage(cache, total, image_size, memory_limit_mb)
    log.info("decoding %d images under %s (storage: %s)", total, root, storage)
    train_src, skipped = from_files(train_paths, train_labels, image_size, storage)
    val_src, val_skipped = from_files(val_paths, val_labels, image_size, storage)
    skipped = skipped + val_skipped
    report_skipped(skipped, str(root))

    k = len(train.class_names)
    ignored = len(train.ignored) + (len(val.ignored) if val is not None else 0)
    info = DatasetInfo(
        name=name,
        image_size=image_size,
        class_names=train.class_names,
        num_train=len(train_src),
        num_val=len(val_src),
        train_class_counts=class_counts(train_src.labels, k),
        val_class_counts=class_counts(val_src.labels, k),
        root=str(root),
        split=split,
        val_fraction=val_fraction,
        seed=seed,
        storage=storage,
        skipped=skipped,
        ignored_files=ignored,
        extra=dict(extra or {}, limit=limit),
    )
    cache_val = len(val_src) * image_size * image_size * 3 <= memory_limit_mb * 2**20
    return Prepared(train_src, val_src, info, cache_val=cache_val)
