"""Benchmark: input encodings on real images, and their robustness to tone changes.

The same compact fully-binarized topology and training recipe with each input
encoding — ``glt`` (learned thermometer), ``thermo`` (uniform thermometer),
``nbc`` (natural binary coding, the 8 bit-planes) and ``float`` (a
full-precision first convolution on the float image: the usual BNN reference) —
on Imagenette (``../shared/data/imagenette96``, the STL-10 stand-in) and on 500
real Visual Wake Words images (``../shared/data/vww96``). Every trained model is
then evaluated on its validation images under global tone changes a sensor sees
(:data:`CONDITIONS`). Writes ``benchmarks/encodings.json``, the figures under
``benchmarks/figures/`` and ``benchmarks/RESULTS.md`` (``bench/results_page.py``).

    .venv/bin/python bench/encodings.py            # the full benchmark (see the budget below)
    .venv/bin/python bench/encodings.py --smoke    # tiny end-to-end check; output in a temp dir
    .venv/bin/python bench/results_page.py         # re-render RESULTS.md from the JSON files

Protocol and budget (about 2 hours of this 2-core CPU machine when idle; the
estimates below are CPU seconds measured here, and an idle run's wall time was
about its CPU time — TensorFlow gets little from the second core at this size):

- Model: ``models.compact`` with the default blocks at ``--width 1`` (the
  default topology, ~0.27 Mbit) and K = 8 levels per colour channel (the same
  24 input planes for glt, thermo and nbc), at 64×64 px: the images are resized
  from 96, which cuts the MACs 2.25× (4×4/4 stem, 2×2 pool, final map 2×2).
- Recipe (every cell): Adam 2e-3 with cosine decay, batch 64, the default
  augmentation (flip, shift, and tone jitter of ±30 % in gamma, gain and
  contrast — narrower than every tone test condition below), GLT initialised
  uniform (so GLT starts as ``thermo`` and differs only by what it learns).
- Imagenette: the dataset's own split (9,469 train / 3,925 val images, 10
  classes), 20 epochs, seeds 0 and 1 (seed = initialisation, data order and
  augmentation). One epoch with validation: ~40 s CPU for glt (measured),
  about half that for float; ~25 s of tracing and saving per cell. So ~14 min
  per glt cell, ~7 min per float cell, ~90 min for the 8 cells.
- VWW (500 images, 250 per class): too few to train a BNN from scratch well,
  so the numbers are a small-data comparison, not a person-detection accuracy
  (the shipped model pre-trains on Imagenette instead). Protocol: stratified
  3-fold cross-validation, folds fixed by sha1 of the file names (not by the
  seed); fold f trains on the two other folds (333 images) with seed f for 60
  epochs and is validated on fold f (167 images), so every image is validated
  exactly once. ~1.4 s CPU per epoch: ~1.5 min per cell, ~18 min for 12 cells.
- Tone evaluation: ~30 s per Imagenette model, ~3 s per VWW model (~5 min).

Spread is over seeds (Imagenette) or folds (VWW, which mixes data and seed
variation): mean, sample standard deviation (n − 1) and min/max.

Each cell is an ordinary run directory under ``--work`` (default
``bench/_work/``, gitignored): finished cells are skipped, an interrupted cell
resumes from its last epoch (``training.train(resume=True)``), and the tone
evaluation is cached in the run directory (``tone.json``). Re-running the same
command continues; a finished cell trained with other settings is refused
(choose another ``--work``).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
import larq_glt  # noqa: F401  (selects legacy Keras before TensorFlow loads)
import numpy as np

from larq_glt import atomic
from larq_glt.data import tone

from bench.figures import FIGURES, plot_accuracy, plot_tone, plot_transfer
from bench.folds import FoldError, KFold

ENCODINGS = ("glt", "thermo", "nbc", "float")
# Also accepted: "glt-lrM", GLT whose thresholds learn M times faster than the
# network (ModelConfig.glt_lr_multiplier); the plain cells are left as they are.
_GLT_LR_PREFIX = "glt-lr"


def encoding_spec(name: str) -> tuple[str, dict]:
    """A cell's encoding name -> (the encoder, ModelConfig overrides)."""
    if name in ENCODINGS:
        return name, {}
    if name.startswith(_GLT_LR_PREFIX):
        try:
            m = float(name[len(_GLT_LR_PREFIX):])
        except ValueError:
            m = 0.0
        if m > 0:
            return "glt", {"glt_lr_multiplier": m}
    raise argparse.ArgumentTypeError(
        f"encoding {name!r}: choose from {', '.join(ENCODINGS)} or {_GLT_LR_PREFIX}M (M > 0, e.g. glt-lr10)")


