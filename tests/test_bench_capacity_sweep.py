"""bench/capacity_sweep.py: topologies trained on the teachers' pool, each measured
against the deployment budgets and scored on the same images as the anchors."""
import json

import pytest

import larq_glt  # noqa: F401
from bench import anchors, capacity_sweep
from larq_glt.models import Block, ModelConfig

from tests import pool_runs


def _row(**over):
    row = {"run": "runs/x", "topology": capacity_sweep.topology(ModelConfig(width=2.0).to_dict()), "trained_as": None,
           "recipe": {"kd_temperature": 1.0, "learning_rate": 0.002, "zoom": 0.0, "mosaic": 0.0, "kd_mixup": 0.0,
                      "augment": True, "init_from": None, "prune": None},
           "epochs_trained": 16, "flatbuffer_bytes": 118_000, "weight_bits": 939_328, "binary_macs": 35_398_656,
           "all_convs_binary": True, "instructions": 4_274_440.0, "instructions_range": [4_025_320, 4_443_200],
           "peak_ram_bytes": 34_048, "board": "mps2-an500", "person_offset": 0.25, "heldout_images": 1339,
           "balanced_agreement_calibrated": 0.821,
           "vww96": {"accuracy": 0.744, "correct": 372, "images": 500, "ci95": [0.704, 0.78],
                     "recall": {"person": 0.648, "non_person": 0.84}}}
    row.update(over)
    row["over_budget"] = capacity_sweep.within_budgets(row)
    return row


def test_topology_names_width_stem_and_blocks():
    t = capacity_sweep.topology(ModelConfig(width=2.0, stem_pool=False).to_dict())
    assert t["width"] == 2.0 and t["stem"] == "4×4/4" and t["blocks"] == 4
    assert t["filters"] == [128, 256, 512, 512] and t["stem_filters"] == 64  # as built, width applied
    assert t["groups"] == [1, 2, 4, 8]
    assert capacity_sweep.topology(ModelConfig().to_dict())["stem"] == "4×4/4 + pool"
    assert t["pools"] == [1, 2] and t["shortcuts"] == []
    assert t["input"] == "GLT 8 levels"
    assert capacity_sweep._topology_text(t).startswith("GLT 8 levels, stem 4×4/4, 4 blocks")
    assert capacity_sweep.topology(ModelConfig(levels=16).to_dict())["input"] == "GLT 16 levels"
    assert capacity_sweep.topology(ModelConfig(glt_grad_images=8).to_dict())["input"] == \
        "GLT 8 levels (thresholds' gradient from 8 images per batch)"


def test_topology_names_pools_shortcuts_and_shuffles():
    blocks = (Block(64, 1), Block(64, 2, pool=False, shortcut=True, shuffle=True), Block(128, 2, pool=False))
    t = capacity_sweep.topology(ModelConfig(blocks=blocks).to_dict())
    assert t["pools"] == [1] and t["shortcuts"] == [2] and t["shuffles"] == [2]
    assert capacity_sweep._topology_text(t).endswith(
        "; pools after block 1; shortcuts in block 2; words shuffled after block 2")
    old = {k: v for k, v in t.items() if k not in ("pools", "shortcuts", "shuffles", "input")}  # a row measured before
    assert capacity_sweep._topology_text(old).endswith("(width 1)")
    assert capacity_sweep._topology_text(old).startswith("stem ")


def test_every_broken_budget_is_named():
    assert _row()["over_budget"] == []
    broken = _row(weight_bits=1_000_001, instructions=4_800_001.0, peak_ram_bytes=65_537,
                  all_convs_binary=False)["over_budget"]
    assert len(broken) == 4 and any("weight bits 1,000,001 > 1,000,000" == b for b in broken)
    assert any("LceBconv2d" in b for b in broken)
    assert _row(weight_bits=1_000_000, instructions=4_800_000.0, peak_ram_bytes=65_536)["over_budget"] == []


def test_table_states_recipe_epochs_pruning_and_budgets():
    pruned = _row(run="runs/p", trained_as=capacity_sweep.topology(ModelConfig(width=3.0).to_dict()),
                  recipe={**_row()["recipe"], "prune": {"ratio": 0.3333, "block": 32, "ramp_epochs": 8,
                                                        "finetune_epochs": 16}},
                  instructions=5_000_000.0)
    text = capacity_sweep.render({"command": "python bench/capacity_sweep.py runs/x runs/p", "rows": [_row(), pruned],
                                  "seconds": 12.0})
    assert "`python bench/capacity_sweep.py runs/x runs/p`" in text
    assert ("| `runs/x` | GLT 8 levels, stem 4×4/4 + pool, 4 blocks (groups 1/2/4/8); filters 64 + 128/256/512/512 (width 2); "
            "pools after block 1/2 |") in text
    assert "filters 96 + 192/384/768/768 (width 3), pruned to 64 + 128/256/512/512" in text
    assert "pruned 0.3333 in 32-channel blocks" in text
    assert "74.4% [70.4, 78.0]" in text and "64.8% / 84.0%" in text and "| within |" in text
    assert "instructions 5,000,000 > 4,800,000" in text


