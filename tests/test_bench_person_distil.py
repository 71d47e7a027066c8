"""bench/person_distil.py: the training command a model card states."""
import shlex

import pytest

import larq_glt  # noqa: F401
from bench import model_card, person_distil
from larq_glt import train
from larq_glt.training import TrainConfig


def test_the_card_command_rebuilds_the_run_config_continuations_included():
    cfg = TrainConfig(dataset="unlabelled", data_dir="pool", kd_teacher="t.h5:input=unit,classes=a+b",
                      kd_temperature=1.0, glt_init="uniform", model={"width": 2.0, "glt_lr_multiplier": 1.0},
                      epochs=40, learning_rate=1e-3, init_from="runs/first", out="runs/second", mosaic=0.5,
                      mosaic_grid=3, kd_class_balance=True)
    command = model_card.train_command(cfg)
    argv = shlex.split(command)[3:]  # after "python -m larq_glt.train"
    rebuilt = train.config_from_args(train.build_parser().parse_args(argv))
    for field in ("dataset", "data_dir", "kd_teacher", "kd_temperature", "glt_init", "epochs", "learning_rate",
                  "init_from", "out", "mosaic", "mosaic_grid", "kd_class_balance"):
        assert getattr(rebuilt, field) == getattr(cfg, field), field
    assert rebuilt.model["width"] == 2.0 and rebuilt.model["glt_lr_multiplier"] == 1.0


def test_the_card_command_of_a_pruned_run_rebuilds_its_pruning_phases():
    cfg = TrainConfig(dataset="unlabelled", data_dir="pool", kd_teacher="t.h5:input=unit,classes=a+b",
                      model={"width": 3.0}, epochs=40, prune_ratio=0.3333, prune_block=32, prune_epochs=8,
                      finetune_epochs=16, max_model_bits=1_000_000, out="runs/w3")
    argv = shlex.split(model_card.train_command(cfg))[3:]
    rebuilt = train.config_from_args(train.build_parser().parse_args(argv))
    for field in ("epochs", "prune_ratio", "prune_block", "prune_epochs", "finetune_epochs", "prune_learning_rate",
                  "max_model_bits"):
        assert getattr(rebuilt, field) == getattr(cfg, field), field
    row = {"kd_temperature": 1.0, "learning_rate": 2e-3,
           "prune": {"ratio": 0.3333, "block": 32, "ramp_epochs": 8, "finetune_epochs": 16}}
    assert "pruned 0.3333 in 32-channel blocks (8 ramp + 16 fine-tune epochs)" in person_distil._recipe(row)


def test_the_card_command_and_the_recipe_name_a_hint():
    cfg = TrainConfig(dataset="unlabelled", data_dir="pool", kd_teacher="t.h5:input=unit,classes=a+b",
                      kd_hint="block4_bn:activation_26", kd_hint_weight=0.5, epochs=16, out="runs/h")
    argv = shlex.split(model_card.train_command(cfg))[3:]
    rebuilt = train.config_from_args(train.build_parser().parse_args(argv))
    assert (rebuilt.kd_hint, rebuilt.kd_hint_weight) == ("block4_bn:activation_26", 0.5)
    row = {"kd_temperature": 1.0, "learning_rate": 2e-3, "kd_hint": {"layers": "block4_bn:activation_26", "weight": 0.25}}
    assert "hint block4_bn:activation_26 ×0.25" in person_distil._recipe(row)


def test_heldout_scenes_are_mosaics_of_the_heldout_images_in_their_fixed_order():
    import numpy as np

    x = np.stack([np.full((8, 8, 3), 10 * (k + 1), np.uint8) for k in range(4)])
    scenes = person_distil.heldout_scenes(x)
    assert scenes.shape == x.shape
    np.testing.assert_array_equal(scenes[1, :4, :4], 20)
    np.testing.assert_array_equal(scenes[1, :4, 4:], 30)
    np.testing.assert_array_equal(scenes[1, 4:, :4], 40)
    np.testing.assert_array_equal(scenes[1, 4:, 4:], 10)


