"""Train, export and ship the default person detector (models/person_detect/).

The best fully-binarized person detector this 2-core machine can train from
the data it has: VWW proper (~100k images) is not here, only 500 real VWW
images (../shared/data/vww96). So:

1. pre-train the compact GLT model on imagenette96 (9,469 ImageNet images,
   10 classes) — a generic visual body;
2. fine-tune it on 400 of the 500 VWW images (all weights; the 2-class
   classifier is new), keeping 100 (50 per class, a fixed hash split) held out;
3. export to LCE (every conv LceBconv2d, input = raw uint8), verify against
   Keras on the held-out images, and write the model card with the measured
   size, MACs, accuracy on the held-out images and the commands.

Each stage is a resumable run directory under runs/ (gitignored); the shipped
files are models/person_detect/{model.keras, model.tflite, model.json,
encoder.json, adc_levels.csv, report.md, report.json, MODEL_CARD.md}.

    python bench/person_detector.py                       # all stages (resumes)
    python bench/person_detector.py --pretrain-epochs 15 --finetune-epochs 40
    python bench/person_detector.py --cv 3 --recipes ft15:15:1e-4 ft30:30:3e-4

``--cv K`` chooses the fine-tuning recipe without looking at the held-out
images: each recipe (``name:epochs:learning_rate[:glt_lr_multiplier]``) is
fine-tuned K times from the pre-trained body, on K - 1 stratified folds of the
400 training images (folds fixed by sha1 of the pixels) and validated on the
other; the mean and spread go to ``benchmarks/person_detector_cv.{json,md}``
and nothing is shipped. The held-out 100 are then measured once, for the
recipe chosen.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import larq_glt  # noqa: F401

from larq_glt import atomic, export, runs, summary
from larq_glt.training import TrainConfig, train

DATA = ROOT.parent / "shared" / "data"
SHIP = ROOT / "models" / "person_detect"


def stage(cfg: TrainConfig) -> dict:
    run = runs.RunDir(cfg.out)
    if run.model.exists() and run.last_epoch() >= cfg.epochs:
        print(f"{cfg.out}: done already", flush=True)
        return run.read_json(run.metrics)
    t0 = time.process_time()
    metrics = train(cfg, resume=run.config.exists())
    metrics["final"]["cpu_seconds"] = round(time.process_time() - t0, 1)
    atomic.write_json(run.metrics, metrics)
    return metrics


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pretrain-epochs", type=int, default=15)
    p.add_argument("--finetune-epochs", type=int, default=15)
    p.add_argument("--finetune-lr", type=float, default=1e-4)
    p.add_argument("--name", default="person-detect-glt", help="run directory name of the fine-tuning stage")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", default=str(ROOT / "runs"))
    p.add_argument("--glt-lr-multiplier", type=float, default=1.0,
                   help="fine-tuning: the GLT thresholds learn this many times faster")
    p.add_argument("--card-note", default="", help="a paragraph added to the model card (how it was chosen, caveats)")
    p.add_argument("--heldout-report", action="store_true",
                   help="after --cv and the final runs: every cross-validation fold model and every run under "
                        "--runs named person-detect-* scored on the held-out images (a diagnostic; choosing "
                        "by it would spend the held-out set)")
    p.add_argument("--cv", type=int, default=0, help="K > 1: cross-validate --recipes on the training images instead")
    p.add_argument("--recipes", nargs="+", default=["ft15-lr1e-4:15:1e-4", "ft30-lr3e-4:30:3e-4",
                                                     "ft30-lr1e-3:30:1e-3"],
                   help="--cv: fine-tuning recipes name:epochs:learning_rate[:glt_lr_multiplier]")
    args = p.parse_args(argv)

    pre = TrainConfig(dataset="folder", data_dir=str(DATA / "imagenette96"), encoding="glt",
                      epochs=args.pretrain_epochs, image_size=args.image_size, seed=args.seed,
                      out=f"{args.runs}/pretrain-imagenette-glt", progress=False)
    if args.heldout_report:
        return heldout_report(args, argv)
    pre_metrics = stage(pre)
    if args.cv:
        return cross_validate(args, pre, argv)
    fine = TrainConfig(dataset="vww", data_dir=str(DATA / "vww96"), encoding="glt", epochs=args.finetune_epochs,
                       image_size=args.image_size, seed=args.seed, val_fraction=0.2, batch_size=32,
                       learning_rate=args.finetune_lr, init_from=pre.out, out=f"{args.runs}/{args.name}",
                       model=_glt_model(args.glt_lr_multiplier), progress=False)
    fine_metrics = stage(fine)

    model = runs.load_model(fine.out)
    import larq_glt.data as data

    splits = data.load("vww", data_dir=fine.data_dir, image_size=fine.image_size, seed=fine.seed,
                       val_fraction=fine.val_fraction, augment=False)
    x_val, y_val = splits.arrays("val")
    result = export.export_keras(model, SHIP, class_names=list(splits.class_names), check_images=x_val,
                                 check_source=f"{len(x_val)} held-out vww96 images",
                                 extra_meta={"run_dir": f"runs/{args.name}", "dataset": "vww96 (fine-tune)"})
    logits = model.predict(x_val, verbose=0)
    accuracy = float((logits.argmax(1) == y_val).mean())
    per_class = {name: float((logits.argmax(1)[y_val == i] == i).mean()) for i, name in enumerate(splits.class_names)}
    # Without the optimizer state: a third of the size, and all a user needs to load or fine-tune.
    import tf_keras as keras

    bare = keras.models.load_model(runs.RunDir(fine.out).model, compile=False)
    with atomic.replace_file(SHIP / "model.keras") as tmp:
        bare.save(tmp)
    cost = summary.model_cost(model)["total"]
    rep = result.report
    card = {
        "accuracy_held_out": accuracy,
        "accuracy_per_class": per_class,
        "held_out_images": int(len(y_val)),
        "pretrain": {"val_accuracy": pre_metrics["final"]["val_accuracy"], "epochs": pre.epochs,
                     "cpu_seconds": pre_metrics["final"].get("cpu_seconds"),
                     "wall_seconds": round(sum(e["seconds"] for e in pre_metrics["epochs"]), 1)},
        "finetune": {"val_accuracy": fine_metrics["final"]["val_accuracy"], "epochs": fine.epochs,
                     "cpu_seconds": fine_metrics["final"].get("cpu_seconds"), "data": fine_metrics["final"]["data"],
                     "wall_seconds": round(sum(e["seconds"] for e in fine_metrics["epochs"]), 1),
                     "learning_rate": fine.learning_rate},
        "weight_bits_keras": cost["weight_bits"],
        "flatbuffer_weight_bits": rep["flatbuffer_weight_bits"],
        "binary_macs": rep["binary_macs"],
        "other_macs": rep["other_macs"],
        "flatbuffer_bytes": rep["flatbuffer_bytes"],
        "all_convs_binary": rep["all_convs_binary"],
        "thresholds": json.loads((SHIP / "encoder.json").read_text()).get("thresholds"),
        "command": "python bench/person_detector.py " + " ".join(_without_note(argv if argv is not None
                                                                                 else sys.argv[1:])),
        "recipe_cv": _cv_entry(fine.epochs, fine.learning_rate, args.glt_lr_multiplier),
        "note": args.card_note,
    }
    atomic.write_json(SHIP / "card.json", card)
    atomic.write_text(SHIP / "MODEL_CARD.md", render_card(card))
    print(render_card(card))
    return 0


def heldout_report(args, argv) -> int:
    """Held-out accuracy of every fold model and final run, beside its fold score."""
    import larq_glt.data as data

    cv_path = ROOT / "benchmarks" / "person_detector_cv.json"
    if not cv_path.exists():
        raise SystemExit(f"error: {cv_path} does not exist: run --cv first")
    cv = json.loads(cv_path.read_text())
    splits = data.load("vww", data_dir=str(DATA / "vww96"), image_size=args.image_size, seed=args.seed,
                       val_fraction=0.2, augment=False)
    x, y = splits.arrays("val")

    def score(run_dir) -> float:
        return float((runs.load_model(run_dir).predict(x, verbose=0).argmax(1) == y).mean())

    lines = ["# Person detector: held-out accuracy of the cross-validation models (diagnostic)", "",
             f"`python bench/person_detector.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             f"Each fold model of `benchmarks/person_detector_cv.md` (trained on two thirds of the 400 training "
             f"images) and each final run (all 400) scored on the {len(y)} held-out images. Measured after the "
             "recipe was chosen by cross-validation; choosing by these numbers would spend the held-out set.", "",
             "| recipe | fold accuracies (own fold) | the same models on the held-out images | final run on the "
             "held-out images |", "| --- | --- | --- | --- |"]
    def recipe_of(run_dir) -> tuple:
        c = json.loads((run_dir / "config.json").read_text())
        return c["epochs"], c["learning_rate"], c.get("model", {}).get("glt_lr_multiplier", 1.0)

    finals = sorted(p for p in Path(args.runs).glob("person-detect-*") if (p / "model.keras").exists())
    rows = []
    for r in cv["recipes"]:
        held = [score(Path(args.runs) / "person-cv" / f"{r['name']}-fold{f}") for f in range(cv["folds"])]
        same = [p for p in finals if recipe_of(p) == (r["epochs"], r["learning_rate"], r["glt_lr_multiplier"])]
        final = ", ".join(f"{score(p):.2f} (`runs/{p.name}`)" for p in same) or "–"
        rows.append({"recipe": r["name"], "fold": r["fold_accuracies"], "held_out": held, "final": final})
        lines.append(f"| {r['name']} | " + " ".join(f"{v:.2f}" for v in r["fold_accuracies"]) + " | "
                     + " ".join(f"{v:.2f}" for v in held) + f" | {final} |")
    atomic.write_text(ROOT / "benchmarks" / "person_detector_heldout.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _without_note(argv) -> list[str]:
    """The command line minus --card-note and its paragraph (the card shows the paragraph itself)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--card-note":
            skip = True
        elif not a.startswith("--card-note="):
            out.append(a)
    return out


