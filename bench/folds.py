"""Stratified K-fold cross-validation over an in-memory image pool, with folds
fixed by the images' names (the same image lands in the same fold on every
machine and in every benchmark that uses them: encodings, person_detector,
person_adapt)."""
from __future__ import annotations

import numpy as np


class FoldError(ValueError):
    """Too few folds, or a class with fewer images than folds."""


def fold_assignment(names, labels, folds: int) -> np.ndarray:
    """Stratified fold index per example, fixed by sha1 of its name: within each
    class the examples are ordered by ``stable_key(0, "fold:" + name)`` and dealt
    round-robin, so fold sizes per class differ by at most one."""
    from larq_glt.data.split import stable_key

    if folds < 2:
        raise FoldError(f"folds must be at least 2, got {folds}")
    labels = np.asarray(labels)
    fold = np.empty(len(labels), np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < folds:
            raise FoldError(f"class {label} has {len(members)} images, fewer than {folds} folds")
        order = sorted(members, key=lambda i: stable_key(0, "fold:" + names[i]))
        fold[order] = np.arange(len(order)) % folds
    return fold


class KFold:
    """A pool of images in stratified folds; replicate f validates on fold f and
    trains on the others with seed f."""

    protocol = "kfold"

    def __init__(self, name: str, images, labels, names, class_names, folds: int, batch_size: int,
                 root: str | None = None, skipped=()):
        self.name = name
        self.images = np.ascontiguousarray(images, np.uint8)
        self.labels = np.asarray(labels, np.int32)
        self.class_names = tuple(class_names)
        self.folds = folds
        self.fold = fold_assignment(list(names), self.labels, folds)
        self.batch_size = batch_size
        self.root = root
        self.skipped = list(skipped)

    def splits(self, replicate: int):
        from larq_glt.data import AugmentConfig, DatasetInfo, DatasetSplits
        from larq_glt.data.sources import ArraySource, class_counts

        val = self.fold == replicate
        train_src = ArraySource(self.images[~val], self.labels[~val])
        val_src = ArraySource(self.images[val], self.labels[val])
        k = len(self.class_names)
        info = DatasetInfo(
            name=self.name, image_size=int(self.images.shape[1]), class_names=self.class_names,
            num_train=len(train_src), num_val=len(val_src),
            train_class_counts=class_counts(train_src.labels, k), val_class_counts=class_counts(val_src.labels, k),
            root=self.root, split=f"fold {replicate} of {self.folds} (stratified, sha1 of file names)",
            seed=replicate, storage="memory", skipped=self.skipped, augment=AugmentConfig().to_dict(),
            extra={"fold": replicate, "folds": self.folds},
        )
        return DatasetSplits(train_src, val_src, info, batch_size=self.batch_size, seed=replicate,
                             augment=AugmentConfig())

    def describe(self) -> dict:
        sizes = np.bincount(self.fold, minlength=self.folds).tolist()
        return {"protocol": "kfold", "folds": self.folds, "pool": int(len(self.labels)), "fold_sizes": sizes,
                "class_names": list(self.class_names), "split": "stratified folds by sha1('0:fold:' + file name)",
                "skipped": len(self.skipped)}
