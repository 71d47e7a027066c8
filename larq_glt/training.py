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
import sys
import time
from pathlib import Path

import larq_glt  # noqa: F401
import numpy as np
import tensorflow as tf
import tf_keras as keras

from larq_glt import atomic, data, distillation, encoders, models, plots, pruning, summary, teachers
from larq_glt.runs import RunDir, RunError

__all__ = ["TrainConfig", "train", "TrainingError", "teacher_config", "load_data"]


class TrainingError(RuntimeError):
    """A training run that cannot start or continue (bad options, clashing run dir)."""


@dataclasses.dataclass
class TrainConfig:
    """Options of one training run (what ``python -m larq_glt.train`` sets).

    ``model`` holds :class:`larq_glt.models.ModelConfig` overrides (width,
    blocks, ...); ``encoding``, ``levels``, ``image_size`` and the dataset's
    class count are applied on top.

    Pruning (``prune_ratio > 0`` or ``prune_epochs > 0`` turns the phases on):
    ``prune_ratio`` share of each prunable conv's output channels removed,
    ``prune_block`` channels per block (multiple of 32), ``prune_epochs`` ramp
    epochs, ``finetune_epochs`` (default: ``prune_epochs``),
    ``prune_learning_rate`` (default: half ``learning_rate``).
    Distillation: ``kd_teacher`` (``"auto"``, or one teacher spec or a list of
    them: see :mod:`larq_glt.teachers`; several are averaged),
    ``kd_alpha``, ``kd_temperature``, ``kd_teacher_epochs`` (auto teacher;
    default ``epochs``). ``max_model_bits``: weight-bit budget of the final model.
    ``init_from``: a run directory or ``.keras`` file whose weights start this
    run (transfer learning): every layer is copied by name, the classifier
    and its batch norm only when their shapes match (a new class count keeps
    them freshly initialised); any other mismatch is an error.
    ``unlabelled``: image folders added to the training set, labelled by the
    teacher only. ``class_names``: the classes of the ``unlabelled`` dataset
    (default: the first teacher's ``classes=``).
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
    prune_ratio: float = 0.0
    prune_block: int = pruning.DEFAULT_BLOCK
    prune_epochs: int = 0
    finetune_epochs: int | None = None
    prune_learning_rate: float | None = None
    kd_teacher: str | None = None
    kd_alpha: float = 0.5
    kd_temperature: float = 4.0
    kd_teacher_epochs: int | None = None
    max_model_bits: int | None = None
    init_from: str | None = None
    unlabelled: list = dataclasses.field(default_factory=list)
    class_names: list | None = None
    sensor: str = "srgb"  # srgb: the images as stored; linear: a linear sensor's ADC codes (data/sensor.py)
    sensor_params: dict = dataclasses.field(default_factory=dict)  # data.sensor.SensorConfig overrides

    # Options that define the run: a resumed run must agree on these.
    _IDENTITY = ("dataset", "encoding", "levels", "per_channel", "image_size", "seed", "model", "batch_size",
                 "prune_ratio", "prune_block", "kd_teacher", "kd_alpha", "kd_temperature", "kd_teacher_epochs",
                 "init_from", "unlabelled", "class_names", "sensor", "sensor_params")
    # ... and a pruning run on these too (they place the phase boundaries).
    _PHASE_IDENTITY = ("epochs", "prune_epochs")

    @property
    def pruning(self) -> bool:
        return self.prune_ratio > 0 or self.prune_epochs > 0

    @property
    def finetune(self) -> int:
        return self.prune_epochs if self.finetune_epochs is None else self.finetune_epochs

    @property
    def prune_lr(self) -> float:
        return self.learning_rate / 2 if self.prune_learning_rate is None else self.prune_learning_rate

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclasses.dataclass(frozen=True)
class _Phase:
    name: str  # dense | ramp | finetune
    begin: int  # epochs completed before the phase
    end: int


def _phases(cfg: TrainConfig) -> list[_Phase]:
    d, e, f = cfg.epochs, cfg.prune_epochs, cfg.finetune
    if not cfg.pruning:
        return [_Phase("dense", 0, d)]
    return [_Phase("dense", 0, d), _Phase("ramp", d, d + e), _Phase("finetune", d + e, d + e + f)]


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


def load_data(cfg: TrainConfig):
    """The train/validation splits of a run (what ``train`` loads)."""
    return data.load(
        cfg.dataset,
        data_dir=cfg.data_dir,
        image_size=cfg.image_size,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        augment=cfg.augment,
        val_fraction=cfg.val_fraction,
        limit=cfg.limit,
        unlabelled=tuple(cfg.unlabelled or ()),
        sensor=sensor_config(cfg),
        **({"class_names": tuple(dataset_class_names(cfg))} if cfg.dataset == "unlabelled" else {}),
    )


def sensor_config(cfg: TrainConfig):
    """The run's :class:`larq_glt.data.sensor.SensorConfig` (None for ``srgb``)."""
    try:
        return data.sensor.from_options(cfg.sensor, cfg.sensor_params)
    except ValueError as e:
        raise TrainingError(f"--sensor: {e}") from None


