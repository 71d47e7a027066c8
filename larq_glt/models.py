"""The compact fully-binarized topology.

Raw ``uint8`` image → input encoder (binary planes) → binary stem convolution →
light-weight grouped binary ``QuantConv2D`` blocks with batch norm and max
pooling → binary convolutional classifier → logits. Every convolution, the
first and the last included, has binary weights and binary inputs, so the LCE
converter turns each one into ``LceBconv2d``.

```python
import larq_glt
from larq_glt import models

model = models.compact(num_classes=2, encoding="glt")
model.summary()
```

LCE keeps a grouped convolution binary only when every group has a multiple of
32 input channels (one or more whole bit-packed words); otherwise it silently
falls back to a float convolution on ±1 values. ``compact`` checks this at build
time and raises :class:`ModelConfigError` instead.

``precision="float"`` builds the full-precision counterpart of the same
topology (float weights, ReLU activations where the binary model takes the
sign of its input): the knowledge-distillation teacher of
:mod:`larq_glt.distillation`.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import larq_glt  # noqa: F401
import larq as lq
import tf_keras as keras

from larq_glt import encoders, grouped_conv, sampled_gradient, shuffle

__all__ = ["ModelConfig", "ModelConfigError", "Block", "compact", "check_binary_groups", "scaled_filters"]


class ModelConfigError(ValueError):
    """A topology that cannot be deployed as a fully-binarized network."""


@dataclasses.dataclass(frozen=True)
class Block:
    """One grouped binary conv: ``filters`` outputs, ``groups`` groups, then
    an optional 2×2 max pool.

    ``shortcut`` adds the block's binarized input to its batch-normed output
    before the pool (``BN(conv(sign x)) + sign x``; needs as many filters as
    input channels). It costs no weight bit: at inference each output bit
    compares the convolution with one of two thresholds chosen by the input
    bit of its own channel (LCE converts the block to four ops, which the
    firmware runs as one binary conv: ``larq_glt.opset.shortcuts``).

    ``shuffle`` interleaves the block's output words across its groups
    (:mod:`larq_glt.shuffle`), so that each group of a grouped block after it
    reads every group of this one instead of a single one. Needs 2 or more
    groups of whole 32-channel words; it costs no weight bit.
    """

    filters: int
    groups: int = 1
    pool: bool = True
    kernel: int = 3
    shortcut: bool = False
    shuffle: bool = False


#: Default body for 96×96 inputs: 24×24 after the stem, 3×3 at the end.
DEFAULT_BLOCKS = (
    Block(64, groups=1, pool=True),
    Block(128, groups=2, pool=True),
    Block(256, groups=4, pool=False),
    Block(256, groups=8, pool=False),
)


@dataclasses.dataclass
class ModelConfig:
    """Everything that defines the topology (saved with each run).

    # Arguments
    input_size: square input side in pixels (96 for VWW and STL-10).
    channels: colour channels of the raw image.
    num_classes: classifier outputs.
    encoding: ``glt``, ``thermo``, ``nbc`` or ``float``.
    levels: thermometer levels K per colour channel (``glt``/``thermo``).
    per_channel: GLT thresholds per colour channel (else shared).
    glt_lr_multiplier: how many times faster than the network the GLT
        thresholds learn (the encoder's ``logit_scale``; see :class:`GLT`).
        1 here, what a saved config without the key means; new runs of the
        CLI record ``encoders.DEFAULT_LOGIT_SCALE`` (10) explicitly.
    glt_trainable: False freezes the GLT thresholds at their initialisation
        (with ``glt_init="quantile"``: a fixed thermometer at the training
        data's quantiles), or at the weights ``--init-from`` gives them.
    glt_grad_images: 0, or k > 0: the GLT thresholds' gradient from the first
        k images of each training batch only, scaled to the batch (an unbiased
        estimate; :mod:`larq_glt.sampled_gradient`). Training only: the model
        computes the same function and exports the same flatbuffer.
    stem_filters, stem_kernel, stem_stride: the first binary conv; the default
        4×4 stride-4 "patchify" stem reads every pixel once, which keeps the
        costliest layer (full resolution) cheap on a microcontroller.
    stem_pool: 2×2 max pool after the stem.
    blocks: the grouped body (see :class:`Block`).
    width: multiplier on every block's filters (the stem's too).
    pad_values: value binary convs pad with; 1.0 ("one-padding") costs nothing
        on the MCU, 0.0 needs LCE's zero-padding correction.
    momentum: batch-norm momentum.
    precision: ``binary`` (every conv binary, the deployed model) or
        ``float`` (the same topology in full precision: float kernels, ReLU
        in place of the input sign; a distillation teacher, not deployable).
    """

    input_size: int = 96
    channels: int = 3
    num_classes: int = 2
    encoding: str = "glt"
    levels: int = encoders.DEFAULT_LEVELS
    per_channel: bool = True
    glt_lr_multiplier: float = 1.0
    glt_trainable: bool = True
    glt_grad_images: int = 0
    stem_filters: int = 32
    stem_kernel: int = 4
    stem_stride: int = 4
    stem_pool: bool = True
    blocks: Sequence[Block] = DEFAULT_BLOCKS
    width: float = 1.0
    pad_values: float = 1.0
    momentum: float = 0.9
    precision: str = "binary"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["blocks"] = [dataclasses.asdict(b) for b in self.blocks]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        if "blocks" in d:
            d["blocks"] = tuple(Block(**b) for b in d["blocks"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelConfigError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def scaled_filters(filters: int, width: float) -> int:
    """A layer's filter count at width multiplier `width` (at least 1)."""
    return max(1, int(round(filters * width)))


def _bconv(filters, kernel, name, pad_values, strides=1, groups=1, padding="same", grad_images=0):
    if grad_images:
        layer, extra = sampled_gradient.SampledInputGradConv2D, {"grad_images": grad_images}
    else:
        layer, extra = lq.layers.QuantConv2D, {}
    return layer(
        filters,
        kernel,
        strides=strides,
        groups=groups,
        padding=padding,
        pad_values=pad_values,
        input_quantizer="ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
        name=name,
        **extra,
    )


def _conv(config: ModelConfig, filters, kernel, name, groups=1, padding="same"):
    """A body/classifier conv: binary, or its full-precision counterpart."""
    if config.precision == "binary":
        return _bconv(filters, kernel, name, config.pad_values, groups=groups, padding=padding)
    return keras.layers.Conv2D(filters, kernel, groups=groups, padding=padding, use_bias=False, name=name)


def _activation(config: ModelConfig, x, name):
    # Binary convs binarize their own input (ste_sign); the float counterpart
    # needs an explicit nonlinearity at the same place.
    if config.precision == "binary":
        return x
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _shortcut(config: ModelConfig, x, name):
    # The binary model adds the bits its conv reads (±1), so that the sum
    # stays a function of bits and deploys as a per-bit threshold choice; the
    # float counterpart adds its ReLU input, as a residual network would.
    if config.precision == "binary":
        return lq.quantizers.SteSign(name=f"{name}_shortcut_sign")(x)
    return keras.layers.ReLU(name=f"{name}_shortcut_relu")(x)


def check_binary_groups(in_channels: int, groups: int, layer: str) -> None:
    """Raise unless a grouped binary conv stays binary after LCE conversion."""
    if groups < 1 or in_channels % groups:
        raise ModelConfigError(
            f"{layer}: {in_channels} input channels cannot be split into {groups} groups"
        )
    per_group = in_channels // groups
    if groups > 1 and per_group % 32:
        raise ModelConfigError(
            f"{layer}: grouped binary conv with {groups} groups has {per_group} input "
            f"channels per group; LCE keeps a grouped conv binary (LceBconv2d) only when "
            f"each group has a multiple of 32 input channels, otherwise it falls back to a "
            f"float convolution. Use groups dividing {in_channels} into multiples of 32 "
            f"(e.g. groups={max(1, in_channels // 32)} or fewer)."
        )


def _shuffle_problem(name: str, filters: int, groups: int) -> str | None:
    """Why a block's output cannot be word-shuffled (None when it can)."""
    if groups < 2 or filters // groups % shuffle.WORD:
        return (f"{name}: a shuffle needs 2 or more groups of whole 32-channel words "
                f"({filters} filters in {groups} groups)")
    return None


def topology_problem(config: ModelConfig) -> str | None:
    """The first reason :func:`compact` would refuse ``config``'s channel
    counts or feature-map sizes (None when it would not), without building it."""
    if config.input_size < config.stem_stride:
        return f"input_size {config.input_size} is smaller than the stem stride {config.stem_stride}"
    side = -(-config.input_size // config.stem_stride)  # "same" padding
    if config.stem_pool:
        if side < 2:
            return "stem_pool: the feature map is already 1×1, cannot pool"
        side //= 2
    channels = scaled_filters(config.stem_filters, config.width)
    for i, block in enumerate(config.blocks):
        name, filters = f"block{i + 1}", scaled_filters(block.filters, config.width)
        if block.groups < 1 or channels % block.groups or (block.groups > 1 and channels // block.groups % 32):
            return (f"{name}_conv would split {channels} input channels into {block.groups} groups, "
                    f"not a multiple of 32 channels each")
        if filters % block.groups:
            return f"{name}_conv: {filters} filters not divisible by {block.groups} groups"
        if block.shortcut and (filters != channels or channels // block.groups % 32):
            return (f"{name}: a shortcut needs as many filters as input channels ({filters} against "
                    f"{channels}), a multiple of 32 per group")
        if block.shuffle and (problem := _shuffle_problem(name, filters, block.groups)):
            return problem
        if block.pool:
            if side < 2:
                return f"{name}: the feature map is already 1×1, cannot pool"
            side //= 2
        channels = filters
    return None


def check_sizes(config: ModelConfig) -> None:
    """Refuse a width or input size the topology cannot take, naming the
    values it can (the command line's ``--width`` and ``--image-size``)."""
    problem = topology_problem(config)
    if problem is None:
        return
    ok = lambda **change: topology_problem(dataclasses.replace(config, **change)) is None  # noqa: E731
    what = "the default topology" if tuple(config.blocks) == DEFAULT_BLOCKS else "this topology"
    if ok(input_size=1024):  # a feature map too small: the input size's fault
        sizes = [s for s in range(8, 1025) if ok(input_size=s)]
        raise ModelConfigError(f"--image-size {config.input_size}: {problem}; {what} needs --image-size "
                               f"{sizes[0]} or more")
    widths = [k / 8 for k in range(1, 8 * 16 + 1) if ok(width=k / 8, input_size=1024)]
    if not widths:
        raise ModelConfigError(problem)
    raise ModelConfigError(
        f"--width {config.width:g}: {problem}; {what} admits --width "
        f"{', '.join(f'{w:g}' for w in widths[:4])}, … (a grouped binary conv stays binary only with a multiple "
        f"of 32 input channels per group; for a smaller model give --model-config blocks with fewer groups)")


def compact(config: ModelConfig | None = None, **overrides) -> keras.Model:
    """Build the compact fully-binarized model (see the module docstring)."""
    config = dataclasses.replace(config or ModelConfig(), **overrides)
    # Grouped convolutions train ~3x faster on TensorFlow's own kernel than
    # through keras' XLA wrapper (see grouped_conv). Not at import: its check
    # runs an op, and a multi-worker strategy must be made before any op runs.
    grouped_conv.install()
    if config.precision not in ("binary", "float"):
        raise ModelConfigError(f"precision must be 'binary' or 'float', got {config.precision!r}")
    if config.input_size < config.stem_stride:
        raise ModelConfigError(f"input_size {config.input_size} is smaller than the stem stride")

    inputs = keras.Input((config.input_size, config.input_size, config.channels), dtype="uint8", name="image")
    if config.glt_grad_images and (config.encoding != "glt" or config.precision != "binary"
                                   or config.glt_grad_images < 0):
        raise ModelConfigError(f"glt_grad_images {config.glt_grad_images}: needs a positive count, "
                               "a GLT encoder and a binary stem")
    encoder = encoders.get(
        config.encoding, levels=config.levels, per_channel=config.per_channel,
        logit_scale=config.glt_lr_multiplier, name="encoder", grad_images=config.glt_grad_images,
        **({} if config.glt_trainable or config.encoding != "glt" else {"trainable": False}),
    )
    x = encoder(inputs)

    stem_filters = scaled_filters(config.stem_filters, config.width)
    if encoder.binary and config.precision == "binary":
        stem = _bconv(stem_filters, config.stem_kernel, "stem_conv", config.pad_values, strides=config.stem_stride,
                      grad_images=config.glt_grad_images)
    else:
        # The accuracy reference: a full-precision first conv on the float image
        # (binary weights elsewhere), as in conventional BNNs.
        stem = keras.layers.Conv2D(
            stem_filters, config.stem_kernel, strides=config.stem_stride, padding="same",
            use_bias=False, name="stem_conv",
        )
    x = stem(x)
    x = keras.layers.BatchNormalization(momentum=config.momentum, name="stem_bn")(x)
    if config.stem_pool:
        x = keras.layers.MaxPool2D(2, name="stem_pool")(x)

    channels = stem_filters
    for i, block in enumerate(config.blocks):
        name = f"block{i + 1}"
        filters = scaled_filters(block.filters, config.width)
        check_binary_groups(channels, block.groups, f"{name}_conv")
        if filters % block.groups:
            raise ModelConfigError(f"{name}_conv: {filters} filters not divisible by {block.groups} groups")
        if block.shortcut and (filters != channels or channels // block.groups % 32):
            raise ModelConfigError(f"{name}: a shortcut needs as many filters as input channels "
                                   f"({filters} against {channels}), a multiple of 32 per group")
        block_input = x
        x = _activation(config, x, name)
        x = _conv(config, filters, block.kernel, f"{name}_conv", groups=block.groups)(x)
        x = keras.layers.BatchNormalization(momentum=config.momentum, name=f"{name}_bn")(x)
        if block.shortcut:
            x = keras.layers.Add(name=f"{name}_add")([x, _shortcut(config, block_input, name)])
        if block.pool:
            if x.shape[1] < 2:
                raise ModelConfigError(f"{name}: the feature map is already 1×1, cannot pool")
            x = keras.layers.MaxPool2D(2, name=f"{name}_pool")(x)
        if block.shuffle:
            if problem := _shuffle_problem(name, filters, block.groups):
                raise ModelConfigError(problem)
            x = shuffle.WordShuffle(block.groups, name=f"{name}_shuffle")(x)
        channels = filters

    # Binary classifier: a VALID conv spanning the whole final map (a binary
    # fully-connected layer that LCE converts to LceBconv2d with float output).
    h, w = int(x.shape[1]), int(x.shape[2])
    x = _activation(config, x, "classifier")
    x = _conv(config, config.num_classes, (h, w), "classifier", padding="valid")(x)
    x = keras.layers.BatchNormalization(momentum=config.momentum, name="classifier_bn")(x)
    logits = keras.layers.Flatten(name="logits")(x)
    suffix = "" if config.precision == "binary" else f"_{config.precision}"
    model = keras.Model(inputs, logits, name=f"compact_{config.encoding}{suffix}")
    return model