def _encoding_arg(name: str) -> str:
    encoding_spec(name)
    return name
DATASETS = ("imagenette", "vww")
RESULTS_NAME = "encodings.json"


class BenchError(RuntimeError):
    """A benchmark that cannot run as asked (bad options, clashing work directory)."""


# -- tone conditions -----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Condition:
    key: str
    label: str
    description: str
    apply: Callable


def _identity(x):
    return x


CONDITIONS = (
    Condition("clean", "clean", "the validation images as stored", _identity),
    Condition("gamma_0.5", "gamma 0.5", "tone.apply_gamma(x, 0.5): shadows lifted", lambda x: tone.apply_gamma(x, 0.5)),
    Condition("gamma_2.0", "gamma 2.0", "tone.apply_gamma(x, 2.0): shadows crushed", lambda x: tone.apply_gamma(x, 2.0)),
    Condition("exposure_0.4", "exposure ×0.4", "tone.exposure(x, 0.4): under-exposed", lambda x: tone.exposure(x, 0.4)),
    Condition("exposure_1.8", "exposure ×1.8", "tone.exposure(x, 1.8): over-exposed, highlights clipped",
              lambda x: tone.exposure(x, 1.8)),
    Condition("contrast_0.5", "contrast ×0.5", "tone.low_contrast(x, 0.5): deviations from each image's mean halved",
              lambda x: tone.low_contrast(x, 0.5)),
)


def tone_accuracies(predict, images: np.ndarray, labels: np.ndarray, conditions=CONDITIONS) -> dict[str, float]:
    """Accuracy of ``predict`` (uint8 images -> logits) under each condition."""
    labels = np.asarray(labels)
    out = {}
    for c in conditions:
        logits = np.asarray(predict(c.apply(images)))
        out[c.key] = float(np.mean(np.argmax(logits, axis=-1) == labels)) if len(labels) else float("nan")
    return out


# -- statistics ------------------------------------------------------------------
def stats(values) -> dict:
    """mean, sample std (n - 1; None for one value), min, max and n."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {
        "n": int(v.size),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else None,
        "min": float(v.min()),
        "max": float(v.max()),
    }


def summarize(cells: list[dict], conditions=CONDITIONS) -> dict:
    """``{dataset: {encoding: {condition: stats}}}`` over the cells' replicates."""
    out: dict = {}
    for cell in cells:
        out.setdefault(cell["dataset"], {}).setdefault(cell["encoding"], [])
        out[cell["dataset"]][cell["encoding"]].append(cell)
    return {
        ds: {enc: {c.key: stats(r["tone"].get(c.key) for r in rows) for c in conditions} for enc, rows in encs.items()}
        for ds, encs in out.items()
    }


# -- data: one source per benchmark dataset --------------------------------------
class Holdout:
    """A dataset with a fixed train/validation split; replicate r trains with seed r."""

    protocol = "holdout"

    def __init__(self, prepared, batch_size: int):
        from larq_glt.data import AugmentConfig

        self.prepared = prepared
        self.batch_size = batch_size
        prepared.info.augment = AugmentConfig().to_dict()

    def splits(self, replicate: int):
        from larq_glt.data import AugmentConfig, DatasetSplits

        p = self.prepared
        return DatasetSplits(p.train, p.val, p.info, batch_size=self.batch_size, seed=replicate,
                             augment=AugmentConfig())

    def describe(self) -> dict:
        i = self.prepared.info
        return {"protocol": "holdout", "num_train": i.num_train, "num_val": i.num_val,
                "class_names": list(i.class_names), "split": i.split, "skipped": i.num_skipped}


def load_imagenette(args, image_size: int, limit: int | None) -> Holdout:
    from larq_glt.data import folder, synthetic

    common = dict(image_size=image_size, seed=0, val_fraction=0.1, limit=limit, cache="memory", memory_limit_mb=4096)
    if args.synthetic:
        return Holdout(synthetic.prepare(None, num_classes=4, **common), args.batch_size)
    return Holdout(folder.prepare(args.imagenette_dir, **common), args.batch_size)