def teacher_specs(cfg: TrainConfig) -> list[str]:
    """``kd_teacher`` as a list of specs (empty without distillation)."""
    if not cfg.kd_teacher:
        return []
    return [cfg.kd_teacher] if isinstance(cfg.kd_teacher, str) else list(cfg.kd_teacher)


def dataset_class_names(cfg: TrainConfig) -> list[str]:
    """The ``unlabelled`` dataset's classes: given, or the first teacher's."""
    if cfg.class_names:
        return list(cfg.class_names)
    for spec in teacher_specs(cfg):
        classes = teachers.parse_spec(spec)[1].get("classes")
        if classes:
            return list(classes)
    raise TrainingError("--dataset unlabelled takes its classes from the teacher: add :classes=A+B to --kd-teacher "
                        "or give --class-names")


def teacher_config(cfg: TrainConfig) -> TrainConfig:
    """The run that ``kd_teacher="auto"`` trains first, in ``<out>/teacher``:
    the student's full-precision counterpart on the same data."""
    return dataclasses.replace(
        cfg,
        out=str(Path(cfg.out) / "teacher"),
        encoding=distillation.TEACHER_ENCODING,
        glt_init="uniform",
        model=distillation.teacher_model_overrides(cfg.model),
        epochs=cfg.kd_teacher_epochs or cfg.epochs,
        prune_ratio=0.0,
        prune_epochs=0,
        finetune_epochs=None,
        kd_teacher=None,
        kd_teacher_epochs=None,
        unlabelled=[],
        max_model_bits=None,
        init_from=None,
    )


def _check_options(cfg: TrainConfig) -> None:
    sensor_config(cfg)
    if cfg.prune_epochs < 0 or (cfg.finetune_epochs is not None and cfg.finetune_epochs < 0):
        raise TrainingError("--prune-epochs and --finetune-epochs must be 0 or more")
    if cfg.max_model_bits is not None and cfg.max_model_bits < 1:
        raise TrainingError(f"--max-model-bits must be a positive number of bits, got {cfg.max_model_bits}")
    if not 0.0 <= cfg.prune_ratio < 1.0:
        raise TrainingError(f"--prune-ratio must be in [0, 1), got {cfg.prune_ratio}")
    if cfg.prune_block < 32 or cfg.prune_block % 32:
        raise TrainingError(
            f"--prune-block must be a positive multiple of 32 channels (one bit-packed word), got {cfg.prune_block}"
        )
    specs = teacher_specs(cfg)
    if specs:
        try:
            distillation.check_options(cfg.kd_alpha, cfg.kd_temperature)
            for spec in specs:
                if spec != "auto":
                    teachers.parse_spec(spec)
        except (distillation.DistillationError, teachers.TeacherError) as e:
            raise TrainingError(str(e)) from None
        if "auto" in specs and len(specs) > 1:
            raise TrainingError("--kd-teacher auto trains its own teacher and cannot be combined with others")
    if cfg.unlabelled or cfg.dataset == "unlabelled":
        what = "--unlabelled images" if cfg.unlabelled else "--dataset unlabelled"
        if not specs:
            raise TrainingError(f"{what} are labelled by a teacher only: give --kd-teacher")
        if "auto" in specs:
            raise TrainingError(f"{what} need a trained teacher: --kd-teacher auto would learn from labels they lack")


