"""Nothing a user has is destroyed (issue 16): --out never replaces what this
tool did not write, a run directory has one writer, a broken model never passes."""
import hashlib
import json
import os

import pytest

import larq_glt  # noqa: F401

from larq_glt import atomic


def _snapshot(root):
    """Every path under ``root`` (and ``root`` itself) with its contents' digest."""
    root = os.fspath(root)
    if os.path.isfile(root):
        return {root: hashlib.sha256(open(root, "rb").read()).hexdigest()}
    snap = {}
    for d, dirs, files in os.walk(root):
        snap[d] = "dir"
        for f in files:
            p = os.path.join(d, f)
            snap[p] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return snap


def _one_error_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# -- 1. --out only replaces an output this tool wrote ---------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory holding a small real model (exportable in seconds)."""
    from larq_glt import models
    from larq_glt.models import Block, ModelConfig

    run = tmp_path_factory.mktemp("run") / "r"
    run.mkdir()
    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, blocks=(Block(32, 1, pool=True),), num_classes=2)
    models.compact(cfg).save(run / "model.keras")
    (run / "config.json").write_text('{"class_names": ["a", "b"]}\n')
    (run / "checkpoints" / "epoch-0001").mkdir(parents=True)
    (run / "checkpoints" / "epoch-0001" / "ckpt.index").write_text("weights")
    return run


