"""Where a split's examples come from: decoded arrays in memory, or image files
decoded on the fly. The pipeline (``pipeline.py``) builds tf.data on either."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import DatasetError
from .images import decode_image, scan_images

log = logging.getLogger("larq_glt.data")

CACHE_MODES = ("auto", "memory", "stream")


@dataclass
class ArraySource:
    images: np.ndarray  # uint8 [N, S, S, 3]
    labels: np.ndarray  # int32 [N]

    def __post_init__(self):
        self.images = np.ascontiguousarray(self.images, dtype=np.uint8)
        self.labels = np.asarray(self.labels, dtype=np.int32)
        if self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise DatasetError(f"expected images of shape [N, H, W, 3], got {self.images.shape}")
        if len(self.images) != len(self.labels):
            raise DatasetError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class FileSource:
    """Files that passed the up-front scan; decoded again each epoch. A file that
    becomes unreadable later (deleted, truncated on disk) is dropped from the epoch
    and recorded in ``late_skipped`` instead of stopping training."""

    paths: list[str]
    labels: np.ndarray
    image_size: int
    late_skipped: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.labels)

    def decode(self, index: int) -> tuple[np.ndarray, bool]:
        path = self.paths[int(index)]
        try:
            return decode_image(path, self.image_size), True
        except Exception as exc:  # noqa: BLE001 - any failure drops the file, never the epoch
            with self._lock:
                if all(p != path for p, _ in self.late_skipped):
                    self.late_skipped.append((path, str(exc)[:200]))
                    log.warning("skipping image that became unreadable: %s (%s)", path, exc)
            return np.zeros((self.image_size,) * 2 + (3,), np.uint8), False


def choose_storage(cache: str, num_images: int, image_size: int, memory_limit_mb: float) -> str:
    """``auto`` keeps decoded images in memory when they fit in ``memory_limit_mb``
    (imagenette96: 13k images = 370 MB), else streams from disk (full VWW: ~3 GB)."""
    if cache not in CACHE_MODES:
        raise DatasetError(f"cache must be one of {CACHE_MODES}, got {cache!r}")
    if cache != "auto":
        return cache
    needed = num_images * image_size * image_size * 3
    return "memory" if needed <= memory_limit_mb * 2**20 else "stream"


def from_files(
    paths: Sequence[str], labels: Sequence[int], image_size: int, storage: str
) -> tuple[ArraySource | FileSource, list[tuple[str, str]]]:
    """Decode every file once (unreadable ones are returned as skipped, not raised)."""
    labels = np.asarray(labels, dtype=np.int32)
    result = scan_images(paths, image_size, keep=(storage == "memory"))
    kept = labels[result.ok]
    if storage == "memory":
        return ArraySource(result.images, kept), result.skipped
    return FileSource([paths[i] for i in result.ok], kept, image_size), result.skipped


@dataclass
class Prepared:
    """What a dataset module hands to the pipeline."""

    train: ArraySource | FileSource
    val: ArraySource | FileSource
    info: "DatasetInfo"  # noqa: F821 - avoids an import cycle for a type name
    cache_val: bool = False  # streamed validation images fit in memory: cache them


def class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    """Images per class; unlabelled ones (negative labels) are not counted."""
    labels = np.asarray(labels, np.int64)
    return np.bincount(labels[labels >= 0], minlength=num_classes).tolist()


def concat(a: ArraySource | FileSource, b: ArraySource | FileSource) -> ArraySource | FileSource:
    """One source holding ``a``'s examples then ``b``'s (in memory if both are)."""
    if isinstance(a, ArraySource) and isinstance(b, ArraySource):
        return ArraySource(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]))
    if isinstance(a, FileSource) and isinstance(b, FileSource):
        return FileSource(a.paths + b.paths, np.concatenate([a.labels, b.labels]), a.image_size)
    raise DatasetError("cannot mix in-memory and streamed images; pass cache='memory' or cache='stream'")
