"""Block pruning: make the compact binary network physically smaller.

A *block* is ``B`` consecutive output channels of a convolution (``B`` = 32 by
default, any multiple of 32). Removing a block deletes those output channels
of the *producer* conv (kernel slices and their batch-norm parameters) and the
same input channels of the *consumer* conv that reads them (the next block's
conv, or the classifier).

```python
from larq_glt import models, pruning

cfg = models.ModelConfig(input_size=32, num_classes=10, width=4)
plan = pruning.plan(cfg, ratio=0.5)                # what will be removed, per layer
model = pruning.with_masks(models.compact(cfg))    # consumers get input-channel masks
pruning.update_masks(model, plan, fraction=1.0)    # lowest-L1 blocks switched off
small, small_cfg, kept = pruning.shrink(model, cfg, plan)   # same outputs, fewer bits
```

# Why output-channel blocks of 32

A binary activation tensor is stored and executed bit-packed along channels:
32 channels are one 32-bit word, and an ``LceBconv2d`` (and the MCU kernel)
computes ``popcount(x XOR w)`` word by word. A block of 32 output channels of
conv *i* is therefore exactly one packed word of conv *i+1*'s input: removing
it removes one word from every input pixel of the consumer, one word from each
of its kernel rows, 32 float multiplier/bias pairs of the producer's folded
batch norm, and ``kh·kw·Cin_g`` kernel bits per removed output channel of the
producer. Memory, packed-word loads and popcounts all shrink by the same
amount. Smaller blocks would leave partly filled words (no MCU saving, and a
grouped consumer would stop converting to ``LceBconv2d``); whole groups would
be a far coarser step.

# Groups stay balanced and multiples of 32

Both convs around a pruned tensor may be grouped: the producer's ``Gp`` groups
each write a contiguous slice of its outputs, the consumer's ``Gc`` groups each
read one. Both must keep equal group sizes (TFLite/LCE grouped convs are
uniform), and the consumer's per-group input must stay a multiple of 32
(:func:`larq_glt.models.check_binary_groups`). So the channel axis is split in
``lcm(Gp, Gc)`` equal *cells* (each inside one producer group and one
consumer group), and **every cell loses the same number of blocks**. Each
producer group then loses the same number of outputs and each consumer group
the same number of whole 32-channel words; the group counts never change.
Every cell keeps at least one block. A layer whose cells are smaller than one
block is not pruned (the plan says why), and the ratio is realised per layer
as the nearest whole number of blocks per cell, ties rounding to the smaller
cut (``plan`` reports the ratio actually reached). The classifier's outputs (the classes) are never pruned.

# Criterion: block L1 norm of the consumer's latent weights

Within each cell, the blocks whose latent (real-valued, pre-``ste_sign``)
consumer weights have the smallest L1 norm go first. A binary weight's latent
magnitude is how far it is from flipping sign: small norms mean the consumer's
dependence on those channels is weak and unstable. Batch-norm scale is *not*
used: in front of a sign, ``|gamma|`` does not change the binary activation at
all, so it says nothing about a channel's importance in a BNN.

# Masked model and the exact equivalence

Masking must mean exactly what removal means. Zeroing the producer's output is
wrong (the consumer sees ``sign(BN(0))``, not nothing), and zeroing latent
weights is wrong (``ste_sign(0) = +1``). The masked model instead multiplies
the consumer's *binarized* kernel by a 0/1 input-channel mask
(:class:`MaskedQuantConv2D`)::

    y[o] = sum_{kh, kw, j} pad(sign(x))[g(o)·Cg + j] · sign(W)[kh, kw, j, o] · m[g(o)·Cg + j]

so a masked channel contributes nothing to any output, padded border
included. The shrunk model computes the same sum over the surviving channels
only. Both are sums of ±1 integers (exact in float32), so :func:`shrink` gives
*bit-identical* outputs to the masked model (tested).

# Schedule

:func:`ramp_fraction` is the cubic schedule of Zhu & Gupta (2017): at ramp
epoch ``e`` of ``E`` the share of the target removed is ``1 - (1 - e/E)^3``
(fast early, gentle near the target). Masks are monotone: once removed, a
block stays removed; new removals are chosen among the survivors. The masks
are non-trainable variables of the masked layers, so checkpoints carry them
and a resumed run continues with exactly the same masks.

# References
- Nguyen & Guicquero, "End-to-end fully-binarized network design: from Generic
  Learned Thermometer to Block Pruning", arXiv:2505.13462, 2025.
- Zhu & Gupta, "To prune, or not to prune", arXiv:1710.01878, 2017.
"""
from __future__ import annotations