def test_directory_replaces_only_its_own_output(tmp_path):
    out = tmp_path / "out"
    with atomic.directory(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / atomic.MARKER).is_file()
    with atomic.directory(out) as tmp:  # ours: replaced as a whole
        (tmp / "b.txt").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == [atomic.MARKER, "b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "nothing left aside"
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic.directory(empty) as tmp:  # an empty folder holds nothing to lose
        (tmp / "c.txt").write_text("3")
    assert (empty / "c.txt").read_text() == "3"


@pytest.mark.parametrize("kind", ["foreign", "file", "run", "cwd", "parent_of_cwd", "project", "under_file",
                                  "symlink"])
def test_directory_refuses_what_it_did_not_write(tmp_path, monkeypatch, kind):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    (tmp_path / "run" / atomic.MARKER).write_text("")  # even a marked folder, once a run is in it
    os.symlink(foreign, tmp_path / "link")
    monkeypatch.chdir(foreign)
    target = {"foreign": foreign, "file": tmp_path / "notes.txt", "run": tmp_path / "run", "cwd": ".",
              "parent_of_cwd": "..", "project": atomic._PROJECT, "under_file": tmp_path / "notes.txt" / "x",
              "symlink": tmp_path / "link"}[kind]
    before = _snapshot(tmp_path)
    with pytest.raises(atomic.OutputError):
        with atomic.directory(target) as tmp:
            (tmp / "x").write_text("new")
    assert _snapshot(tmp_path) == before


def test_directory_refuses_an_unwritable_place():
    with pytest.raises(atomic.OutputError, match="cannot create"):
        atomic.check_output_dir("/proc/larq-glt-test/x")


def test_legacy_outputs_without_a_marker_are_still_ours(tmp_path):
    old = tmp_path / "export"
    old.mkdir()
    for name in ("model.tflite", "encoder.json", "model.json", "report.json", "report.md"):
        (old / name).write_text("old")
    assert atomic.check_output_dir(old) == old
    (old / "model.keras").write_text("k")  # the shipped model folder: an export with its Keras model
    assert atomic.check_output_dir(old) == old
    ship = atomic._PROJECT / "models" / "person_detect"  # bench/person_detector.py re-exports into it
    assert atomic.check_output_dir(ship) == ship


@pytest.mark.parametrize("where", ["run", "foreign", "file", "under_file"])
def test_export_cli_refuses_an_out_it_did_not_write(tiny_run, tmp_path, capsys, where):
    from larq_glt import export

    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"\xff\xd8 not really")
    (tmp_path / "notes.txt").write_text("keep me")
    out = {"run": tiny_run, "foreign": foreign, "file": tmp_path / "notes.txt",
           "under_file": tmp_path / "notes.txt" / "x"}[where]
    before, run_before = _snapshot(tmp_path), _snapshot(tiny_run)
    assert export.main([str(tiny_run), "--out", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("error: --out ") and str(out) in line
    assert _snapshot(tmp_path) == before and _snapshot(tiny_run) == run_before


def test_build_refuses_a_file_and_the_cwd(tmp_path, monkeypatch, capsys):
    import deploy.build as build
    from deploy.firmware import image as firmware

    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    for out in (str(target), ".", str(tmp_path.parent)):
        assert build.main(["--board", "mps2-an500", "--out", out]) == 2
        assert "--out" in _one_error_line(capsys.readouterr().err)
    with pytest.raises(firmware.FirmwareError, match="is a file"):
        firmware.build("mps2-an500", out=target, compile=False)
    assert _snapshot(tmp_path) == before


# -- 2. one writer per run directory ---------------------------------------------

HOLD = ("import sys, time; from larq_glt.runs import RunDir; "
        "held = RunDir(sys.argv[1]).lock(); held.__enter__(); print('locked', flush=True); time.sleep(120)")


def _holder(run):
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True,
                         cwd=atomic._PROJECT)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_training_into_a_locked_run_is_refused_with_the_holders_pid(tmp_path, capsys):
    from larq_glt import train as cli

    run = tmp_path / "r"
    holder = _holder(run)
    try:
        rc = cli.main(["--dataset", "synthetic", "--image-size", "32", "--epochs", "1", "--out", str(run),
                       "--quiet"])
        assert rc == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"PID {holder.pid}" in line and str(run) in line
        assert sorted(p.name for p in run.iterdir()) == [".lock"], "the refused run wrote nothing"
    finally:
        holder.kill()
        holder.wait()
    # A crashed holder (SIGKILL) leaves no lock behind.
    from larq_glt.runs import RunDir

    with RunDir(run).lock():
        assert (run / ".lock").read_text().strip() == str(os.getpid())
    assert not run.exists() or not (run / ".lock").exists()


def test_lock_in_process_and_release(tmp_path):
    from larq_glt.runs import RunDir, RunError
    from larq_glt.training import TrainConfig, train

    run = RunDir(tmp_path / "r")
    with run.lock():
        with pytest.raises(RunError, match=f"PID {os.getpid()}"):
            train(TrainConfig(dataset="synthetic", image_size=32, epochs=1, progress=False, out=str(run.path)))
    assert not run.path.exists(), "a lock that found nothing to do leaves nothing behind"


@pytest.mark.slow
def test_two_concurrent_trainings_one_is_refused(tmp_path, capsys):
    import subprocess
    import sys
    import time

    from larq_glt import train as cli

    run = tmp_path / "r"
    first = subprocess.Popen([sys.executable, "-m", "larq_glt.train", "--dataset", "synthetic", "--image-size",
                              "32", "--epochs", "3", "--out", str(run), "--quiet"], cwd=atomic._PROJECT,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not ((run / ".lock").exists() and (run / ".lock").read_text().strip()):
            assert time.time() < deadline and first.poll() is None
            time.sleep(0.2)
        assert cli.main(["--dataset", "synthetic", "--image-size", "32", "--epochs", "1", "--seed", "1",
                         "--out", str(run), "--quiet"]) == 2
        assert f"PID {first.pid}" in _one_error_line(capsys.readouterr().err)
    finally:
        _, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert not (run / ".lock").exists()


# -- 3. no broken model passes ------------------------------------------------------

@pytest.mark.parametrize("flags", [
    ["--learning-rate", "-1"], ["--learning-rate", "nan"], ["--learning-rate", "inf"], ["--learning-rate", "0"],
    ["--prune-learning-rate", "nan", "--prune-ratio", "0.5"], ["--width", "nan"], ["--width", "0"],
    ["--glt-lr-multiplier", "inf"], ["--kd-temperature", "inf", "--kd-teacher", "auto"],
    ["--kd-alpha", "nan", "--kd-teacher", "auto"], ["--val-fraction", "0"], ["--val-fraction", "nan"],
    ["--levels", "300"], ["--levels", "255", "--encoding", "glt"], ["--seed", "-1"], ["--limit", "0"],
    ["--model-config", '{"width": NaN}'], ["--prune-ratio", "nan"],
])
def test_train_refuses_bad_numbers_with_exit_2(tmp_path, capsys, flags):
    from larq_glt import train as cli

    out = tmp_path / "r"
    assert cli.main(["--dataset", "synthetic", "--image-size", "32", "--out", str(out), "--quiet"] + flags) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert flags[0] in line or (flags[0] == "--model-config" and "--width" in line)
    assert not out.exists()


TINY = ('{"stem_kernel": 2, "stem_stride": 2, "stem_pool": false, '
        '"blocks": [{"filters": 32, "groups": 1, "pool": true}]}')


def _nan_in_epoch_2(phase, cfg, steps_per_epoch):
    """Adam whose learning rate turns nan after the first epoch (a divergence)."""
    import tensorflow as tf
    import tf_keras as keras

    class Schedule(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return tf.where(step < steps_per_epoch, 1e-3, float("nan"))

        def get_config(self):
            return {}

    return keras.optimizers.Adam(Schedule())


def test_non_finite_loss_stops_training_and_keeps_the_last_good_epoch(tmp_path, capsys, monkeypatch):
    import json

    from larq_glt import train as cli, training

    monkeypatch.setattr(training, "_optimizer", _nan_in_epoch_2)
    out = tmp_path / "r"
    rc = cli.main(["--dataset", "synthetic", "--image-size", "16", "--batch-size", "32", "--limit", "64",
                   "--epochs", "2", "--model-config", TINY, "--out", str(out), "--quiet"])
    assert rc == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "diverged in epoch 2" in line and "last good checkpoint (epoch 1)" in line
    assert json.loads((out / "state.json").read_text()) == {"completed_epochs": 1}
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-0001"]
    assert [e["epoch"] for e in json.loads((out / "metrics.json").read_text())["epochs"]] == [1]
    assert not (out / "model.keras").exists()


def test_export_refuses_non_finite_logits(tmp_path):
    import numpy as np

    from larq_glt import export, models
    from larq_glt.models import Block, ModelConfig

    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, blocks=(Block(32, 1, pool=True),), num_classes=2)
    model = models.compact(cfg)
    bn = model.get_layer("classifier_bn")
    bn.set_weights([np.full_like(w, np.nan) for w in bn.get_weights()])
    with pytest.raises(export.ExportError, match="non-finite logits"):
        export.export_keras(model, tmp_path / "e", n_check=4)
    assert not (tmp_path / "e").exists()


# -- 6. clear errors instead of tracebacks -------------------------------------------

@pytest.mark.parametrize("where", ["file", "under_file", "proc"])
def test_train_refuses_an_out_it_cannot_use(tmp_path, capsys, where):
    from larq_glt import train as cli

    (tmp_path / "notes.txt").write_text("keep me")
    out = {"file": tmp_path / "notes.txt", "under_file": tmp_path / "notes.txt" / "r",
           "proc": "/proc/larq-glt-test/r"}[where]
    before = _snapshot(tmp_path)
    assert cli.main(["--dataset", "synthetic", "--image-size", "32", "--epochs", "1", "--out", str(out),
                     "--quiet"]) == 2
    assert str(out) in _one_error_line(capsys.readouterr().err)
    assert _snapshot(tmp_path) == before


def test_export_and_build_refuse_an_unwritable_out(tiny_run, capsys):
    import deploy.build as build
    from larq_glt import export

    assert export.main([str(tiny_run), "--out", "/proc/larq-glt-test/e"]) == 2
    assert "cannot create" in _one_error_line(capsys.readouterr().err)
    assert build.main(["--board", "mps2-an500", "--out", "/proc/larq-glt-test/b"]) == 2
    assert "cannot create" in _one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("count", ["0", "-3"])
def test_export_check_count_must_be_positive(tiny_run, tmp_path, capsys, count):
    from larq_glt import export

    assert export.main([str(tiny_run), "--out", str(tmp_path / "e"), "--check-count", count]) == 2
    assert "--check-count" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "e").exists()


def test_ctrl_c_during_training_says_how_to_resume(tmp_path, capsys, monkeypatch):
    import json

    from larq_glt import train as cli, training

    out = tmp_path / "r"

    def interrupted(cfg, resume=False, **kw):
        out.mkdir()
        (out / "state.json").write_text(json.dumps({"completed_epochs": 3}))
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    args = ["--dataset", "synthetic", "--epochs", "9", "--out", str(out)]
    assert cli.main(args) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{out} holds 3 completed epoch(s)" in err
    assert "python -m larq_glt.train --dataset synthetic --epochs 9 --out " in err and err.rstrip().endswith("--resume")


# -- 7. one class is not a classification problem -------------------------------------

def test_a_dataset_with_one_class_is_refused(tmp_path, capsys):
    from PIL import Image

    from larq_glt import data, train as cli

    with pytest.raises(data.DatasetError, match="1 class"):
        data.load("synthetic", image_size=16, num_classes=1)
    root = tmp_path / "d"
    for split, n in (("train", 4), ("val", 2)):
        (root / split / "cats").mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(root / split / "cats" / f"{i}.png")
    out = tmp_path / "r"
    assert cli.main(["--dataset", "folder", "--data-dir", str(root), "--image-size", "32", "--out", str(out),
                     "--quiet"]) == 2
    assert "a classifier needs at least 2" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


# -- 8. usage errors exit 2 in every command ---------------------------------------------

def test_usage_errors_exit_2_everywhere(tmp_path, capsys):
    import deploy.build as build
    import deploy.demo as demo
    from larq_glt import export, report, train as cli

    calls = [
        lambda: cli.main(["--dataset", "synthetic", "--epochs", "0"]),
        lambda: cli.main(["--dataset", "synthetic", "--finetune-epochs", "-1"]),
        lambda: cli.main(["--dataset", "synthetic", "--model-config", "[1]", "--out", str(tmp_path / "r")]),
        lambda: export.main([str(tmp_path / "no-run"), "--out", str(tmp_path / "e")]),
        lambda: report.main([str(tmp_path / "none.tflite")]),
        lambda: build.main(["--board", "mps2-an500", "--max-frames", "0"]),
        lambda: demo.main(["--limit", "0"]),
        lambda: demo.main(["--timeout", "nan"]),
    ]
    for i, call in enumerate(calls):
        assert call() == 2, i
        _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


# -- 4. --resume continues the run it names ----------------------------------------------

def _saved_run(path, epochs_done=0, **options):
    """A run directory holding only what --resume reads (config, state, metrics)."""
    import json

    from larq_glt.training import TrainConfig

    path.mkdir(parents=True)
    cfg = TrainConfig(**{"out": str(path), "progress": False, **options})
    (path / "config.json").write_text(json.dumps({**cfg.to_dict(), "class_names": ["a", "b"]}))
    if epochs_done:
        (path / "state.json").write_text(json.dumps({"completed_epochs": epochs_done}))
        (path / "metrics.json").write_text(json.dumps({"epochs": [{"epoch": e + 1} for e in range(epochs_done)]}))
    return cfg


def test_resume_takes_every_data_and_model_option_from_the_run(tmp_path, monkeypatch):
    from larq_glt import train as cli, training

    out = tmp_path / "r"
    saved = _saved_run(out, dataset="vww", data_dir=str(tmp_path / "vw_coco2014_96"), image_size=64, limit=500,
                       val_fraction=0.2, augment=False, zoom=0.1, levels=4, per_channel=False, seed=3,
                       batch_size=16, model={"width": 2.0}, epochs=30, learning_rate=1e-3)
    seen = {}

    def fake_train(cfg, resume=False, **kw):
        seen.update(cfg=cfg, resume=resume)
        return {"final": {"val_accuracy": 0.5, "weight_bits": 1, "binary_macs": 1}}

    monkeypatch.setattr(training, "train", fake_train)
    # The README's example: no --data-dir, only the new epoch count.
    assert cli.main(["--dataset", "vww", "--out", str(out), "--epochs", "40", "--resume"]) == 0
    cfg = seen["cfg"]
    assert seen["resume"] and cfg.epochs == 40 and cfg.progress
    for name in ("data_dir", "image_size", "limit", "val_fraction", "augment", "zoom", "levels", "per_channel",
                 "seed", "batch_size", "model", "learning_rate"):
        assert getattr(cfg, name) == getattr(saved, name), name
    # --width 2 agrees with the saved model; the given --learning-rate wins (it does not define the run).
    cli.main(["--dataset", "vww", "--out", str(out), "--width", "2", "--learning-rate", "5e-4", "--resume"])
    assert seen["cfg"].model == {"width": 2.0} and seen["cfg"].learning_rate == 5e-4 and seen["cfg"].epochs == 30


@pytest.mark.parametrize("flags, clash", [
    (["--image-size", "32"], "image_size: saved 64, given 32"), (["--limit", "10"], "limit: saved 500, given 10"),
    (["--no-augment"], "augment: saved True, given False"), (["--width", "3"], "model: saved"),
    (["--val-fraction", "0.3"], "val_fraction"),
])
def test_resume_refuses_an_option_that_contradicts_the_run(tmp_path, capsys, flags, clash):
    from larq_glt import train as cli

    out = tmp_path / "r"
    _saved_run(out, 2, dataset="synthetic", image_size=64, limit=500, val_fraction=0.2, epochs=4)
    before = _snapshot(out)
    assert cli.main(["--dataset", "synthetic", "--out", str(out), "--resume"] + flags) == 2
    assert clash in _one_error_line(capsys.readouterr().err)
    assert _snapshot(out) == before


def test_resume_with_fewer_epochs_than_done_leaves_the_run_untouched(tmp_path, capsys):
    from larq_glt import train as cli

    out = tmp_path / "r"
    _saved_run(out, 6, dataset="synthetic", image_size=32, epochs=10)
    before = _snapshot(out)
    assert cli.main(["--dataset", "synthetic", "--out", str(out), "--epochs", "4", "--resume", "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "already holds 6 completed epochs" in line and "--epochs 6 or more" in line
    assert _snapshot(out) == before


@pytest.mark.slow
def test_resume_with_more_epochs_follows_the_longer_cosine_and_says_so(tmp_path, capsys):
    import json

    import tf_keras as keras

    from larq_glt import train as cli

    out = tmp_path / "r"
    base = ["--dataset", "synthetic", "--image-size", "16", "--batch-size", "32", "--limit", "64",
            "--model-config", TINY, "--learning-rate", "0.004", "--out", str(out), "--quiet"]
    assert cli.main(base + ["--epochs", "1"]) == 0
    assert cli.main(["--dataset", "synthetic", "--out", str(out), "--epochs", "3", "--resume", "--quiet"]) == 0
    assert "--epochs 1 -> 3: epochs 2..3 follow the 3-epoch cosine decay" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_changed"] == [{"after_epoch": 1, "epochs_before": 1, "epochs": 3}]
    steps = 2  # 64 images / 32
    longer = keras.optimizers.schedules.CosineDecay(0.004, 3 * steps, alpha=0.01)
    rates = [e["learning_rate"] for e in metrics["epochs"]]
    assert rates[0] == pytest.approx(0.004)
    assert rates[1:] == pytest.approx([float(longer(steps)), float(longer(2 * steps))])


# -- 9. errors name the real limit -------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--width", "0.5"], "--width 0.5: block2_conv would split 32 input channels into 2 groups"),
    (["--width", "0.5"], "the default topology admits --width 1, 2, 3, 4"),
    (["--width", "1.5"], "admits --width 1, 2, 3, 4"),
    (["--image-size", "16"], "--image-size 16: block2: the feature map is already 1×1, cannot pool; "
                             "the default topology needs --image-size 29 or more"),
    (["--image-size", "16", "--model-config", TINY], None),  # a topology made for it
])
def test_width_and_image_size_errors_name_the_limit(tmp_path, capsys, monkeypatch, flags, says):
    from larq_glt import train as cli, training

    monkeypatch.setattr(training, "_train", lambda *a, **k: {"final": {"val_accuracy": 0, "weight_bits": 0,
                                                                        "binary_macs": 0}})
    out = tmp_path / "r"
    rc = cli.main(["--dataset", "synthetic", "--out", str(out), "--quiet"] + flags)
    if says is None:
        assert rc == 0
        return
    assert rc == 2
    assert says in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_build_refuses_a_stack_size_it_would_replace(tmp_path, capsys):
    import deploy.build as build

    for size in ("0", "-8", "100", "99999999"):
        assert build.main(["--board", "mps2-an500", "--out", str(tmp_path / "b"), "--stack-size", size]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "--stack-size must be a positive multiple of 8 bytes below the" in line and size in line
        assert "its default:" in line
    assert not (tmp_path / "b").exists()


def test_a_mistyped_data_dir_is_not_created_when_the_download_fails(tmp_path, monkeypatch, capsys):
    from larq_glt import train as cli
    from larq_glt.data import download

    def no_network(url, dest, timeout=30.0):
        raise download.DownloadError("Name or service not known")

    monkeypatch.setattr(download, "fetch", no_network)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["--dataset", "vww", "--data-dir", "nope/deeper", "--out", "r", "--quiet"]) == 2
    assert "not downloaded (Name or service not known)" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == []


# -- 10. a prune ratio that prunes nothing -------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--prune-ratio", "0.5"], "--prune-ratio 0.5 prunes nothing at --width 1: every prunable conv's groups hold "
                               "one 32-channel block (or less), and each keeps at least one; --width 2 would allow it"),
    (["--prune-ratio", "0.5", "--prune-block", "64", "--width", "2"], "--width 4 would allow it"),
    (["--prune-ratio", "0.1", "--width", "4"], "rounds to no whole block; give --prune-ratio above 0.125"),
])
def test_a_prune_ratio_that_prunes_nothing_is_refused(tmp_path, capsys, flags, says):
    from larq_glt import train as cli

    out = tmp_path / "r"
    assert cli.main(["--dataset", "synthetic", "--image-size", "32", "--out", str(out), "--quiet"] + flags) == 2
    assert says in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