def test_a_float_twin_is_scored_but_never_within_budgets():
    twin = _row(run="runs/f", precision="float", flatbuffer_bytes=None, weight_bits=None, binary_macs=0,
                other_macs=35_398_656, all_convs_binary=False, instructions=None, instructions_range=None,
                peak_ram_bytes=None, board=None)
    assert twin["over_budget"] == ["not deployable: full-precision convolutions (the float twin of a topology)"]
    text = capacity_sweep.render({"command": "c", "rows": [_row(), twin], "seconds": 1.0})
    line = next(l for l in text.splitlines() if l.startswith("| `runs/f`"))
    assert "**float twin**" in line and "| — | 0 (35,398,656 float) | — | — | 82.1% | 74.4% [70.4, 78.0]" in line
    assert "A **float twin** is a topology trained with full-precision convolutions" in text
    plain = capacity_sweep.render({"command": "c", "rows": [_row()], "seconds": 1.0})
    assert "**float twin**" not in plain and "A **float twin** is" not in plain


def test_refusals_exit_2_with_one_line(tmp_path, capsys):
    assert capacity_sweep.main([str(tmp_path / "nope"), "--out", str(tmp_path / "s")]) == 2
    assert "holds no finished run" in capsys.readouterr().err
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"")
    (run / "config.json").write_text(json.dumps({"dataset": "vww"}))
    assert capacity_sweep.main([str(run), "--out", str(tmp_path / "s")]) == 2
    assert "not trained with --dataset unlabelled" in capsys.readouterr().err
    (run / "config.json").write_text(json.dumps({"dataset": "unlabelled"}))
    assert capacity_sweep.main([str(run), "--out", str(tmp_path / "s")]) == 2
    assert "anchors.json is missing" in capsys.readouterr().err
    (tmp_path / "anchors.json").write_text("{}")
    assert capacity_sweep.main([str(run), "--out", str(tmp_path / "s"), "--images", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    assert not (tmp_path / "s.json").exists()


def test_the_anchors_page_shows_the_sweep_beside_it(tmp_path, monkeypatch):
    result = {"command": "python bench/anchors.py", "models": [], "figure": "figures/anchors.png", "seconds": 1.0,
              "images": {"path": "vww96", "count": 0, "per_class": {}}}
    page = tmp_path / "anchors.md"
    assert "Capacity sweep" not in anchors.write_page(result, page)
    (tmp_path / "capacity_sweep.md").write_text("# Capacity sweep: x\n\nCommand: `sweep`\n")
    text = anchors.write_page(result, page)
    assert "\n## Capacity sweep: x\n" in text and page.read_text() == text


@pytest.mark.slow
def test_a_trained_pool_run_is_exported_measured_and_scored(tmp_path):
    run = pool_runs.pool_run(tmp_path)
    vww = pool_runs.labelled_folder(tmp_path / "vww", 10)
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "anchors.json").write_text(json.dumps(
        {"command": "python bench/anchors.py", "models": [], "figure": "figures/anchors.png", "seconds": 1.0,
         "images": {"path": "vww", "count": 0, "per_class": {}}}))
    out = bench / "capacity_sweep"
    assert capacity_sweep.main([str(run), "--images", str(vww), "--out", str(out)]) == 0
    row = json.loads(out.with_suffix(".json").read_text())["rows"][0]
    assert row["all_convs_binary"] and row["instructions"] > 0 and row["peak_ram_bytes"] > 0
    assert row["vww96"]["images"] == 10 and 0 <= row["vww96"]["correct"] <= 10
    assert row["topology"]["blocks"] == 1 and row["epochs_trained"] == 1 and row["heldout_images"] == 6
    assert row["over_budget"] == []
    assert "## Capacity sweep" in (bench / "anchors.md").read_text()


@pytest.mark.slow
def test_a_float_twin_run_is_scored_as_keras_without_firmware(tmp_path, monkeypatch):
    from bench import mcu_cost
    from larq_glt import export

    run = pool_runs.pool_run(tmp_path, model={"precision": "float"})
    vww = pool_runs.labelled_folder(tmp_path / "vww", 10)
    refuse = lambda *a, **k: pytest.fail("a float twin is neither exported nor run in QEMU")  # noqa: E731
    monkeypatch.setattr(export, "export_keras", refuse)
    monkeypatch.setattr(mcu_cost, "measure", refuse)
    images, labels, _ = anchors.load_images(vww)
    row = capacity_sweep.sweep_row(run, "mps2-an500", images, labels)
    assert row["precision"] == "float" and row["instructions"] is None and row["binary_macs"] == 0
    assert row["other_macs"] > 0 and row["vww96"]["images"] == 10
    assert row["over_budget"] == ["not deployable: full-precision convolutions (the float twin of a topology)"]
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "final_model_config": config["model_config"]}))
    with pytest.raises(capacity_sweep.SweepError, match="pruned float twin"):
        capacity_sweep.run_config(run)
