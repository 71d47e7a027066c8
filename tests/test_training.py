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
    assert cli.main(["--dataset", "synthetic", "--epochs", "0"]) == 2
    assert "--epochs must be at least 1 (0 only to prune a model loaded" in capsys.readouterr().err
    assert cli.main(["--dataset", "synthetic", "--epochs", "0", "--init-from", "runs/x"]) == 2  # nothing to prune
    assert "error: --epochs must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        cli.main(["--dataset", "nope"])
    assert e.value.code == 2


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


# -- block pruning and distillation ----------------------------------------------

# Two 32-channel blocks in every cell of every prunable layer (see test_pruning.SMALL).
PRUNABLE = {"stem_filters": 64, "stem_pool": False,
            "blocks": [{"filters": 128, "groups": 1, "pool": True}, {"filters": 128, "groups": 2, "pool": False}]}
PRUNE_ARGS = ["--dataset", "synthetic", "--image-size", "32", "--limit", "64", "--batch-size", "32", "--levels", "4",
              "--quiet", "--model-config", json.dumps(PRUNABLE)]


@pytest.mark.slow
def test_cli_pruning_with_distillation_writes_the_size_table(tmp_path, capsys):
    out = tmp_path / "run"
    args = PRUNE_ARGS + ["--out", str(out), "--epochs", "1", "--prune-ratio", "0.5", "--prune-epochs", "1",
                         "--finetune-epochs", "1", "--kd-teacher", "auto", "--kd-teacher-epochs", "1",
                         "--max-model-bits", "200000"]
    assert cli.main(args) == 0
    assert "before pruning" in capsys.readouterr().out
    # the teacher is an ordinary, finished run of the full-precision counterpart
    teacher_cfg = json.loads((out / "teacher" / "config.json").read_text())
    assert teacher_cfg["encoding"] == "float" and teacher_cfg["model_config"]["precision"] == "float"
    assert (out / "teacher" / "model.keras").exists()
    size = json.loads((out / "size.json").read_text())
    before, after = size["before"]["total"], size["after"]["total"]
    assert after["weight_bits"] < 0.4 * before["weight_bits"] and after["weight_bits"] <= 200000
    assert after["binary_macs"] < before["binary_macs"]
    kept = {k: len(v) for k, v in size["pruning"]["kept_blocks"].items()}
    assert kept == {"stem_conv": 1, "block1_conv": 2, "block2_conv": 2}  # half of 2, 4, 4 blocks
    text = (out / "summary.txt").read_text()
    assert "size before and after pruning" in text and "bits before" in text
    assert f"{before['weight_bits']:,}" in text and f"{after['weight_bits']:,}" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["phase"] for e in metrics["epochs"]] == ["dense", "ramp", "finetune"]
    assert set(metrics["stages"]) == {"before_pruning", "after_ramp", "after_finetune"}
    # shrinking is exact: the shrunk model scores what the masked model scored after its last ramp epoch
    assert metrics["stages"]["after_ramp"]["val_loss"] == metrics["epochs"][1]["val_loss"]
    assert 0.0 <= metrics["teacher"]["val_accuracy"] <= 1.0
    assert metrics["final"]["weight_bits"] == after["weight_bits"]
    model = runs.load_model(out)  # the shrunk model, plain layers
    assert model.get_layer("stem_conv").filters == 32 and model.get_layer("block2_conv").filters == 64


