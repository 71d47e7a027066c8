"""bench/encodings.py and bench/results_page.py: tone evaluation, folds,
statistics and the results page on small fake results (no training), and one
end-to-end --smoke run on the synthetic dataset (slow)."""
import json

import numpy as np
import pytest

from bench import encodings as bench
from bench import folds
from bench import results_page


def _brightness_predict(images):
    """Logits of a classifier that calls an image bright (class 1) when its mean is >= 128."""
    m = np.asarray(images, np.float64).mean(axis=(1, 2, 3))
    return np.stack([128.0 - m, m - 127.5], axis=-1)


def test_tone_accuracies_apply_each_condition():
    images = np.concatenate([np.full((4, 8, 8, 3), 60, np.uint8), np.full((4, 8, 8, 3), 180, np.uint8)])
    labels = np.array([0] * 4 + [1] * 4)
    acc = bench.tone_accuracies(_brightness_predict, images, labels)
    assert list(acc) == [c.key for c in bench.CONDITIONS]
    # 60 -> 24 / 108 / 124 (gamma 0.5) / 14 (gamma 2) stays dark; 180 -> 72 (x0.4) and 127 (gamma 2) turn dark.
    assert acc == {"clean": 1.0, "gamma_0.5": 1.0, "gamma_2.0": 0.5, "exposure_0.4": 0.5,
                   "exposure_1.8": 1.0, "contrast_0.5": 1.0}


def test_tone_accuracies_do_not_modify_the_images():
    images = np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8)
    before = images.copy()
    bench.tone_accuracies(_brightness_predict, images, np.zeros(5, int))
    np.testing.assert_array_equal(images, before)


def test_fold_assignment_is_stratified_balanced_and_fixed_by_name():
    names = [f"c{i % 2}/img{i:03d}.png" for i in range(101)]
    labels = np.array([i % 2 for i in range(101)])
    fold = folds.fold_assignment(names, labels, 3)
    for label in (0, 1):
        counts = np.bincount(fold[labels == label], minlength=3)
        assert counts.max() - counts.min() <= 1
    perm = np.random.default_rng(1).permutation(101)
    shuffled = folds.fold_assignment([names[i] for i in perm], labels[perm], 3)
    np.testing.assert_array_equal(shuffled, fold[perm])
    with pytest.raises(folds.FoldError, match="folds"):
        folds.fold_assignment(names[:4], labels[:4], 3)


def test_kfold_validates_every_image_exactly_once():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(30) % 2
    source = folds.KFold("toy", images, labels, [f"n{i}" for i in range(30)], ("a", "b"), 3, batch_size=8)
    seen = []
    for f in range(3):
        splits = source.splits(f)
        x_val, _ = splits.arrays("val")
        x_train, _ = splits.arrays("train")
        assert len(x_val) + len(x_train) == 30
        assert splits.seed == f
        seen += [bytes(x) for x in x_val]
    assert sorted(seen) == sorted(bytes(x) for x in images)


def test_stats():
    s = bench.stats([0.5, 0.7, 0.6])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1)
    assert (s["min"], s["max"]) == (0.5, 0.7)
    assert bench.stats([0.4])["std"] is None
    assert bench.stats([])["mean"] is None


ACC = {  # dataset -> encoding -> per-replicate clean accuracy; tone = clean minus a per-encoding drop
    "imagenette": {"glt": [0.62, 0.64], "thermo": [0.60, 0.61], "nbc": [0.50, 0.52], "float": [0.70, 0.71]},
    "vww": {"glt": [0.60, 0.62, 0.64], "thermo": [0.61, 0.63, 0.65], "nbc": [0.55, 0.56, 0.58],
            "float": [0.66, 0.60, 0.62]},
}
DROP = {"glt": 0.05, "thermo": 0.08, "nbc": 0.20, "float": 0.10}


