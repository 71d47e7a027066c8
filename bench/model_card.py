"""The model card of a person detector distilled by ``bench/person_distil.py``:
the command that trains its run again, and the card's text (``MODEL_CARD.md``)
from its ``card.json``."""
from __future__ import annotations

import json

from larq_glt.training import TrainConfig, teacher_specs


def train_command(cfg: TrainConfig) -> str:
    parts = ["python -m larq_glt.train --dataset unlabelled", f"--data-dir {cfg.data_dir}"]
    # What defines the held-out split and the input, when not the default (scoring rebuilds it from here)
    for flag, field in (("--image-size", "image_size"), ("--val-fraction", "val_fraction"), ("--limit", "limit"),
                        ("--seed", "seed"), ("--batch-size", "batch_size")):
        if getattr(cfg, field) != getattr(TrainConfig, field):
            parts.append(f"{flag} {getattr(cfg, field):g}")
    parts += [f"--kd-teacher {t}" for t in teacher_specs(cfg)]
    parts.append(f"--kd-temperature {cfg.kd_temperature:g}")
    if cfg.zoom:
        parts.append(f"--zoom {cfg.zoom:g}")
    if cfg.mosaic:
        parts.append(f"--mosaic {cfg.mosaic:g}")
        if cfg.mosaic_grid != 2:
            parts.append(f"--mosaic-grid {cfg.mosaic_grid}")
    if cfg.kd_mixup:
        parts.append(f"--kd-mixup {cfg.kd_mixup:g}")
    if cfg.kd_class_balance:
        parts.append("--kd-class-balance")
    if cfg.kd_hint:
        parts.append(f"--kd-hint {cfg.kd_hint}")
        if cfg.kd_hint_weight is not None:
            parts.append(f"--kd-hint-weight {cfg.kd_hint_weight:g}")
    # Spelled out: the defaults of the GLT options may change between versions.
    parts.append(f"--glt-init {cfg.glt_init}")
    model = dict(cfg.model)
    parts.append(f"--glt-lr-multiplier {model.pop('glt_lr_multiplier', 1.0):g}")
    if "width" in model:
        parts.append(f"--width {model.pop('width'):g}")
    if model:
        parts.append(f"--model-config '{json.dumps(model)}'")
    parts.append(f"--epochs {cfg.epochs}")
    if cfg.learning_rate != TrainConfig.learning_rate:
        parts.append(f"--learning-rate {cfg.learning_rate:g}")
    if cfg.pruning:
        parts += [f"--prune-ratio {cfg.prune_ratio!r}", f"--prune-block {cfg.prune_block}",
                  f"--prune-epochs {cfg.prune_epochs}"]
        if cfg.finetune_epochs is not None:
            parts.append(f"--finetune-epochs {cfg.finetune_epochs}")
        if cfg.prune_learning_rate is not None:
            parts.append(f"--prune-learning-rate {cfg.prune_learning_rate:g}")
    if cfg.max_model_bits is not None:
        parts.append(f"--max-model-bits {cfg.max_model_bits}")
    if cfg.init_from:  # a continuation: the run it started from is part of the recipe
        parts.append(f"--init-from {cfg.init_from}")
    parts.append(f"--out {cfg.out}")
    return " ".join(parts)


