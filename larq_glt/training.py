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

# Block pruning (``prune_ratio``/``prune_epochs``, see :mod:`larq_glt.pruning`)

A pruning run has three phases, numbered on one epoch axis so checkpoints,
``state.json`` and ``--resume`` work across them:

1. ``dense``: ``epochs`` epochs (Adam, cosine decay from ``learning_rate``);
   the consumer convs already carry all-ones channel masks.
2. ``ramp``: ``prune_epochs`` epochs at the constant ``prune_learning_rate``
   (default: half ``learning_rate``);
   before each, blocks are masked up to the cubic ramp's share of the target.
3. ``finetune``: at its start the masks are set to the target and the model is
   *physically shrunk* (bit-identical outputs), then trained for
   ``finetune_epochs`` epochs (cosine decay from ``prune_learning_rate``).

Each phase starts with a fresh optimizer, so a run resumed at a phase
boundary (model restored, optimizer new) is the same as one that was not
interrupted; inside a phase the optimizer state is restored as well. The masks
are variables of the model, hence in every checkpoint. The run directory
records the size before and after pruning (``size.json``, and a table in
``summary.txt``), the accuracy at each stage (``metrics.json: stages``:
``before_pruning`` at the end of the dense phase, ``after_ramp`` of the shrunk
model before fine-tuning — with ``prune_epochs=0`` that is one-shot pruning
without retraining — and ``after_finetune``) and
the surviving blocks (``pruning.json``; block ``b`` is channels ``b·B`` to
``b·B + B − 1``). ``max_model_bits`` is checked before any training: the
final size depends only on the plan, not on which blocks are chosen.

# Knowledge distillation (``kd_teacher``, see :mod:`larq_glt.distillation`)

``kd_teacher="auto"`` first trains the student's full-precision counterpart
as an ordinary run in ``<out>/teacher/`` (resumable like any run; skipped when
finished); a path loads a saved model instead. Every phase of the student then
trains on ``α·CE + (1−α)·T²·KL(teacher ‖ student)``.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path

import larq_glt  # noqa: F401
import numpy as np
import tensorflow as tf
import tf_keras as keras

from larq_glt import atomic, data, distillation, encoders, grow, hints, models, plots, pruning, summary, teachers
from larq_glt.runs import RunDir, RunError
from larq_glt.train_config import (Phase, TrainConfig, TrainingError, check_budget, check_options, check_resume,
                                   dataset_class_names, hint_weight, model_config_for, phases as run_phases,
                                   sensor_config, teacher_config, teacher_specs)

__all__ = ["TrainConfig", "train", "TrainingError", "teacher_config", "load_data"]


