"""Choose, calibrate and ship a person detector distilled from published teachers.

The candidates are run directories trained with ``--dataset unlabelled`` on an
image pool labelled only by teachers (see README, "The shipped person
detector"), for example::

    python -m larq_glt.train --dataset unlabelled --data-dir ../shared/data/imagenette96 \\
        --kd-teacher ../shared/reference_models/mlperf_tiny_vww_96.h5:input=unit,classes=non_person+person \\
        --kd-temperature 1 --width 2 --epochs 24 --out runs/pd-w2-e24

Nothing here looks at ``vww96`` until the choice is made:

1. every candidate is scored on its run's held-out part of the pool (never
   trained on) against the teachers' choices: agreement, and *balanced*
   agreement (the mean of the per-class agreements: the pool holds ~24%
   persons, a deployment stream's share is unknown). The held-out images
   are scored twice: as they are, and as *scenes*, 2×2 mosaics of four of
   them at half side (:func:`heldout_scenes`), because the pool's subjects
   are large and centred while a camera's persons are often small among
   clutter; the teachers label the scenes too. The scenes stay 2×2 whatever
   mosaics a run trained on (``--mosaic-grid``): one yardstick for all;
2. the pool is not the deployment's class balance, so a person-logit offset
   is chosen on the same held-out images (plain and scenes together) to
   maximise balanced agreement (a prior correction, folded into the
   classifier's batch-norm bias: exact after conversion);
3. the candidate with the highest calibrated balanced agreement over the
   plain held-out images and their scenes together is chosen. It replaces
   the shipped model only if it beats the shipped run (always scored too,
   when its run directory is here) by a *resolved* margin: the 95% paired
   bootstrap interval of the difference lies above zero
   (:func:`ship_decision`; a difference the held-out images cannot resolve
   is noise, and swapping models on noise makes the reported vww96 figure a
   coin toss between them). A replacement is exported to
   ``models/person_detect`` (verified against Keras on held-out pool
   images), measured in QEMU (instructions, peak RAM) and only then scored
   once on all 500 ``vww96`` images, with a 95% Wilson interval;
4. every candidate's vww96 accuracy is reported too, after the choice, for
   the capacity table (``benchmarks/person_distil.{json,md}``).

    python bench/person_distil.py runs/pd-w2 runs/pd-w2-e24          # choose, ship, report
    python bench/person_distil.py runs/pd-w2 --no-ship                # report only
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np

from larq_glt import atomic, data, export, runs, summary, teachers
from larq_glt.data import augment
from larq_glt.train_config import hint_weight
from larq_glt.training import TrainConfig, dataset_class_names, teacher_specs

from bench.model_card import render_card, train_command

ROOT = Path(__file__).resolve().parents[1]

SHIP = ROOT / "models" / "person_detect"
VWW96 = ROOT.parent / "shared" / "data" / "vww96"
OFFSETS = np.round(np.arange(-4.0, 4.0001, 0.05), 2)
#: Each held-out image is scored as itself and as the scene it heads (:func:`score_candidate`).
VIEWS = 2


def heldout_scenes(x: np.ndarray) -> np.ndarray:
    """``x`` as 2×2 mosaics at half side, image ``i`` with images ``i+1..i+3``
    (cyclically, in the fixed held-out order): the same held-out images, as
    small subjects among others."""
    import tensorflow as tf

    return augment.mosaic_grid(tf.constant(x)).numpy()


def pool_splits(cfg: TrainConfig):
    """The run's pool, split as its training split it, without augmentation."""
    return data.load("unlabelled", data_dir=cfg.data_dir, image_size=cfg.image_size, seed=cfg.seed,
                     val_fraction=cfg.val_fraction, limit=cfg.limit, augment=False,
                     class_names=tuple(dataset_class_names(cfg)))


