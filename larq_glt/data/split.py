"""Deterministic train/validation split and subsetting by hashed file names.

Each file gets a key ``sha1(f"{seed}:{relative name}")``. Within every class the
files with the smallest keys form the validation set (``round(n * val_fraction)``
of them, at least one when ``val_fraction > 0`` and the class has two or more
files). So the split:

- depends only on the seed and the names (not on directory listing order, the
  machine, or which files turn out to be unreadable);
- is stratified (class balance is the same in both splits);
- is stable when files are added: a new file only displaces the file at the
  boundary of its own class.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np


def stable_key(seed: int, name: str) -> int:
    digest = hashlib.sha1(f"{seed}:{name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def split_train_val(
    names: Sequence[str], labels: Sequence[int], val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(train_indices, val_indices)`` into ``names``, each in input order."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    is_val = np.zeros(len(names), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n = len(members)
        n_val = int(round(n * val_fraction))
        if val_fraction > 0 and n >= 2:
            n_val = min(max(n_val, 1), n - 1)
        order = sorted(members, key=lambda i: stable_key(seed, names[i]))
        is_val[order[:n_val]] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def subset(names: Sequence[str], indices: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """At most ``limit`` of ``indices`` (a hashed, so class-mixed, choice), input order kept."""
    if limit is None or limit >= len(indices):
        return np.asarray(indices)
    if limit < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit}")
    chosen = sorted(indices, key=lambda i: stable_key(seed, "subset:" + names[i]))[:limit]
    return np.sort(np.asarray(chosen, dtype=np.int64))
