"""Where a distilled person detector loses accuracy: fitting its teacher, or the domain.

For each model (a run directory trained with ``--dataset unlabelled``, or the
shipped export ``models/person_detect``), as it is (an export carries its
person-logit offset, a run directory none):

- agreement with its teachers on a sample of its own *training* pool images
  (plain, no augmentation) and on its *held-out* pool images;
- agreement with the same teachers on the 500 ``vww96`` images (no label used);
- with the labels: the teachers' accuracy on ``vww96``, the model's, and the
  model's accuracy where the teachers are right and where they are wrong.

Reading it: training agreement no higher than held-out agreement means the
model underfits its teacher (more images like these will not help; capacity or
optimisation will). Held-out agreement close to the ``vww96`` agreement means
the pool's domain costs little. Nothing is chosen here: ``vww96`` only
describes models already chosen.

    python bench/fit_gap.py models/person_detect --out benchmarks/fit_gap
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Training images scored per model (spread over the training split).
TRAIN_SAMPLE = 3000


class FitGapError(Exception):
    """A model this benchmark cannot describe (one line for the user)."""


def agreement(pred: np.ndarray, target: np.ndarray, num_classes: int = 2) -> dict:
    """Plain and balanced (mean per-class) agreement of ``pred`` with ``target``."""
    pred, target = np.asarray(pred), np.asarray(target)
    per_class = {c: float(np.mean(pred[target == c] == c)) for c in range(num_classes) if np.any(target == c)}
    return {"images": int(len(target)), "agreement": float(np.mean(pred == target)),
            "balanced": float(np.mean(list(per_class.values()))), "per_class": per_class}


def against_labels(pred: np.ndarray, teacher: np.ndarray, labels: np.ndarray) -> dict:
    """The model's and the teachers' accuracy, and the model's where the teachers are right and wrong."""
    pred, teacher, labels = np.asarray(pred), np.asarray(teacher), np.asarray(labels)
    right = teacher == labels
    return {"teacher_accuracy": float(np.mean(right)), "accuracy": float(np.mean(pred == labels)),
            "accuracy_where_teacher_right": float(np.mean(pred[right] == labels[right])) if right.any() else None,
            "accuracy_where_teacher_wrong": float(np.mean(pred[~right] == labels[~right])) if (~right).any() else None,
            "teacher_wrong": int((~right).sum())}


def _config(path: Path):
    from bench import person_distil
    from larq_glt import runs
    from larq_glt.training import TrainConfig

    if person_distil._same_run(str(path), str(person_distil.SHIP)):
        card = person_distil.shipped_card()
        if not card or not card.get("train_command"):
            raise FitGapError(f"{path} has no model card with its training command")
        return person_distil.shipped_config(card)
    run = runs.RunDir(path)
    if not run.model.exists():
        raise FitGapError(f"{path} holds no finished run (model.keras)")
    cfg = TrainConfig.from_dict(run.read_json(run.config))
    if cfg.dataset != "unlabelled":
        raise FitGapError(f"{path} was not trained with --dataset unlabelled")
    return cfg


def measure(path: Path, vww_images, vww_labels) -> dict:
    import tensorflow as tf

    from bench import person_distil
    from larq_glt import runs, teachers
    from larq_glt.training import teacher_specs

    cfg = _config(path)
    splits = person_distil.pool_splits(cfg)
    names = tuple(splits.class_names)
    ensemble = teachers.load_all(teacher_specs(cfg), names)
    model = runs.load_model(path)

    def choices(x):
        t = np.concatenate([ensemble(tf.constant(x[i:i + 200])).numpy() for i in range(0, len(x), 200)]).argmax(1)
        return model.predict(x, batch_size=200, verbose=0).argmax(1), t

    train_x = splits.arrays("train", limit=TRAIN_SAMPLE, spread=True)[0]
    held_x = splits.arrays("val")[0]
    k = len(names)
    s_train, t_train = choices(train_x)
    s_held, t_held = choices(held_x)
    s_vww, t_vww = choices(vww_images)
    # vww96's label order (bench.anchors.CLASS_NAMES) against the model's
    from bench import anchors

    order = [names.index(n) for n in anchors.CLASS_NAMES]
    labels = np.asarray(order)[vww_labels]
    return {"model": str(path), "teachers": teacher_specs(cfg), "pool": cfg.data_dir,
            "training": agreement(s_train, t_train, k), "heldout": agreement(s_held, t_held, k),
            "vww96": {**agreement(s_vww, t_vww, k), **against_labels(s_vww, t_vww, labels)}}


def render(result: dict) -> str:
    pct = lambda v: "—" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    lines = [
        "# Fit or domain: where a distilled person detector loses accuracy", "",
        f"Produced by `{result['command']}`. Agreement is with the model's own teachers (their averaged "
        "probabilities' argmax); balanced is the mean of the per-class agreements. Training images: "
        f"up to {result['train_sample']:,} of the model's training pool images (all of them when it trained on "
        "fewer), plain (no augmentation). The model is "
        "scored as it is (an export carries its person-logit offset, a run directory none). vww96 labels are used "
        "only in the last four columns, to describe models already chosen.", "",
        "| model | training images | training agreement (balanced) | held-out agreement (balanced) "
        "| vww96 agreement (balanced) | teachers on vww96 | model on vww96 | model where teachers right / wrong |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        tr, he, v = r["training"], r["heldout"], r["vww96"]
        lines.append(
            f"| `{r['model']}` | {tr['images']:,} | {pct(tr['agreement'])} ({pct(tr['balanced'])}) | {pct(he['agreement'])} "
            f"({pct(he['balanced'])}) | {pct(v['agreement'])} ({pct(v['balanced'])}) | {pct(v['teacher_accuracy'])} "
            f"| {pct(v['accuracy'])} | {pct(v['accuracy_where_teacher_right'])} / "
            f"{pct(v['accuracy_where_teacher_wrong'])} ({v['teacher_wrong']} images) |")
    lines += ["", f"Wall time: {result['seconds']:,.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="run directories trained with --dataset unlabelled, or models/person_detect")
    p.add_argument("--images", default=None, help="folder with person/ and non_person/ (default: ../shared/data/vww96)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "fit_gap"), help="output path without extension")
    args = p.parse_args(argv)
    from bench import anchors
    from larq_glt import atomic

    t0 = time.time()
    folder = Path(args.images) if args.images else anchors.IMAGES
    if not folder.is_dir():
        print(f"error: {folder} does not exist (a folder with person/ and non_person/)", file=sys.stderr)
        return 2
    try:
        for m in args.models:
            _config(Path(m))  # every refusal before any work
    except FitGapError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    images, labels, _ = anchors.load_images(folder)
    rows = [measure(Path(m), images, labels) for m in args.models]
    shown = argv if argv is not None else sys.argv[1:]
    result = {"command": "python bench/fit_gap.py " + " ".join(shown), "train_sample": TRAIN_SAMPLE,
              "images": os.path.relpath(folder, ROOT), "rows": rows, "seconds": round(time.time() - t0, 1)}
    out = Path(args.out)
    atomic.write_json(out.with_suffix(".json"), result)
    atomic.write_text(out.with_suffix(".md"), render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