def test_the_table_shows_the_plain_and_scene_scores_the_choice_was_made_on():
    row = {"run": "runs/a", "width": 2.0, "model": {"width": 2.0}, "epochs": 3, "weight_bits": 10, "binary_macs": 20,
           "recipe": {"kd_temperature": 1.0, "learning_rate": 5e-4, "mosaic": 0.5, "init_from": "runs/b"},
           "agreement": 0.8, "balanced_agreement": 0.7, "scene_balanced_agreement": 0.6, "person_offset": 0.5,
           "balanced_agreement_calibrated_plain": 0.75, "balanced_agreement_calibrated_scenes": 0.65,
           "balanced_agreement_calibrated": 0.71}
    table = person_distil.render_table([row], "runs/a", "python bench/person_distil.py runs/a")
    assert "mosaic 0.5, from `runs/b`'s weights" in table
    assert "| 60.0% | +0.50 | 75.0% / 65.0% / **71.0%** | – | **chosen** |" in table


def test_choice_margin_is_resolved_only_when_the_better_candidate_is_clearly_better():
    import numpy as np

    rng = np.random.default_rng(0)
    target = (rng.random(2000) < 0.3).astype(np.int32)
    good = np.where(rng.random(2000) < 0.9, target, 1 - target)
    coin = np.where(rng.random(2000) < 0.6, target, 1 - target)
    clear = person_distil.choice_margin((good, target), (coin, target), 2)
    assert clear["resolved"] and 0.2 < clear["difference"] < 0.4
    assert clear["bootstrap95"][0] < clear["difference"] < clear["bootstrap95"][1]
    near = np.where(rng.random(2000) < 0.9, target, 1 - target)  # as good, its own mistakes
    close = person_distil.choice_margin((good, target), (near, target), 2)
    assert not close["resolved"] and close["bootstrap95"][0] <= 0 <= close["bootstrap95"][1] + 1e-9
    assert person_distil.choice_margin((good, target), (good, 1 - target), 2) == {"comparable": False}
    # two views of each image (a copy here) are one draw: the interval is the one image's alone,
    # not the narrower one of twice as many independent items
    twice = [np.concatenate([a, a]) for a in (good, coin, target)]
    viewed = person_distil.choice_margin((twice[0], twice[2]), (twice[1], twice[2]), 2, views=2)
    assert viewed["bootstrap95"] == clear["bootstrap95"]
    naive = person_distil.choice_margin((twice[0], twice[2]), (twice[1], twice[2]), 2)
    assert np.diff(naive["bootstrap95"])[0] < 0.8 * np.diff(viewed["bootstrap95"])[0]
    row = {"run": "runs/a", "width": 2.0, "model": {}, "epochs": 1, "weight_bits": 1, "binary_macs": 1,
           "recipe": {"kd_temperature": 1.0, "learning_rate": 1e-3}, "agreement": 0.8, "balanced_agreement": 0.7,
           "scene_balanced_agreement": 0.6, "person_offset": 0.0, "balanced_agreement_calibrated_plain": 0.7,
           "balanced_agreement_calibrated_scenes": 0.6, "balanced_agreement_calibrated": 0.65}
    table = person_distil.render_table([row], "runs/a", "cmd", {"runner_up": "runs/b", **close})
    assert "over the runner-up `runs/b`" in table and "**not resolved**" in table


def test_a_choice_replaces_the_shipped_run_only_by_a_resolved_margin():
    import numpy as np

    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 2000)
    right = target.copy()
    noisy = np.where(rng.random(2000) < 0.2, 1 - target, target)  # 80% agreement
    nearly = np.where(rng.random(2000) < 0.19, 1 - target, target)
    choices = {"runs/new": (right, target), "runs/old": (noisy, target), "runs/close": (nearly, target),
               "runs/elsewhere": (right[:100], target[:100])}
    clear = person_distil.ship_decision("runs/new", "runs/old", choices)
    assert clear["replace"] and clear["margin"]["bootstrap95"][0] > 0 and "replaces" in clear["reason"]
    close = person_distil.ship_decision("runs/close", "runs/old", choices)
    assert not close["replace"] and close["margin"]["bootstrap95"][0] <= 0 < close["margin"]["bootstrap95"][1]
    assert "kept" in close["reason"]
    assert not person_distil.ship_decision("runs/old", "runs/old", choices)["replace"]
    assert person_distil.ship_decision("runs/new", None, choices)["replace"]
    assert not person_distil.ship_decision("runs/elsewhere", "runs/old", choices)["replace"]