def pool_heldout(cfg: TrainConfig, scenes: bool = False):
    """The run's held-out pool images and the teachers' choices for them;
    with ``scenes``, followed by their :func:`heldout_scenes` (as many again)."""
    splits = pool_splits(cfg)
    x, _ = splits.arrays("val")
    if scenes:
        x = np.concatenate([x, heldout_scenes(x)])
    ensemble = teachers.load_all(teacher_specs(cfg), splits.class_names)
    log_p = np.concatenate([ensemble(x[i:i + 100]).numpy() for i in range(0, len(x), 100)])
    return x, log_p.argmax(1).astype(np.int32), splits.class_names


def balanced(pred: np.ndarray, target: np.ndarray, num_classes: int) -> float:
    return float(np.mean([np.mean(pred[target == c] == c) for c in range(num_classes) if np.any(target == c)]))


def calibrate(logits: np.ndarray, target: np.ndarray, positive: int) -> tuple[float, float]:
    """The offset added to the ``positive`` logit that maximises balanced
    agreement (the smallest such offset in magnitude), and that agreement."""
    best = (-1.0, 0.0)
    for b in sorted(OFFSETS, key=abs):
        shifted = logits.copy()
        shifted[:, positive] += b
        score = balanced(shifted.argmax(1), target, logits.shape[1])
        if score > best[0] + 1e-12:
            best = (score, float(b))
    return best[1], best[0]


def with_offset(model, offset: float, positive: int):
    """``model`` with ``offset`` added to one logit, through the classifier's
    batch-norm bias (the last layer before the logits), so conversion keeps it."""
    bn = model.get_layer("classifier_bn")
    weights = bn.get_weights()
    names = [w.name.split("/")[-1].split(":")[0] for w in bn.weights]
    beta = weights[names.index("beta")]
    beta[positive] += offset
    bn.set_weights(weights)
    return model


def score_candidate(run_dir: Path, choices: dict | None = None) -> dict:
    """The table row of one candidate; ``choices[run]`` receives its calibrated
    choices and the teachers' on the held-out images (for :func:`choice_margin`)."""
    exported = _same_run(str(run_dir), str(SHIP))
    if exported:  # the shipped model whose run directory is gone: its card says how it was trained
        card = shipped_card()
        cfg = shipped_config(card)
        epochs, wall = card["epochs"], card["train_wall_seconds"]
    else:
        run = runs.RunDir(run_dir)
        cfg = TrainConfig.from_dict(run.read_json(run.config))
        # every epoch of the run itself: dense, and the pruning ramp and fine-tuning if any
        epochs = cfg.epochs + (cfg.prune_epochs + cfg.finetune if cfg.pruning else 0)
        wall = round(sum(e["seconds"] for e in run.read_json(run.metrics)["epochs"]), 1)
    if cfg.dataset != "unlabelled":
        raise SystemExit(f"error: {run_dir} was not trained with --dataset unlabelled")
    x, target, names = pool_heldout(cfg, scenes=True)
    n = len(x) // VIEWS  # plain images first, then their scenes
    positive = list(names).index("person")
    model = runs.load_model(run_dir)
    logits = model.predict(x, verbose=0)
    offset, calibrated = calibrate(logits, target, positive)
    shifted = logits.copy()
    shifted[:, positive] += offset
    pred, plain_pred = shifted.argmax(1), logits.argmax(1)
    if choices is not None:
        choices[str(run_dir)] = (pred, target)
    cost = summary.model_cost(model)["total"]
    return {
        "run": str(run_dir),
        "epochs": epochs,
        "width": cfg.model.get("width", 1.0), "model": cfg.model,
        "teachers": teacher_specs(cfg), "pool": cfg.data_dir,
        "recipe": {"kd_temperature": cfg.kd_temperature, "zoom": cfg.zoom, "mosaic": cfg.mosaic,
                   "mosaic_grid": cfg.mosaic_grid, "kd_mixup": cfg.kd_mixup,
                   "kd_class_balance": cfg.kd_class_balance,
                   "kd_hint": ({"layers": cfg.kd_hint, "weight": hint_weight(cfg)} if cfg.kd_hint else None),
                   "prune": ({"ratio": cfg.prune_ratio, "block": cfg.prune_block, "ramp_epochs": cfg.prune_epochs,
                              "finetune_epochs": cfg.finetune} if cfg.pruning else None),
                   "learning_rate": cfg.learning_rate, "augment": cfg.augment, "init_from": cfg.init_from},
        "heldout_images": n,
        "heldout_person_share": float(np.mean(target[:n] == positive)),
        "scene_person_share": float(np.mean(target[n:] == positive)),
        "agreement": float(np.mean(plain_pred[:n] == target[:n])),
        "balanced_agreement": balanced(plain_pred[:n], target[:n], len(names)),
        "scene_agreement": float(np.mean(plain_pred[n:] == target[n:])),
        "scene_balanced_agreement": balanced(plain_pred[n:], target[n:], len(names)),
        # the choice: one offset, chosen and scored on plain images and scenes together
        "choice_set": "held-out pool images and their 2x2 scenes",
        "person_offset": offset, "balanced_agreement_calibrated": calibrated,
        "balanced_agreement_calibrated_plain": balanced(pred[:n], target[:n], len(names)),
        "balanced_agreement_calibrated_scenes": balanced(pred[n:], target[n:], len(names)),
        "weight_bits": int(cost["weight_bits"]), "binary_macs": int(cost["binary_macs"]),
        "train_wall_seconds": wall,
        **({"exported_run": card["run"]} if exported else {}),
    }


