"""Training: a resumable, deterministic training run into a run directory.

```python
from larq_glt import training
result = training.train(training.TrainConfig(dataset="synthetic", epochs=1, out="runs/smoke"))
print(result["final"]["val_accuracy"])
```

Every epoch ends with a checkpoint (model + optimizer state) and an atomically
written ``state.json``; ``resume=True`` restores the last one and continues.
The data order and augmentation of epoch *e* depend only on ``(seed, e)``, so a
run interrupted and resumed on the CPU gives the same weights as one that was
not interrupted. See :mod:`larq_glt.runs` for the directory layout.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path

import larq_glt  # noqa: F401
import numpy as np
import tensorflow as tf
import tf_keras as keras

from larq_glt import atomic, data, encoders, models, plots, summary
from larq_glt.runs import RunDir, RunError

__all__ = ["TrainConfig", "train", "TrainingError"]


class TrainingError(RuntimeError):
    """A training run that cannot start or continue (bad options, clashing run dir)."""


@dataclasses.dataclass
class TrainConfig:
    """Options of one training run (what ``python -m larq_glt.train`` sets).

    ``model`` holds :class:`larq_glt.models.ModelConfig` overrides (width,
    blocks, ...); ``encoding``, ``levels``, ``image_size`` and the dataset's
    class count are applied on top.
    """

    dataset: str = "synthetic"
    data_dir: str | None = None
    out: str = "runs/run"
    encoding: str = "glt"
    levels: int = encoders.DEFAULT_LEVELS
    per_channel: bool = True
    glt_init: str = "uniform"
    epochs: int = 30
    batch_size: int = 64
    image_size: int = 96
    learning_rate: float = 2e-3
    seed: int = 0
    augment: bool = True
    limit: int | None = None
    val_fraction: float = 0.1
    distribute: str | None = None
    progress: bool = True
    model: dict = dataclasses.field(default_factory=dict)

    # Options that define the run: a resumed run must agree on these.
    _IDENTITY = ("dataset", "encoding", "levels", "per_channel", "image_size", "seed", "model", "batch_size")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _strategy(name: str | None):
    if name in (None, "", "none"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        # Reads the cluster from TF_CONFIG; with none set it is one worker.
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainingError(f"--distribute must be 'mirrored' or 'multiworker', got {name!r}")


def model_config_for(cfg: TrainConfig, num_classes: int) -> models.ModelConfig:
    return models.ModelConfig.from_dict(
        {
            **models.ModelConfig().to_dict(),
            **cfg.model,
            "input_size": cfg.image_size,
            "num_classes": num_classes,
            "encoding": cfg.encoding,
            "levels": cfg.levels,
            "per_channel": cfg.per_channel,
        }
    )


def _check_resume(run: RunDir, cfg: TrainConfig, resume: bool) -> TrainConfig:
    has_state = run.state.exists() or run.model.exists()
    if not resume:
        if has_state:
            raise TrainingError(
                f"{run.path} already holds a run; pass --resume to continue it, or choose another --out"
            )
        return cfg
    if not run.config.exists():
        raise TrainingError(f"--resume: {run.path} has no config.json, so there is no run to resume")
    saved = TrainConfig.from_dict(run.read_json(run.config))
    clashes = [
        f"{k}: saved {getattr(saved, k)!r}, given {getattr(cfg, k)!r}"
        for k in TrainConfig._IDENTITY
        if getattr(saved, k) != getattr(cfg, k)
    ]
    if clashes:
        raise TrainingError("--resume with options that differ from the saved run: " + "; ".join(clashes))
    return cfg


def _save_checkpoint(run: RunDir, ckpt: tf.train.Checkpoint, epoch: int) -> None:
    final = run.checkpoint(epoch)
    with atomic.directory(final) as tmp:
        ckpt.write(str(tmp / "ckpt"))


def _restore_checkpoint(run: RunDir, ckpt: tf.train.Checkpoint, epoch: int) -> None:
    path = run.checkpoint(epoch)
    if not path.exists():
        raise RunError(f"state.json says {epoch} epochs are done but {path} is missing")
    ckpt.read(str(path / "ckpt")).expect_partial()


def _write_summaries(run: RunDir, model: keras.Model) -> dict:
    cost = summary.model_cost(model)
    text = summary.format_table(cost) + "\n" + summary.larq_summary_text(model)
    atomic.write_text(run.summary_txt, text)
    atomic.write_json(run.summary_json, cost)
    return cost


def train(cfg: TrainConfig, resume: bool = False, _interrupt_after: int | None = None) -> dict:
    """Train (or resume) a run; returns the final metrics dictionary.

    ``_interrupt_after`` (tests only) stops as an interruption would, right
    after that epoch's checkpoint, without the end-of-run artifacts.
    """
    run = RunDir(cfg.out)
    cfg = _check_resume(run, cfg, resume)
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    strategy = _strategy(cfg.distribute)

    splits = data.load(
        cfg.dataset,
        data_dir=cfg.data_dir,
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        augment=cfg.augment,
        val_fraction=cfg.val_fraction,
        limit=cfg.limit,
    )
    mcfg = model_config_for(cfg, splits.num_classes)

    with strategy.scope():
        model = models.compact(mcfg)
        total_steps = max(1, splits.steps_per_epoch * cfg.epochs)
        schedule = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, total_steps, alpha=0.01)
        optimizer = keras.optimizers.Adam(schedule)
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)

    start = run.last_epoch() if resume else 0
    metrics = run.read_json(run.metrics) if (resume and run.metrics.exists()) else {"epochs": []}
    metrics["epochs"] = [e for e in metrics["epochs"] if e["epoch"] <= start]
    if start:
        _restore_checkpoint(run, ckpt, start)
        print(f"resuming {run.path} after epoch {start}", file=sys.stderr)
    else:
        run.path.mkdir(parents=True, exist_ok=True)
        if cfg.encoding == "glt" and cfg.glt_init == "quantile":
            model.get_layer("encoder").init_from_data(splits.arrays("train", limit=2048)[0])
    atomic.write_json(run.config, {**cfg.to_dict(), "model_config": mcfg.to_dict(), "class_names": list(splits.class_names)})

    verbose = (1 if sys.stdout.isatty() else 2) if cfg.progress else 0
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False, profile_batch=0)
    for epoch in range(start, cfg.epochs):
        t0 = time.time()
        hist = model.fit(
            splits.train_epoch(epoch),
            initial_epoch=epoch,
            epochs=epoch + 1,
            verbose=verbose,
            callbacks=[tensorboard],
        )
        val_loss, val_acc = model.evaluate(splits.val, verbose=0)
        metrics["epochs"].append(
            {
                "epoch": epoch + 1,
                "loss": float(hist.history["loss"][-1]),
                "accuracy": float(hist.history["accuracy"][-1]),
                "val_loss": float(val_loss),
                "val_accuracy": float(val_acc),
                "seconds": round(time.time() - t0, 2),
            }
        )
        if cfg.progress:
            print(f"epoch {epoch + 1}/{cfg.epochs}: val_accuracy {val_acc:.4f}", file=sys.stderr)
        _save_checkpoint(run, ckpt, epoch + 1)
        atomic.write_json(run.metrics, metrics)
        atomic.write_json(run.state, {"completed_epochs": epoch + 1})
        if _interrupt_after is not None and epoch + 1 >= _interrupt_after:
            return metrics

    last = metrics["epochs"][-1] if metrics["epochs"] else {}
    metrics["final"] = {
        "val_accuracy": last.get("val_accuracy"),
        "val_loss": last.get("val_loss"),
        "epochs": cfg.epochs,
        "data": splits.info.to_dict(),
    }
    with atomic.replace_file(run.model) as tmp:
        model.save(tmp)
    cost = _write_summaries(run, model)
    metrics["final"]["weight_bits"] = cost["total"]["weight_bits"]
    metrics["final"]["binary_macs"] = cost["total"]["binary_macs"]
    encoder = model.get_layer("encoder")
    if isinstance(encoder, encoders._ThermometerBase):
        plots.transfer_curve(encoder, run.transfer_curve, title=f"{type(encoder).__name__} transfer curve ({cfg.dataset})")
        metrics["final"]["thresholds"] = encoder.thresholds().tolist()
    atomic.write_json(run.metrics, metrics)
    return metrics
