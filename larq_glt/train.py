"""Command line: ``python -m larq_glt.train --dataset vww [options]``.

Trains the compact fully-binarized network with the chosen input encoding and
writes a run directory (model, metrics, checkpoints, TensorBoard logs, size
summary, GLT transfer curve). ``--resume`` continues an interrupted run.

Block pruning and knowledge distillation (see :mod:`larq_glt.pruning`,
:mod:`larq_glt.distillation` and :mod:`larq_glt.training`)::

    python -m larq_glt.train --dataset folder --data-dir ../shared/data/imagenette96 \
        --width 4 --epochs 20 --prune-ratio 0.5 --prune-epochs 5 --finetune-epochs 5 \
        --kd-teacher auto --max-model-bits 1000000
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import larq_glt  # noqa: F401
from larq_glt.cli import HelpFormatter

DATASETS = ("vww", "stl10", "folder", "synthetic", "unlabelled")
ENCODINGS = ("glt", "thermo", "nbc", "float")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m larq_glt.train",
        description="Train a fully-binarized network with a Generic Learned Thermometer (or baseline) input encoding.",
        formatter_class=HelpFormatter,
    )
    d = p.add_argument_group("data")
    d.add_argument("--dataset", choices=DATASETS, required=True,
                   help="vww: MLPerf Tiny vw_coco2014_96 layout (person/, non_person/); stl10: tensorflow-datasets; "
                        "folder: class-per-subfolder tree with train/ and val/; synthetic: generated in memory; "
                        "unlabelled: any image tree labelled by --kd-teacher only (validation: agreement with "
                        "the teacher on a held-out --val-fraction)")
    d.add_argument("--data-dir", help="dataset root (vww, folder) or tensorflow-datasets data dir (stl10)")
    d.add_argument("--image-size", type=int, default=96, help="square input side in pixels (8..1024; the default topology needs 29 or more); "
                        "images are resized to it")
    d.add_argument("--limit", type=int, help="use at most this many images in each split, training and validation alike (smoke runs)")
    d.add_argument("--val-fraction", type=float, default=0.1,
                   help="validation share for datasets without a split (vww, unlabelled)")
    d.add_argument("--unlabelled", action="append", default=[], metavar="DIR",
                   help="a folder of images without labels (any tree) added to training, labelled by --kd-teacher "
                        "only; repeatable")
    d.add_argument("--class-names", help="comma-separated classes of --dataset unlabelled "
                                         "(default: the first teacher's classes=)")
    d.add_argument("--no-augment", dest="augment", action="store_false",
                   help="disable flips, shifts, zoom and brightness/contrast/gamma jitter")
    d.add_argument("--zoom", type=float, default=0.0,
                   help="random zoom: a square crop of side uniform in [1 - ZOOM, 1] of the image's, resized back "
                        "(0 = off)")
    d.add_argument("--mosaic", type=float, default=0.0, metavar="P",
                   help="probability a training image becomes a mosaic (2x2 by default: itself and three other "
                        "images at half side; small subjects in clutter); --dataset unlabelled only, the teacher "
                        "labels it (0 = off)")
    d.add_argument("--mosaic-grid", type=int, default=2, metavar="K",
                   help="largest mosaic: each is k x k images at 1/k side, k uniform in 2..K (2..4) [2]")
    d.add_argument("--sensor", choices=("srgb", "linear"), default="srgb",
                   help="srgb: the images as stored; linear: the 8-bit codes of a linear sensor's ADC (inverse sRGB, "
                        "random exposure per image, shot and read noise, full-well clipping; larq_glt/data/sensor.py)")
    d.add_argument("--sensor-full-well", type=float, metavar="E",
                   help="linear sensor: full-well capacity in electrons (= ADC code 255) [6000]")
    d.add_argument("--sensor-read-noise", type=float, metavar="E", help="linear sensor: read noise, electrons rms [3]")
    d.add_argument("--sensor-exposure", type=float, nargs=2, metavar=("MIN", "MAX"),
                   help="linear sensor: exposure gain range, log-uniform per image (1 = the photo's white at full "
                        "well) [0.125 1]")
    m = p.add_argument_group("model")
    m.add_argument("--encoding", choices=ENCODINGS, default="glt",
                   help="input encoding: glt (learned thermometer), thermo (uniform thermometer), "
                        "nbc (8 bit-planes), float (full-precision first conv)")
    m.add_argument("--levels", type=int, default=8,
                   help="thermometer levels K per colour channel (glt, thermo); 8 = the bit budget of nbc")
    m.add_argument("--shared-thresholds", dest="per_channel", action="store_false",
                   help="GLT: one threshold set shared by all colour channels (default: one per channel)")
    m.add_argument("--glt-init", choices=("uniform", "quantile"), default="quantile",
                   help="GLT threshold initialisation: uniform thermometer or training-data quantiles (the default: "
                        "on linear-sensor data the thresholds then start where the pixels are, benchmarks/sensor.md)")
    m.add_argument("--glt-lr-multiplier", type=float, default=10.0,
                   help="GLT: the thresholds learn this many times faster than the network's weights (10: chosen by "
                        "bench/glt_dynamics.py; 1 was the default before, when they barely moved)")
    m.add_argument("--width", type=float, default=1.0, help="multiplier on every conv's filter count")
    m.add_argument("--model-config", help="JSON object of larq_glt.models.ModelConfig overrides, e.g. '{\"stem_filters\": 64}'")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=30, help="training epochs")
    t.add_argument("--batch-size", type=int, default=64, help="batch size")
    t.add_argument("--learning-rate", type=float, default=2e-3, help="Adam learning rate (cosine decay to 1%%)")
    t.add_argument("--seed", type=int, default=0, help="seed for weights, data order and augmentation")
    t.add_argument("--out", help="run directory (default: runs/<dataset>-<encoding>)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; every option not given is the "
                        "saved run's, a given one that defines the run (data, model, seed, ...) must agree with it; "
                        "a larger --epochs extends the run (see the README)")
    t.add_argument("--distribute", choices=("mirrored", "multiworker"),
                   help="tf.distribute strategy: mirrored (all local GPUs) or multiworker (cluster from TF_CONFIG)")
    t.add_argument("--quiet", dest="progress", action="store_false", help="no progress bars")
    t.add_argument("--init-from", metavar="RUN",
                   help="start from the weights of a trained run (directory or .keras) with the same topology, or "
                        "of an export (its folder or .tflite, e.g. models/person_detect: the weights' signs, folded "
                        "batch norms and GLT thresholds are recovered from the flatbuffer); a classifier for another "
                        "class count starts fresh (e.g. pre-train on folder, fine-tune on vww)")
    r = p.add_argument_group("block pruning (after the --epochs of dense training)")
    r.add_argument("--prune-ratio", type=float, default=0.0,
                   help="share of every prunable conv's output channels to remove (0 <= R < 1), in whole blocks "
                        "balanced across groups; the model is then physically shrunk")
    r.add_argument("--prune-block", type=int, default=32,
                   help="channels per pruned block: a multiple of 32 (one bit-packed word of the next conv's input)")
    r.add_argument("--prune-epochs", type=int, default=0,
                   help="epochs over which the masks ramp (cubic schedule) to --prune-ratio; 0 prunes in one shot")
    r.add_argument("--finetune-epochs", type=int,
                   help="epochs of fine-tuning the shrunk model; unset: as many as --prune-epochs")
    r.add_argument("--prune-learning-rate", type=float,
                   help="learning rate of the ramp (constant) and fine-tuning (cosine decay); unset: half --learning-rate")
    r.add_argument("--max-model-bits", type=int,
                   help="fail (before training) unless the final model's weights fit in this many bits, "
                        "e.g. 1000000 for a 1 Mbit budget")
    k = p.add_argument_group("knowledge distillation")
    k.add_argument("--kd-teacher", metavar="PATH[:OPTIONS]|auto", action="append",
                   help="teacher for distillation, repeatable (probabilities averaged): 'auto' trains the "
                        "full-precision counterpart first in OUT/teacher/; or a run directory, .keras, .h5 or "
                        ".tflite file, with options after a colon: input=raw|unit|symmetric (pixel, pixel/255, "
                        "pixel/127.5-1; needed for float inputs), output=probabilities|logits (derived when "
                        "possible), classes=A+B (output order; needed outside larq-glt runs). E.g. "
                        "../shared/reference_models/mlperf_tiny_vww_96.h5:input=unit,classes=non_person+person")
    k.add_argument("--kd-alpha", type=float, default=0.5,
                   help="weight of the label cross-entropy; 1 - alpha weighs T^2 * KL(teacher || student)")
    k.add_argument("--kd-temperature", type=float, default=4.0, help="softmax temperature T of the distillation term")
    k.add_argument("--kd-mixup", type=float, default=0.0,
                   help="share of each distillation batch replaced by blends of two images (uniform weight), "
                        "labelled by the teacher only: inputs no dataset holds (0 = off)")
    k.add_argument("--kd-class-balance", action="store_true",
                   help="weigh each example so that the classes the teacher sees weigh alike in every batch "
                        "(a pool with few persons teaches persons as much as the rest)")
    k.add_argument("--kd-hint", metavar="STUDENT_LAYER:TEACHER_LAYER",
                   help="the student also learns this Keras teacher layer's feature map (FitNets hint: a 1x1 "
                        "head on the student layer, cosine per position, same spatial size; training only), "
                        "e.g. block4_bn:activation_26 for the MLPerf VWW teacher")
    k.add_argument("--kd-hint-weight", type=float,
                   help="weight of the hint term (default 0.25: larq_glt.hints.DEFAULT_WEIGHT)")
    k.add_argument("--kd-teacher-epochs", type=int, help="epochs of the 'auto' teacher; unset: --epochs")
    return p


class UsageError(ValueError):
    """A bad command line: one ``error:`` line and exit status 2, like argparse's own."""