def load_vww(args, image_size: int, limit: int | None) -> KFold:
    from larq_glt.data import split, synthetic, vww
    from larq_glt.data.images import report_skipped, scan_images
    from larq_glt.data.tree import list_class_tree

    if args.synthetic:
        n = limit or 300
        images, labels = synthetic.generate(n, image_size, 2, seed=1)
        names = [f"synthetic/{i:05d}" for i in range(n)]
        return KFold("synthetic", images, labels, names, ("class_0", "class_1"), args.vww_folds, args.batch_size)
    root = vww.locate(args.vww_dir, allow_download=False)
    listing = list_class_tree(root, vww.LAYOUT, class_names=vww.CLASSES)
    keep = split.subset(listing.names, np.arange(len(listing.paths)), limit, seed=0)
    paths = [listing.paths[i] for i in keep]
    scan = scan_images(paths, image_size, keep=True)
    report_skipped(scan.skipped, str(root))
    names = [listing.names[keep[i]] for i in scan.ok]
    labels = np.asarray(listing.labels)[keep][scan.ok]
    return KFold("vww", scan.images, labels, names, listing.class_names, args.vww_folds, args.batch_size,
                 root=str(root), skipped=scan.skipped)


def check_data(args) -> None:
    """Fail before any training when a dataset folder is missing (not an hour in)."""
    from larq_glt.data import vww

    if args.synthetic:
        return
    if "imagenette" in args.datasets and not (Path(args.imagenette_dir) / "train").is_dir():
        raise BenchError(f"--imagenette-dir {args.imagenette_dir} has no train/ folder (expected train/<class>/ "
                         f"and val/<class>/ image folders)")
    if "vww" in args.datasets:
        vww.locate(args.vww_dir, allow_download=False)


# -- plan --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class DatasetPlan:
    name: str  # imagenette | vww
    loader: str  # what TrainConfig.dataset records
    data_dir: str | None
    epochs: int
    replicates: tuple[int, ...]
    limit: int | None
    init: str = "scratch"  # scratch | imagenette (start from that encoding's Imagenette run)

    def replicate_label(self, r: int) -> str:
        return f"fold{r}" if self.name == "vww" else f"seed{r}"


def make_plans(args) -> list[DatasetPlan]:
    plans = []
    for name in args.datasets:
        if name == "imagenette":
            plans.append(DatasetPlan(name, "synthetic" if args.synthetic else "folder",
                                     None if args.synthetic else str(args.imagenette_dir), args.imagenette_epochs,
                                     tuple(range(args.imagenette_seeds)), args.limit))
        else:
            plans.append(DatasetPlan(name, "synthetic" if args.synthetic else "vww",
                                     None if args.synthetic else str(args.vww_dir), args.vww_epochs,
                                     tuple(range(args.vww_folds)), args.vww_limit, args.vww_init))
    return plans


def cell_dir(args, plan: DatasetPlan, encoding: str, replicate: int) -> Path:
    folder = plan.name if plan.init == "scratch" else f"{plan.name}-from-{plan.init}"
    return Path(args.work) / folder / f"{encoding}-{plan.replicate_label(replicate)}"


def init_run(args, plan: DatasetPlan, encoding: str, replicate: int) -> Path | None:
    """``--vww-init imagenette``: fold f starts from the finished Imagenette run
    of the same encoding with seed ``f mod --imagenette-seeds``."""
    if plan.init == "scratch":
        return None
    source = DatasetPlan("imagenette", "", None, 0, (), None)
    run = cell_dir(args, source, encoding, replicate % args.imagenette_seeds)
    if not (run / "model.keras").exists():
        raise BenchError(f"--vww-init imagenette: {run} has no finished model; run the Imagenette cells first "
                         f"(--datasets imagenette vww, in that order)")
    return run


def train_config(args, plan: DatasetPlan, encoding: str, replicate: int, out: Path):
    from larq_glt import training

    init = init_run(args, plan, encoding, replicate)
    encoder, model_overrides = encoding_spec(encoding)
    extra = {}
    if init is not None:
        if "init_from" not in {f.name for f in dataclasses.fields(training.TrainConfig)}:
            raise BenchError("--vww-init imagenette needs TrainConfig.init_from (transfer learning) in larq_glt.training")
        extra["init_from"] = str(init)
    return training.TrainConfig(
        dataset=plan.loader, data_dir=plan.data_dir, out=str(out), encoding=encoder, levels=args.levels,
        epochs=plan.epochs, batch_size=args.batch_size, image_size=args.image_size,
        learning_rate=args.learning_rate, seed=replicate, augment=True, limit=plan.limit,
        progress=args.verbose, model={"width": args.width, **model_overrides}, **extra,
    )