def _cv_entry(epochs: int, lr: float, multiplier: float) -> dict | None:
    """This recipe's row of benchmarks/person_detector_cv.json, if it was cross-validated."""
    path = ROOT / "benchmarks" / "person_detector_cv.json"
    if not path.exists():
        return None
    cv = json.loads(path.read_text())
    for r in cv["recipes"]:
        if (r["epochs"], r["learning_rate"], r["glt_lr_multiplier"]) == (epochs, lr, multiplier):
            return {"name": r["name"], "accuracy": r["accuracy"], "folds": cv["folds"], "best": cv["best"],
                    "recipes": len(cv["recipes"])}
    return None


def _glt_model(multiplier: float) -> dict:
    return {} if multiplier == 1.0 else {"glt_lr_multiplier": multiplier}


def parse_recipe(text: str) -> dict:
    parts = text.split(":")
    try:
        if len(parts) not in (3, 4) or not parts[0]:
            raise ValueError
        recipe = {"name": parts[0], "epochs": int(parts[1]), "learning_rate": float(parts[2]),
                  "glt_lr_multiplier": float(parts[3]) if len(parts) == 4 else 1.0}
        if recipe["epochs"] < 1 or recipe["learning_rate"] <= 0 or recipe["glt_lr_multiplier"] <= 0:
            raise ValueError
    except ValueError:
        raise SystemExit(f"error: recipe {text!r} is not name:epochs:learning_rate[:glt_lr_multiplier] "
                         "with positive numbers") from None
    return recipe


