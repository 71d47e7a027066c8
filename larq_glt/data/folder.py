"""``folder``: any class-per-subfolder tree with ``train/`` and ``val/``.

Layout: ``ROOT/train/<class>/**/<image>`` and ``ROOT/val/<class>/**/<image>``
(``validation/`` is accepted for ``val/``). Classes are the sorted subfolder names
of ``train/`` (label = position); ``val/`` may lack a class but not add one.
Without a ``val/`` folder the validation set is split from ``train/`` like VWW
(``val_fraction`` per class, hashed file names). This is how
``../shared/data/imagenette96`` (``train/<wnid>/*.JPEG``) is read.
"""
from __future__ import annotations

from pathlib import Path

from .errors import DatasetError
from .files import prepare_files
from .sources import Prepared
from .tree import list_class_tree

LAYOUT = "train/<class>/<images> and val/<class>/<images> (one subfolder per class)"
VAL_DIRS = ("val", "validation")


def prepare(data_dir, *, image_size, seed, val_fraction, limit, cache, memory_limit_mb) -> Prepared:
    if data_dir is None:
        raise DatasetError(f"the 'folder' dataset needs --data-dir: a directory with {LAYOUT}")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist; expected {LAYOUT}")
    train_dir = root / "train"
    if not train_dir.is_dir():
        raise DatasetError(f"{root} has no train/ folder; expected {LAYOUT}")
    train = list_class_tree(train_dir, LAYOUT)
    val_dir = next((root / d for d in VAL_DIRS if (root / d).is_dir()), None)
    val = None
    if val_dir is not None:
        val = list_class_tree(val_dir, LAYOUT, class_names=train.class_names)
    return prepare_files(
        "folder",
        root,
        train,
        val,
        image_size=image_size,
        seed=seed,
        val_fraction=val_fraction,
        limit=limit,
        cache=cache,
        memory_limit_mb=memory_limit_mb,
    )