# Settings a finished cell must share with the command to be reused.
_CELL_IDENTITY = ("dataset", "encoding", "levels", "epochs", "batch_size", "image_size", "learning_rate", "seed",
                  "augment", "limit", "model", "init_from")


def _check_finished(run, cfg) -> None:
    saved = run.read_json(run.config)
    want = cfg.to_dict()
    clashes = [f"{k}: saved {saved.get(k)!r}, asked {want.get(k)!r}" for k in _CELL_IDENTITY
               if saved.get(k) != want.get(k)]
    if clashes:
        raise BenchError(f"{run.path} holds a finished run with other settings ({'; '.join(clashes)}); "
                         f"delete it or pass another --work directory")


# -- one cell: train (or resume, or reuse), then the tone evaluation -----------------
def _drop_old_checkpoints(run, last: int) -> None:
    """A finished cell keeps only its last checkpoint (60 epochs x 12 cells
    would otherwise hold ~2 GB of optimizer states nobody resumes from)."""
    import shutil

    for epoch in range(1, last):
        path = run.checkpoint(epoch)
        if path.exists():
            shutil.rmtree(path)


def run_cell(cfg, source, replicate: int, log, evaluate=None) -> dict:
    """Train the cell unless finished, evaluate it under every tone condition
    unless cached; returns its metrics, tone accuracies and times.

    ``evaluate(model, splits) -> {condition: accuracy}`` replaces the tone
    conditions (another benchmark's test sets; ``clean`` is the validation
    split as the pipeline gives it); cached the same way."""
    import tf_keras as keras

    from larq_glt import training
    from larq_glt.runs import RunDir, load_model

    run = RunDir(cfg.out)
    timing_file = run.path / "bench_timing.json"
    tone_file = run.path / "tone.json"
    metrics = run.read_json(run.metrics) if run.metrics.exists() else {}
    splits = None
    if "final" in metrics:
        _check_finished(run, cfg)
        log(f"  finished already: {run.path}")
    else:
        resumed_from = run.last_epoch()
        splits = source.splits(replicate)
        keras.backend.clear_session()
        cpu0, t0 = time.process_time(), time.time()
        metrics = training.train(cfg, resume=run.config.exists(), splits=splits)
        atomic.write_json(timing_file, {"train_cpu_s": round(time.process_time() - cpu0, 1),
                                        "train_wall_s": round(time.time() - t0, 1),
                                        "resumed_from_epoch": resumed_from})
        _drop_old_checkpoints(run, cfg.epochs)
        tone_file.unlink(missing_ok=True)  # a result of an earlier model, if any
    timing = run.read_json(timing_file) if timing_file.exists() else {}

    if tone_file.exists():
        tone_result = run.read_json(tone_file)
    else:
        splits = splits or source.splits(replicate)
        images, labels = splits.arrays("val")
        keras.backend.clear_session()
        model = load_model(run.path)
        cpu0, t0 = time.process_time(), time.time()
        if evaluate is None:
            acc = tone_accuracies(lambda x: model.predict(x, batch_size=256, verbose=0), images, labels)
        else:
            acc = evaluate(model, splits)
        tone_result = {"accuracy": acc, "num_val": int(len(labels)), "cpu_s": round(time.process_time() - cpu0, 1),
                       "wall_s": round(time.time() - t0, 1)}
        atomic.write_json(tone_file, tone_result)
    final = metrics["final"]
    if final.get("val_accuracy") is not None and abs(final["val_accuracy"] - tone_result["accuracy"]["clean"]) > 1e-3:
        log(f"  note: clean accuracy {tone_result['accuracy']['clean']:.4f} differs from the run's "
            f"{final['val_accuracy']:.4f}")
    return {
        "val_accuracy": final.get("val_accuracy"),
        "tone": tone_result["accuracy"],
        "num_train": final.get("data", {}).get("num_train"),
        "num_val": tone_result["num_val"],
        "epochs": final.get("epochs"),
        "weight_bits": final.get("weight_bits"),
        "binary_macs": final.get("binary_macs"),
        "thresholds": final.get("thresholds"),
        "train_wall_s": round(sum(e.get("seconds", 0.0) for e in metrics.get("epochs", [])), 1),
        "train_cpu_s": timing.get("train_cpu_s"),
        "resumed_from_epoch": timing.get("resumed_from_epoch"),
        "tone_cpu_s": tone_result["cpu_s"],
        "tone_wall_s": tone_result["wall_s"],
    }