def config_from_args(args, out=None):
    from larq_glt.training import TrainConfig

    model = {}
    if args.model_config:
        try:
            model = json.loads(args.model_config)
        except json.JSONDecodeError as e:
            raise UsageError(f"--model-config is not a JSON object: {e}") from None
        if not isinstance(model, dict):
            raise UsageError("--model-config must be a JSON object")
    if args.width != 1.0:
        model["width"] = args.width
    if args.encoding == "glt" and "glt_lr_multiplier" not in model:  # checked in train_config.check_options
        model["glt_lr_multiplier"] = args.glt_lr_multiplier
    sensor_params = {}
    if args.sensor_full_well is not None:
        sensor_params["full_well"] = args.sensor_full_well
    if args.sensor_read_noise is not None:
        sensor_params["read_noise"] = args.sensor_read_noise
    if args.sensor_exposure is not None:
        sensor_params["exposure_min"], sensor_params["exposure_max"] = args.sensor_exposure
    if sensor_params and args.sensor != "linear":
        raise UsageError("--sensor-full-well, --sensor-read-noise and --sensor-exposure need --sensor linear")
    return TrainConfig(
        dataset=args.dataset,
        data_dir=args.data_dir,
        out=out or args.out or f"runs/{args.dataset}-{args.encoding}",
        encoding=args.encoding,
        levels=args.levels,
        per_channel=args.per_channel,
        glt_init=args.glt_init,
        epochs=args.epochs,
        batch_size=args.batch_size,
        image_size=args.image_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        augment=args.augment,
        limit=args.limit,
        val_fraction=args.val_fraction,
        distribute=args.distribute,
        progress=args.progress,
        model=model,
        prune_ratio=args.prune_ratio,
        prune_block=args.prune_block,
        prune_epochs=args.prune_epochs,
        finetune_epochs=args.finetune_epochs,
        prune_learning_rate=args.prune_learning_rate,
        kd_teacher=(args.kd_teacher[0] if len(args.kd_teacher) == 1 else list(args.kd_teacher))
        if args.kd_teacher else None,
        unlabelled=list(args.unlabelled),
        zoom=args.zoom,
        mosaic=args.mosaic,
        mosaic_grid=args.mosaic_grid,
        kd_mixup=args.kd_mixup,
        kd_class_balance=args.kd_class_balance,
        kd_hint=args.kd_hint,
        kd_hint_weight=args.kd_hint_weight,
        unlabelled_classes=args.class_names.split(",") if args.class_names else None,
        kd_alpha=args.kd_alpha,
        kd_temperature=args.kd_temperature,
        kd_teacher_epochs=args.kd_teacher_epochs,
        max_model_bits=args.max_model_bits,
        init_from=args.init_from,
        sensor=args.sensor,
        sensor_params=sensor_params,
    )