def vww96_accuracy(model, offset: float, positive: int) -> dict:
    from bench import anchors

    images, labels, _ = anchors.load_images(VWW96)
    names = anchors.CLASS_NAMES
    logits = model.predict(images, verbose=0)
    logits[:, positive] += offset
    pred = logits.argmax(1)
    k = int(np.sum(pred == labels))
    low, high = anchors.wilson(k, len(labels))
    return {"accuracy": k / len(labels), "correct": k, "images": int(len(labels)), "wilson95": [low, high],
            "per_class": {n: float(np.mean(pred[labels == i] == i)) for i, n in enumerate(names)}}


def ship(best: dict, command: str, note: str = "", decision: dict | None = None, replaced: str | None = None) -> dict:
    import tf_keras as keras

    run = runs.RunDir(best["run"])
    cfg = TrainConfig.from_dict(run.read_json(run.config))
    x, target, names = pool_heldout(cfg)
    positive = list(names).index("person")
    model = with_offset(keras.models.load_model(run.model, compile=False), best["person_offset"], positive)
    deployed = export_and_measure(model, names, x, f"{len(x)} held-out pool images ({cfg.data_dir})",
                                  {"run_dir": best["run"], "dataset": f"unlabelled pool {cfg.data_dir}",
                                   "teachers": best["teachers"], "person_offset": best["person_offset"]})
    card = {
        **best,
        "vww96": vww96_accuracy(model, 0.0, positive),  # the offset is inside the model now
        **deployed,
        "command": command, "train_command": train_command(cfg), "note": note,
        "ship_decision": decision, "replaced": replaced,
    }
    atomic.write_json(SHIP / "card.json", card)
    atomic.write_text(SHIP / "MODEL_CARD.md", render_card(card))
    return card


def export_and_measure(model, names, check_images, check_source: str, meta: dict) -> dict:
    """Export ``model`` to :data:`SHIP` (verified on ``check_images``), measure it
    in QEMU, and return the size and cost figures a model card states."""
    from bench import mcu_cost

    result = export.export_keras(model, SHIP, class_names=list(names), check_images=check_images,
                                 check_source=check_source, extra_meta=meta)
    # No model.keras here: at width 2 it is 3.5 MB of latent float weights; the
    # deployable model is the flatbuffer, and the run directory keeps the Keras model.
    cost = mcu_cost.measure(SHIP / "model.tflite", op_repeat=1)
    rep = result.report
    return {
        "flatbuffer_weight_bits": rep["flatbuffer_weight_bits"], "flatbuffer_bytes": rep["flatbuffer_bytes"],
        "all_convs_binary": rep["all_convs_binary"], "other_macs": rep["other_macs"],
        "instructions": cost["instructions_per_inference"], "peak_ram_bytes": cost["peak_ram_bytes"],
        "arena_bytes": cost["arena_bytes"], "stack_high_water_bytes": cost["stack_high_water_bytes"],
        "input_frame_bytes": cost["input_frame_bytes"], "flash_bytes": cost["flash_bytes"],
        "thresholds": json.loads((SHIP / "encoder.json").read_text()).get("thresholds"),
    }