# -- figures ---------------------------------------------------------------------------
def make_figures(result: dict, out_dir: Path) -> dict:
    """Draw every figure the results allow; returns their paths relative to ``out_dir``."""
    figs: dict = {"tone": {}, "transfer": {}}
    if not result["cells"]:
        return figs
    rel = f"{FIGURES}/encodings_accuracy.png"
    plot_accuracy(result, out_dir / rel)
    figs["accuracy"] = rel
    for ds in result["summary"]:
        rel = f"{FIGURES}/encodings_tone_{ds}.png"
        plot_tone(result, ds, out_dir / rel)
        figs["tone"][ds] = rel
        for enc in [e for e in result["settings"]["encodings"] if encoding_spec(e)[0] == "glt"]:
            glt = [c for c in result["cells"] if c["dataset"] == ds and c["encoding"] == enc and c.get("thresholds")]
            if not glt:
                continue
            rel = f"{FIGURES}/{enc.replace('-', '_')}_transfer_{ds}.png"
            unit = "fold" if result["datasets"][ds].get("protocol") == "kfold" else "seed"
            name = "GLT" if enc == "glt" else enc
            title = (f"{name} transfer curves, {ds} ({unit} {glt[0]['replicate']} solid"
                     + (f", {len(glt) - 1} other run(s) faint)" if len(glt) > 1 else ")"))
            plot_transfer([c["thresholds"] for c in glt], result["settings"]["levels"], title, out_dir / rel)
            if enc == "glt":
                figs["transfer"][ds] = rel
            else:
                figs.setdefault("transfer_variants", {}).setdefault(enc, {})[ds] = rel
    return figs


# -- main ------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--imagenette-dir", default=str(ROOT.parent / "shared" / "data" / "imagenette96"),
                   help="Imagenette tree with train/ and val/ class folders")
    p.add_argument("--vww-dir", default=str(ROOT.parent / "shared" / "data" / "vww96"),
                   help="folder with person/ and non_person/")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    p.add_argument("--encodings", nargs="+", default=list(ENCODINGS), type=_encoding_arg,
                   help=f"cells' encodings: {', '.join(ENCODINGS)}, or {_GLT_LR_PREFIX}M (GLT whose thresholds "
                        "learn M times faster)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--width", type=float, default=1.0, help="multiplier on the default blocks' filters")
    p.add_argument("--levels", type=int, default=8, help="thermometer levels K per colour channel")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--imagenette-epochs", type=int, default=20)
    p.add_argument("--imagenette-seeds", type=int, default=2)
    p.add_argument("--vww-epochs", type=int, default=60)
    p.add_argument("--vww-folds", type=int, default=3)
    p.add_argument("--vww-init", choices=("scratch", "imagenette"), default="scratch",
                   help="VWW folds train from scratch, or start from the Imagenette run of the same encoding "
                        "(seed = fold mod --imagenette-seeds; its classifier starts fresh)")
    p.add_argument("--limit", type=int, default=None, help="Imagenette: at most this many images per split")
    p.add_argument("--vww-limit", type=int, default=None, help="VWW: at most this many images in the pool")
    p.add_argument("--synthetic", action="store_true",
                   help="replace both datasets by the generated 'synthetic' one (tests)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny end-to-end check: 32 px, 1 epoch, 64 Imagenette images per split, 60 VWW images; "
                        "--work and --out default to a new temp directory")
    p.add_argument("--work", default=None, help="run directories of the cells [bench/_work; with --smoke a temp dir]")
    p.add_argument("--out", default=None,
                   help="where encodings.json, figures/ and RESULTS.md go [benchmarks; with --smoke a temp dir]")
    p.add_argument("--verbose", action="store_true", help="Keras progress output")
    args = p.parse_args(argv)
    if args.smoke:
        args.image_size, args.imagenette_epochs, args.vww_epochs = 32, 1, 1
        args.limit = args.limit or 64
        args.vww_limit = args.vww_limit or 60
    if args.work is None or args.out is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-encodings-smoke-")) if args.smoke else None
        args.work = args.work or str(tmp / "work" if tmp else ROOT / "bench" / "_work")
        args.out = args.out or str(tmp / "benchmarks" if tmp else ROOT / "benchmarks")
    if args.imagenette_seeds < 1:
        p.error("--imagenette-seeds must be at least 1")
    if args.vww_folds < 2:
        p.error("--vww-folds must be at least 2")
    ds = args.datasets
    if args.vww_init == "imagenette" and "imagenette" in ds and "vww" in ds and ds.index("vww") < ds.index("imagenette"):
        p.error("--vww-init imagenette: list imagenette before vww in --datasets (the VWW cells start from its runs)")
    return args