def _check_resume(run: RunDir, cfg: TrainConfig, resume: bool) -> TrainConfig:
    teacher_state = run.path / "teacher" / "state.json"
    has_state = run.state.exists() or run.model.exists() or teacher_state.exists()
    if not resume:
        if has_state:
            raise TrainingError(
                f"{run.path} already holds a run; pass --resume to continue it, or choose another --out"
            )
        return cfg
    if not run.config.exists():
        raise TrainingError(f"--resume: {run.path} has no config.json, so there is no run to resume")
    saved = TrainConfig.from_dict(run.read_json(run.config))
    keys = TrainConfig._IDENTITY + (TrainConfig._PHASE_IDENTITY if (saved.pruning or cfg.pruning) else ())
    clashes = [
        f"{k}: saved {getattr(saved, k)!r}, given {getattr(cfg, k)!r}"
        for k in keys
        if getattr(saved, k) != getattr(cfg, k)
    ]
    if clashes:
        raise TrainingError("--resume with options that differ from the saved run: " + "; ".join(clashes))
    return cfg


def _check_budget(cfg: TrainConfig, cost: dict) -> None:
    """Refuse a final model over ``max_model_bits``, naming the big layers."""
    limit = cfg.max_model_bits
    bits = cost["total"]["weight_bits"]
    if limit is None or bits <= limit:
        return
    top = sorted(cost["layers"], key=lambda r: -r["weight_bits"])[:3]
    dominant = ", ".join(f"{r['layer']} {r['weight_bits']:,} ({r['weight_bits'] / bits:.0%})" for r in top)
    what = f"after pruning at --prune-ratio {cfg.prune_ratio:g}" if cfg.pruning else "without pruning"
    raise TrainingError(
        f"the final model ({what}) has {bits:,} weight bits ({bits / 1e6:.3f} Mbit), over the "
        f"--max-model-bits budget of {limit:,} by {bits - limit:,} bits; largest layers: {dominant}. "
        f"Raise --prune-ratio, lower --width, or use narrower blocks."
    )


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
    copied, fresh = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        try:
            src = source.get_layer(layer.name)
        except ValueError:
            raise TrainingError(f"--init-from {path}: the model has no layer {layer.name!r}") from None
        new, old = layer.get_weights(), src.get_weights()
        shapes, src_shapes = [w.shape for w in new], [w.shape for w in old]
        if shapes == src_shapes:
            layer.set_weights(old)
            copied.append(layer.name)
        elif layer.name in _HEAD:
            fresh.append(layer.name)
        else:
            raise TrainingError(
                f"--init-from {path}: layer {layer.name} has weights {src_shapes} there and {shapes} here; "
                f"only the classifier may differ (same encoding, levels, width and blocks needed)"
            )
    return {"path": str(path), "copied": copied, "fresh": fresh}


def _write_summaries(run: RunDir, model: keras.Model, before: dict | None = None) -> dict:
    cost = summary.model_cost(model)
    text = summary.format_table(cost) + "\n" + summary.larq_summary_text(model)
    if before is not None:
        text = pruning.format_size_table(before, cost) + "\n" + text
    atomic.write_text(run.summary_txt, text)
    atomic.write_json(run.summary_json, cost)
    return cost


def _optimizer(phase: _Phase, cfg: TrainConfig, steps_per_epoch: int):
    steps = max(1, steps_per_epoch * (phase.end - phase.begin))
    if phase.name == "dense":
        lr = keras.optimizers.schedules.CosineDecay(cfg.learning_rate, steps, alpha=0.01)
    elif phase.name == "ramp":
        lr = cfg.prune_lr  # constant while the masks move
    else:
        lr = keras.optimizers.schedules.CosineDecay(cfg.prune_lr, steps, alpha=0.01)
    return keras.optimizers.Adam(lr)


