"""bench/person_adapt.py: fine-tuning a distilled detector on labelled images,
scored by cross-validation (every image by a model that never trained on it)."""
import json

import numpy as np
import pytest

import larq_glt  # noqa: F401
from bench import person_adapt
from larq_glt.distillation import UNLABELLED
from tests import pool_runs

CLASSES = pool_runs.CLASSES
_images = pool_runs.images


def test_mixed_splits_repeat_the_labelled_images_and_mark_the_pool():
    lab_x, lab_y = _images(6, 16, 0), np.array([0, 1, 0, 1, 0, 1], np.int32)
    pool = _images(5, 16, 1)
    recipe = person_adapt.Recipe(repeat=3)
    splits = person_adapt.mixed_splits(lab_x, lab_y, pool, _images(4, 16, 2), np.array([0, 1, 0, 1]),
                                       CLASSES, recipe, "test")
    x, y = splits.arrays("train")
    assert len(y) == 3 * 6 + 5 and (y == UNLABELLED).sum() == 5
    assert np.bincount(y[y >= 0]).tolist() == [9, 9]
    np.testing.assert_array_equal(x[6:12], lab_x)  # the second copy of the labelled images
    np.testing.assert_array_equal(x[-5:], pool)
    assert splits.arrays("val")[1].tolist() == [0, 1, 0, 1]


def test_refuses_a_base_that_is_not_a_distilled_run(tmp_path, capsys):
    assert person_adapt.main([str(tmp_path / "nope")]) == 2
    assert "holds no finished run" in capsys.readouterr().err


@pytest.mark.slow
def test_cross_validation_scores_each_image_by_a_model_that_never_trained_on_it(tmp_path, monkeypatch):
    from larq_glt import runs

    pool_runs.pool_run(tmp_path, "base")
    vww = pool_runs.labelled_folder(tmp_path / "vww", 12)
    recipe = person_adapt.Recipe(epochs=1, repeat=2, pool_images=10)
    cv = person_adapt.cross_validate(tmp_path / "base", recipe, 3, tmp_path / "work", vww)
    _check_folds(cv, tmp_path)
    # --ship: the same recipe on all the images, exported, measured, with the fold figure on its card
    from bench import person_distil

    ship = tmp_path / "ship"
    monkeypatch.setattr(person_distil, "SHIP", ship)
    card = person_adapt.ship_all(tmp_path / "base", recipe, tmp_path / "work", cv, "python bench/person_adapt.py x",
                                 vww_dir=vww)
    info = runs.RunDir(tmp_path / "work" / "all").read_json(runs.RunDir(tmp_path / "work" / "all").metrics)
    assert info["final"]["data"]["num_train"] == 2 * 12 + 10  # every labelled image, twice, and the pool
    assert card["cross_validated"] == cv and (ship / "model.tflite").is_file() and card["all_convs_binary"]
    assert card["instructions"]["mean"] > 0 and card["peak_ram_bytes"] > 0
    text = (ship / "MODEL_CARD.md").read_text()
    assert f"{100 * cv['accuracy']:.1f}%" in text and "cross-validated" in text


def _check_folds(cv, tmp_path):
    from larq_glt import runs

    assert cv["images"] == 12 and cv["fold_sizes"] == [4, 4, 4]
    assert sum(f["images"] for f in cv["folds"]) == 12
    assert cv["correct"] == round(sum(f["accuracy"] * f["images"] for f in cv["folds"]))
    for f in range(3):
        run = runs.RunDir(tmp_path / "work" / f"fold{f}")
        info = run.read_json(run.metrics)["final"]["data"]
        # trained on the other two folds (8 images, twice) and 10 pool images; validated on its own 4
        assert info["num_train"] == 2 * 8 + 10 and info["num_val"] == 4
        assert info["extra"]["pool_images"] == 10


def test_an_export_with_its_card_is_a_base(tmp_path, capsys):
    """A shipped export (run directory gone): the config comes from its card's
    training command; an export without one is refused in one line."""
    from pathlib import Path

    from bench import person_adapt

    shipped = Path(__file__).resolve().parents[1] / "models" / "person_detect"
    base = person_adapt.base_config(shipped)
    card = json.loads((shipped / "card.json").read_text())
    assert base.dataset == "unlabelled" and base.data_dir == card["pool"]
    assert base.kd_teacher in (card["teachers"][0], card["teachers"])
    assert person_adapt.base_vww96(shipped) == card["vww96"]
    bare = tmp_path / "export"
    bare.mkdir()
    (bare / "model.tflite").write_bytes((shipped / "model.tflite").read_bytes())
    (bare / "card.json").write_text("{}")
    assert person_adapt.main([str(bare)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no training command" in err[0], err