def _rel(path: Path) -> str:
    """Relative to the checkout when inside it or beside it (``../shared/data/...``)."""
    path = Path(path).resolve()
    try:
        path.relative_to(ROOT.parent)
    except ValueError:
        return str(path)
    return os.path.relpath(path, ROOT)


def settings_of(args) -> dict:
    return {
        "encodings": list(args.encodings), "image_size": args.image_size, "width": args.width,
        "levels": args.levels, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
        "optimizer": "Adam, cosine decay to 1% over the run", "glt_init": "uniform",
        "augment": "default AugmentConfig: flip, shift 0.125, brightness/contrast/gamma 0.3",
        "imagenette": {"epochs": args.imagenette_epochs, "seeds": args.imagenette_seeds, "limit": args.limit,
                       "data_dir": None if args.synthetic else _rel(args.imagenette_dir)},
        "vww": {"epochs": args.vww_epochs, "folds": args.vww_folds, "limit": args.vww_limit, "init": args.vww_init,
                "data_dir": None if args.synthetic else _rel(args.vww_dir)},
        "smoke": args.smoke, "synthetic": args.synthetic,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    import tensorflow as tf

    from bench import results_page

    argv = sys.argv[1:] if argv is None else list(argv)
    work, out = Path(args.work), Path(args.out)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    t_start, cpu_start = time.time(), time.process_time()
    result = {
        "benchmark": "encodings",
        "command": " ".join([".venv/bin/python bench/encodings.py"] + [shlex.quote(a) for a in argv]),
        "settings": settings_of(args),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "conditions": [{"key": c.key, "label": c.label, "description": c.description} for c in CONDITIONS],
        "datasets": {},
        "cells": [],
        "timing": {},
        "complete": False,
    }
    check_data(args)
    plans = make_plans(args)
    expected = sum(len(pl.replicates) for pl in plans) * len(args.encodings)
    result["expected_cells"] = expected
    log(f"work: {work}\nout: {out}\ncells: {expected}")

    def write(final: bool = False):
        result["summary"] = summarize(result["cells"])
        result["complete"] = final and len(result["cells"]) == expected
        result["timing"]["invocation_wall_s"] = round(time.time() - t_start, 1)
        result["timing"]["invocation_cpu_s"] = round(time.process_time() - cpu_start, 1)
        if final:
            cpu0 = time.process_time()
            result["figures"] = make_figures(result, out)
            result["timing"]["figures_cpu_s"] = round(time.process_time() - cpu0, 1)
        atomic.write_json(out / RESULTS_NAME, result)
        results_page.write(out)

    for plan in plans:
        cpu0, t0 = time.process_time(), time.time()
        loader = load_imagenette if plan.name == "imagenette" else load_vww
        source = loader(args, args.image_size, plan.limit)
        result["datasets"][plan.name] = {**source.describe(), "epochs": plan.epochs, "init": plan.init,
                                         "replicates": [plan.replicate_label(r) for r in plan.replicates]}
        result["timing"][plan.name] = {"load_cpu_s": round(time.process_time() - cpu0, 1),
                                       "load_wall_s": round(time.time() - t0, 1)}
        log(f"{plan.name}: {source.describe()}")
        for replicate in plan.replicates:
            for encoding in args.encodings:
                label = plan.replicate_label(replicate)
                run_dir = cell_dir(args, plan, encoding, replicate)
                log(f"cell {plan.name} {encoding} {label}")
                cfg = train_config(args, plan, encoding, replicate, run_dir)
                cell = run_cell(cfg, source, replicate, log)
                result["cells"].append({"dataset": plan.name, "encoding": encoding, "replicate": replicate,
                                        "replicate_label": label, "run": _rel(run_dir), **cell})
                tone_txt = ", ".join(f"{k} {v:.3f}" for k, v in cell["tone"].items())
                log(f"  {tone_txt}; train {cell['train_wall_s']:.0f} s")
                write()
        del source
    write(final=True)
    log(f"wrote {out / RESULTS_NAME} and {out / results_page.PAGE}")
    return 0


def cli() -> int:
    """``main`` with bad input reported as one line, not a traceback."""
    from larq_glt.data import DatasetError
    from larq_glt.models import ModelConfigError
    from larq_glt.runs import RunError
    from larq_glt.training import TrainingError

    try:
        return main()
    except (BenchError, FoldError, DatasetError, ModelConfigError, RunError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