@pytest.mark.slow
def test_interrupted_pruning_run_resumes_identically(tmp_path):
    opts = dict(SMALL, limit=64, levels=4, model=PRUNABLE, epochs=1, prune_ratio=0.5, prune_epochs=2,
                finetune_epochs=1, kd_teacher="auto", kd_teacher_epochs=1)
    full = TrainConfig(**opts, out=str(tmp_path / "full"))
    train(full)
    cut = TrainConfig(**opts, out=str(tmp_path / "cut"))
    train(cut, _interrupt_after=1)  # at the boundary between dense training and the ramp
    train(cut, resume=True, _interrupt_after=2)  # in the middle of the ramp
    train(cut, resume=True, _interrupt_after=3)  # at the boundary before shrinking
    teacher_mtime = (tmp_path / "cut" / "teacher" / "model.keras").stat().st_mtime_ns
    train(cut, resume=True)
    assert (tmp_path / "cut" / "teacher" / "model.keras").stat().st_mtime_ns == teacher_mtime  # not retrained
    a = runs.load_model(full.out).get_weights()
    b = runs.load_model(cut.out).get_weights()
    assert len(a) == len(b)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    ma = json.loads((tmp_path / "full" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert ma["stages"] == mb["stages"]
    assert [e["val_loss"] for e in ma["epochs"]] == [e["val_loss"] for e in mb["epochs"]]


def test_over_budget_fails_before_training_with_a_clear_message(tmp_path, capsys):
    out = tmp_path / "run"
    rc = cli.main(PRUNE_ARGS + ["--out", str(out), "--prune-ratio", "0.5", "--max-model-bits", "50000"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "error:" in err and "over the --max-model-bits budget of 50,000" in err
    assert "after pruning at --prune-ratio 0.5" in err and "largest layers: block1_conv" in err
    assert not (out / "checkpoints").exists()


def test_resume_with_another_prune_ratio_is_refused(tmp_path):
    cfg = TrainConfig(**SMALL, epochs=1, prune_ratio=0.5, prune_epochs=1, model={"width": 2}, out=str(tmp_path / "r"))
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps({**cfg.to_dict(), "prune_ratio": 0.25, "epochs": 3}))
    with pytest.raises(TrainingError, match=r"prune_ratio: saved 0.25, given 0.5.*epochs: saved 3, given 1"):
        train(cfg, resume=True)


def test_pruning_and_distillation_options_are_validated(capsys):
    assert cli.main(["--dataset", "synthetic", "--prune-ratio", "1.0"]) == 2
    assert cli.main(["--dataset", "synthetic", "--prune-epochs", "-1"]) == 2
    assert capsys.readouterr().err.count("error: --prune-") == 2
    with pytest.raises(TrainingError, match="kd-alpha"):
        train(TrainConfig(**SMALL, kd_teacher="auto", kd_alpha=2.0))
    with pytest.raises(TrainingError, match="max-model-bits"):
        train(TrainConfig(**SMALL, max_model_bits=0))
    with pytest.raises(TrainingError, match="multiple of 32"):
        train(TrainConfig(**SMALL, prune_ratio=0.5, prune_block=48))


def test_help_explains_pruning_and_distillation_flags():
    text = cli.build_parser().format_help()
    for flag in ("--prune-ratio", "--prune-block", "--prune-epochs", "--finetune-epochs", "--kd-teacher",
                 "--kd-alpha", "--kd-temperature", "--max-model-bits"):
        assert flag in text


def test_init_from_copies_the_body_and_starts_a_new_classifier(tmp_path):
    from larq_glt import models
    from larq_glt.training import _init_from

    cfg = models.ModelConfig(input_size=32, num_classes=10, stem_filters=32, levels=4,
                             blocks=(models.Block(64, 1), models.Block(64, 2, pool=False)))
    source = models.compact(cfg)
    for w in source.weights:
        w.assign(np.random.default_rng(len(w.name)).normal(size=w.shape).astype(np.float32) * 0.1 + 0.5)
    source.save(tmp_path / "src.keras")
    target = models.compact(cfg, num_classes=2)
    info = _init_from(target, tmp_path / "src.keras")
    assert info["fresh"] == ["classifier", "classifier_bn"]
    assert "encoder" in info["copied"] and "block2_conv" in info["copied"]
    for name in info["copied"]:
        for a, b in zip(target.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    other = models.compact(cfg, num_classes=2, width=2.0)
    with pytest.raises(TrainingError, match="stem_conv has weights .* only the classifier may differ"):
        _init_from(other, tmp_path / "src.keras")
    # another GLT learning-rate multiplier keeps the trained thresholds
    faster = models.compact(cfg, num_classes=2, glt_lr_multiplier=10.0)
    _init_from(faster, tmp_path / "src.keras")
    np.testing.assert_array_equal(faster.get_layer("encoder").thresholds(), source.get_layer("encoder").thresholds())


@pytest.mark.slow
def test_mirrored_strategy_trains(tmp_path):
    """--distribute mirrored runs the same loop under tf.distribute (one CPU replica here)."""
    metrics = train(TrainConfig(**SMALL, epochs=1, out=str(tmp_path / "m"), distribute="mirrored"))
    assert 0.0 <= metrics["final"]["val_accuracy"] <= 1.0
    from larq_glt.data.synthetic import NUM_CLASSES

    assert runs.load_model(tmp_path / "m").output_shape[-1] == NUM_CLASSES


@pytest.mark.slow
def test_pruning_a_trained_model_records_its_accuracy_before_pruning(tmp_path):
    """--init-from a trained run with --epochs 0: the ramp starts from its weights,
    and the "before pruning" stage is that model's own validation accuracy."""
    opts = dict(SMALL, limit=64, levels=4, model=PRUNABLE)
    dense = TrainConfig(**opts, epochs=1, out=str(tmp_path / "dense"))
    dense_acc = train(dense)["final"]["val_accuracy"]
    out = tmp_path / "pruned"
    assert cli.main(["--dataset", "synthetic", "--image-size", "32", "--batch-size", "32", "--limit", "64",
                     "--levels", "4", "--model-config", json.dumps(PRUNABLE), "--epochs", "0",
                     "--init-from", str(tmp_path / "dense"), "--prune-ratio", "0.5", "--prune-epochs", "1",
                     "--finetune-epochs", "1", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["stages"]["before_pruning"]["val_accuracy"] == pytest.approx(dense_acc, abs=1e-6)
    assert [e["phase"] for e in metrics["epochs"]] == ["ramp", "finetune"]
    assert metrics["final"]["weight_bits"] < metrics["final"]["weight_bits_before_pruning"]