import dataclasses
import math

import larq_glt  # noqa: F401
import larq as lq
import numpy as np
import tensorflow as tf
import tf_keras as keras

from larq_glt import models

__all__ = [
    "PruningError",
    "DEFAULT_BLOCK",
    "LayerPlan",
    "PrunePlan",
    "plan",
    "ramp_fraction",
    "MaskedQuantConv2D",
    "MaskedConv2D",
    "with_masks",
    "update_masks",
    "masks",
    "shrink",
    "format_size_table",
]

#: One bit-packed word of binary activations.
DEFAULT_BLOCK = 32


class PruningError(ValueError):
    """Pruning options or masks that cannot give a deployable model."""


# -- the plan: what is removed, per layer ------------------------------------------


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """Pruning of one producer's output channels (= its consumer's inputs)."""

    producer: str  # conv whose outputs are pruned
    bn: str  # the producer's batch norm
    consumer: str  # conv reading those channels
    channels: int  # outputs before pruning
    producer_groups: int
    consumer_groups: int
    cells: int  # lcm of the two group counts: channel ranges pruned alike
    block: int  # channels per block
    blocks_per_cell: int  # 0 when a cell is smaller than one block
    prune_per_cell: int  # blocks removed from every cell at the target
    note: str = ""  # why the layer is pruned less than asked (or not at all)

    @property
    def cell_channels(self) -> int:
        return self.channels // self.cells

    @property
    def kept(self) -> int:
        return self.channels - self.cells * self.prune_per_cell * self.block

    @property
    def ratio(self) -> float:
        """Share of the channels removed at the target."""
        return 1.0 - self.kept / self.channels

    def pruned_at(self, fraction: float) -> int:
        """Blocks per cell removed when ``fraction`` of the target is reached."""
        return min(self.prune_per_cell, int(math.floor(fraction * self.prune_per_cell + 0.5)))

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "kept": self.kept, "ratio": round(self.ratio, 6)}


@dataclasses.dataclass(frozen=True)
class PrunePlan:
    ratio: float
    block: int
    layers: tuple[LayerPlan, ...]

    def layer(self, producer: str) -> LayerPlan:
        for lp in self.layers:
            if lp.producer == producer:
                return lp
        raise KeyError(producer)

    def pruned_config(self, config: models.ModelConfig) -> models.ModelConfig:
        """The ModelConfig of the physically pruned model: explicit filter
        counts (``width`` folded in as 1.0), the same groups."""
        kept = {lp.producer: lp.kept for lp in self.layers}
        blocks = tuple(
            dataclasses.replace(b, filters=kept[f"block{i + 1}_conv"]) for i, b in enumerate(config.blocks)
        )
        return dataclasses.replace(config, width=1.0, stem_filters=kept["stem_conv"], blocks=blocks)

    def to_dict(self) -> dict:
        return {"ratio": self.ratio, "block": self.block, "layers": [lp.to_dict() for lp in self.layers]}


def _channels(config: models.ModelConfig) -> list[tuple[str, int, int]]:
    """(conv name, output channels, groups) of every prunable producer."""
    scaled = models.scaled_filters
    out = [("stem_conv", scaled(config.stem_filters, config.width), 1)]
    for i, b in enumerate(config.blocks):
        out.append((f"block{i + 1}_conv", scaled(b.filters, config.width), b.groups))
    return out