def _strategy(name: str | None):
    if name in (None, "", "none"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        # Reads the cluster from TF_CONFIG; with none set it is one worker.
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainingError(f"--distribute must be 'mirrored' or 'multiworker', got {name!r}")


def load_data(cfg: TrainConfig):
    """The train/validation splits of a run (what ``train`` loads)."""
    return data.load(
        cfg.dataset,
        data_dir=cfg.data_dir,
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        augment=data.AugmentConfig(zoom=cfg.zoom, mosaic=cfg.mosaic, mosaic_grid=cfg.mosaic_grid) if cfg.augment else False,
        val_fraction=cfg.val_fraction,
        limit=cfg.limit,
        unlabelled=tuple(cfg.unlabelled or ()),
        sensor=sensor_config(cfg),
        **({"class_names": tuple(dataset_class_names(cfg))} if cfg.dataset == "unlabelled" else {}),
    )


def _diverged(run: RunDir, epoch: int, loss: float, val_loss: float) -> str:
    kept = (f"the run keeps its last good checkpoint (epoch {epoch}); continue it with --resume and a lower "
            f"--learning-rate" if epoch else "no epoch was completed; try a lower --learning-rate")
    return (f"training diverged in epoch {epoch + 1}: the loss is not finite (training {loss:g}, validation "
            f"{val_loss:g}); that epoch was not saved and {kept} ({run.path})")


def _save_checkpoint(run: RunDir, ckpt: tf.train.Checkpoint, epoch: int) -> None:
    final = run.checkpoint(epoch)
    with atomic.directory(final) as tmp:
        ckpt.write(str(tmp / "ckpt"))


def _restore_checkpoint(run: RunDir, ckpt: tf.train.Checkpoint, epoch: int) -> None:
    path = run.checkpoint(epoch)
    if not path.exists():
        raise RunError(f"state.json says {epoch} epochs are done but {path} is missing")
    ckpt.read(str(path / "ckpt")).expect_partial()


def _load_weights(run: RunDir, model: keras.Model, epoch: int) -> None:
    """Set ``model``'s weights from a checkpoint, and nothing else.

    A compiled model tracks its optimizer, so restoring ``Checkpoint(model=...)``
    into it would also (lazily) restore the old phase's optimizer state into a
    new phase's optimizer. An uncompiled twin takes the restore instead.
    """
    twin = keras.models.clone_model(model)
    _restore_checkpoint(run, tf.train.Checkpoint(model=twin), epoch)
    model.set_weights(twin.get_weights())


_HEAD = ("classifier", "classifier_bn")


def _init_from(model: keras.Model, path) -> dict:
    """Copy the weights of a trained model into ``model`` layer by layer (see
    ``TrainConfig.init_from``); returns what was copied and what was not."""
    from larq_glt import runs

    source = runs.load_model(path)
    try:
        names, grown = grow.align(model, source)
    except grow.GrowError as e:
        raise TrainingError(f"--init-from {path}: {e}") from None
    copied, fresh = [], []
    for layer in model.layers:
        if not layer.weights or layer.name.split("_")[0] in grown:
            continue
        try:
            src = source.get_layer(names.get(layer.name, layer.name))
        except ValueError:
            raise TrainingError(f"--init-from {path}: the model has no layer {layer.name!r}") from None
        new, old = layer.get_weights(), src.get_weights()
        shapes, src_shapes = [w.shape for w in new], [w.shape for w in old]
        if shapes == src_shapes:
            layer.set_weights(old)
            scale, src_scale = getattr(layer, "logit_scale", None), getattr(src, "logit_scale", None)
            if scale and src_scale and scale != src_scale:
                # Another GLT learning-rate multiplier: keep the thresholds, softmax(s·θ), as trained.
                layer.logits.assign(layer.logits * (src_scale / scale))
            copied.append(layer.name)
        elif layer.name in _HEAD:
            fresh.append(layer.name)
        else:
            raise TrainingError(
                f"--init-from {path}: layer {layer.name} has weights {src_shapes} there and {shapes} here; "
                f"only the classifier may differ, and shortcut blocks may be inserted (same encoding, levels, width "
                f"and other blocks needed)"
            )
    for block in grown:  # inserted shortcut blocks start as the identity (see larq_glt.grow)
        grow.make_identity(model, block)
    return {"path": str(path), "copied": copied, "fresh": fresh, "grown": grown,
            "recovered_from_flatbuffer": hasattr(source, "recovered_from")}


def _write_summaries(run: RunDir, model: keras.Model, before: dict | None = None) -> dict:
    cost = summary.model_cost(model)
    text = summary.format_table(cost) + "\n" + summary.larq_summary_text(model)
    if before is not None:
        text = pruning.format_size_table(before, cost) + "\n" + text
    atomic.write_text(run.summary_txt, text)
    atomic.write_json(run.summary_json, cost)
    return cost


def _optimizer(phase: Phase, cfg: TrainConfig, steps_per_epoch: int):
    steps = max(1, steps_per_epoch * (phase.end - phase.begin))
    if phase.name == "dense":
        lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps, alpha=0.01)
    elif phase.name == "ramp":
        lr = cfg.prune_lr  # constant while the masks move
    else:
        lr = keras.optimizers.schedules.CosineDecay(cfg.prune_lr, steps, alpha=0.01)
    return keras.optimizers.Adam(lr)


class _ProgressBar(keras.callbacks.Callback):
    """One self-overwriting line on a terminal while an epoch trains; the
    epoch's summary line then replaces it."""

    def __init__(self, title: str, steps: int, width: int = 30):
        super().__init__()
        self.title, self.steps, self.width = title, max(1, steps), width

    def on_train_batch_end(self, batch, logs=None):
        done = min(batch + 1, self.steps)
        fill = self.width * done // self.steps
        loss = f"  loss {float(logs['loss']):.4f}" if logs and "loss" in logs else ""
        sys.stderr.write(f"\r{self.title} [{'=' * fill}{' ' * (self.width - fill)}] {done}/{self.steps}{loss}")
        sys.stderr.flush()

    def on_train_end(self, logs=None):
        sys.stderr.write("\r\033[K")  # cleared: the summary line takes its place
        sys.stderr.flush()


