"""Images without labels: any tree of image files, labelled by a teacher only.

Two uses (both need ``--kd-teacher``, see :mod:`larq_glt.teachers`):

- ``load(..., unlabelled=[DIR, ...])`` adds every image under the folders to a
  labelled dataset's training set, with the label
  :data:`larq_glt.distillation.UNLABELLED` (``-1``): shuffled together, so
  every batch mixes the two in proportion; the loss has only the KD term for them.
- the ``unlabelled`` dataset (``--dataset unlabelled --data-dir DIR``) trains
  on such a pool alone. Its classes are the teacher's (``class_names``); a
  ``val_fraction`` of the images (hashed names) is held out, and training
  labels that part with the teacher's choice, so its validation accuracy is
  the student's *agreement with the teacher* on images it never trained on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import DatasetError
from .files import prepare_files
from .sources import Prepared
from .tree import Listing, add_images

#: The label of an image without one (same value as ``distillation.UNLABELLED``).
UNLABELLED = -1
LAYOUT = "any tree of image files (labels come from the teacher)"


def list_images(root) -> Listing:
    """Every image file under ``root`` (recursively, sorted), labelled ``UNLABELLED``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"unlabelled image folder {root} does not exist")
    listing = Listing([], [], [], ())
    add_images(listing, root, root, UNLABELLED)
    if not listing.paths:
        raise DatasetError(f"unlabelled image folder {root} holds no image files")
    return listing


def prepare(data_dir, *, image_size, seed, val_fraction, limit, cache, memory_limit_mb,
            class_names: Sequence[str] | None = None) -> Prepared:
    """The ``unlabelled`` dataset: one pool, split into train and held-out parts."""
    if data_dir is None:
        raise DatasetError(f"the 'unlabelled' dataset needs --data-dir: {LAYOUT}")
    if not class_names or len(class_names) < 2:
        raise DatasetError("the 'unlabelled' dataset takes its classes from the teacher: give at least two class names")
    if not val_fraction > 0:
        raise DatasetError("the 'unlabelled' dataset needs --val-fraction > 0: the held-out part scores agreement "
                           "with the teacher")
    listing = list_images(data_dir)
    # The split is per label; all share one here, so it is a plain hashed split.
    listing.labels = [0] * len(listing.paths)
    listing.class_names = tuple(class_names)
    prepared = prepare_files("unlabelled", Path(data_dir).expanduser(), listing, None, image_size=image_size,
                             seed=seed, val_fraction=val_fraction, limit=limit, cache=cache,
                             memory_limit_mb=memory_limit_mb, extra={"labels": "teacher"})
    for source in (prepared.train, prepared.val):
        source.labels = np.full(len(source.labels), UNLABELLED, np.int32)
    info = prepared.info
    info.train_class_counts = [0] * len(class_names)
    info.val_class_counts = [0] * len(class_names)
    return prepared


def pool(dirs: Sequence[str], *, image_size: int, seed: int, cache: str, memory_limit_mb: float) -> Prepared:
    """All images under ``dirs`` as one training source (nothing held out)."""
    listings = [list_images(d) for d in dirs]
    merged = Listing(
        [p for lst in listings for p in lst.paths],
        [f"{i}/{n}" for i, lst in enumerate(listings) for n in lst.names],
        [0] * sum(len(lst.paths) for lst in listings),
        ("unlabelled",),
        [p for lst in listings for p in lst.ignored],
    )
    prepared = prepare_files("unlabelled", Path(dirs[0]).expanduser(), merged, None, image_size=image_size, seed=seed,
                             val_fraction=0.0, limit=None, cache=cache, memory_limit_mb=memory_limit_mb)
    prepared.train.labels = np.full(len(prepared.train.labels), UNLABELLED, np.int32)
    return prepared