def plan(config: models.ModelConfig, ratio: float, block: int = DEFAULT_BLOCK) -> PrunePlan:
    """Per-layer plan removing ``ratio`` of every prunable conv's output
    channels in ``block``-channel blocks (see the module docstring)."""
    if not 0.0 <= ratio < 1.0:
        raise PruningError(f"prune ratio must be in [0, 1), got {ratio}")
    if int(block) != block or block < 32 or block % 32:
        raise PruningError(
            f"prune block must be a positive multiple of 32 channels (one bit-packed word), got {block}"
        )
    if any(getattr(b, "shortcut", False) for b in config.blocks):
        # a shortcut ties a block's output channels to its input channels:
        # pruning one side alone would break the sum
        raise PruningError("block pruning does not support blocks with a shortcut")
    producers = _channels(config)
    consumer_groups = [g for _, _, g in producers[1:]] + [1]  # the classifier is ungrouped
    consumers = [name for name, _, _ in producers[1:]] + ["classifier"]
    layers = []
    for (name, channels, gp), gc, consumer in zip(producers, consumer_groups, consumers):
        cells = math.lcm(gp, gc)
        cell = channels // cells
        note = ""
        if channels % cells or cell % block:
            n, k = 0, 0
            note = (
                f"not pruned: {channels} channels in {cells} cells (lcm of {gp} producer and {gc} "
                f"consumer groups) of {channels / cells:g} channels, not a multiple of the {block}-channel block"
            )
        else:
            n = cell // block
            wanted = max(0, math.ceil(ratio * n - 0.5 - 1e-9))  # nearest whole block, ties prune less
            k = min(n - 1, wanted)
            if k < wanted:
                note = f"pruned less than asked: each of the {cells} cells holds {n} block(s) and keeps at least one"
        layers.append(
            LayerPlan(
                producer=name, bn=name.replace("_conv", "_bn"), consumer=consumer, channels=channels,
                producer_groups=gp, consumer_groups=gc, cells=cells, block=int(block),
                blocks_per_cell=n, prune_per_cell=k, note=note,
            )
        )
    return PrunePlan(ratio=float(ratio), block=int(block), layers=tuple(layers))


def ramp_fraction(epoch: int, ramp_epochs: int) -> float:
    """Share of the pruning target reached after ramp epoch ``epoch`` (1-based):
    ``1 - (1 - epoch/ramp_epochs)^3``; 1.0 at the last ramp epoch."""
    if ramp_epochs <= 0:
        return 1.0
    e = min(max(epoch, 0), ramp_epochs) / ramp_epochs
    return 1.0 - (1.0 - e) ** 3


# -- masked consumers ---------------------------------------------------------------