def render_card(c: dict) -> str:
    v = c["vww96"]
    pc = ", ".join(f"{k} {100 * a:.1f}%" for k, a in v["per_class"].items())
    ins = c["instructions"]
    return f"""# Model card: person_detect (fully-binarized GLT person detector)

**What it is.** The compact fully-binarized topology of larq-glt (width {c['width']:g},
model overrides `{json.dumps(c['model'])}`) with a Generic Learned Thermometer
input: 96×96×3 raw uint8 image → GLT binary planes → binary convolutions (all
`LceBconv2d` after conversion: {c['all_convs_binary']}) → 2 logits (`non_person`, `person`).

**Size and cost.** {c['weight_bits']:,} weight bits at deployed precision
({c['weight_bits'] / 1e6:.3f} Mbit; {c['flatbuffer_weight_bits']:,} bits as stored in the flatbuffer);
flatbuffer {c['flatbuffer_bytes']:,} bytes; {c['binary_macs']:,} binary MACs, {c['other_macs']:,} other.
On a Cortex-M7 (QEMU `mps2-an500`, `-icount shift=0`, the sample frames):
{ins['mean']:,.0f} instructions per inference ({ins['min']:,}–{ins['max']:,}); peak RAM
{c['peak_ram_bytes']:,} B (arena {c['arena_bytes']:,} + stack {c['stack_high_water_bytes']:,} + input frame
{c['input_frame_bytes']:,}); flash {c['flash_bytes']:,} B (a profiling build with the sample frames).

**Training data.** No labelled image at all: the pool `{c['pool']}` (ImageNet photos with no person label),
labelled only by the teacher(s) {', '.join(f'`{t}`' for t in c['teachers'])}, which see the same
augmented images as the student (KL on the teacher's probabilities, temperature from the command below).
{c['heldout_images']:,} pool images (a hashed split) were held out of training.

**How it was chosen.** {_choice(c)} No vww96 image was used for training or choosing.

**Accuracy on the 500 vww96 images: {100 * v['accuracy']:.1f}%** (95% interval
{100 * v['wilson95'][0]:.1f}–{100 * v['wilson95'][1]:.1f}%; per class: {pc}), measured once, after the choice.

{(c['note'].strip() + chr(10) + chr(10)) if c.get('note') else ''}**Learned thresholds** (ADC codes, per channel R, G, B): {c['thresholds']}

**Reproduce:** train with `{c['train_command']}` ({c['train_wall_seconds']:,.0f} s of training epochs
on this 2-core machine, shared with other jobs), then `{c['command']}`.
"""


def _choice(c: dict) -> str:
    if "choice_set" not in c:  # chosen before the held-out scenes existed: plain held-out images only
        return (f"Among the candidates in `benchmarks/person_distil.md`, by its balanced agreement with the teacher "
                f"on those held-out pool images: {100 * c['balanced_agreement_calibrated']:.1f}% after a person-logit "
                f"offset of {c['person_offset']:+.2f} (chosen on the same held-out pool images to maximise balanced "
                f"agreement, since the pool holds {100 * c['heldout_person_share']:.0f}% persons; folded into the "
                f"classifier's batch-norm bias), {100 * c['balanced_agreement']:.1f}% without it.")
    return (f"Among the candidates in `benchmarks/person_distil.md`, by its balanced agreement with the teacher on "
            f"those held-out pool images and on the same images as 2×2 scenes (four at half side: small subjects "
            f"among others): {100 * c['balanced_agreement_calibrated']:.1f}% over both "
            f"({100 * c['balanced_agreement_calibrated_plain']:.1f}% plain, "
            f"{100 * c['balanced_agreement_calibrated_scenes']:.1f}% scenes) after a person-logit offset of "
            f"{c['person_offset']:+.2f}, chosen on the same images to maximise balanced agreement (the pool holds "
            f"{100 * c['heldout_person_share']:.0f}% persons, its scenes {100 * c['scene_person_share']:.0f}% by the "
            f"teacher) and folded into the classifier's batch-norm bias."
            + _replaced(c))


def _replaced(c: dict) -> str:
    """What the model replaced, when the margin rule decided it (see ``ship_decision``)."""
    margin = (c.get("ship_decision") or {}).get("margin")
    if not margin or not margin.get("comparable"):
        return ""
    lo, hi = margin["bootstrap95"]
    return (f" It replaced the model shipped before it, `{c['replaced']}`, by {100 * margin['difference']:+.1f} points "
            f"of that balanced agreement (95% paired bootstrap interval [{100 * lo:+.1f}, {100 * hi:+.1f}]): a new "
            f"choice ships only by a margin the held-out images resolve.")