# Command-line destinations that set a TrainConfig field of another name
# (the model overrides all go to ``model``); ``out`` and ``resume`` set none.
_FIELD_OF = {"class_names": "unlabelled_classes", "width": "model", "glt_lr_multiplier": "model",
             "model_config": "model"}
# Options of one invocation, never taken from the saved run.
_PER_INVOCATION = ("progress", "distribute")


def given_options(argv) -> set:
    """The destinations the command line sets explicitly (not by default)."""
    p = build_parser()
    for action in p._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return set(vars(p.parse_args(argv)))


def resumed_config(args, given: set, out: str):
    """The configuration of ``--resume``: the saved run's, with the options
    given on this command line on top (a clash is then refused by
    ``training.train`` for the options that define the run)."""
    import dataclasses

    from larq_glt.runs import RunDir
    from larq_glt.training import TrainConfig

    cli = config_from_args(args, out)
    run = RunDir(out)
    if not run.config.exists():
        return cli  # training.train says there is nothing to resume
    saved = TrainConfig.from_dict(run.read_json(run.config))
    fields = {_FIELD_OF.get(dest, dest) for dest in given} & {f.name for f in dataclasses.fields(TrainConfig)}
    overrides = {f: getattr(cli, f) for f in fields | set(_PER_INVOCATION)}
    if "model" in fields:
        model = json.loads(args.model_config) if "model_config" in given else dict(saved.model)
        for key in ("width", "glt_lr_multiplier"):
            if key in given:
                model[key] = getattr(args, key)
        overrides["model"] = model
    overrides["out"] = out
    return dataclasses.replace(saved, **overrides)


