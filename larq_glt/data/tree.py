"""Listing a class-per-subfolder image tree (``root/<class>/**/<image>``)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import DatasetError
from .images import is_image_file


@dataclass
class Listing:
    paths: list[str]  # absolute file paths
    names: list[str]  # "<class>/<relative path>": what the split hashes
    labels: list[int]
    class_names: tuple[str, ...]
    ignored: list[str] = field(default_factory=list)  # non-image files, not errors


def add_images(listing: Listing, folder: Path, root: Path, label: int) -> None:
    """Append every image file under ``folder`` (recursively, sorted; hidden
    folders skipped) to ``listing`` with ``label``, named relative to ``root``;
    other files go to ``listing.ignored``."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            path = os.path.join(dirpath, fname)
            if not is_image_file(fname):
                listing.ignored.append(path)
                continue
            listing.paths.append(path)
            listing.names.append(Path(path).relative_to(root).as_posix())
            listing.labels.append(label)


def _class_dirs(root: Path) -> list[str]:
    return sorted(
        e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")
    )


def list_class_tree(
    root: Path, expected: str, class_names: Sequence[str] | None = None
) -> Listing:
    """List image files under ``root/<class>/`` (recursively, in sorted order).

    ``class_names=None``: the classes are the sorted subfolder names. Otherwise the
    given classes (label = position) are used; a subfolder that is not one of them is
    an error, a missing one just has no images. ``expected`` describes the layout
    for error messages.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory {root} does not exist; expected {expected}")
    found = _class_dirs(root)
    if class_names is None:
        class_names = found
        if not class_names:
            raise DatasetError(f"{root} has no class subfolders; expected {expected}")
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise DatasetError(
                f"{root} has class folder(s) {unknown} that are not among the classes "
                f"{list(class_names)}; expected {expected}"
            )
    listing = Listing([], [], [], tuple(class_names))
    for label, cls in enumerate(class_names):
        cls_dir = root / cls
        if cls_dir.is_dir():
            add_images(listing, cls_dir, root, label)
    if not listing.paths:
        raise DatasetError(f"no image files found in {root}; expected {expected}")
    return listing
