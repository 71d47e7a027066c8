"""Benchmark: block pruning and knowledge distillation on Imagenette.

Accuracy and deployed size of the compact fully-binarized network for pruning
ratios {0, 0.25, 0.5, 0.75}, each trained with and without knowledge
distillation from the full-precision counterpart (one shared teacher).
Writes ``benchmarks/prune_kd.json`` and ``benchmarks/PRUNE_KD.md``.

    .venv/bin/python bench/prune_kd.py --data-dir ../shared/data/imagenette96

Budget: about 1 hour on the 2-core CPU machine when idle, everything
included (~86 training images/s for the width-4 model at 64 px; KD adds the
teacher's forward pass; a busy machine takes longer):

- 64×64 images (Imagenette's 96×96 resized) instead of 96: 2.25× fewer MACs;
  the 4×4/4 stem and three 2×2 pools still leave a 2×2 final map.
- ``--limit 3000``: 3,000 of the 9,469 training images and 3,000 of the
  3,925 validation images (a fixed, class-mixed choice).
- One shared dense run (``--epochs 15``): every cell starts from its weights
  (``init_from``, as a user prunes a trained model) and then runs the same
  3 ramp + 4 fine-tune epochs, ratio 0 included, so the cells differ only in
  what is pruned and in the loss. The teacher trains for 12 epochs.
- ``--width 4`` on the default blocks: 3.5 Mbit of weights, well above the
  1 Mbit budget, with four 32-channel blocks in every pruning cell so the
  three ratios are exact (1, 2 or 3 blocks out of 4 per cell).

Accuracies are therefore far below what full-resolution, full-length training
gives; the comparison between cells is the point. Each cell is an ordinary run
directory under ``--runs``; finished cells are skipped and an interrupted cell
resumes from its last epoch, so re-running the same command continues.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
import larq_glt  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from larq_glt import atomic, training
from larq_glt.runs import RunDir

BUDGET_BITS = 1_000_000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "imagenette96"),
                   help="Imagenette tree with train/ and val/ class folders")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=3000, help="images per split")
    p.add_argument("--width", type=float, default=4.0, help="multiplier on the default blocks' filters")
    p.add_argument("--encoding", default="glt")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=15, help="epochs of the shared dense run every cell starts from")
    p.add_argument("--prune-epochs", type=int, default=3, help="ramp epochs of every cell")
    p.add_argument("--finetune-epochs", type=int, default=4, help="fine-tuning epochs of every cell")
    p.add_argument("--teacher-epochs", type=int, default=12)
    p.add_argument("--ratios", default="0,0.25,0.5,0.75", help="comma-separated pruning ratios")
    p.add_argument("--kd", default="off,on", help="comma-separated: off (cross-entropy only), on (distillation)")
    p.add_argument("--kd-alpha", type=float, default=0.5)
    p.add_argument("--kd-temperature", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", default=str(ROOT / "runs" / "bench_prune_kd"), help="run directories of the cells")
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "prune_kd.json"))
    p.add_argument("--report", default=str(ROOT / "benchmarks" / "PRUNE_KD.md"))
    p.add_argument("--verbose", action="store_true", help="Keras progress output")
    return p.parse_args(argv)


def base_config(args, out: Path, **kw) -> training.TrainConfig:
    return training.TrainConfig(
        dataset="folder", data_dir=args.data_dir, out=str(out), encoding=args.encoding,
        batch_size=args.batch_size, image_size=args.image_size, seed=args.seed,
        limit=args.limit, progress=args.verbose, model={"width": args.width}, **{"epochs": args.epochs, **kw},
    )


def run_cell(cfg: training.TrainConfig, splits) -> tuple[dict, float]:
    """Train (or resume, or skip when finished) one run; its metrics and the
    seconds spent now."""
    run = RunDir(cfg.out)
    if run.metrics.exists():
        metrics = run.read_json(run.metrics)
        if "final" in metrics:
            print(f"  finished already: {run.path}", flush=True)
            return metrics, 0.0
    t0 = time.time()
    keras.backend.clear_session()
    metrics = training.train(cfg, resume=run.config.exists(), splits=splits)
    return metrics, time.time() - t0


def cell_row(ratio: float, kd: bool, metrics: dict, run: Path, seconds: float) -> dict:
    final = metrics["final"]
    stages = metrics.get("stages", {})
    acc = lambda name: stages.get(name, {}).get("val_accuracy")  # noqa: E731
    return {
        "prune_ratio": ratio,
        "kd": kd,
        "val_accuracy": final["val_accuracy"],
        "before_pruning": acc("before_pruning"),
        "after_ramp": acc("after_ramp"),
        "after_finetune": acc("after_finetune"),
        "weight_bits": final["weight_bits"],
        "weight_bits_before_pruning": final.get("weight_bits_before_pruning", final["weight_bits"]),
        "binary_macs": final["binary_macs"],
        "binary_macs_before_pruning": final.get("binary_macs_before_pruning", final["binary_macs"]),
        "under_1_mbit": final["weight_bits"] <= BUDGET_BITS,
        "run": os.path.relpath(run, ROOT),
        "train_seconds": round(sum(e.get("seconds", 0) for e in metrics["epochs"]), 1),
        "seconds_this_invocation": round(seconds, 1),
    }


def verdict(rows: list[dict]) -> dict:
    """The acceptance check: a configuration under 1 Mbit within 3 points of
    the unpruned model (ratio 0, no distillation)."""
    ref = next((r for r in rows if r["prune_ratio"] == 0 and not r["kd"]), None)
    under = [r for r in rows if r["under_1_mbit"]]
    best = max(under, key=lambda r: r["val_accuracy"], default=None)
    out = {"unpruned_val_accuracy": ref["val_accuracy"] if ref else None, "best_under_1_mbit": best}
    if ref and best:
        out["gap_points"] = round(100 * (ref["val_accuracy"] - best["val_accuracy"]), 2)
        out["within_3_points"] = out["gap_points"] <= 3.0
        same_loss = next((r for r in rows if r["prune_ratio"] == 0 and r["kd"] == best["kd"]), None)
        if same_loss and same_loss is not ref:
            # the stricter comparison: the unpruned model trained with the same loss
            out["gap_points_same_loss"] = round(100 * (same_loss["val_accuracy"] - best["val_accuracy"]), 2)
    return out


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        "# Block pruning and knowledge distillation (Imagenette)",
        "",
        "Produced by `bench/prune_kd.py` (see its docstring for the budget choices). Command:",
        "",
        "```",
        result["command"],
        "```",
        "",
        f"Data: `{s['data_dir']}`, {s['image_size']}×{s['image_size']} px, at most {s['limit']} images per split; "
        f"model: default compact blocks at width {s['width']:g}, encoding `{s['encoding']}`; every cell starts "
        f"from one dense run of {s['epochs']} epochs (val accuracy {result['dense']['val_accuracy']:.4f}) and "
        f"runs {s['prune_epochs']} ramp + {s['finetune_epochs']} fine-tune epochs"
        + (f"; teacher: full-precision counterpart, {s['teacher_epochs']} epochs, val accuracy "
           f"{result['teacher']['val_accuracy']:.4f}; KD α = {s['kd_alpha']}, T = {s['kd_temperature']}"
           if result.get("teacher") else "")
        + f". Machine: {result['machine']}.",
        "",
        "| prune ratio | KD | weight bits | Mbit | binary MACs | acc. before pruning | after ramp | after fine-tune | < 1 Mbit |",
        "| ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    fmt = lambda v: "" if v is None else f"{v:.4f}"  # noqa: E731
    for r in result["cells"]:
        lines.append(
            f"| {r['prune_ratio']:g} | {'yes' if r['kd'] else 'no'} | {r['weight_bits']:,} | "
            f"{r['weight_bits'] / 1e6:.3f} | {r['binary_macs']:,} | {fmt(r['before_pruning'])} | "
            f"{fmt(r['after_ramp'])} | {fmt(r['val_accuracy'])} | {'yes' if r['under_1_mbit'] else 'no'} |"
        )
    v = result["verdict"]
    lines.append("")
    if v.get("best_under_1_mbit") and v.get("unpruned_val_accuracy") is not None:
        b = v["best_under_1_mbit"]
        lines.append(
            f"Best configuration under 1 Mbit: ratio {b['prune_ratio']:g}, KD {'on' if b['kd'] else 'off'}, "
            f"{b['weight_bits']:,} bits, accuracy {b['val_accuracy']:.4f}, vs {v['unpruned_val_accuracy']:.4f} unpruned "
            f"(ratio 0, no KD): "
            + (f"{v['gap_points']:.2f} points below it — " if v["gap_points"] >= 0
               else f"{-v['gap_points']:.2f} points above it — ")
            + ("within" if v["within_3_points"] else "NOT within") + " 3 points."
            + (f" Against the unpruned model trained with the same loss (ratio 0, KD "
               f"{'on' if b['kd'] else 'off'}): {v['gap_points_same_loss']:.2f} points below it."
               if "gap_points_same_loss" in v else "")
        )
    else:
        lines.append("Incomplete: the unpruned cell or a cell under 1 Mbit has not finished yet.")
    lines.append(f"Wall time of the last invocation: {result['seconds_this_invocation']:.0f} s.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    t_start = time.time()
    ratios = [float(r) for r in args.ratios.split(",")]
    kds = [k.strip() == "on" for k in args.kd.split(",")]
    runs = Path(args.runs)
    command = ("python bench/prune_kd.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                               else sys.argv[1:]))).strip()
    settings = {k: v for k, v in vars(args).items() if k not in ("runs", "results", "report", "verbose")}
    settings["data_dir"] = os.path.relpath(args.data_dir, ROOT)  # as seen from the checkout

    splits = training.load_data(base_config(args, runs / "data"))
    print(f"data: {splits.info.num_train} train, {splits.info.num_val} val images, "
          f"{splits.num_classes} classes", flush=True)

    teacher_row = None
    teacher_dir = runs / "teacher"
    if any(kds):
        print("teacher (full-precision counterpart)", flush=True)
        tcfg = training.teacher_config(base_config(args, runs / "student"))
        tcfg = training.TrainConfig.from_dict({**tcfg.to_dict(), "out": str(teacher_dir), "epochs": args.teacher_epochs})
        tmetrics, _ = run_cell(tcfg, splits)
        teacher_row = {"val_accuracy": tmetrics["final"]["val_accuracy"], "run": os.path.relpath(teacher_dir, ROOT),
                       "weight_bits": tmetrics["final"]["weight_bits"]}

    print("dense run (the starting point of every cell)", flush=True)
    dense_dir = runs / "dense"
    dmetrics, _ = run_cell(base_config(args, dense_dir), splits)
    dense_row = {"val_accuracy": dmetrics["final"]["val_accuracy"], "run": os.path.relpath(dense_dir, ROOT),
                 "weight_bits": dmetrics["final"]["weight_bits"], "epochs": args.epochs,
                 "train_seconds": round(sum(e.get("seconds", 0) for e in dmetrics["epochs"]), 1)}

    rows = []
    result = {"command": command, "settings": settings, "teacher": teacher_row, "dense": dense_row, "cells": rows,
              "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, TensorFlow {tf.__version__}"}
    for kd in kds:
        for ratio in ratios:
            name = f"ratio{ratio:g}-{'kd' if kd else 'ce'}"
            print(f"cell {name}", flush=True)
            cfg = base_config(
                args, runs / name, epochs=0, init_from=str(dense_dir), prune_ratio=ratio, prune_epochs=args.prune_epochs,
                finetune_epochs=args.finetune_epochs,
                kd_teacher=str(teacher_dir) if kd else None, kd_alpha=args.kd_alpha,
                kd_temperature=args.kd_temperature,
            )
            metrics, seconds = run_cell(cfg, splits)
            rows.append(cell_row(ratio, kd, metrics, runs / name, seconds))
            print(f"  val_accuracy {rows[-1]['val_accuracy']:.4f}, weight bits {rows[-1]['weight_bits']:,}", flush=True)
            result["verdict"] = verdict(rows)
            result["seconds_this_invocation"] = round(time.time() - t_start, 1)
            atomic.write_json(args.results, result)
            atomic.write_text(args.report, markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