def fake_result(cells_limit=None):
    cells = []
    for ds, encs in ACC.items():
        for enc, accs in encs.items():
            for r, a in enumerate(accs):
                tone = {c.key: a if c.key == "clean" else a - DROP[enc] for c in bench.CONDITIONS}
                cells.append({"dataset": ds, "encoding": enc, "replicate": r,
                              "replicate_label": ("fold" if ds == "vww" else "seed") + str(r),
                              "run": f"bench/_work/{ds}/{enc}-{r}", "val_accuracy": a, "tone": tone,
                              "weight_bits": 100_000, "train_wall_s": 60.0, "train_cpu_s": 110.0,
                              "tone_cpu_s": 5.0, "tone_wall_s": 3.0,
                              "thresholds": [[20 * (k + 1) + c for k in range(8)] for c in range(3)]
                              if enc == "glt" else None})
    cells = cells[:cells_limit]
    args = bench.parse_args(["--work", "/tmp/unused", "--out", "/tmp/unused"])
    return {
        "benchmark": "encodings", "command": ".venv/bin/python bench/encodings.py",
        "settings": bench.settings_of(args), "machine": {"cpus": 2},
        "conditions": [{"key": c.key, "label": c.label, "description": c.description} for c in bench.CONDITIONS],
        "datasets": {
            "imagenette": {"protocol": "holdout", "num_train": 9469, "num_val": 3925, "class_names": list("abcdefghij"),
                           "split": "folders", "epochs": 12, "replicates": ["seed0", "seed1"]},
            "vww": {"protocol": "kfold", "folds": 3, "pool": 500, "fold_sizes": [167, 167, 166],
                    "class_names": ["non_person", "person"], "split": "stratified", "epochs": 40,
                    "replicates": ["fold0", "fold1", "fold2"]},
        },
        "cells": cells, "summary": bench.summarize(cells), "timing": {"imagenette": {"load_cpu_s": 20.0}},
        "complete": cells_limit is None,
    }


def test_summarize_groups_by_dataset_encoding_and_condition():
    summary = fake_result()["summary"]
    assert summary["imagenette"]["glt"]["clean"]["mean"] == pytest.approx(0.63)
    assert summary["vww"]["nbc"]["gamma_2.0"]["mean"] == pytest.approx(np.mean([0.55, 0.56, 0.58]) - 0.20)
    assert summary["vww"]["float"]["exposure_0.4"]["n"] == 3


def test_reading_states_where_glt_loses():
    text = "\n".join(results_page.reading(fake_result()))
    # Imagenette: GLT is the best binary encoding everywhere; float beats it (a separate comparison).
    assert "imagenette: conditions where GLT does **not** have the best mean among the binary encodings " \
           "(glt, thermo, nbc): none." in text
    assert "-7.5 points vs float (min–max ranges disjoint)" in text
    assert "imagenette: GLT minus float under each tone change (points): gamma 0.5 -2.5," in text
    # VWW: thermo has the best clean mean (0.63 vs glt 0.62), GLT wins every tone change (drop 0.05 vs 0.08).
    assert "vww: conditions where GLT does **not** have the best mean among the binary encodings " \
           "(glt, thermo, nbc): clean (thermo +1.0 points)." in text
    assert "vww: GLT minus thermo under each tone change (points): gamma 0.5 +2.0," in text
    assert "+2.5 points vs thermo (min–max ranges disjoint)" in text  # imagenette: glt 0.62..0.64 vs thermo 0.60..0.61
    assert "-1.0 points vs thermo (ranges overlap: not resolved by 3 folds)" in text
    assert "vww: mean accuracy lost to the 5 tone changes" in text and "glt 5.0, thermo 8.0, float 10.0, nbc 20.0" in text