def render_table(rows: list[dict], chosen: str | None, command: str, margin: dict | None = None,
                 decision: dict | None = None) -> str:
    lines = [
        "# Person detectors distilled from published teachers",
        "",
        f"Produced by `{command}`. Candidates are scored on their held-out pool images against the",
        "teachers, as they are and as 2×2 scenes of four held-out images at half side (balanced agreement",
        "without an offset, then with the person-logit offset chosen on both together); the choice is made",
        "on the last column before vww96 alone. vww96 accuracy (500 images, 95% Wilson interval) is measured",
        "after it.",
        "",
        "| run | width | model overrides | recipe | epochs | weight bits | binary MACs | pool agreement | balanced | "
        "scenes, balanced | offset | balanced, calibrated (plain / scenes / both) | vww96 (calibrated) | |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        v = r.get("vww96")
        vww = f"{100 * v['accuracy']:.1f}% [{100 * v['wilson95'][0]:.1f}, {100 * v['wilson95'][1]:.1f}]" if v else "–"
        other = {k: val for k, val in r["model"].items() if k != "width"}
        lines.append(
            f"| `{r['run']}` | {r['width']:g} | `{json.dumps(other)}` | {_recipe(r['recipe'])} | {r['epochs']} | "
            f"{r['weight_bits']:,} | "
            f"{r['binary_macs']:,} | {100 * r['agreement']:.1f}% | {100 * r['balanced_agreement']:.1f}% | "
            f"{100 * r['scene_balanced_agreement']:.1f}% | {r['person_offset']:+.2f} | "
            f"{100 * r['balanced_agreement_calibrated_plain']:.1f}% / "
            f"{100 * r['balanced_agreement_calibrated_scenes']:.1f}% / "
            f"**{100 * r['balanced_agreement_calibrated']:.1f}%** | {vww} | "
            f"{'**chosen**' if r['run'] == chosen else ''} |")
    if margin and margin.get("comparable"):
        lo, hi = margin["bootstrap95"]
        lines += ["", f"Margin of the choice over the runner-up `{margin['runner_up']}`: "
                      f"{100 * margin['difference']:+.1f} points of balanced agreement, 95% paired bootstrap interval "
                      f"[{100 * lo:+.1f}, {100 * hi:+.1f}] over the held-out images (offsets fixed): "
                      + ("resolved." if margin["resolved"] else
                         "**not resolved**: the held-out images cannot tell these two apart.")]
    if decision:
        lines += ["", f"Shipping rule (the choice replaces the shipped run only by a resolved margin over it): "
                      f"{decision['reason']}."]
    return "\n".join(lines) + "\n"


def _recipe(r: dict) -> str:
    parts = [f"T {r['kd_temperature']:g}", f"lr {r['learning_rate']:g}"]
    parts += [f"zoom {r['zoom']:g}"] if r.get("zoom") else []
    if r.get("mosaic"):
        largest = r.get("mosaic_grid", 2)
        parts.append(f"mosaic {r['mosaic']:g}" + (f" up to {largest}×{largest}" if largest != 2 else ""))
    parts += [f"mixup {r['kd_mixup']:g}"] if r.get("kd_mixup") else []
    parts += ["class-balanced KD"] if r.get("kd_class_balance") else []
    if r.get("kd_hint"):
        parts.append(f"hint {r['kd_hint']['layers']} ×{r['kd_hint']['weight']:g}")
    if r.get("prune"):
        pr = r["prune"]
        parts.append(f"pruned {pr['ratio']:g} in {pr['block']}-channel blocks "
                     f"({pr['ramp_epochs']} ramp + {pr['finetune_epochs']} fine-tune epochs)")
    parts += [f"from `{r['init_from']}`'s weights"] if r.get("init_from") else []
    return ", ".join(parts) + ("" if r.get("augment", True) else ", no augmentation")


def choice_margin(best: tuple, other: tuple, num_classes: int, draws: int = 2000, seed: int = 0,
                  views: int = 1) -> dict:
    """How sure the choice is: the difference in balanced agreement between
    two candidates' calibrated choices ``(pred, target)`` on the same held-out
    items, with a 95% paired bootstrap interval. The items are ``views`` views
    of each held-out image (item ``k`` shows image ``k mod len/views``: here
    the plain image, then the scene it heads), and an image is resampled with
    all its views, since they are not independent evidence. The offsets are
    kept: the interval is, if anything, too narrow."""
    (pa, ta), (pb, tb) = best, other
    if len(ta) != len(tb) or not np.array_equal(ta, tb) or len(ta) % views:
        return {"comparable": False}
    rng = np.random.default_rng(seed)
    n = len(ta) // views
    picked = rng.integers(0, n, (draws, n))
    idx = np.concatenate([picked + v * n for v in range(views)], axis=1)
    t = ta[idx]
    diffs = np.zeros(draws)
    for sign, p in ((1.0, pa), (-1.0, pb)):
        hit = p[idx] == t
        per_class = [np.where(t == c, hit, False).sum(1) / np.maximum((t == c).sum(1), 1)
                     for c in range(num_classes) if np.any(ta == c)]
        diffs += sign * np.mean(per_class, axis=0)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"comparable": True, "difference": balanced(pa, ta, num_classes) - balanced(pb, tb, num_classes),
            "bootstrap95": [float(low), float(high)], "resolved": bool(low > 0)}