def check_args(args) -> None:
    """What the CLI refuses before importing TensorFlow (the rest: train_config.check_options)."""
    prunes_a_loaded_model = args.init_from and (args.prune_ratio > 0 or args.prune_epochs > 0)
    if args.epochs < (0 if prunes_a_loaded_model else 1):
        raise UsageError("--epochs must be at least 1 (0 only to prune a model loaded with --init-from), "
                         f"got {args.epochs}")
    for name in ("prune_epochs", "finetune_epochs"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be 0 or more")


def interrupted_message(out, argv) -> str:
    """Where an interrupted run stopped, and the command that continues it."""
    from larq_glt.runs import RunDir, RunError

    def epochs(path):
        try:
            return RunDir(path).last_epoch()
        except (RunError, ValueError, KeyError):
            return 0

    done, teacher = epochs(out), epochs(Path(out) / "teacher")
    if not (done or teacher):
        return f"interrupted before the first epoch was saved; nothing to resume in {out}"
    what = f"{done} completed epoch(s)" if done else f"a distillation teacher with {teacher} epoch(s)"
    again = list(argv) + ([] if "--resume" in argv else ["--resume"])
    return f"interrupted: {out} holds {what}; continue with\n  python -m larq_glt.train {shlex.join(again)}"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_args(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from larq_glt.data import DatasetError
    from larq_glt.distillation import DistillationError
    from larq_glt.models import ModelConfigError
    from larq_glt.pruning import PruningError
    from larq_glt.runs import RunError
    from larq_glt.training import TrainingError, train

    out = args.out or f"runs/{args.dataset}-{args.encoding}"
    try:
        cfg = config_from_args(args, out)
        if args.resume:
            cfg = resumed_config(args, given_options(sys.argv[1:] if argv is None else argv), out)
        metrics = train(cfg, resume=args.resume)
    except KeyboardInterrupt:
        print(interrupted_message(out, sys.argv[1:] if argv is None else argv), file=sys.stderr)
        return 130  # the shell's code for a SIGINT
    except (UsageError, DatasetError, DistillationError, ModelConfigError, PruningError, RunError,
            TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    final = metrics["final"]
    before = ""
    if "weight_bits_before_pruning" in final:
        before = f" (before pruning {final['weight_bits_before_pruning']:,})"
    print(
        f"done: {cfg.out}  val_accuracy {final['val_accuracy']:.4f}  "
        f"weight bits {final['weight_bits']:,}{before}  binary MACs {final['binary_macs']:,}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
