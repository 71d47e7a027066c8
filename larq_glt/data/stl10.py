"""``stl10``: STL-10 through tensorflow-datasets (labelled ``train`` 5,000 images,
``test`` 8,000 images used as validation; 96x96 RGB, 10 classes).

``data_dir`` is the tensorflow-datasets data directory (default
``~/tensorflow_datasets``, or ``$TFDS_DATA_DIR``). If the dataset is not prepared
there it is downloaded (~2.6 GB, includes the unlabelled split) when the network
allows; otherwise a :class:`DatasetError` says how to prepare it elsewhere.
Both labelled splits are held in memory as uint8 (13k images, ~360 MB at 96x96);
other ``image_size`` values are resized like image files (``images.py``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import download as net
from .errors import DatasetError
from .images import fit_square
from .info import DatasetInfo
from .sources import ArraySource, Prepared, class_counts

# tensorflow-datasets fills the label names from the archive's class_names.txt
# when it prepares the data; before that (and in mock data) they are "0".."9".
CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")
URL = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"  # what tfds downloads


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except Exception as exc:  # ImportError, or a broken dependency of tfds
        raise DatasetError(
            f"the stl10 dataset needs tensorflow-datasets (pip install -r requirements.txt): {exc}"
        ) from exc
    return tfds


def _not_prepared(where: str, reason: str) -> DatasetError:
    return DatasetError(
        f"tensorflow-datasets 'stl10' is not prepared in {where} and could not be "
        f"downloaded ({reason}).\nOn a machine with network access run\n"
        f"  python -c \"import tensorflow_datasets as t; t.builder('stl10', data_dir='DIR')"
        f".download_and_prepare()\"\n"
        f"(it fetches {URL}), then copy DIR/stl10 to {where}/stl10 "
        f"and pass --data-dir {where}."
    )


def _to_numpy(tfds, ds, limit, image_size):
    if limit is not None:
        ds = ds.take(int(limit))
    images, labels = [], []
    for x, y in tfds.as_numpy(ds.batch(1000)):
        images.append(x)
        labels.append(y)
    images = np.concatenate(images) if images else np.zeros((0, 96, 96, 3), np.uint8)
    labels = np.concatenate(labels).astype(np.int32) if labels else np.zeros(0, np.int32)
    if images.shape[1:3] != (image_size, image_size):
        resized = [np.asarray(fit_square(Image.fromarray(im), image_size)) for im in images]
        images = np.stack(resized)
    return images.astype(np.uint8, copy=False), labels


def prepare(
    data_dir, *, image_size, seed, val_fraction, limit, cache, memory_limit_mb, download=True
) -> Prepared:
    tfds = _tfds()
    tfds_dir = str(Path(data_dir).expanduser()) if data_dir is not None else None
    builder = tfds.builder("stl10", data_dir=tfds_dir)
    where = str(Path(builder.data_dir).parents[1])  # <root>/stl10/<version>

    def load():
        return builder.as_dataset(split=["train", "test"], as_supervised=True, shuffle_files=False)

    try:
        train_ds, test_ds = load()
    except Exception as first:  # not prepared (tfds raises AssertionError)
        if not download:
            raise _not_prepared(where, "downloading is disabled") from first
        if not net.reachable(URL):
            raise _not_prepared(where, f"{URL} is not reachable") from first
        try:
            builder.download_and_prepare()
            train_ds, test_ds = load()
        except Exception as exc:  # noqa: BLE001 - network, disk, archive errors
            raise _not_prepared(where, f"{type(exc).__name__}: {exc}") from exc

    names = tuple(builder.info.features["label"].names)
    if names == tuple(str(i) for i in range(10)):
        names = CLASSES
    train = ArraySource(*_to_numpy(tfds, train_ds, limit, image_size))
    val = ArraySource(*_to_numpy(tfds, test_ds, limit, image_size))
    info = DatasetInfo(
        name="stl10",
        image_size=image_size,
        class_names=names,
        num_train=len(train),
        num_val=len(val),
        train_class_counts=class_counts(train.labels, len(names)),
        val_class_counts=class_counts(val.labels, len(names)),
        root=where,
        split="tensorflow-datasets train (train) / test (val)",
        seed=seed,
        storage="memory",
        extra={"limit": limit},
    )
    return Prepared(train, val, info)
