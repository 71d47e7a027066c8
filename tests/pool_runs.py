"""A tiny run distilled on a generated image pool, and a generated labelled
folder in the vww96 layout, for the slow tests of the person-detector benchmarks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("non_person", "person")
SIDE = 32


def images(n: int, side: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def labelled_folder(root: Path, n: int, seed: int = 4) -> Path:
    """``n`` random images alternately in ``root/non_person`` and ``root/person``."""
    for i, img in enumerate(images(n, SIDE, seed)):
        (root / CLASSES[i % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / CLASSES[i % 2] / f"{i}.png")
    return root


def pool_run(tmp_path: Path, name: str = "run", model: dict | None = None) -> Path:
    """A one-epoch run trained with ``--dataset unlabelled`` on 24 generated
    pool images (6 held out), labelled by a small Keras teacher saved as ``.h5``;
    ``model``: more model overrides (e.g. ``{"precision": "float"}``)."""
    import tf_keras as keras

    from larq_glt.training import TrainConfig, train

    pool = tmp_path / "pool"
    for i, img in enumerate(images(24, SIDE, 3)):
        (pool / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(pool / f"d{i % 2}" / f"{i}.png")
    keras.utils.set_random_seed(0)
    teacher = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    teacher.save(tmp_path / "t.h5")
    train(TrainConfig(dataset="unlabelled", data_dir=str(pool), image_size=SIDE, epochs=1, batch_size=8,
                      out=str(tmp_path / name), val_fraction=0.25, progress=False,
                      kd_teacher=f"{tmp_path / 't.h5'}:input=unit,output=logits,classes=non_person+person",
                      model={"stem_filters": 32, "blocks": [{"filters": 32, "groups": 1, "pool": False}],
                             **(model or {})}))
    return tmp_path / name
