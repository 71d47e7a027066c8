"""What was loaded: counts, skipped files, split and storage choices."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class DatasetInfo:
    name: str
    image_size: int
    class_names: tuple[str, ...]
    num_train: int
    num_val: int
    train_class_counts: list[int]
    val_class_counts: list[int]
    root: str | None = None  # where the images were read from (None: in memory / tfds)
    split: str = ""  # how train/val were formed
    val_fraction: float | None = None
    seed: int = 0
    storage: str = "memory"  # "memory": decoded once, kept as uint8; "stream": decoded per epoch
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) unreadable files
    ignored_files: int = 0  # non-image files found in the tree (not errors)
    augment: dict | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def to_dict(self) -> dict:
        """JSON-ready summary (for a run's metrics.json)."""
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        d["skipped"] = [list(s) for s in self.skipped]
        d["num_skipped"] = self.num_skipped
        d["num_classes"] = self.num_classes
        return d