def test_results_page_renders_every_part(tmp_path):
    result = fake_result()
    result["figures"] = {"accuracy": "figures/encodings_accuracy.png", "tone": {"vww": "figures/encodings_tone_vww.png"},
                         "transfer": {"vww": "figures/glt_transfer_vww.png"}}
    (tmp_path / "encodings.json").write_text(json.dumps(result))
    (tmp_path / "train_throughput.json").write_text("{}")
    (tmp_path / "train_throughput.md").write_text("# Training throughput by input encoding\n\n| a |\n")
    (tmp_path / "prune_kd.json").write_text(json.dumps({"command": "python bench/prune_kd.py"}))
    (tmp_path / "encodings_notes.md").write_text("Hand-written: GLT helps under gamma.\n")
    page = results_page.write(tmp_path).read_text()
    assert page.startswith("# Benchmark results")
    assert "Status: complete" in page
    assert "| `glt` | 0.630 ± 0.014 | 0.620–0.640 | 2 | 0.620 ± 0.020 | 0.600–0.640 | 3 |" in page
    assert "| `nbc` | 0.510 ± 0.014 | 0.310 ± 0.014 |" in page  # the tone table: clean, then gamma 0.5
    assert "![accuracy per encoding](figures/encodings_accuracy.png)" in page
    assert "![GLT transfer curves on vww](figures/glt_transfer_vww.png)" in page
    assert "| vww | glt | fold1 | G | 21 41 61 81 101 121 141 161 |" in page
    assert "Hand-written: GLT helps under gamma." in page
    assert "### Training throughput by input encoding" in page  # its own page, demoted under the section
    assert "no renderer for this file yet" in page and "python bench/prune_kd.py" in page
    assert page.index("Input encodings") < page.index("Block pruning") < page.index("## Training throughput")
    assert "| imagenette | 8 | 480 | 60 | 880 | 40 | 20 |" in page  # time: cells, wall, per cell, CPU, tone, load


def test_glt_learning_rate_variants_are_cells_of_their_own(tmp_path):
    """glt-lrM: GLT whose thresholds learn M times faster, as an extra encoding
    beside the plain ones: its run config, its reading against thermo, its
    transfer-curve figure; a malformed name is refused with the choices."""
    assert bench.encoding_spec("glt-lr10") == ("glt", {"glt_lr_multiplier": 10.0})
    assert bench.encoding_spec("thermo") == ("thermo", {})
    for bad in ("glt-lr", "glt-lr-3", "glt-lrx", "gltt"):
        with pytest.raises(SystemExit):
            bench.parse_args(["--encodings", "glt", bad])
    args = bench.parse_args(["--encodings", "glt", "thermo", "glt-lr10", "--work", str(tmp_path)])
    plan = bench.make_plans(args)[1]
    cfg = bench.train_config(args, plan, "glt-lr10", 0, tmp_path / "cell")
    assert cfg.encoding == "glt" and cfg.model == {"width": 1.0, "glt_lr_multiplier": 10.0}
    assert bench.cell_dir(args, plan, "glt-lr10", 2).name == "glt-lr10-fold2"

    result = fake_result()
    for ds, accs in (("imagenette", [0.66, 0.67]), ("vww", [0.70, 0.71, 0.72])):
        for r, a in enumerate(accs):
            result["cells"].append({**next(c for c in result["cells"] if c["dataset"] == ds and c["encoding"] == "glt"),
                                    "encoding": "glt-lr10", "replicate": r,
                                    "tone": {c.key: a - (0 if c.key == "clean" else 0.02) for c in bench.CONDITIONS}})
    result["settings"]["encodings"] = ["glt", "thermo", "nbc", "float", "glt-lr10"]
    result["summary"] = bench.summarize(result["cells"])
    text = "\n".join(results_page.reading(result))
    assert "vww: glt-lr10 minus thermo: clean +8.0 (min–max ranges disjoint); under each tone change: " \
           "gamma 0.5 +14.0," in text
    figs = bench.make_figures(result, tmp_path)
    assert figs["transfer_variants"]["glt-lr10"]["vww"] == "figures/glt_lr10_transfer_vww.png"
    assert (tmp_path / "figures" / "glt_lr10_transfer_vww.png").exists()


def test_results_page_marks_partial_results_and_smoke(tmp_path):
    result = fake_result(cells_limit=5)
    result["settings"]["smoke"] = True
    (tmp_path / "encodings.json").write_text(json.dumps(result))
    page = results_page.render(tmp_path)
    assert "partial: 5 of 20 cells finished" in page
    assert "smoke or synthetic run" in page
    assert "vww" not in page.split("### Accuracy per encoding")[1].split("###")[0]  # no vww cells yet


