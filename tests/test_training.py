import json

import numpy as np
import pytest

import larq_glt  # noqa: F401

from larq_glt import runs, train as cli
from larq_glt.training import TrainConfig, TrainingError, train

SMALL = dict(dataset="synthetic", image_size=32, batch_size=32, progress=False)


@pytest.mark.slow
def test_cli_one_epoch_writes_every_artifact_then_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--dataset", "synthetic", "--image-size", "32", "--out", str(out), "--quiet"]
    args = base + ["--epochs", "1"]
    assert cli.main(args) == 0
    for name in ("model.keras", "metrics.json", "config.json", "state.json", "summary.txt",
                 "summary.json", "transfer_curve.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "checkpoints" / "epoch-0001").is_dir()
    assert any((out / "logs").rglob("events.out.tfevents.*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 1 and 0.0 <= metrics["final"]["val_accuracy"] <= 1.0
    assert "weight bits" in (out / "summary.txt").read_text()
    assert (out / "transfer_curve.png").read_bytes()[:4] == b"\x89PNG"
    # Running again on the same directory without --resume is refused.
    assert cli.main(args) == 2
    assert "--resume" in capsys.readouterr().err
    # --resume with more epochs continues from the checkpoint.
    assert cli.main(base + ["--epochs", "2", "--resume"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    model = runs.load_model(out)
    assert model.get_layer("encoder").thresholds().shape == (3, 8)


@pytest.mark.slow
def test_interrupted_run_resumes_identically(tmp_path):
    full = TrainConfig(**SMALL, epochs=2, out=str(tmp_path / "full"))
    train(full)
    cut = TrainConfig(**SMALL, epochs=2, out=str(tmp_path / "cut"))
    train(cut, _interrupt_after=1)
    assert runs.RunDir(cut.out).last_epoch() == 1
    train(cut, resume=True)
    a = runs.load_model(full.out).get_weights()
    b = runs.load_model(cut.out).get_weights()
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)


def test_resume_with_other_options_is_refused(tmp_path):
    cfg = TrainConfig(**SMALL, epochs=1, out=str(tmp_path / "r"))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps({**cfg.to_dict(), "encoding": "nbc"}))
    with pytest.raises(TrainingError, match="encoding: saved 'nbc', given 'glt'"):
        train(cfg, resume=True)


def test_resume_without_a_run_is_refused(tmp_path):
    with pytest.raises(TrainingError, match="no config.json"):
        train(TrainConfig(**SMALL, out=str(tmp_path / "none")), resume=True)


def test_cli_rejects_bad_numbers(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--dataset", "synthetic", "--epochs", "0"])
    with pytest.raises(SystemExit):
        cli.main(["--dataset", "nope"])


def test_cli_missing_dataset_dir_is_a_clear_error(tmp_path, capsys):
    rc = cli.main(["--dataset", "folder", "--data-dir", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "missing" in err and "error:" in err


def test_help_explains_every_flag():
    text = cli.build_parser().format_help()
    for flag in ("--dataset", "--data-dir", "--encoding", "--levels", "--epochs", "--batch-size",
                 "--image-size", "--out", "--resume", "--seed", "--distribute"):
        assert flag in text


def test_load_model_errors_are_clear(tmp_path):
    with pytest.raises(runs.RunError, match="no trained model"):
        runs.load_model(tmp_path)