class _InputMask:
    """Mixin: a 0/1 mask over the input channels, applied to the (binarized)
    kernel, so a masked input channel contributes nothing (see module docs)."""

    def build(self, input_shape):
        super().build(input_shape)
        self.channel_mask = self.add_weight(
            name="channel_mask",
            shape=(int(input_shape[-1]),),
            initializer="ones",
            trainable=False,
            dtype=tf.float32,
        )

    def kernel_mask(self) -> tf.Tensor:
        """``(1, 1, Cin/groups, Cout)``: the mask entry of each kernel input row."""
        cout = self.filters
        cin_g = self.channel_mask.shape[0] // self.groups
        per_group = tf.reshape(self.channel_mask, (self.groups, cin_g))  # row g: inputs of group g
        m = tf.repeat(tf.transpose(per_group), cout // self.groups, axis=1)  # (cin_g, cout)
        return m[None, None]

    def convolution_op(self, inputs, kernel):
        # ``kernel`` is the quantized (±1) kernel here: larq calls the conv
        # inside its quantized scope, so the product is sign(W) ⊙ M.
        return super().convolution_op(inputs, kernel * self.kernel_mask())


@keras.utils.register_keras_serializable(package="larq_glt", name="MaskedQuantConv2D")
class MaskedQuantConv2D(_InputMask, lq.layers.QuantConv2D):
    """``QuantConv2D`` whose input channels can be switched off.

    Forward: ``conv(pad(sign(x)), sign(W) ⊙ M)`` with
    ``M[kh, kw, j, o] = m[g(o)·Cin_g + j]`` (``g(o)`` the group of output
    ``o``); the gradient of masked kernel entries is zero. ``m`` is the
    non-trainable variable ``channel_mask``.
    """


@keras.utils.register_keras_serializable(package="larq_glt", name="MaskedConv2D")
class MaskedConv2D(_InputMask, keras.layers.Conv2D):
    """Full-precision ``Conv2D`` with the same input-channel mask."""


def _consumers(model: keras.Model) -> list[str]:
    names = [l.name for l in model.layers if l.name.startswith("block") and l.name.endswith("_conv")]
    return names + ["classifier"]


def with_masks(model: keras.Model) -> keras.Model:
    """A copy of a :func:`larq_glt.models.compact` model whose consumer convs
    (every conv but the stem) carry an all-ones input mask; same weights."""
    targets = set(_consumers(model))

    def clone(layer):
        config = layer.get_config()
        if layer.name in targets and not isinstance(layer, _InputMask):
            cls = MaskedQuantConv2D if isinstance(layer, lq.layers.QuantConv2D) else MaskedConv2D
            return cls.from_config(config)
        return layer.__class__.from_config(config)

    masked = keras.models.clone_model(model, clone_function=clone)
    for old, new in zip(model.layers, masked.layers):
        weights = old.get_weights()
        if isinstance(new, _InputMask) and not isinstance(old, _InputMask):
            weights = weights + [np.ones(new.channel_mask.shape, np.float32)]
        new.set_weights(weights)
    return masked


def masks(model: keras.Model) -> dict[str, np.ndarray]:
    """Current input masks by consumer name."""
    return {l.name: l.channel_mask.numpy().copy() for l in model.layers if isinstance(l, _InputMask)}


def _block_scores(layer, block: int) -> np.ndarray:
    """L1 norm of the consumer's latent kernel over each ``block`` of its inputs."""
    kernel = np.abs(layer.kernel.latent_variable.numpy() if hasattr(layer.kernel, "latent_variable")
                    else layer.kernel.numpy())  # (kh, kw, cin_g, cout)
    kh, kw, cin_g, cout = kernel.shape
    g = layer.groups
    per_group = kernel.reshape(kh, kw, cin_g, g, cout // g)  # output o = group * (cout/g) + i
    per_channel = per_group.sum(axis=(0, 1, 4))  # (cin_g, g): input j of group
    channel_scores = per_channel.T.reshape(-1)  # input channel c = group * cin_g + j
    return channel_scores.reshape(-1, block).sum(axis=1)


def update_masks(model: keras.Model, prune_plan: PrunePlan, fraction: float) -> dict[str, int]:
    """Switch off blocks until ``fraction`` of the target is reached in every
    cell (lowest consumer-kernel L1 norm first; removed blocks stay removed).
    Returns the channels kept per producer."""
    kept = {}
    for lp in prune_plan.layers:
        layer = model.get_layer(lp.consumer)
        if not isinstance(layer, _InputMask):
            raise PruningError(f"{lp.consumer} has no input mask: build the model with pruning.with_masks")
        mask = layer.channel_mask.numpy()
        if mask.shape[0] != lp.channels:
            raise PruningError(f"{lp.consumer} reads {mask.shape[0]} channels, the plan expects {lp.channels}")
        target = lp.pruned_at(fraction)
        if target:
            scores = _block_scores(layer, lp.block)
            blocks = mask.reshape(-1, lp.block)
            alive = blocks.min(axis=1) > 0
            n = lp.blocks_per_cell
            for cell in range(lp.cells):
                ids = np.arange(cell * n, (cell + 1) * n)
                need = target - int((~alive[ids]).sum())
                if need > 0:
                    candidates = ids[alive[ids]]
                    order = np.argsort(scores[candidates], kind="stable")
                    blocks[candidates[order[:need]]] = 0.0
            layer.channel_mask.assign(blocks.reshape(-1))
        kept[lp.producer] = int(layer.channel_mask.numpy().sum())
    return kept


# -- physical removal --------------------------------------------------------------


def _kept_channels(model: keras.Model, prune_plan: PrunePlan) -> dict[str, np.ndarray]:
    """Surviving output channels of each producer, checked against the plan."""
    kept = {}
    for lp in prune_plan.layers:
        mask = model.get_layer(lp.consumer).channel_mask.numpy()
        if not np.isin(mask, (0.0, 1.0)).all():
            raise PruningError(f"{lp.consumer}: input mask is not 0/1")
        blocks = mask.reshape(lp.cells, -1)
        removed = (blocks == 0).sum(axis=1)
        if not (removed == lp.prune_per_cell * lp.block).all():
            raise PruningError(
                f"{lp.consumer}: masks remove {removed.tolist()} channels per cell, the plan "
                f"{lp.prune_per_cell * lp.block} in each: run update_masks(model, plan, 1.0) first"
            )
        kept[lp.producer] = np.flatnonzero(mask)
    return kept


def _slice_kernel(kernel: np.ndarray, groups: int, out_keep, in_keep) -> np.ndarray:
    """Keep ``out_keep`` outputs and ``in_keep`` inputs (absolute indices) of a
    grouped kernel ``(kh, kw, Cin/groups, Cout)``, group by group."""
    kh, kw, cin_g, cout = kernel.shape
    cout_g = cout // groups
    out_keep = np.arange(cout) if out_keep is None else np.asarray(out_keep)
    in_keep = np.arange(cin_g * groups) if in_keep is None else np.asarray(in_keep)
    parts = []
    for g in range(groups):
        outs = out_keep[(out_keep >= g * cout_g) & (out_keep < (g + 1) * cout_g)]
        ins = in_keep[(in_keep >= g * cin_g) & (in_keep < (g + 1) * cin_g)] - g * cin_g
        parts.append(kernel[:, :, ins][..., outs])
    sizes = {p.shape[2:] for p in parts}
    if len(sizes) != 1:
        raise PruningError(f"pruning left unbalanced groups {sorted(sizes)}")
    return np.concatenate(parts, axis=3)


def shrink(model: keras.Model, config: models.ModelConfig, prune_plan: PrunePlan):
    """Rebuild ``model`` (masked, masks at the plan's target) without its
    removed channels. Returns ``(model, ModelConfig, kept)`` where ``kept``
    maps each producer to its surviving channel indices. Outputs are
    identical to the masked model's."""
    kept = _kept_channels(model, prune_plan)
    small_cfg = prune_plan.pruned_config(config)
    small = models.compact(small_cfg)
    feeds = {lp.consumer: lp.producer for lp in prune_plan.layers}
    bns = {lp.bn: lp.producer for lp in prune_plan.layers}
    for new in small.layers:
        old = model.get_layer(new.name)
        weights = old.get_weights()
        if isinstance(old, keras.layers.Conv2D):
            kernel = _slice_kernel(
                old.get_weights()[0], old.groups, kept.get(new.name), kept.get(feeds.get(new.name))
            )
            weights = [kernel]
            if old.use_bias:
                bias = old.bias.numpy()
                weights.append(bias[kept[new.name]] if new.name in kept else bias)
        elif new.name in bns:
            weights = [w[kept[bns[new.name]]] for w in weights]
        new.set_weights(weights)
    return small, small_cfg, {k: v.tolist() for k, v in kept.items()}


# -- reporting ---------------------------------------------------------------------


def format_size_table(before: dict, after: dict) -> str:
    """Weight bits and MACs per layer before and after pruning (from
    :func:`larq_glt.summary.model_cost`)."""
    rows_a = {r["layer"]: r for r in after["layers"]}
    macs = lambda r: r["binary_macs"] + r["other_macs"]  # noqa: E731
    head = f"{'layer':<16} {'bits before':>12} {'bits after':>12} {'MACs before':>13} {'MACs after':>13}"
    lines = ["size before and after pruning", head, "-" * len(head)]
    for r in before["layers"]:
        a = rows_a.get(r["layer"], {"weight_bits": 0, "binary_macs": 0, "other_macs": 0})
        lines.append(f"{r['layer']:<16} {r['weight_bits']:>12,} {a['weight_bits']:>12,} {macs(r):>13,} {macs(a):>13,}")
    tb, ta = before["total"], after["total"]
    mb, ma = tb["binary_macs"] + tb["other_macs"], ta["binary_macs"] + ta["other_macs"]
    lines.append("-" * len(head))
    lines.append(f"{'total':<16} {tb['weight_bits']:>12,} {ta['weight_bits']:>12,} {mb:>13,} {ma:>13,}")
    lines.append(
        f"weight bits {tb['weight_bits']:,} -> {ta['weight_bits']:,} "
        f"({ta['weight_bits'] / max(1, tb['weight_bits']):.1%}), MACs {mb:,} -> {ma:,} ({ma / max(1, mb):.1%})"
    )
    return "\n".join(lines) + "\n"