def ship_decision(best: str, shipped: str | None, choices: dict, num_classes: int = 2) -> dict:
    """Whether the chosen run ``best`` replaces the ``shipped`` one: only by a
    resolved :func:`choice_margin` over it on the same held-out images. The
    best of several candidates is tested, so a resolved margin is, if
    anything, optimistic: the rule errs towards keeping. When the shipped run
    is still the best, ``models/`` is left as it is (card and note included)."""
    if shipped is None:
        return {"replace": True, "reason": "no shipped run to compare with"}
    if best == shipped:
        return {"replace": False, "reason": "the shipped run is still the best candidate; models/ is left as it is"}
    margin = choice_margin(choices[best], choices[shipped], num_classes, views=VIEWS)
    if not margin["comparable"]:
        return {"replace": False, "margin": margin,
                "reason": "the shipped run was held out on other images: not comparable, kept"}
    lo, hi = margin["bootstrap95"]
    verdict = ("resolved: the choice replaces the shipped model" if margin["resolved"] else
               "not resolved: the shipped model is kept")
    return {"replace": margin["resolved"], "margin": margin,
            "reason": f"{100 * margin['difference']:+.1f} points over the shipped `{shipped}`, 95% interval "
                      f"[{100 * lo:+.1f}, {100 * hi:+.1f}], {verdict}"}


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when inside it (as a user types it)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _same_run(a: str, b: str) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def shipped_card() -> dict | None:
    path = SHIP / "card.json"
    return json.loads(path.read_text()) if path.exists() else None


