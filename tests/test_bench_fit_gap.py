"""bench/fit_gap.py: a distilled model's agreement with its teachers on its
training images, held-out images and vww96, and its accuracy where they err."""
import json

import numpy as np
import pytest

from bench import fit_gap
from tests import pool_runs


def test_agreement_plain_and_balanced():
    target = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 1, 1, 0])
    a = fit_gap.agreement(pred, target)
    assert a["images"] == 6 and a["agreement"] == pytest.approx(4 / 6)
    assert a["per_class"] == {0: 0.75, 1: 0.5} and a["balanced"] == pytest.approx(0.625)
    assert fit_gap.agreement(np.array([1, 1]), np.array([1, 1]))["balanced"] == 1.0  # a class absent: not counted


def test_accuracy_where_the_teachers_are_right_and_wrong():
    labels = np.array([0, 1, 1, 0, 1])
    teacher = np.array([0, 1, 0, 1, 1])  # wrong on images 2 and 3
    pred = np.array([0, 0, 1, 1, 1])
    r = fit_gap.against_labels(pred, teacher, labels)
    assert r["teacher_accuracy"] == pytest.approx(0.6) and r["accuracy"] == pytest.approx(0.6)
    assert r["accuracy_where_teacher_right"] == pytest.approx(2 / 3)
    assert r["accuracy_where_teacher_wrong"] == pytest.approx(0.5) and r["teacher_wrong"] == 2
    assert fit_gap.against_labels(labels, labels, labels)["accuracy_where_teacher_wrong"] is None


def test_refusals_exit_2_with_one_line(tmp_path, capsys):
    vww = pool_runs.labelled_folder(tmp_path / "vww", 2)
    assert fit_gap.main([str(tmp_path / "nope"), "--images", str(vww), "--out", str(tmp_path / "f")]) == 2
    assert "holds no finished run" in capsys.readouterr().err
    assert fit_gap.main([str(tmp_path / "nope"), "--images", str(tmp_path / "none"), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")
    (run / "config.json").write_text(json.dumps({"dataset": "vww"}))
    assert fit_gap.main([str(run), "--images", str(vww), "--out", str(tmp_path / "f")]) == 2
    assert "not trained with --dataset unlabelled" in capsys.readouterr().err
    assert not (tmp_path / "f.json").exists()


@pytest.mark.slow
def test_a_pool_run_is_described(tmp_path):
    run = pool_runs.pool_run(tmp_path)
    vww = pool_runs.labelled_folder(tmp_path / "vww", 10)
    out = tmp_path / "fit_gap"
    assert fit_gap.main([str(run), "--images", str(vww), "--out", str(out)]) == 0
    row = json.loads(out.with_suffix(".json").read_text())["rows"][0]
    assert row["training"]["images"] == 18 and row["heldout"]["images"] == 6  # 24 pool images, 6 held out
    assert row["vww96"]["images"] == 10 and 0 <= row["vww96"]["accuracy"] <= 1
    text = out.with_suffix(".md").read_text()
    assert f"| `{run}` |" in text and "python bench/fit_gap.py" in text