def _learning_rate(optimizer) -> float:
    """The learning rate of the optimizer's next step."""
    lr = optimizer._learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        lr = lr(optimizer.iterations)
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


def _extended(before: int, epochs: int, done: int) -> str:
    """What ``--resume`` with another ``--epochs`` does to the schedule.

    The cosine decay spans the run's ``epochs``; a checkpoint restores the
    optimizer's step count, so from epoch ``done + 1`` on each step has the
    learning rate a run of ``epochs`` epochs would have at that step (a jump
    back up when the ``before``-epoch run had finished its decay). The first
    ``done`` epochs keep the ``before``-epoch schedule, so the weights are not
    those of an uninterrupted ``epochs``-epoch run. ``metrics.json`` records
    the change (``epochs_changed``) and every epoch's starting learning rate.
    """
    return (f"--epochs {before} -> {epochs}: epochs {done + 1}..{epochs} follow the {epochs}-epoch cosine decay "
            f"(epochs 1..{done} followed the {before}-epoch one), so the result is not that of an "
            f"uninterrupted {epochs}-epoch run")


def _compile(model: keras.Model, optimizer, teacher, cfg: TrainConfig):
    """Compile ``model`` (for evaluate/save); return what ``fit`` trains."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    if teacher is None:
        return model
    hint = None
    if cfg.kd_hint is not None:
        try:
            hint = hints.Hint(model, teacher, cfg.kd_hint, hint_weight(cfg), seed=cfg.seed)
        except hints.HintError as e:
            raise TrainingError(str(e)) from None
    distiller = distillation.Distiller(model, teacher, alpha=cfg.kd_alpha, temperature=cfg.kd_temperature,
                                       mixup=cfg.kd_mixup, class_balance=cfg.kd_class_balance, hint=hint)
    distiller.compile(optimizer=optimizer, metrics=["accuracy"])
    return distiller


def _checkpoint(model, optimizer, fitter) -> tf.train.Checkpoint:
    """What a checkpoint holds: the model, its optimizer and a hint's head
    (trained beside the model; ``--resume`` needs it, the export does not)."""
    head = getattr(fitter, "hint_head", None)
    extra = {"hint_head": head} if head is not None else {}
    return tf.train.Checkpoint(model=model, optimizer=optimizer, **extra)


def _teacher(cfg: TrainConfig, run: RunDir, splits):
    """Load (``auto``: train first, or finish training) the distillation teacher(s)."""
    specs = teacher_specs(cfg)
    if specs == ["auto"]:
        tcfg = teacher_config(cfg)
        trun = RunDir(tcfg.out)
        if not (trun.model.exists() and trun.last_epoch() >= tcfg.epochs):
            if cfg.progress:
                print(f"training the distillation teacher in {trun.path}", file=sys.stderr)
            train(tcfg, resume=trun.config.exists(), splits=splits)
        specs = [str(trun.path)]
    try:
        ensemble = teachers.load_all(specs, splits.class_names)
    except teachers.TeacherError as e:
        raise TrainingError(str(e)) from None
    info = {"teachers": ensemble.describe(), "alpha": cfg.kd_alpha, "temperature": cfg.kd_temperature,
            "path": specs[0] if len(specs) == 1 else specs}
    if cfg.kd_hint is not None:
        info["hint"] = {"layers": cfg.kd_hint, "weight": hint_weight(cfg)}
    if cfg.dataset == "unlabelled":
        # The held-out pool's labels are the teacher's choices: validation
        # accuracy is then agreement with the teacher.
        splits = splits.with_labels("val", _teacher_choices(ensemble, splits.val))
        info["val_labels"] = "teacher"
    else:
        labels = np.concatenate([y.numpy() for _, y in splits.val])
        info["val_accuracy"] = float(np.mean(_teacher_choices(ensemble, splits.val) == labels))
    return ensemble, info, splits


def _teacher_choices(teacher, batches) -> np.ndarray:
    step = tf.function(lambda x: tf.argmax(teacher(x), axis=-1, output_type=tf.int32))
    return np.concatenate([step(x).numpy() for x, _ in batches]).astype(np.int32)


def train(cfg: TrainConfig, resume: bool = False, *, splits=None, _interrupt_after: int | None = None) -> dict:
    """Train (or resume) a run; returns the final metrics dictionary.

    ``_interrupt_after`` (tests only) stops as an interruption would, right
    after that epoch's checkpoint, without the end-of-run artifacts.
    ``splits`` reuses already loaded data (:func:`larq_glt.data.load` with this
    config's data options; the auto teacher and benchmarks use it).
    """
    check_options(cfg)
    if cfg.distribute == "multiworker" and not _is_chief() and not _AS_WORKER:
        return _train_as_worker(cfg, resume, splits, _interrupt_after)
    run = RunDir(cfg.out)
    with run.lock():  # one writer per run directory, for the whole run
        return _train(run, check_resume(run, cfg, resume), resume, splits, _interrupt_after)


_AS_WORKER = False  # set while this process trains as a non-chief worker (in its own copy)


def _is_chief() -> bool:
    """Whether this process writes the run: the ``chief`` task of ``TF_CONFIG``,
    else worker 0 (also without ``TF_CONFIG``: one worker)."""
    try:
        tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
        task, cluster = tf_config.get("task") or {}, tf_config.get("cluster") or {}
    except (json.JSONDecodeError, AttributeError):
        raise TrainingError("--distribute multiworker: TF_CONFIG is not valid JSON") from None
    kind, index = task.get("type", "worker"), int(task.get("index", 0))
    if kind == "chief":
        return True
    if kind != "worker":
        raise TrainingError(f"--distribute multiworker: TF_CONFIG task type {kind!r}; larq-glt runs chief and "
                            f"worker tasks")
    return "chief" not in cluster and index == 0


def _train_as_worker(cfg: TrainConfig, resume: bool, splits, _interrupt_after) -> dict:
    """A non-chief worker of ``--distribute multiworker``: it trains in step
    with the chief (every collective needs it) but writes only to a private
    temporary copy of the run, removed at the end, as ``tf.distribute``
    recommends; the run directory (the chief's, which holds its lock) is
    only read, to resume from the chief's checkpoint."""
    import shutil
    import tempfile

    global _AS_WORKER
    tmp = Path(tempfile.mkdtemp(prefix="larq-glt-worker-"))
    try:
        copy = tmp / "run"
        if resume and Path(cfg.out).is_dir():
            shutil.copytree(cfg.out, copy, ignore=shutil.ignore_patterns(".lock", "logs"))
        _AS_WORKER = True
        return train(dataclasses.replace(cfg, out=str(copy)), resume, splits=splits,
                     _interrupt_after=_interrupt_after)
    finally:
        _AS_WORKER = False
        shutil.rmtree(tmp, ignore_errors=True)


def _train(run: RunDir, cfg: TrainConfig, resume: bool, splits, _interrupt_after: int | None) -> dict:
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    strategy = _strategy(cfg.distribute)

    if splits is None:
        splits = load_data(cfg)
    mcfg = model_config_for(cfg, splits.num_classes)
    phases = run_phases(cfg)
    total = phases[-1].end
    plan = pruning.plan(mcfg, cfg.prune_ratio, cfg.prune_block) if cfg.pruning else None

    with strategy.scope():
        base = models.compact(mcfg)
    size_before = summary.model_cost(base)
    final_cfg = plan.pruned_config(mcfg) if plan else mcfg
    check_budget(cfg, summary.model_cost(models.compact(final_cfg)) if plan else size_before)

    start = run.last_epoch() if resume else 0
    metrics = run.read_json(run.metrics) if (resume and run.metrics.exists()) else {"epochs": []}
    metrics["epochs"] = [e for e in metrics["epochs"] if e["epoch"] <= start]
    stages = metrics.setdefault("stages", {}) if plan else {}
    if plan and start <= phases[-1].begin:
        stages.pop("after_ramp", None)
    if start:
        print(f"resuming {run.path} after epoch {start}", file=sys.stderr)
        before = run.read_json(run.config).get("epochs")
        if before != cfg.epochs:  # see _extended
            metrics.setdefault("epochs_changed", []).append(
                {"after_epoch": start, "epochs_before": before, "epochs": cfg.epochs})
            print(_extended(before, cfg.epochs, start), file=sys.stderr)
    else:
        run.path.mkdir(parents=True, exist_ok=True)
        if cfg.init_from:
            metrics["init_from"] = _init_from(base, cfg.init_from)
            if metrics["init_from"]["recovered_from_flatbuffer"]:
                # Its batch norms hold LCE's folded affine maps, not statistics (see recover.calibrate).
                from larq_glt import recover

                sample = splits.arrays("train", limit=1024, spread=True)[0]
                recover.calibrate(base, splits.sensor_codes(sample, "train"))
            if cfg.progress:
                print(f"initialised from {cfg.init_from}: fresh {metrics['init_from']['fresh'] or 'none'}",
                      file=sys.stderr)
        elif cfg.encoding == "glt" and cfg.glt_init == "quantile":
            sample = splits.arrays("train", limit=2048)[0]
            base.get_layer("encoder").init_from_data(splits.sensor_codes(sample, "train"))
    config = {**cfg.to_dict(), "model_config": mcfg.to_dict(), "class_names": list(splits.class_names)}
    if getattr(splits, "sensor", None) is not None:
        config["sensor_config"] = splits.sensor.to_dict()
    if plan:
        config["final_model_config"] = final_cfg.to_dict()
        config["prune_plan"] = plan.to_dict()
    atomic.write_json(run.config, config)

    teacher = None
    if cfg.kd_teacher:
        teacher, metrics["teacher"], splits = _teacher(cfg, run, splits)

    with strategy.scope():
        model = pruning.with_masks(base) if plan else base
    at = 0  # the epoch whose weights `model` holds
    pruning_json = run.path / "pruning.json"
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(run.logs), write_graph=False, profile_batch=0)

    if plan and phases[0].end == 0 and start == 0:
        # Pruning a loaded model (--init-from, --epochs 0): its accuracy before
        # any mask is the "before pruning" stage.
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        loss, acc = model.evaluate(splits.val, verbose=0)
        stages["before_pruning"] = {"epoch": 0, "val_accuracy": float(acc), "val_loss": float(loss)}
        atomic.write_json(run.metrics, metrics)

    for phase in phases:
        if phase.name == "finetune":
            if start > phase.begin:
                with strategy.scope():
                    model = models.compact(final_cfg)
                at = None
            else:
                if at != phase.begin:
                    _load_weights(run, model, phase.begin)
                pruning.update_masks(model, plan, 1.0)
                with strategy.scope():
                    model, _, kept = pruning.shrink(model, mcfg, plan)
                at = phase.begin
                kept_blocks = {k: sorted({c // plan.block for c in v}) for k, v in kept.items()}
                atomic.write_json(pruning_json, {**plan.to_dict(), "kept_blocks": kept_blocks})
                model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
                loss, acc = model.evaluate(splits.val, verbose=0)
                stages["after_ramp"] = {"epoch": phase.begin, "val_accuracy": float(acc), "val_loss": float(loss)}
                atomic.write_json(run.metrics, metrics)
                if cfg.progress:
                    print(f"pruned to the target and shrunk: val_accuracy {acc:.4f}", file=sys.stderr)
        if start >= phase.end:
            continue
        first = max(start, phase.begin)
        with strategy.scope():
            optimizer = _optimizer(phase, cfg, splits.steps_per_epoch)
            fitter = _compile(model, optimizer, teacher, cfg)
        if at != first:
            if first > phase.begin:  # inside a phase: its optimizer state too
                _restore_checkpoint(run, _checkpoint(model, optimizer, fitter), first)
            elif first > 0:  # a phase starts: the weights, and a fresh optimizer (and hint head)
                _load_weights(run, model, first)
        ckpt = _checkpoint(model, optimizer, fitter)
        for epoch in range(first, phase.end):
            t0 = time.time()
            row = {"epoch": epoch + 1, "phase": phase.name} if plan else {"epoch": epoch + 1}
            if phase.name == "ramp":
                fraction = pruning.ramp_fraction(epoch - phase.begin + 1, phase.end - phase.begin)
                kept = pruning.update_masks(model, plan, fraction)
                row["channels_kept"] = sum(kept.values())
            if isinstance(fitter, distillation.Distiller):
                fitter.set_epoch_seed(cfg.seed, epoch)
            row["learning_rate"] = _learning_rate(optimizer)
            label = f" ({phase.name})" if plan else ""
            bar = [_ProgressBar(f"epoch {epoch + 1}/{total}{label}", splits.steps_per_epoch)] \
                if cfg.progress and sys.stderr.isatty() else []
            hist = fitter.fit(
                splits.train_epoch(epoch),
                initial_epoch=epoch,
                epochs=epoch + 1,
                verbose=0,  # one line per epoch below (Keras would number each fit call's epochs on its own)
                callbacks=[tensorboard, keras.callbacks.TerminateOnNaN(), *bar],
            )
            loss = float(hist.history["loss"][-1])
            val_loss, val_acc = model.evaluate(splits.val, verbose=0) if math.isfinite(loss) else (loss, 0.0)
            if not (math.isfinite(loss) and math.isfinite(val_loss)):
                raise TrainingError(_diverged(run, epoch, loss, val_loss))  # before this epoch is saved
            if "hint" in hist.history:
                row["hint_term"] = float(hist.history["hint"][-1])  # weighted, as added to the loss
            row.update(
                {
                    "loss": loss,
                    "accuracy": float(hist.history["accuracy"][-1]),
                    "val_loss": float(val_loss),
                    "val_accuracy": float(val_acc),
                    "seconds": round(time.time() - t0, 2),
                }
            )
            metrics["epochs"].append(row)
            if cfg.progress:
                print(f"epoch {epoch + 1}/{total}{label}: loss {row['loss']:.4f}  accuracy {row['accuracy']:.4f}  "
                      f"val_loss {row['val_loss']:.4f}  val_accuracy {val_acc:.4f}  ({row['seconds']:.1f} s)",
                      file=sys.stderr)
            _save_checkpoint(run, ckpt, epoch + 1)
            at = epoch + 1
            atomic.write_json(run.metrics, metrics)
            atomic.write_json(run.state, {"completed_epochs": epoch + 1})
            if _interrupt_after is not None and epoch + 1 >= _interrupt_after:
                return metrics

    if at != total and total > 0:  # finished earlier, stopped before the artifacts
        _load_weights(run, model, total)
    last = metrics["epochs"][-1] if metrics["epochs"] else {}
    if plan and phases[-1].end == phases[-1].begin:  # no fine-tuning: the final model is the pruned one
        last = stages["after_ramp"]
    metrics["final"] = {
        "val_accuracy": last.get("val_accuracy"),
        "val_loss": last.get("val_loss"),
        "epochs": total,
        "data": splits.info.to_dict(),
    }
    with atomic.replace_file(run.model) as tmp:
        model.save(tmp)
    cost = _write_summaries(run, model, before=size_before if plan else None)
    size = {"before": size_before, "after": cost, "max_model_bits": cfg.max_model_bits}
    if plan:
        size["pruning"] = run.read_json(pruning_json)
        by_epoch = {e["epoch"]: e for e in metrics["epochs"]}
        dense_end = phases[0].end
        if dense_end > 0 or "before_pruning" not in stages:
            stages["before_pruning"] = {"epoch": dense_end,
                                        "val_accuracy": by_epoch.get(dense_end, {}).get("val_accuracy")}
        stages["after_finetune"] = {"epoch": total, "val_accuracy": last.get("val_accuracy")}
    atomic.write_json(run.path / "size.json", size)
    metrics["final"]["weight_bits"] = cost["total"]["weight_bits"]
    metrics["final"]["binary_macs"] = cost["total"]["binary_macs"]
    if plan:
        metrics["final"]["weight_bits_before_pruning"] = size_before["total"]["weight_bits"]
        metrics["final"]["binary_macs_before_pruning"] = size_before["total"]["binary_macs"]
    encoder = model.get_layer("encoder")
    if isinstance(encoder, encoders.ThermometerBase):
        plots.transfer_curve(encoder, run.transfer_curve, title=f"{type(encoder).__name__} transfer curve ({cfg.dataset})")
        metrics["final"]["thresholds"] = encoder.thresholds().tolist()
    atomic.write_json(run.metrics, metrics)
    check_budget(cfg, cost)  # the plan predicted this size; a mismatch is a bug worth stopping on
    return metrics