def test_results_page_without_results(tmp_path):
    assert "No benchmark results yet." in results_page.render(tmp_path)


def test_figures_are_png(tmp_path):
    result = fake_result()
    figs = bench.make_figures(result, tmp_path)
    paths = [figs["accuracy"], *figs["tone"].values(), *figs["transfer"].values()]
    assert len(paths) == 5
    for rel in paths:
        assert (tmp_path / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_smoke_run_end_to_end_and_resume(tmp_path):
    common = ["--smoke", "--synthetic", "--encodings", "glt", "nbc", "--imagenette-seeds", "1", "--vww-folds", "2",
              "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    assert bench.main(common) == 0
    result = json.loads((tmp_path / "out" / "encodings.json").read_text())
    assert result["complete"] and len(result["cells"]) == 2 * (1 + 2)
    for cell in result["cells"]:
        assert set(cell["tone"]) == {c.key for c in bench.CONDITIONS}
        assert cell["tone"]["clean"] == pytest.approx(cell["val_accuracy"], abs=1e-3)
    assert {c["encoding"] for c in result["cells"] if c["thresholds"]} == {"glt"}
    page = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "Status: complete" in page and "smoke or synthetic run" in page
    for rel in [result["figures"]["accuracy"], *result["figures"]["transfer"].values()]:
        assert (tmp_path / "out" / rel).exists()
    # A second invocation reuses every finished cell (same numbers, no training).
    tone_file = tmp_path / "work" / "vww" / "glt-fold1" / "tone.json"
    stamp = tone_file.stat().st_mtime_ns
    assert bench.main(common) == 0
    again = json.loads((tmp_path / "out" / "encodings.json").read_text())
    assert [c["tone"] for c in again["cells"]] == [c["tone"] for c in result["cells"]]
    assert tone_file.stat().st_mtime_ns == stamp
    # Other settings on the same work directory are refused, not silently mixed.
    with pytest.raises(bench.BenchError, match="other settings"):
        bench.main(common + ["--learning-rate", "0.01"])


@pytest.mark.slow
def test_run_cell_resumes_an_interrupted_cell(tmp_path):
    from larq_glt import training

    args = bench.parse_args(["--synthetic", "--image-size", "32", "--limit", "64", "--imagenette-epochs", "2",
                             "--work", str(tmp_path), "--out", str(tmp_path / "out")])
    plan = bench.make_plans(args)[0]
    source = bench.load_imagenette(args, 32, 64)
    cfg = bench.train_config(args, plan, "glt", 0, tmp_path / "cell")
    training.train(cfg, splits=source.splits(0), _interrupt_after=1)
    assert not (tmp_path / "cell" / "model.keras").exists()
    cell = bench.run_cell(cfg, source, 0, print)
    assert cell["resumed_from_epoch"] == 1 and cell["epochs"] == 2
    assert sorted(p.name for p in (tmp_path / "cell" / "checkpoints").iterdir()) == ["epoch-0002"]
    assert cell["tone"]["clean"] == pytest.approx(cell["val_accuracy"], abs=1e-3)


@pytest.mark.slow
def test_vww_folds_can_start_from_the_imagenette_runs(tmp_path):
    from larq_glt import training

    if "init_from" not in training.TrainConfig.__dataclass_fields__:
        pytest.skip("larq_glt.training has no init_from")
    common = ["--smoke", "--synthetic", "--encodings", "glt", "--imagenette-seeds", "1", "--vww-folds", "2",
              "--vww-init", "imagenette", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    with pytest.raises(bench.BenchError, match="no finished model"):
        bench.main(common + ["--datasets", "vww"])
    assert bench.main(common) == 0
    for fold in (0, 1):
        metrics = json.loads((tmp_path / "work" / "vww-from-imagenette" / f"glt-fold{fold}" / "metrics.json").read_text())
        assert metrics["init_from"]["path"].endswith("imagenette/glt-seed0")
        assert metrics["init_from"]["fresh"] == ["classifier", "classifier_bn"]  # 4 classes there, 2 here
    page = (tmp_path / "out" / "RESULTS.md").read_text()
    assert "starting from the finished imagenette run of the same encoding" in page
