"""The options of one training run (:class:`TrainConfig`) and their checks.

What ``python -m larq_glt.train`` sets, what a run directory's
``config.json`` records, and everything refused before training starts
(bad numbers, a budget the model cannot meet, a ``--resume`` that
contradicts its run). :mod:`larq_glt.training` runs what this describes.

```python
from larq_glt.train_config import TrainConfig, check_options
cfg = TrainConfig(dataset="synthetic", epochs=1, out="runs/smoke")
check_options(cfg)
```
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from larq_glt import data, distillation, encoders, hints, models, pruning, teachers
from larq_glt.runs import RunDir

__all__ = ["TrainingError", "TrainConfig", "Phase", "phases", "model_config_for", "teacher_specs", "dataset_class_names",
           "teacher_config", "sensor_config", "check_positive", "check_options", "check_prunes_something", "check_resume",
           "check_budget"]


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
    ``init_from``: a run directory, ``.keras`` file or export (folder or
    ``.tflite``: see :mod:`larq_glt.recover`) whose weights start this
    run (transfer learning): every layer is copied by name, the classifier
    and its batch norm only when their shapes match (a new class count keeps
    them freshly initialised); any other mismatch is an error.
    ``zoom``: random zoom augmentation (see :class:`larq_glt.data.AugmentConfig`).
    ``mosaic``: probability a training image becomes a mosaic of batch images
    (``--dataset unlabelled`` only: only the teacher can label a mosaic);
    ``mosaic_grid``: its largest grid side (k×k tiles, k uniform in 2..mosaic_grid).
    ``kd_mixup``: share of each distillation batch replaced by blends of two
    images, labelled by the teacher only (see :class:`distillation.Distiller`).
    ``kd_class_balance``: weight each example so that the classes the teacher
    sees weigh alike in every batch (see :func:`distillation.kd_loss`).
    ``kd_hint``: ``"STUDENT_LAYER:TEACHER_LAYER"``, the student also learns that
    teacher layer's feature map, with weight ``kd_hint_weight`` (default
    :data:`hints.DEFAULT_WEIGHT`; see :mod:`larq_glt.hints`).
    ``unlabelled``: image folders added to the training set, labelled by the
    teacher only. ``unlabelled_classes``: the classes of the ``unlabelled`` dataset
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
    unlabelled_classes: list | None = None
    zoom: float = 0.0
    mosaic: float = 0.0
    mosaic_grid: int = 2
    kd_mixup: float = 0.0
    kd_class_balance: bool = False
    kd_hint: str | None = None
    kd_hint_weight: float | None = None  # None: hints.DEFAULT_WEIGHT
    sensor: str = "srgb"  # srgb: the images as stored; linear: a linear sensor's ADC codes (data/sensor.py)
    sensor_params: dict = dataclasses.field(default_factory=dict)  # data.sensor.SensorConfig overrides

    # Options that define the run: a resumed run must agree on these.
    _IDENTITY = ("dataset", "limit", "val_fraction", "augment", "encoding", "levels", "per_channel", "image_size",
                 "seed", "model", "batch_size",
                 "prune_ratio", "prune_block", "kd_teacher", "kd_alpha", "kd_temperature", "kd_teacher_epochs",
                 "init_from", "unlabelled", "unlabelled_classes", "zoom", "mosaic", "mosaic_grid", "kd_mixup",
                 "kd_class_balance", "kd_hint", "kd_hint_weight", "sensor",
                 "sensor_params")
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
class Phase:
    name: str  # dense | ramp | finetune
    begin: int  # epochs completed before the phase
    end: int


def phases(cfg: TrainConfig) -> list[Phase]:
    d, e, f = cfg.epochs, cfg.prune_epochs, cfg.finetune
    if not cfg.pruning:
        return [Phase("dense", 0, d)]
    return [Phase("dense", 0, d), Phase("ramp", d, d + e), Phase("finetune", d + e, d + e + f)]


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
    if cfg.unlabelled_classes:
        return list(cfg.unlabelled_classes)
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


def check_positive(name: str, value) -> None:
    # `not value > 0` also catches nan; inf is refused explicitly.
    if value is not None and (not value > 0 or not math.isfinite(value)):
        raise TrainingError(f"--{name} must be a finite number > 0, got {value}")


def check_options(cfg: TrainConfig) -> None:
    sensor_config(cfg)
    check_positive("learning-rate", cfg.learning_rate)
    check_positive("prune-learning-rate", cfg.prune_learning_rate)
    for key, flag in (("width", "width"), ("glt_lr_multiplier", "glt-lr-multiplier")):
        check_positive(flag, cfg.model.get(key))
    if not 0.0 < cfg.val_fraction < 1.0:
        raise TrainingError(f"--val-fraction must be in (0, 1), got {cfg.val_fraction}")
    for name in ("batch_size", "image_size", "levels", "limit", "kd_teacher_epochs"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise TrainingError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    top = {"glt": 254, "thermo": 255}.get(cfg.encoding)  # GLT keeps every threshold gap >= 1 code
    if top and cfg.levels > top:
        raise TrainingError(f"--levels must be in 1..{top} for --encoding {cfg.encoding} "
                            f"(thresholds are 8-bit pixel codes), got {cfg.levels}")
    if not 0 <= cfg.seed < 2**32:
        raise TrainingError(f"--seed must be in 0..{2**32 - 1}, got {cfg.seed}")
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
    if not 0.0 <= cfg.zoom < 1.0:
        raise TrainingError(f"--zoom must be in [0, 1), got {cfg.zoom}")
    if not 0.0 <= cfg.mosaic <= 1.0:
        raise TrainingError(f"--mosaic is a probability in [0, 1], got {cfg.mosaic}")
    if not 2 <= cfg.mosaic_grid <= 4:
        raise TrainingError(f"--mosaic-grid is the largest mosaic side in tiles, 2 to 4, got {cfg.mosaic_grid}")
    if cfg.mosaic_grid != 2 and not cfg.mosaic:
        raise TrainingError("--mosaic-grid sets the mosaics' size: give --mosaic P too")
    if cfg.mosaic and cfg.dataset != "unlabelled":
        raise TrainingError("--mosaic builds scenes whose class no tile's label gives; only a teacher can label "
                            "them: use it with --dataset unlabelled and --kd-teacher")
    if cfg.mosaic and not cfg.augment:
        raise TrainingError("--mosaic is an augmentation and --no-augment turns augmentation off")
    try:
        models.check_sizes(model_config_for(cfg, 2))
    except (models.ModelConfigError, TypeError) as e:
        raise TrainingError(str(e)) from None
    if cfg.prune_ratio > 0:
        check_prunes_something(cfg)
    specs = teacher_specs(cfg)
    if cfg.kd_mixup and not specs:
        raise TrainingError("--kd-mixup blends images for the teacher to label: give --kd-teacher")
    if cfg.kd_class_balance and not specs:
        raise TrainingError("--kd-class-balance weighs examples by the teacher's classes: give --kd-teacher")
    if cfg.kd_hint_weight is not None and cfg.kd_hint is None:
        raise TrainingError("--kd-hint-weight weighs a hint: give --kd-hint too")
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
    if cfg.kd_hint is not None:
        if not specs or "auto" in specs:
            raise TrainingError("--kd-hint pairs a student layer with a layer of a given Keras teacher: "
                                "give --kd-teacher PATH")
        if len(specs) != 1 or teachers.parse_spec(specs[0])[0].endswith(".tflite"):
            raise TrainingError("--kd-hint needs exactly one Keras teacher (.h5, .keras or a larq-glt run): a "
                                "TFLite model exposes no feature map to train against, and several teachers' maps "
                                "cannot be averaged")
        if cfg.pruning:
            # Each phase would start a new head, and the ramp's masks act after the hinted layer.
            raise TrainingError("--kd-hint is not supported with pruning: prune first, then continue the pruned "
                                "run with --init-from and --kd-hint")
        try:
            hints.parse(cfg.kd_hint)
            hints.check_weight(hint_weight(cfg))
        except hints.HintError as e:
            raise TrainingError(str(e)) from None
    if cfg.unlabelled or cfg.dataset == "unlabelled":
        what = "--unlabelled images" if cfg.unlabelled else "--dataset unlabelled"
        if not specs:
            raise TrainingError(f"{what} are labelled by a teacher only: give --kd-teacher")
        if "auto" in specs:
            raise TrainingError(f"{what} need a trained teacher: --kd-teacher auto would learn from labels they lack")


def hint_weight(cfg: TrainConfig) -> float:
    return hints.DEFAULT_WEIGHT if cfg.kd_hint_weight is None else float(cfg.kd_hint_weight)


def check_prunes_something(cfg: TrainConfig) -> None:
    """Refuse a --prune-ratio that removes no block, saying why and what would."""
    mcfg = model_config_for(cfg, 2)
    try:
        plan = pruning.plan(mcfg, cfg.prune_ratio, cfg.prune_block)
    except pruning.PruningError as e:
        raise TrainingError(str(e)) from None
    if any(lp.prune_per_cell for lp in plan.layers):
        return
    ratio, block = f"--prune-ratio {cfg.prune_ratio:g}", cfg.prune_block
    most = max((lp.blocks_per_cell for lp in plan.layers if not lp.note.startswith("not pruned")), default=0)
    if most > 1:
        raise TrainingError(f"{ratio} prunes nothing: the largest cells hold {most} {block}-channel blocks, and "
                            f"{cfg.prune_ratio:g} of {most} rounds to no whole block; give --prune-ratio above "
                            f"{0.5 / most:g}")

    def prunes(width):
        c = dataclasses.replace(mcfg, width=width)
        return models.topology_problem(c) is None and any(
            lp.prune_per_cell for lp in pruning.plan(c, cfg.prune_ratio, block).layers)

    wider = next((w for w in range(math.floor(mcfg.width) + 1, 65) if prunes(w)), None)
    hint = f"; --width {wider} would allow it" if wider else ""
    raise TrainingError(f"{ratio} prunes nothing at --width {mcfg.width:g}: every prunable conv's groups hold "
                        f"one {block}-channel block (or less), and each keeps at least one{hint}")


def check_resume(run: RunDir, cfg: TrainConfig, resume: bool) -> TrainConfig:
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

    def same(k):
        a, b = getattr(saved, k), getattr(cfg, k)
        if k == "model":  # {} and {"width": 1.0} are the same model
            a, b = ({**models.ModelConfig().to_dict(), **m} for m in (a, b))
        return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)

    clashes = [f"{k}: saved {getattr(saved, k)!r}, given {getattr(cfg, k)!r}" for k in keys if not same(k)]
    if clashes:
        raise TrainingError("--resume with options that differ from the saved run: " + "; ".join(clashes))
    done, total = run.last_epoch(), phases(cfg)[-1].end
    if done > total:
        raise TrainingError(f"--resume --epochs {cfg.epochs}: {run.path} already holds {done} completed epochs; "
                            f"give --epochs {done} or more (or leave it out: the run's own {saved.epochs})")
    return cfg


def check_budget(cfg: TrainConfig, cost: dict) -> None:
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
