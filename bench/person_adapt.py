"""Adapt a distilled person detector to VWW with the labelled vww96 images,
and measure it by K-fold cross-validation (issue 13, "Rules for an honest figure").

A model distilled on the unlabelled pool (``bench/person_distil.py``) has never
seen a COCO photograph. This fine-tunes it on a mix of labelled vww96 images
(cross-entropy and the teacher's KL, ``--kd-alpha``) and pool images (the
teacher's KL only), so it learns the deployment's domain without forgetting
the pool. Because vww96 is now training data, its figure is cross-validated:

1. the 500 images are dealt into ``--folds`` stratified folds (fixed by sha1 of
   the file names); for each fold a model is fine-tuned from the base run on
   the other folds (each repeated ``--repeat`` times per epoch) plus
   ``--pool-images`` images of the base run's *training* part of the pool;
2. each fold model gets a person-logit offset chosen on the base run's
   held-out pool images (balanced agreement with the teacher, as
   ``person_distil.py`` does: no vww96 image is involved) and is scored on its
   own fold only; the pooled count over all folds is the cross-validated
   accuracy, with a 95% Wilson interval;
3. ``--ship`` then fine-tunes the same recipe on all 500 images, exports it to
   ``models/person_detect`` and measures it in QEMU; its acceptance figure is
   the cross-validated one, reported beside the base model's vww96 figure.

The recipe is given up front and not tuned on the folds (a recipe chosen by
its fold scores would make them optimistic).

    python bench/person_adapt.py runs/pd-w2-long                 # cross-validate only
    python bench/person_adapt.py runs/pd-w2-long --ship          # ... then ship the model trained on all 500
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)
import numpy as np

from larq_glt import atomic, data, runs, summary
from larq_glt.training import TrainConfig, dataset_class_names, teacher_specs, train

from bench import anchors, model_card, person_distil
from bench.folds import FoldError, fold_assignment

ROOT = Path(__file__).resolve().parents[1]
VWW96 = person_distil.VWW96


@dataclasses.dataclass(frozen=True)
class Recipe:
    epochs: int = 4
    learning_rate: float = 5e-4
    repeat: int = 4
    pool_images: int = 4000
    kd_alpha: float = 0.5
    seed: int = 0


def mixed_splits(labelled_x, labelled_y, pool_x, val_x, val_y, class_names, recipe: Recipe, name: str,
                 root: Path = VWW96):
    """Training = the labelled images ``recipe.repeat`` times + the pool images
    (label -1: the teacher's only); validation = ``val_x``/``val_y``."""
    from larq_glt.data import AugmentConfig, DatasetInfo, DatasetSplits
    from larq_glt.data.sources import ArraySource, class_counts
    from larq_glt.distillation import UNLABELLED

    rep = max(1, int(recipe.repeat))
    x = np.concatenate([np.tile(labelled_x, (rep, 1, 1, 1)), pool_x])
    y = np.concatenate([np.tile(labelled_y, rep), np.full(len(pool_x), UNLABELLED, np.int32)]).astype(np.int32)
    train_src, val_src = ArraySource(x, y), ArraySource(val_x, val_y)
    k = len(class_names)
    info = DatasetInfo(
        name=name, image_size=int(x.shape[1]), class_names=tuple(class_names), num_train=len(train_src),
        num_val=len(val_src), train_class_counts=class_counts(labelled_y, k),
        val_class_counts=class_counts(val_src.labels, k), root=str(root), split=name, seed=recipe.seed,
        storage="memory", skipped=[], augment=AugmentConfig().to_dict(),
        extra={"labelled": int(len(labelled_x)), "repeat": rep, "pool_images": int(len(pool_x))},
    )
    return DatasetSplits(train_src, val_src, info, batch_size=64, seed=recipe.seed, augment=AugmentConfig())


def pool_parts(base: TrainConfig, recipe: Recipe):
    """The base run's pool: a seeded sample of its training part, and its
    held-out part with the teachers' choices (for the offset)."""
    splits = data.load("unlabelled", data_dir=base.data_dir, image_size=base.image_size, seed=base.seed,
                       val_fraction=base.val_fraction, limit=base.limit, augment=False,
                       class_names=tuple(dataset_class_names(base)))
    x, _ = splits.arrays("train")
    pick = np.random.default_rng(recipe.seed).permutation(len(x))[:recipe.pool_images]
    held_x, held_target, names = person_distil.pool_heldout(base)
    return np.array(x[np.sort(pick)]), held_x, held_target, names


def base_config(base_dir: Path) -> TrainConfig:
    """The base run's training config; for a shipped export (a folder with
    model.tflite and card.json, its run directory gone) the config its card's
    training command gives: the pool, its held-out split and the teachers."""
    run = runs.RunDir(base_dir)
    if run.config.exists():
        return TrainConfig.from_dict(run.read_json(run.config))
    card = base_dir / "card.json"
    if not ((base_dir / "model.tflite").is_file() and card.is_file()):
        raise FoldError(f"{base_dir} is neither a finished run nor an export with card.json")
    from larq_glt import train as cli
    import shlex

    command = json.loads(card.read_text()).get("train_command", "")
    words = shlex.split(command)
    if words[:3] != ["python", "-m", "larq_glt.train"]:
        raise FoldError(f"{card} has no training command (train_command)")
    try:
        return cli.config_from_args(cli.build_parser().parse_args(words[3:]))
    except (SystemExit, ValueError) as e:  # argparse exits on an option this version lacks
        raise FoldError(f"{card}: its training command does not parse with this version ({e})") from None


def base_vww96(base_dir: Path) -> dict | None:
    """The base model's own vww96 figure, when its card or the distillation page has it."""
    card = base_dir / "card.json"
    if card.is_file():
        return json.loads(card.read_text()).get("vww96")
    shipped = json.loads((ROOT / "benchmarks" / "person_distil.json").read_text()).get("shipped") or {}
    return shipped.get("vww96") if shipped.get("run") == str(base_dir) else None


def fine_tune(base_dir: Path, base: TrainConfig, splits, recipe: Recipe, out: Path) -> Path:
    cfg = dataclasses.replace(
        base, dataset="folder", data_dir=splits.info.root, out=str(out), epochs=recipe.epochs,
        learning_rate=recipe.learning_rate, kd_alpha=recipe.kd_alpha, init_from=str(base_dir), seed=recipe.seed,
        unlabelled=[], unlabelled_classes=None, limit=None, progress=False,
        # labelled images in the mix: no mosaics or blends (only the teacher could label them)
        mosaic=0.0, kd_mixup=0.0)
    run = runs.RunDir(out)
    if not (run.model.exists() and run.last_epoch() >= cfg.epochs):
        train(cfg, resume=run.config.exists(), splits=splits)
    return out


def offset_for(model, held_x, held_target, positive: int) -> float:
    logits = model.predict(held_x, verbose=0)
    return person_distil.calibrate(logits, held_target, positive)[0]


def cross_validate(base_dir: Path, recipe: Recipe, folds: int, work: Path, vww_dir: Path = VWW96) -> dict:
    base = base_config(base_dir)
    images, labels, names = anchors.load_images(vww_dir, base.image_size)
    fold = fold_assignment(names, labels, folds)
    pool_x, held_x, held_target, classes = pool_parts(base, recipe)
    positive = list(classes).index("person")
    correct, per_fold = np.zeros(len(labels), bool), []
    for f in range(folds):
        val = fold == f
        splits = mixed_splits(images[~val], labels[~val], pool_x, images[val], labels[val], classes, recipe,
                              f"vww96 fold {f} of {folds} + pool", vww_dir)
        out = fine_tune(base_dir, base, splits, recipe, work / f"fold{f}")
        model = runs.load_model(out)
        offset = offset_for(model, held_x, held_target, positive)
        logits = model.predict(images[val], verbose=0)
        logits[:, positive] += offset
        correct[val] = logits.argmax(1) == labels[val]
        per_fold.append({"fold": f, "images": int(val.sum()), "accuracy": float(correct[val].mean()),
                         "person_offset": offset})
        print(f"fold {f}: {per_fold[-1]['accuracy']:.3f} (offset {offset:+.2f})", flush=True)
    k = int(correct.sum())
    low, high = anchors.wilson(k, len(labels))
    per_class = {n: float(correct[labels == i].mean()) for i, n in enumerate(anchors.CLASS_NAMES)}
    return {"accuracy": k / len(labels), "correct": k, "images": int(len(labels)), "wilson95": [low, high],
            "per_class": per_class, "folds": per_fold,
            "fold_sizes": np.bincount(fold, minlength=folds).tolist()}


def ship_all(base_dir: Path, recipe: Recipe, work: Path, cv: dict, command: str, vww_dir: Path = VWW96) -> dict:
    """Fine-tune on all 500 images, export to models/person_detect, measure."""
    import tf_keras as keras

    base = base_config(base_dir)
    # Read before the export: shipping replaces models/person_detect, which may be the base itself.
    base_card = json.loads((base_dir / "card.json").read_text()) if (base_dir / "card.json").is_file() else {}
    base_figure = base_vww96(base_dir)
    images, labels, _ = anchors.load_images(vww_dir, base.image_size)
    pool_x, held_x, held_target, classes = pool_parts(base, recipe)
    positive = list(classes).index("person")
    # Validation: the held-out pool with the teacher's choices (every vww96 image trains here).
    splits = mixed_splits(images, labels, pool_x, held_x, held_target, classes, recipe, "vww96 (all) + pool", vww_dir)
    out = fine_tune(base_dir, base, splits, recipe, work / "all")
    model = keras.models.load_model(runs.RunDir(out).model, compile=False)
    offset = offset_for(model, held_x, held_target, positive)
    model = person_distil.with_offset(model, offset, positive)
    deployed = person_distil.export_and_measure(
        model, classes, held_x, f"{len(held_x)} held-out pool images ({base.data_dir})",
        {"run_dir": str(out), "base_run": str(base_dir), "teachers": teacher_specs(base), "person_offset": offset})
    total = summary.model_cost(model)["total"]
    card = {
        "run": str(out), "base_run": str(base_dir), "recipe": dataclasses.asdict(recipe),
        "width": base.model.get("width", 1.0), "model": base.model, "teachers": teacher_specs(base),
        "pool": base.data_dir, "person_offset": offset, "cross_validated": cv,
        "base_vww96": base_figure,
        "weight_bits": int(total["weight_bits"]), "binary_macs": int(total["binary_macs"]),
        **deployed,
        "command": command, "base_train_command": base_card.get("train_command") or model_card.train_command(base),
        "model_sha1": hashlib.sha1((person_distil.SHIP / "model.tflite").read_bytes()).hexdigest(),
    }
    atomic.write_json(person_distil.SHIP / "card.json", card)
    atomic.write_text(person_distil.SHIP / "MODEL_CARD.md", render_card(card))
    return card


def _pct(v: dict) -> str:
    return f"{100 * v['accuracy']:.1f}% [{100 * v['wilson95'][0]:.1f}, {100 * v['wilson95'][1]:.1f}]"


def render_card(c: dict) -> str:
    cv, r, ins = c["cross_validated"], c["recipe"], c["instructions"]
    pc = ", ".join(f"{k} {100 * a:.1f}%" for k, a in cv["per_class"].items())
    base = (f"The base model, before this fine-tuning, scored {_pct(c['base_vww96'])} on the same 500 images "
            "(it never saw them).") if c.get("base_vww96") else ""
    return f"""# Model card: person_detect (fully-binarized GLT person detector)

**What it is.** The compact fully-binarized topology of larq-glt (width {c['width']:g}, model overrides
`{json.dumps(c['model'])}`) with a Generic Learned Thermometer input: 96×96×3 raw uint8 image → GLT binary
planes → binary convolutions (all `LceBconv2d` after conversion: {c['all_convs_binary']}) → 2 logits
(`non_person`, `person`).

**Size and cost.** {c['weight_bits']:,} weight bits at deployed precision ({c['weight_bits'] / 1e6:.3f} Mbit;
{c['flatbuffer_weight_bits']:,} flatbuffer weight bits); flatbuffer {c['flatbuffer_bytes']:,} bytes;
{c['binary_macs']:,} binary MACs, {c['other_macs']:,} other. On a Cortex-M7 (QEMU `mps2-an500`,
`-icount shift=0`, the sample frames): {ins['mean']:,.0f} instructions per inference
({ins['min']:,}–{ins['max']:,}); peak RAM {c['peak_ram_bytes']:,} B (arena {c['arena_bytes']:,} + stack
{c['stack_high_water_bytes']:,} + input frame {c['input_frame_bytes']:,}); flash {c['flash_bytes']:,} B
(a profiling build with the sample frames).

**Training.** Two stages.
1. Distillation on the unlabelled pool `{c['pool']}` (ImageNet photos, no person label), labelled only by
   {', '.join(f'`{t}`' for t in c['teachers'])}: `{c['base_train_command']}` (the base run `{c['base_run']}`).
2. Fine-tuning on all 500 labelled `vww96` images (each {r['repeat']}× per epoch; cross-entropy and the
   teacher's KL, alpha {r['kd_alpha']:g}) mixed with {r['pool_images']:,} pool images from the base run's
   training part (KL only): {r['epochs']} epochs, learning rate {r['learning_rate']:g} (cosine).
   A person-logit offset of {c['person_offset']:+.2f}, chosen on the base run's held-out pool images by
   balanced agreement with the teacher, is folded into the classifier's batch-norm bias.

**Accuracy: {_pct(cv)} on the 500 vww96 images, cross-validated** ({len(cv['folds'])} stratified folds of
{', '.join(str(s) for s in cv['fold_sizes'])} images; each image scored by a model fine-tuned by the same
recipe without it; per class: {pc}). The shipped model trained on all 500, so no vww96 figure of its own
would be honest. The recipe was fixed before the folds were scored. {base}

**Learned thresholds** (ADC codes, per channel R, G, B): {c['thresholds']}

**Reproduce:** `{c['command']}` after the base run.
"""


def render_page(result: dict) -> str:
    cv, r = result["cross_validated"], result["recipe"]
    lines = [
        "# Person detector adapted to VWW, cross-validated",
        "",
        f"Produced by `{result['command']}`.",
        "",
        f"Base run `{result['base_run']}` (distilled on the unlabelled pool), fine-tuned per fold on the other "
        f"folds' vww96 images (each {r['repeat']}× per epoch, CE + KL with alpha {r['kd_alpha']:g}) plus "
        f"{r['pool_images']:,} pool images (KL only), {r['epochs']} epochs at learning rate "
        f"{r['learning_rate']:g}. The person-logit offset of each fold model is chosen on the base run's "
        "held-out pool images, never on vww96. The recipe was fixed before any fold was scored.",
        "",
        "| fold | images | accuracy | person offset |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {f['fold']} | {f['images']} | {100 * f['accuracy']:.1f}% | {f['person_offset']:+.2f} |"
              for f in cv["folds"]]
    lines += ["", f"**Cross-validated accuracy: {_pct(cv)}** ({cv['correct']}/{cv['images']}; per class "
              + ", ".join(f"{k} {100 * a:.1f}%" for k, a in cv["per_class"].items()) + ")."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("base", help="the distilled run (trained with --dataset unlabelled), or a shipped export "
                                "with its card (models/person_detect): rebuilt from its flatbuffer")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=Recipe.epochs)
    p.add_argument("--learning-rate", type=float, default=Recipe.learning_rate)
    p.add_argument("--repeat", type=int, default=Recipe.repeat, help="labelled images per epoch, times")
    p.add_argument("--pool-images", type=int, default=Recipe.pool_images)
    p.add_argument("--kd-alpha", type=float, default=Recipe.kd_alpha)
    p.add_argument("--work", default=None, help="where the fold runs go (default: <base>-adapt)")
    p.add_argument("--ship", action="store_true", help="then fine-tune on all 500 and ship to models/person_detect")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "person_adapt"), help="output path without extension")
    args = p.parse_args(argv)
    base_dir = Path(args.base)
    exported = (base_dir / "model.tflite").is_file() and (base_dir / "card.json").is_file()
    if not (runs.RunDir(base_dir).model.exists() or exported):
        print(f"error: {base_dir} holds no finished run (model.keras) nor an export with card.json", file=sys.stderr)
        return 2
    try:
        base = base_config(base_dir)
    except FoldError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if base.dataset != "unlabelled":
        print(f"error: {base_dir} was not trained with --dataset unlabelled", file=sys.stderr)
        return 2
    if args.folds < 2 or args.epochs < 1 or args.repeat < 1 or args.pool_images < 0 or args.learning_rate <= 0:
        print("error: --folds must be ≥ 2, --epochs and --repeat ≥ 1, --pool-images ≥ 0, --learning-rate > 0",
              file=sys.stderr)
        return 2
    recipe = Recipe(epochs=args.epochs, learning_rate=args.learning_rate, repeat=args.repeat,
                    pool_images=args.pool_images, kd_alpha=args.kd_alpha)
    work = Path(args.work or f"{base_dir}-adapt")
    command = "python bench/person_adapt.py " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        cv = cross_validate(base_dir, recipe, args.folds, work)
    except (anchors.AnchorError, FoldError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    result = {"command": command, "base_run": str(base_dir), "recipe": dataclasses.asdict(recipe),
              "cross_validated": cv, "shipped": None}
    if args.ship:
        result["shipped"] = ship_all(base_dir, recipe, work, cv, command)
    atomic.write_json(args.out + ".json", result)
    atomic.write_text(args.out + ".md", render_page(result))
    print(render_page(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