# -- 11. very large photos are downscaled on load, up to a stated limit ------------------------

def test_images_over_pillows_warning_size_are_downscaled_on_load(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from larq_glt.data import images

    assert images.max_pixels() == 178_956_970  # the stated limit (README, images.py)
    # Pillow's sizes scaled down 10,000 times: a "108 MP photo" is then 12,000 pixels.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 8_948)
    photo = np.zeros((90, 120, 3), np.uint8)
    photo[:, 60:] = 255
    Image.fromarray(photo).save(tmp_path / "phone.jpg", quality=95)
    Image.fromarray(photo).convert("L").save(tmp_path / "gray.jpg")
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "huge.png")  # 10,000 px: decoded too
    Image.fromarray(np.zeros((150, 150, 3), np.uint8)).save(tmp_path / "bomb.png")  # 22,500 > 17,896 px
    paths = [str(tmp_path / n) for n in ("phone.jpg", "gray.jpg", "huge.png", "bomb.png")]
    result = images.scan_images(paths, 16)
    assert list(result.ok) == [0, 1, 2]
    assert result.images.shape == (3, 16, 16, 3)
    left, right = result.images[0][:, :6].mean(), result.images[0][:, 10:].mean()
    assert left < 30 and right > 225, "the downscaled photo keeps its content"
    assert result.skipped == [(paths[3], "over the limit of 17,896 pixels decoded (larq_glt.data.images.max_pixels)")]