def test_main_scores_the_shipped_run_too_and_ships_only_a_resolved_win(tmp_path, monkeypatch, capsys):
    import json
    from pathlib import Path

    import numpy as np

    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 2000)
    preds = {"new": target.copy(), "old": np.where(rng.random(2000) < 0.2, 1 - target, target),
             "close": np.where(rng.random(2000) < 0.19, 1 - target, target)}
    for name in preds:
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.keras").write_text("")
    scored, shipped = [], []

    def score(run_dir, choices):
        name = Path(run_dir).name
        scored.append(name)
        choices[str(run_dir)] = (preds[name], target)
        return {"run": str(run_dir), "binary_macs": 1, "person_offset": 0.0,
                "balanced_agreement_calibrated": person_distil.balanced(preds[name], target, 2)}

    monkeypatch.setattr(person_distil, "score_candidate", score)
    monkeypatch.setattr(person_distil, "ship", lambda best, command, note, decision, replaced: shipped.append((best["run"], replaced)) or {})
    monkeypatch.setattr(person_distil, "shipped_card", lambda: {"run": str(tmp_path / "old")})
    monkeypatch.setattr(person_distil.runs, "load_model", lambda run: None)
    monkeypatch.setattr(person_distil, "vww96_accuracy", lambda model, offset, positive: {})
    monkeypatch.setattr(person_distil, "render_table", lambda *a, **k: "table\n")
    out = str(tmp_path / "result")

    assert person_distil.main([str(tmp_path / "new"), "--out", out]) == 0
    assert scored == ["new", "old"] and shipped == [(str(tmp_path / "new"), str(tmp_path / "old"))]
    assert json.loads(Path(out + ".json").read_text())["ship_decision"]["replace"]
    scored.clear(), shipped.clear()
    assert person_distil.main([str(tmp_path / "close"), "--out", out]) == 0
    assert scored == ["close", "old"] and shipped == []
    assert person_distil.main([str(tmp_path / "new"), "--no-ship", "--out", out]) == 0
    assert shipped == [] and "report only" in json.loads(Path(out + ".json").read_text())["ship_decision"]["reason"]
    # the shipped run is not here: no unchecked replacement unless asked for
    monkeypatch.setattr(person_distil, "shipped_card", lambda: {"run": str(tmp_path / "gone")})
    capsys.readouterr()
    assert person_distil.main([str(tmp_path / "new"), "--out", out]) == 2
    assert "--replace-unchecked" in capsys.readouterr().err and shipped == []
    assert person_distil.main([str(tmp_path / "new"), "--replace-unchecked", "--out", out]) == 0
    assert shipped == [(str(tmp_path / "new"), None)]


def test_a_card_says_what_it_replaced_and_by_what_margin():
    card = {"choice_set": "x", "balanced_agreement_calibrated": 0.85, "balanced_agreement_calibrated_plain": 0.86,
            "balanced_agreement_calibrated_scenes": 0.84, "person_offset": 0.25, "heldout_person_share": 0.25,
            "scene_person_share": 0.32}
    assert "replaced" not in model_card._choice(card)  # cards shipped before the rule
    card.update(replaced="runs/old", ship_decision={"replace": True, "margin": {
        "comparable": True, "difference": 0.031, "bootstrap95": [0.012, 0.05], "resolved": True}})
    assert ("It replaced the model shipped before it, `runs/old`, by +3.1 points of that balanced agreement "
            "(95% paired bootstrap interval [+1.2, +5.0])") in model_card._choice(card)