def cross_validate(args, pre: TrainConfig, argv) -> int:
    """K-fold cross-validation of fine-tuning recipes on the training images only."""
    import hashlib

    import numpy as np

    import larq_glt.data as data
    from bench.encodings import stats
    from bench.folds import KFold

    recipes = [parse_recipe(r) for r in args.recipes]
    splits = data.load("vww", data_dir=str(DATA / "vww96"), image_size=args.image_size, seed=args.seed,
                       val_fraction=0.2, augment=False)
    x, y = splits.arrays("train")  # the held-out 100 ("val") are not touched
    names = [hashlib.sha1(img.tobytes()).hexdigest() for img in x]
    folds = KFold("vww96-train", x, y, names, splits.class_names, args.cv, batch_size=32)
    rows = []
    for recipe in recipes:
        accs = []
        for f in range(args.cv):
            cfg = TrainConfig(dataset="vww", encoding="glt", epochs=recipe["epochs"], image_size=args.image_size,
                              seed=f, batch_size=32, learning_rate=recipe["learning_rate"], init_from=pre.out,
                              model=_glt_model(recipe["glt_lr_multiplier"]),
                              out=f"{args.runs}/person-cv/{recipe['name']}-fold{f}", progress=False)
            run = runs.RunDir(cfg.out)
            if run.model.exists() and run.last_epoch() >= cfg.epochs:
                metrics = run.read_json(run.metrics)
            else:
                metrics = train(cfg, resume=run.config.exists(), splits=folds.splits(f))
            accs.append(metrics["final"]["val_accuracy"])
            print(f"{recipe['name']} fold {f}: {accs[-1]:.3f}", flush=True)
        rows.append({**recipe, "fold_accuracies": accs, "accuracy": stats(accs)})
    best = max(rows, key=lambda r: r["accuracy"]["mean"])
    result = {"command": "python bench/person_detector.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "folds": args.cv, "pool": int(len(y)), "fold_sizes": np.bincount(folds.fold).tolist(),
              "pretrain": pre.out.replace(str(ROOT) + "/", ""), "recipes": rows, "best": best["name"]}
    atomic.write_json(ROOT / "benchmarks" / "person_detector_cv.json", result)
    lines = ["# Person detector: choosing the fine-tuning recipe by cross-validation", "",
             f"`{result['command']}`", "",
             f"{args.cv}-fold cross-validation on the {len(y)} training images (folds stratified, fixed by sha1 of "
             f"the pixels; sizes {result['fold_sizes']}); every fold starts from the pre-trained body "
             f"`{result['pretrain']}`. The 100 held-out images are not used here.", "",
             "| recipe | epochs | learning rate | GLT lr multiplier | accuracy (mean ± std) | min–max | per fold |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        a = r["accuracy"]
        lines.append(f"| {r['name']} | {r['epochs']} | {r['learning_rate']:g} | {r['glt_lr_multiplier']:g} | "
                     f"{a['mean']:.3f} ± {a['std']:.3f} | {a['min']:.3f}–{a['max']:.3f} | "
                     + " ".join(f"{v:.3f}" for v in r["fold_accuracies"]) + " |")
    lines += ["", f"Highest mean: **{best['name']}**."]
    atomic.write_text(ROOT / "benchmarks" / "person_detector_cv.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def _cv_text(cv: dict | None) -> str:
    if not cv:
        return ""
    a = cv["accuracy"]
    best = cv["best"] == cv["name"]
    verdict = "the highest mean" if best else f"not the highest mean (that was {cv['best']})"
    return (f"**How the recipe was chosen.** {cv['recipes']} fine-tuning recipes were compared by "
            f"{cv['folds']}-fold cross-validation on the 400 training images only "
            f"(`benchmarks/person_detector_cv.md`); this one, `{cv['name']}`, scored "
            f"{100 * a['mean']:.1f}% ± {100 * (a['std'] or 0):.1f} there, {verdict}."
            + (" The held-out images were measured once, after the choice." if best else "") + "\n\n")


def render_card(c: dict) -> str:
    pc = ", ".join(f"{k} {100 * v:.1f}%" for k, v in c["accuracy_per_class"].items())
    return f"""# Model card: person_detect (fully-binarized GLT person detector)

**What it is.** The compact fully-binarized topology of larq-glt with a Generic
Learned Thermometer input (K = 8 learned thresholds per colour channel):
96×96×3 raw uint8 image → GLT (24 binary planes) → 6 binary convolutions (all
`LceBconv2d` after conversion: {c['all_convs_binary']}) → 2 logits (`non_person`, `person`).

**Size.** {c['weight_bits_keras']:,} weight bits at deployed precision
({c['weight_bits_keras'] / 1e6:.3f} Mbit, under 1 Mbit); {c['flatbuffer_weight_bits']:,} bits as stored in the
flatbuffer (bit-packed filters with padding bits, float multipliers/biases,
thresholds); flatbuffer {c['flatbuffer_bytes']:,} bytes. MACs per inference:
{c['binary_macs']:,} binary, {c['other_macs']:,} other.

**Training data.** Pre-trained on imagenette96 (9,469 ImageNet-subset images,
10 classes; validation accuracy {100 * c['pretrain']['val_accuracy']:.1f}% after
{c['pretrain']['epochs']} epochs), then fine-tuned on 400 of the 500 VWW images
available here (../shared/data/vww96, COCO photographs from the MLPerf Tiny VWW
test set), {c['finetune']['epochs']} epochs. The other {c['held_out_images']} images (a fixed
hash split, balanced per class) were never trained on.

**Accuracy on its own held-out images: {100 * c['accuracy_held_out']:.1f}%**
({c['held_out_images']} images; per class: {pc}). With only 400 training images this is
far from what the same network reaches with the full VWW training set
(~100k images): treat it as a demonstration model, and retrain with
`python -m larq_glt.train --dataset vww --data-dir <vw_coco2014_96>` for a product.

{_cv_text(c.get('recipe_cv'))}{(c['note'].strip() + chr(10) + chr(10)) if c.get('note') else ''}**Learned thresholds** (ADC codes, per channel R, G, B): {c['thresholds']}

**Reproduce:** `{c['command'].strip()}` (wall time of the training epochs on
this 2-core machine, shared with other jobs: pre-training {c['pretrain']['wall_seconds']:,.0f} s,
fine-tuning {c['finetune']['wall_seconds']:,.0f} s).
"""


if __name__ == "__main__":
    sys.exit(main())