# -- 14. --help shows the defaults that exist; --runtime tflm refuses what it would ignore -------

def _help(main, argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv + ["--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere


def test_help_shows_only_real_defaults(capsys):
    import deploy.build as build
    import deploy.demo as demo
    from larq_glt import export, report, train as cli

    text = _help(cli.main, [], capsys)
    assert "(default: True)" not in text and "(default: False)" not in text and "(default: None)" not in text
    assert text.count("runs/<dataset>-<encoding>") == 1
    assert "(default: 96)" in text and "(default: glt)" in text
    assert "in each split, training and validation alike" in text
    text = _help(build.main, [], capsys)
    assert "(default: None)" not in text and "(default: -O2)" not in text
    assert "optimize for speed (default)" in text and "(default: generated)" in text
    text = _help(demo.main, [], capsys)
    assert "(default: nucleo)" in text and "(default: 60.0)" in text and "(default: False)" not in text
    assert "(default: 64)" in _help(export.main, ["run"], capsys)
    assert "(default: False)" not in _help(report.main, ["m.tflite"], capsys)


@pytest.mark.parametrize("flags", [["--profile"], ["--profile", "--profile-repeat", "4"], ["--debug"],
                                   ["--reference-kernels"]])
def test_build_tflm_refuses_options_it_would_ignore(tmp_path, capsys, flags):
    import deploy.build as build

    out = tmp_path / "b"
    assert build.main(["--board", "mps2-an500", "--runtime", "tflm", "--out", str(out)] + flags) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert flags[0] in line and "only apply to --runtime generated" in line
    assert not out.exists()


def test_build_tflm_passes_the_stack_size_and_stem_table_cap_on(tmp_path, monkeypatch, capsys):
    import deploy.build as build
    from deploy.tflm import target as tflm

    seen = {}

    def fake_build(board, **kw):
        seen.update(kw)
        raise tflm.TflmError("stop here")

    monkeypatch.setattr(tflm, "build", fake_build)
    assert build.main(["--board", "mps2-an500", "--runtime", "tflm", "--stack-size", "8192"]) == 2
    assert seen["stack_size"] == 8192 and _one_error_line(capsys.readouterr().err) == "error: stop here"
    assert seen["stem_table_max_bytes"] is None  # the default
    assert build.main(["--board", "mps2-an500", "--runtime", "tflm", "--stem-table-kib", "16"]) == 2
    assert seen["stem_table_max_bytes"] == 16 * 1024


# -- 15. TFLM's Debian packages are named -----------------------------------------------------

def test_tflm_names_the_debian_packages_it_needs(tmp_path, monkeypatch, capsys):
    import deploy.build as build
    from deploy.firmware import harness
    from deploy.tflm import target as tflm

    with pytest.raises(tflm.TflmError) as e:
        tflm.find_library(None, "mps2-an500")
    assert "libstdc++-arm-none-eabi-dev and libstdc++-arm-none-eabi-newlib" in str(e.value)
    for said, package in (("ld: cannot find -lstdc++_nano: No such file or directory", "newlib"),
                          ("glt_kernels.h:3:10: fatal error: cstdarg: No such file or directory", "dev")):
        def failing_make(work, **kw):
            raise harness.HarnessError(f"firmware build failed in {work}:\n{said}")

        monkeypatch.setattr(tflm, "find_library", lambda *a, **k: None)
        monkeypatch.setattr(harness, "build_firmware", failing_make)
        out = tmp_path / package
        assert build.main(["--board", "mps2-an500", "--runtime", "tflm", "--tflm-dir", str(tmp_path),
                           "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: the TFLM firmware does not build: the Debian package "
                              f"libstdc++-arm-none-eabi-{package} is missing") and said in err
        assert not out.exists()
    assert "libstdc++-arm-none-eabi-dev libstdc++-arm-none-eabi-newlib" in (atomic._PROJECT / "README.md").read_text()


# -- 13. output people read: no TensorFlow noise, one line per epoch ----------------------------

def _cli(*args, timeout=600):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(atomic._PROJECT)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=atomic._PROJECT)


def test_an_error_after_tensorflow_loads_is_one_line(tmp_path):
    p = _cli("-m", "larq_glt.train", "--dataset", "synthetic", "--levels", "300", "--out", str(tmp_path / "r"))
    assert p.returncode == 2
    assert p.stderr.splitlines() == ["error: --levels must be in 1..254 for --encoding glt (thresholds are 8-bit "
                                     "pixel codes), got 300"], p.stderr
    assert p.stdout == ""


def test_tensorflow_noise_is_dropped_and_real_warnings_kept(caplog):
    import logging

    import larq_glt.cli  # noqa: F401  installs the filter

    tf_log = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        tf_log.warning("AutoGraph could not transform <function f> and will run it as-is.\n"
                       "Please report this to the TensorFlow team.")
        tf_log.warning("5 out of the last 5 calls to <function g> triggered tf.function retracing.")
        tf_log.warning("a real warning about the user's data")
    assert [r.getMessage() for r in caplog.records] == ["a real warning about the user's data"]


@pytest.mark.slow
def test_training_prints_one_line_per_epoch_and_no_tensorflow_noise(tmp_path):
    out = tmp_path / "r"
    p = _cli("-m", "larq_glt.train", "--dataset", "synthetic", "--image-size", "16", "--batch-size", "32",
             "--limit", "64", "--epochs", "2", "--model-config", TINY, "--out", str(out))
    assert p.returncode == 0, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 2, p.stderr
    for i, line in enumerate(lines):
        assert line.startswith(f"epoch {i + 1}/2: loss ") and "val_accuracy" in line and line.endswith(" s)")
    assert p.stdout.startswith(f"done: {out}") and len(p.stdout.splitlines()) == 1, p.stdout


# -- 12. one definition of each size figure; published figures are the committed results ------

# "1,234<!-- f.json a.b -->" is the integer a.b of benchmarks/f.json; "1.2<!-- … M -->" in millions;
# "70.0%<!-- … % -->" a share in percent, to the digits written.
# A figure may carry a sign (+ or the typographic minus −) before its digits.
_MEASURED_ROWS = ("| instructions per inference", "| peak RAM", "| flash (whole firmware", "| arena |",
                  "| stack high-water")


def _readme():
    return (atomic._PROJECT / "README.md").read_text()


def test_readme_sizes_table_is_the_one_definition():
    from larq_glt import sizes

    readme = _readme()
    for f in sizes.FIGURES.values():
        assert f"| {f.name} | {f.meaning} | {f.shown_by} |" in readme, f.key
    names = [f.name for f in sizes.FIGURES.values()]
    assert len(set(names)) == len(names)


def test_commands_name_sizes_as_defined(tiny_run, tmp_path, capsys):
    from larq_glt import export, report, sizes

    assert export.main([str(tiny_run), "--out", str(tmp_path / "e"), "--check-count", "2"]) == 0
    assert f" {sizes.label('flatbuffer_weight_bits')}, " in capsys.readouterr().out
    assert report.main([str(tmp_path / "e" / "model.tflite")]) == 0
    assert f"- {sizes.label('flatbuffer_weight_bits')}: " in capsys.readouterr().out
    written = json.loads((tmp_path / "e" / "report.json").read_text())
    # the JSON key is the figure's key too, so no file calls two counts "weight_bits"
    assert written["flatbuffer_weight_bits"] > 0 and "weight_bits" not in written
    assert all("flatbuffer_weight_bits" in op and "weight_bits" not in op for op in written["ops"])
    from deploy.firmware import image as firmware

    result = firmware.build("mps2-an500", model=tmp_path / "e" / "model.tflite", out=tmp_path / "b", compile=False)
    result.size.update(flash_bytes=70_000, ram_bytes=40_000)  # what a compiled build adds
    text = firmware.format_size_report(result)
    frames = result.size["frame_bytes"]
    assert frames == result.frames.nbytes > 0 and result.size["firmware_weight_bytes"] > 0
    assert f"flash: 70,000 of " in text and f"of which sample frames {frames:,} (--frame-source builtin)" in text
    assert f"{sizes.label('firmware_weight_bytes')} {result.size['firmware_weight_bytes']:,} (in flash)" in text


def test_readme_figures_equal_the_committed_benchmark_results():
    import re

    from bench import readme_figures

    readme = _readme()
    assert readme_figures.stale(readme) == []
    assert len(readme_figures.FIGURE.findall(readme)) >= 20
    # The README quotes the margin of the last choice as the shipped model's: true only while it was chosen.
    distil = readme_figures.value("person_distil.json", "chosen")
    if "person_distil.json choice_margin" in readme:
        assert distil == readme_figures.value("person_distil.json", "shipped.run"), \
            "the README quotes a choice margin, but the last choice is not the shipped model: reword it"
    # Every figure in the measured tables carries its reference.
    for line in readme.splitlines():
        if line.startswith(_MEASURED_ROWS):
            bare = re.findall(r"\d[\d,.]*(?!\d|[\d,.]*<!--)", readme_figures.FIGURE.sub("", line))
            assert not [n for n in bare if n not in ("0",)], (line, bare)


# -- 5. several machines, one run: only the chief writes ------------------------------------------

def test_worker_role_comes_from_tf_config(monkeypatch):
    import json

    from larq_glt import training

    for tf_config, chief in (({}, True),
                             ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
                             ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
                             ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker",
                                                                                       "index": 0}}, False),
                             ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief",
                                                                                       "index": 0}}, True)):
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
        assert training._is_chief() == chief, tf_config