def shipped_config(card: dict) -> TrainConfig:
    """The training configuration of the shipped model, read back from its
    card's training command (the run directory may be gone; the held-out
    split, the pool and the teachers are what scoring needs)."""
    from larq_glt import train as cli

    argv = shlex.split(card["train_command"])
    return cli.config_from_args(cli.build_parser().parse_args(argv[argv.index("larq_glt.train") + 1:]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="candidate run directories (trained with --dataset unlabelled)")
    p.add_argument("--no-ship", dest="ship", action="store_false", help="report only; models/ stays as it is")
    p.add_argument("--replace-unchecked", action="store_true",
                   help="ship the choice even though the shipped run's directory is not here to compare with")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "person_distil"), help="output path without extension")
    p.add_argument("--note", default="", help="a paragraph for the model card (how the run was made, caveats)")
    args = p.parse_args(argv)
    for r in args.runs:
        if not runs.RunDir(r).model.exists() and not _same_run(r, str(SHIP)):
            print(f"error: {r} holds no finished run (model.keras)", file=sys.stderr)
            return 2
    shown = argv if argv is not None else sys.argv[1:]
    if "--note" in shown:  # the note is in the card; the command stays readable
        i = shown.index("--note")
        shown = shown[:i] + ["--note", "…"] + shown[i + 2:]
    command = "python bench/person_distil.py " + " ".join(shown)
    card = shipped_card()
    shipped = None
    if card and card.get("run"):
        shipped_dir = ROOT / card["run"]  # the card's paths are the project's, wherever this runs from
        shipped = next((r for r in args.runs if _same_run(r, shipped_dir)), None)
        if shipped is None and runs.RunDir(shipped_dir).model.exists():
            shipped = _shown_path(shipped_dir)
            print(f"the shipped run {shipped} is scored too: a replacement must beat it", flush=True)
            args.runs.append(shipped)
        elif shipped is None and card.get("train_command") and (SHIP / "model.tflite").exists():
            # Its run is gone; the export computes the same function (larq_glt.recover), offset included.
            shipped = _shown_path(SHIP)
            print(f"the shipped run {card['run']} is not here; its export {shipped} is scored instead: "
                  f"a replacement must beat it", flush=True)
            args.runs.append(shipped)
        if shipped is None and args.ship and not args.replace_unchecked:
            print(f"error: the shipped run {card['run']} is not here, so no choice can be compared with it; "
                  f"give --replace-unchecked to ship the choice anyway, or --no-ship to report only",
                  file=sys.stderr)
            return 2
    choices: dict = {}
    rows = [score_candidate(Path(r), choices) for r in args.runs]
    if shipped:  # as its row spells it
        shipped = next(r["run"] for r in rows if _same_run(r["run"], shipped))
    best = max(rows, key=lambda r: (r["balanced_agreement_calibrated"], -r["binary_macs"]))
    others = sorted((r for r in rows if r is not best), key=lambda r: -r["balanced_agreement_calibrated"])
    margin = None
    if others:
        margin = {"runner_up": others[0]["run"],
                  **choice_margin(choices[best["run"]], choices[others[0]["run"]], 2, views=VIEWS)}
    for r in rows:
        print(f"{r['run']}: balanced agreement {r['balanced_agreement_calibrated']:.4f} (offset "
              f"{r['person_offset']:+.2f})", flush=True)
    decision = ship_decision(best["run"], shipped, choices)
    if not args.ship:
        decision["reason"] += " (report only: --no-ship)"
    print(f"chosen: {best['run']}; {decision['reason']}", flush=True)
    # "shipped" always describes what models/person_detect holds (the README quotes it)
    if args.ship and decision["replace"]:
        # an export scored in place of its gone run: the card names the run it came from
        replaced = card["run"] if shipped and _same_run(shipped, str(SHIP)) else shipped
        card = ship(best, command, args.note, decision, replaced=replaced)
    for r in rows:  # after the choice
        names = ("non_person", "person")
        model = runs.load_model(r["run"])
        r["vww96"] = vww96_accuracy(model, r["person_offset"], names.index("person"))
    result = {"command": command, "chosen": best["run"], "choice_margin": margin, "ship_decision": decision,
              "candidates": rows, "shipped": card}
    atomic.write_json(args.out + ".json", result)
    table = render_table(rows, best["run"], command, margin, decision)
    atomic.write_text(args.out + ".md", table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