def test_the_card_command_of_a_grown_run_rebuilds_its_blocks():
    """A card's command must give back the blocks of a --model-config (quoted JSON)."""
    blocks = [{"filters": 64, "groups": 1, "pool": True}, {"filters": 64, "groups": 2, "pool": False, "shortcut": True}]
    cfg = TrainConfig(dataset="unlabelled", data_dir="pool", kd_teacher="t.h5:input=unit,classes=a+b",
                      model={"width": 2.0, "blocks": blocks}, epochs=12, init_from="models/person_detect",
                      out="runs/grown")
    rebuilt = person_distil.shipped_config({"train_command": model_card.train_command(cfg)})
    assert rebuilt.model["blocks"] == blocks and rebuilt.init_from == "models/person_detect"
    assert (rebuilt.data_dir, rebuilt.seed, rebuilt.val_fraction) == (cfg.data_dir, cfg.seed, cfg.val_fraction)


def test_main_scores_the_shipped_export_when_its_run_is_gone(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    import numpy as np

    rng = np.random.default_rng(0)
    target = rng.integers(0, 2, 2000)
    preds = {"new": target.copy(), "person_detect": np.where(rng.random(2000) < 0.2, 1 - target, target)}
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "model.keras").write_text("")
    ship_dir = tmp_path / "person_detect"
    ship_dir.mkdir()
    (ship_dir / "model.tflite").write_bytes(b"")
    scored, shipped = [], []

    def score(run_dir, choices):
        scored.append(Path(run_dir).name)
        choices[str(run_dir)] = (preds[Path(run_dir).name], target)
        return {"run": str(run_dir), "binary_macs": 1, "person_offset": 0.0,
                "balanced_agreement_calibrated": person_distil.balanced(preds[Path(run_dir).name], target, 2)}

    monkeypatch.setattr(person_distil, "SHIP", ship_dir)
    monkeypatch.setattr(person_distil, "score_candidate", score)
    monkeypatch.setattr(person_distil, "ship", lambda best, command, note, decision, replaced: shipped.append((best["run"], replaced)) or {})
    monkeypatch.setattr(person_distil, "shipped_card", lambda: {"run": str(tmp_path / "gone"), "train_command": "x"})
    monkeypatch.setattr(person_distil.runs, "load_model", lambda run: None)
    monkeypatch.setattr(person_distil, "vww96_accuracy", lambda model, offset, positive: {})
    monkeypatch.setattr(person_distil, "render_table", lambda *a, **k: "table\n")
    assert person_distil.main([str(tmp_path / "new"), "--out", str(tmp_path / "result")]) == 0
    assert scored == ["new", "person_detect"] and shipped == [(str(tmp_path / "new"), str(tmp_path / "gone"))]
    assert "its export" in capsys.readouterr().out


@pytest.mark.slow
def test_the_shipped_export_scores_as_its_run_did(tmp_path, monkeypatch):
    """Scoring the export (recovered from its flatbuffer, the card's command for
    the held-out split and teachers) gives the run's own choices."""
    import json

    import numpy as np

    from larq_glt import export, runs
    from tests import pool_runs

    run = pool_runs.pool_run(tmp_path)
    cfg = TrainConfig.from_dict(json.loads((run / "config.json").read_text()))
    ship_dir = tmp_path / "person_detect"
    export.export_keras(runs.load_model(run), ship_dir, class_names=["non_person", "person"])
    card = {"run": "runs/gone", "train_command": model_card.train_command(cfg), "epochs": 1,
            "train_wall_seconds": 1.0}
    monkeypatch.setattr(person_distil, "SHIP", ship_dir)
    monkeypatch.setattr(person_distil, "shipped_card", lambda: card)
    choices = {}
    from_run = person_distil.score_candidate(run, choices)
    from_export = person_distil.score_candidate(ship_dir, choices)
    assert from_export["exported_run"] == "runs/gone" and from_export["heldout_images"] == 6
    np.testing.assert_array_equal(choices[str(ship_dir)][1], choices[str(run)][1])  # same images, same teacher
    assert abs(from_export["balanced_agreement_calibrated"] - from_run["balanced_agreement_calibrated"]) < 1e-9
