"""``vww``: Visual Wake Words in the MLPerf Tiny ``vw_coco2014_96`` layout.

Layout: ``DIR/person/*`` and ``DIR/non_person/*`` (96x96 RGB images cut from
COCO 2014). Labels: ``non_person = 0``, ``person = 1`` (class_names order), as in
the MLPerf Tiny reference model's ``[non-person, person]`` output.

``data_dir`` may be that folder or its parent (holding ``vw_coco2014_96/``). When
it does not exist or is empty (or ``data_dir`` is None, which means
``default_cache_dir()``), the MLPerf Tiny archive :data:`URL` is downloaded and
extracted there. Without network a :class:`DatasetError` says where to get the
archive and where to put it.

The archive has no validation split: ``val_fraction`` of each class is held out
by hashed file name (``split.py``), the same for every run with the same seed.
"""
from __future__ import annotations

from pathlib import Path

from . import download as net
from .errors import DatasetError
from .files import prepare_files
from .sources import Prepared
from .tree import list_class_tree

# The archive the MLPerf Tiny VWW training script (benchmark/training/visual_wake_words) downloads.
URL = (
    "https://www.silabs.com/public/files/github/machine_learning/benchmarks/datasets/"
    "vw_coco2014_96.tar.gz"
)
ARCHIVE = "vw_coco2014_96.tar.gz"
FOLDER = "vw_coco2014_96"
CLASSES = ("non_person", "person")
LAYOUT = "person/ and non_person/ folders of images (MLPerf Tiny vw_coco2014_96 layout)"


def _has_classes(d: Path) -> bool:
    return all((d / c).is_dir() for c in CLASSES)


def _missing(dest: Path, reason: str) -> DatasetError:
    return DatasetError(
        f"Visual Wake Words images not found in {dest} and not downloaded ({reason}).\n"
        f"Get the MLPerf Tiny archive {URL}\n"
        f"and extract it there: mkdir -p {dest} && tar -xzf {ARCHIVE} -C {dest}\n"
        f"so that {dest / FOLDER}/person/ and {dest / FOLDER}/non_person/ exist; "
        f"or pass --data-dir pointing at any folder with {LAYOUT}."
    )


def _download(dest: Path) -> Path:
    archive = dest / ARCHIVE
    made = []  # the folders this makes, innermost first: removed again when nothing came
    for d in (dest, *dest.parents):
        if d.exists():
            break
        made.append(d)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if not archive.is_file():
            net.fetch(URL, archive)
    except OSError as exc:  # DownloadError (no network, HTTP error), disk full, permissions
        for d in made:  # a mistyped --data-dir leaves no folder behind
            try:
                d.rmdir()
            except OSError:
                break
        raise _missing(dest, str(exc)) from exc
    try:
        root = net.extract_tar(archive, dest, FOLDER)
    except OSError as exc:
        # A damaged archive is removed so that the next attempt downloads it again.
        archive.unlink(missing_ok=True)
        raise _missing(dest, str(exc)) from exc
    archive.unlink(missing_ok=True)
    return root


def locate(data_dir=None, allow_download: bool = True) -> Path:
    """The folder holding ``person/`` and ``non_person/``; downloads it if absent."""
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        for candidate in (base, base / FOLDER):
            if _has_classes(candidate):
                return candidate
        if base.is_dir() and any(base.iterdir()):
            raise DatasetError(
                f"{base} has neither person/ and non_person/ folders nor a {FOLDER}/ "
                f"folder holding them; expected {LAYOUT}"
            )
        dest = base
    else:
        dest = net.default_cache_dir()
        if _has_classes(dest / FOLDER):
            return dest / FOLDER
    if not allow_download:
        raise _missing(dest, "downloading is disabled")
    return _download(dest)


def prepare(
    data_dir, *, image_size, seed, val_fraction, limit, cache, memory_limit_mb, download=True
) -> Prepared:
    root = locate(data_dir, allow_download=download)
    listing = list_class_tree(root, LAYOUT, class_names=CLASSES)
    for label, name in enumerate(CLASSES):
        if label not in listing.labels:
            raise DatasetError(f"{root / name} has no images; expected {LAYOUT}")
    return prepare_files(
        "vww",
        root,
        listing,
        None,
        image_size=image_size,
        seed=seed,
        val_fraction=val_fraction,
        limit=limit,
        cache=cache,
        memory_limit_mb=memory_limit_mb,
        extra={"url": URL},
    )