def _compile(model: keras.Model, optimizer, teacher, cfg: TrainConfig):
    """Compile ``model`` (for evaluate/save); return what ``fit`` trains."""
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    if teacher is None:
        return model
    distiller = distillation.Distiller(model, teacher, alpha=cfg.kd_alpha, temperature=cfg.kd_temperature)
    distiller.compile(optimizer=optimizer, metrics=["accuracy"])
    return distiller


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
    run = RunDir(cfg.out)
    _check_options(cfg)
    cfg = _check_resume(run, cfg, resume)
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    strategy = _strategy(cfg.distribute)

    if splits is None:
        splits = load_data(cfg)
    mcfg = model_config_for(cfg, splits.num_classes)
    phases = _phases(cfg)
    total = phases[-1].end
    plan = pruning.plan(mcfg, cfg.prune_ratio, cfg.prune_block) if cfg.pruning else None

    with strategy.scope():
        base = models.compact(mcfg)
    size_before = summary.model_cost(base)
    final_cfg = plan.pruned_config(mcfg) if plan else mcfg
    _check_budget(cfg, summary.model_cost(models.compact(final_cfg)) if plan else size_before)

    start = run.last_epoch() if resume else 0
    metrics = run.read_json(run.metrics) if (resume and run.metrics.exists()) else {"epochs": []}
    metrics["epochs"] = [e for e in metrics["epochs"] if e["epoch"] <= start]
    stages = metrics.setdefault("stages", {}) if plan else {}
    if plan and start <= phases[-1].begin:
        stages.pop("after_ramp", None)
    if start:
        print(f"resuming {run.path} after epoch {start}", file=sys.stderr)
    else:
        run.path.mkdir(parents=True, exist_ok=True)
        if cfg.init_from:
            metrics["init_from"] = _init_from(base, cfg.init_from)
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
    verbose = (1 if sys.stdout.isatty() else 2) if cfg.progress else 0
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
                _restore_checkpoint(run, tf.train.Checkpoint(model=model, optimizer=optimizer), first)
            elif first > 0:  # a phase starts: the weights, and a fresh optimizer
                _load_weights(run, model, first)
        ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
        for epoch in range(first, phase.end):
            t0 = time.time()
            row = {"epoch": epoch + 1, "phase": phase.name} if plan else {"epoch": epoch + 1}
            if phase.name == "ramp":
                fraction = pruning.ramp_fraction(epoch - phase.begin + 1, phase.end - phase.begin)
                kept = pruning.update_masks(model, plan, fraction)
                row["channels_kept"] = sum(kept.values())
            hist = fitter.fit(
                splits.train_epoch(epoch),
                initial_epoch=epoch,
                epochs=epoch + 1,
                verbose=verbose,
                callbacks=[tensorboard],
            )
            val_loss, val_acc = model.evaluate(splits.val, verbose=0)
            row.update(
                {
                    "loss": float(hist.history["loss"][-1]),
                    "accuracy": float(hist.history["accuracy"][-1]),
                    "val_loss": float(val_loss),
                    "val_accuracy": float(val_acc),
                    "seconds": round(time.time() - t0, 2),
                }
            )
            metrics["epochs"].append(row)
            if cfg.progress:
                label = f" ({phase.name})" if plan else ""
                print(f"epoch {epoch + 1}/{total}{label}: val_accuracy {val_acc:.4f}", file=sys.stderr)
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
    if isinstance(encoder, encoders._ThermometerBase):
        plots.transfer_curve(encoder, run.transfer_curve, title=f"{type(encoder).__name__} transfer curve ({cfg.dataset})")
        metrics["final"]["thresholds"] = encoder.thresholds().tolist()
    atomic.write_json(run.metrics, metrics)
    _check_budget(cfg, cost)  # the plan predicted this size; a mismatch is a bug worth stopping on
    return metrics