@pytest.mark.slow
def test_two_workers_on_localhost_write_one_run(tmp_path):
    import json
    import socket
    import subprocess
    import sys

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out, scratch = tmp_path / "r", tmp_path / "tmp"
    scratch.mkdir()
    args = [sys.executable, "-m", "larq_glt.train", "--dataset", "synthetic", "--image-size", "16", "--batch-size",
            "32", "--limit", "64", "--epochs", "1", "--model-config", TINY, "--out", str(out), "--quiet",
            "--distribute", "multiworker"]
    procs = []
    for i in range(2):
        env = {**os.environ, "PYTHONPATH": str(atomic._PROJECT), "TMPDIR": str(scratch),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen(args, env=env, cwd=atomic._PROJECT, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        results = [p.communicate(timeout=900) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (o, e) in zip(procs, results):
        assert p.returncode == 0, e
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["checkpoints", "config.json", "logs", "metrics.json", "model.keras", "size.json", "state.json",
         "summary.json", "summary.txt", "transfer_curve.png"])
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-0001"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1] and metrics["final"]["epochs"] == 1
    assert json.loads((out / "config.json").read_text())["distribute"] == "multiworker"
    assert not [p for p in scratch.iterdir() if p.name.startswith("larq-glt-worker-")], "the worker cleaned up"
