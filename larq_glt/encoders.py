"""Input encoders: raw ``uint8`` pixels (the ADC output) to ±1 binary planes.

An encoder is the first layer of a fully-binarized network. It takes the 8-bit
pixel an image sensor's ADC produces and emits binary planes that the first
binary convolution consumes, so no layer of the network sees a float input.

```python
import larq_glt
from larq_glt import encoders
import tensorflow as tf

x = tf.keras.Input((96, 96, 3), dtype="uint8")
planes = encoders.GLT(levels=8)(x)          # (96, 96, 3 * 8) of ±1
```

Encoders available by name (``encoders.get("glt")``):

- ``glt``: Generic Learned Thermometer, K learned, ordered thresholds.
- ``thermo``: the fixed uniform thermometer with K levels.
- ``nbc``: natural binary coding, the 8 bit-planes of the pixel value.
- ``float``: the usual BNN practice, a normalised float image (for a
  full-precision first convolution).

Planes are laid out channel-major: output channel ``c * K + k`` is plane ``k`` of
input channel ``c``, so each colour channel's planes are contiguous (and with
K = 32 exactly one bit-packed word).

Every binary encoder exports its exact integer semantics: ``thresholds()``
(for thermometers) and ``lut()``, a ``(C, 256, K)`` table of ±1 equal to the
layer's output for every input value. With ``output="preactivation"`` the layer
emits a signed value whose sign is the plane (``+1`` where ``>= 0``): this is the
form the LCE converter fuses into the first binary convolution
(``LceQuantize`` → ``LceBconv2d``), used at export.

# References
- Nguyen & Guicquero, "End-to-end fully-binarized network design: from Generic
  Learned Thermometer to Block Pruning", arXiv:2505.13462, 2025.
"""
from __future__ import annotations

import numpy as np

import larq_glt  # noqa: F401  (selects legacy Keras before TensorFlow loads)
import tensorflow as tf
import tf_keras as keras

__all__ = [
    "Encoder",
    "ThermometerBase",
    "GLT",
    "Thermometer",
    "NaturalBinary",
    "FloatInput",
    "get",
    "names",
    "DEFAULT_LEVELS",
    "DEFAULT_LOGIT_SCALE",
]

#: Default number of thermometer levels per colour channel. Eight planes per
#: channel is the same bit budget as natural binary coding (the 8 bit-planes of
#: an 8-bit ADC), so ``glt``/``thermo``/``nbc`` compare at equal input width.
DEFAULT_LEVELS = 8

#: Default GLT learning-rate multiplier (``GLT(logit_scale=...)``, the CLI's
#: ``--glt-lr-multiplier``): see :class:`GLT`.
DEFAULT_LOGIT_SCALE = 10.0

_OUTPUTS = ("binary", "preactivation")


def _sign(x):
    """sign with sign(0) = +1, as larq's ``ste_sign`` and LCE's LceQuantize."""
    return tf.where(x >= 0, tf.ones_like(x), -tf.ones_like(x))


@tf.custom_gradient
def _round_ste(x):
    """Round to the nearest integer; identity gradient (straight-through)."""
    return tf.round(x), lambda dy: dy


def _surrogate_sign(width):
    """Hard sign with a triangular surrogate gradient of half-width ``width``.

    Forward: ``+1 if z >= 0 else -1``.
    Backward: ``d/dz ≈ max(0, 1 - |z| / width) / width`` (its integral over z is 2,
    the height of the step), so thresholds within ``width`` pixel levels of a
    pixel value receive gradient. The readable reference of
    :func:`_learned_thermometer_planes`, which GLT runs (the tests compare them).
    """

    @tf.custom_gradient
    def sign(z):
        def grad(dy):
            return dy * tf.nn.relu(1.0 - tf.abs(z) / width) / width

        return _sign(z), grad

    return sign


def _thermometer_planes(x, t):
    """``sign(x - t)`` (sign(0) = +1) laid out (B,H,W,C·K), in one pass: the
    comparison writes the planes directly, no ``x - t`` tensor is kept."""
    c, k = t.shape
    return tf.reshape(tf.where(tf.expand_dims(x, -1) >= t, 1.0, -1.0), tf.concat([tf.shape(x)[:-1], [c * k]], 0))


def _learned_thermometer_planes(width, input_gradient: bool, grad_images: int = 0):
    """:func:`_thermometer_planes` of (x, t) with :func:`_surrogate_sign`'s
    gradient, ``x - t`` recomputed in the backward pass. The same values and
    gradients as ``_surrogate_sign(width)(_planes(x, t))``; the planes are the
    largest tensor of a training step's input side, and writing them once
    instead of four times roughly halves the encoder's share of a step.
    grad_images k > 0 (integer input only): the backward pass reads the first
    k images alone, the others' planes being known to receive no gradient
    (:mod:`larq_glt.sampled_gradient`)."""
    if grad_images and input_gradient:
        raise ValueError("grad_images needs an integer image: a float one has a gradient of its own")

    @tf.custom_gradient
    def planes(x, t):
        def grad(dy):
            xs = x[:grad_images] if grad_images else x
            z = tf.expand_dims(xs, -1) - t
            dy = dy[:grad_images] if grad_images else dy
            dz = tf.reshape(dy, tf.shape(z)) * (tf.nn.relu(1.0 - tf.abs(z) / width) / width)
            dt = -tf.reduce_sum(dz, axis=tf.range(tf.rank(dz) - 2))
            # An integer image (the encoders' input) has no gradient to take.
            dx = tf.reduce_sum(dz, axis=-1) if input_gradient else tf.zeros_like(x)
            return dx, dt

        return _thermometer_planes(x, t), grad

    return planes


class Encoder(keras.layers.Layer):
    """Base class: ``uint8`` image (B, H, W, C) → planes (B, H, W, C·K)."""

    #: True when the output is binary (±1) and the first conv can be binary.
    binary = True

    def __init__(self, output: str = "binary", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        self.output_mode = output

    @property
    def planes_per_channel(self) -> int:
        raise NotImplementedError

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        return input_shape[:-1].concatenate([input_shape[-1] * self.planes_per_channel])

    def _preactivation(self, x):
        raise NotImplementedError

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        z = self._preactivation(x)
        if self.output_mode == "preactivation":
            return z
        return self._binarize(z)

    def _binarize(self, z):
        return _sign(z)

    def _planes(self, x, offsets):
        """x (B,H,W,C) and offsets (C,K) → x - offsets laid out as (B,H,W,C·K)."""
        c = x.shape[-1]
        k = offsets.shape[-1]
        z = tf.expand_dims(x, -1) - offsets
        return tf.reshape(z, tf.concat([tf.shape(x)[:-1], [c * k]], 0))

    def lut(self, channels: int | None = None) -> np.ndarray:
        """The layer's exact output for every pixel value: ``(C, 256, K)`` of ±1.

        Computed by running the layer itself on all 256 values, so it is by
        construction what the layer does (and what the firmware must do).
        """
        channels = channels or self._channels()
        values = np.arange(256, dtype=np.uint8)
        image = np.repeat(values[None, :, None], channels, axis=2)[None]  # (1,1,256,C)... as H=1,W=256
        out = self.__class__.from_config({**self.get_config(), "output": "binary"})
        out.build(image.shape)
        out.set_weights(self.get_weights())
        planes = out(tf.constant(image)).numpy()[0, 0]  # (256, C*K)
        k = self.planes_per_channel
        return planes.reshape(256, channels, k).transpose(1, 0, 2).astype(np.int8)

    def _channels(self) -> int:
        if not self.built:
            raise ValueError("the encoder is not built yet: call it on an input first")
        return self._input_channels

    def build(self, input_shape):
        self._input_channels = int(input_shape[-1])
        super().build(input_shape)

    def get_config(self):
        return {**super().get_config(), "output": self.output_mode}


class ThermometerBase(Encoder):
    """The common base of the thermometer encoders (Thermometer, GLT): K ordered
    thresholds per colour channel; `isinstance(layer, ThermometerBase)` is how
    export, summary and training recognise a thermometer code."""

    def __init__(self, levels: int = DEFAULT_LEVELS, **kwargs):
        super().__init__(**kwargs)
        if not 1 <= int(levels) <= 255:
            raise ValueError(f"levels must be in 1..255, got {levels}")
        self.levels = int(levels)

    @property
    def planes_per_channel(self) -> int:
        return self.levels

    def thresholds(self) -> np.ndarray:
        """Integer thresholds ``(C, K)``: plane k is +1 where ``pixel >= t[c, k]``."""
        return np.asarray(self._integer_thresholds().numpy(), dtype=np.int32)

    def _preactivation(self, x):
        return self._planes(x, self._integer_thresholds())

    def get_config(self):
        return {**super().get_config(), "levels": self.levels}


def uniform_thresholds(levels: int) -> np.ndarray:
    """The uniform thermometer: ``t_k = round(256 k / (K + 1))``, k = 1..K."""
    k = np.arange(1, levels + 1)
    return np.round(256.0 * k / (levels + 1)).astype(np.int32)


@keras.utils.register_keras_serializable(package="larq_glt", name="Thermometer")
class Thermometer(ThermometerBase):
    r"""Fixed uniform thermometer code with K levels (the non-learned baseline).

    \\[ q_{c,k}(x) = \begin{cases} +1 & x_c \ge t_k \\ -1 & x_c < t_k \end{cases},
    \quad t_k = \mathrm{round}\left(\frac{256\,k}{K+1}\right),\ k = 1..K \\]

    No trainable weights; no gradient flows to the (integer) input.

    # Arguments
    levels: number of thresholds K (binary planes per colour channel).
    output: ``"binary"`` (±1) or ``"preactivation"`` (``x - t``, for export).
    """

    def build(self, input_shape):
        channels = int(input_shape[-1])
        t = np.tile(uniform_thresholds(self.levels)[None], (channels, 1))
        self._t = tf.constant(t, tf.float32)
        super().build(input_shape)

    def _integer_thresholds(self):
        return self._t

    def call(self, inputs):
        if self.output_mode == "preactivation":
            return super().call(inputs)
        return _thermometer_planes(tf.cast(inputs, tf.float32), self._t)


@keras.utils.register_keras_serializable(package="larq_glt", name="GLT")
class GLT(ThermometerBase):
    r"""Generic Learned Thermometer: K learned, strictly increasing thresholds.

    Forward (per colour channel c, or shared across channels):

    \\[ q_{c,k}(x) = \mathrm{sign}(x_c - \lfloor t_{c,k} \rceil),\quad \mathrm{sign}(0) = +1 \\]

    The thresholds are built from K + 1 positive gaps that fill the ADC range,

    \\[ t_{c,k} = \sum_{i \le k} g_{c,i},\quad g_{c,i} = 1 + (256 - (K+1))\,\mathrm{softmax}(\theta_c)_i \\]

    so every gap is at least one ADC code: after rounding to the integer grid
    the thresholds stay strictly increasing and inside ``[1, 255]`` for any
    value of the trainable logits θ. Rounding is straight-through, so what is
    trained is exactly what the integer comparator (or firmware LUT) deploys.

    Backward: the hard sign uses a triangular surrogate
    \\( \partial q / \partial z \approx \max(0, 1 - |z|/w)/w \\) with
    \\( z = x - t \\), giving gradients to both the input and the thresholds.

    # Arguments
    levels: number of thresholds K (binary planes per colour channel).
    per_channel: one threshold set per colour channel (True) or one shared set.
    init: ``"uniform"`` (the uniform thermometer) or ``"quantile"`` (the data's
        k/(K+1) quantiles; pass ``init_data`` or call ``init_from_data``).
    surrogate_width: half-width w of the surrogate gradient, in pixel levels;
        default half the uniform gap, ``128 / (K + 1)``.
    output: ``"binary"`` (±1) or ``"preactivation"`` (``x - t``, for export).
    logit_scale: s in ``softmax(s θ)``. The trainable variable is θ, so under
        Adam (whose steps are about the learning rate whatever the gradient's
        scale) the effective logits ``s θ`` move s times faster than the
        network's weights: a learning-rate multiplier for the thresholds.
        :data:`DEFAULT_LOGIT_SCALE` (10) by default, chosen by experiment
        (``bench/glt_dynamics.py``): at 1 the thresholds barely move in a
        short run (≈0.08 ADC codes per Adam step at 2e-3 with K = 4), at 10
        they reach the dark codes of linear-sensor data within ~100 steps.
        A saved layer without this key (older than the option) loads with 1.
    grad_images: 0, or k > 0 when the stem is a
        :class:`~larq_glt.sampled_gradient.SampledInputGradConv2D` with the same
        k: the planes of images past the first k then receive no gradient, and
        the backward pass skips them (see :mod:`larq_glt.sampled_gradient`).

    # References
    - Nguyen & Guicquero, arXiv:2505.13462 (2025).
    """

    def __init__(
        self,
        levels: int = DEFAULT_LEVELS,
        per_channel: bool = True,
        init: str = "uniform",
        surrogate_width: float | None = None,
        logit_scale: float = None,
        grad_images: int = 0,
        **kwargs,
    ):
        super().__init__(levels=levels, **kwargs)
        if int(grad_images) < 0:
            raise ValueError(f"grad_images must be 0 or more, got {grad_images}")
        self.grad_images = int(grad_images)
        if init not in ("uniform", "quantile"):
            raise ValueError(f"init must be 'uniform' or 'quantile', got {init!r}")
        logit_scale = DEFAULT_LOGIT_SCALE if logit_scale is None else logit_scale
        if not float(logit_scale) > 0:
            raise ValueError(f"logit_scale must be positive, got {logit_scale}")
        self.logit_scale = float(logit_scale)
        if self.levels > 254:
            raise ValueError("GLT needs levels <= 254 so that every gap is >= 1 code")
        self.per_channel = bool(per_channel)
        self.init = init
        self.surrogate_width = float(surrogate_width or 128.0 / (self.levels + 1))

    def build(self, input_shape):
        channels = int(input_shape[-1])
        rows = channels if self.per_channel else 1
        self.logits = self.add_weight(
            name="gap_logits",
            shape=(rows, self.levels + 1),
            initializer="zeros",  # equal gaps: the uniform thermometer
            trainable=True,
        )
        self._channels_in = channels
        super().build(input_shape)

    def _continuous_thresholds(self):
        k = self.levels
        gaps = 1.0 + (256.0 - (k + 1)) * tf.nn.softmax(self.logit_scale * self.logits, axis=-1)
        t = tf.cumsum(gaps, axis=-1)[:, :k]
        if not self.per_channel:
            t = tf.tile(t, [self._channels_in, 1])
        return t

    def _integer_thresholds(self):
        return _round_ste(self._continuous_thresholds())

    def _preactivation(self, x):
        return self._planes(x, self._integer_thresholds())

    def call(self, inputs):
        if self.output_mode == "preactivation":
            return super().call(inputs)
        planes = _learned_thermometer_planes(self.surrogate_width, tf.as_dtype(inputs.dtype).is_floating,
                                             self.grad_images)
        return planes(tf.cast(inputs, tf.float32), self._integer_thresholds())

    def init_from_data(self, images) -> None:
        """Set thresholds to the data's k/(K+1) quantiles (per channel or pooled).

        ``images``: uint8 array (N, H, W, C). Gaps smaller than one code are
        widened, so the result is always a valid strictly increasing set.
        """
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"init_from_data expects uint8 images, got {images.dtype}")
        if not self.built:
            self.build(images.shape)
        k = self.levels
        q = np.arange(1, k + 1) / (k + 1)
        flat = images.reshape(-1, images.shape[-1]).astype(np.float64)
        cols = [flat[:, c] for c in range(flat.shape[1])] if self.per_channel else [flat.ravel()]
        logits = np.stack([_gap_logits_for(np.quantile(col, q), k) for col in cols])
        self.logits.assign((logits / self.logit_scale).astype(np.float32))

    @classmethod
    def from_config(cls, config):
        # Layers saved before ``logit_scale`` existed were trained at scale 1.
        return cls(**{"logit_scale": 1.0, **config})

    def continuous_thresholds(self) -> np.ndarray:
        """The real-valued thresholds before snapping (for plots and analysis)."""
        return self._continuous_thresholds().numpy()

    def get_config(self):
        return {
            **super().get_config(),
            "per_channel": self.per_channel,
            "init": self.init,
            "surrogate_width": self.surrogate_width,
            "logit_scale": self.logit_scale,
            "grad_images": self.grad_images,
        }


def _gap_logits_for(targets: np.ndarray, levels: int) -> np.ndarray:
    """Logits θ whose thresholds approximate ``targets`` (sorted, in 0..255)."""
    targets = np.clip(np.sort(targets), 0.5, 255.5)
    edges = np.concatenate([[0.0], targets, [256.0]])
    gaps = np.maximum(np.diff(edges), 1.0)
    slack = gaps - 1.0
    budget = 256.0 - (levels + 1)
    share = slack / slack.sum() if slack.sum() > 0 else np.full_like(slack, 1.0 / len(slack))
    # softmax(θ) = share; keep every share > 0 so the logits stay finite.
    share = np.maximum(share, 1e-3 / budget)
    return np.log(share / share.sum())


@keras.utils.register_keras_serializable(package="larq_glt", name="NaturalBinary")
class NaturalBinary(Encoder):
    r"""Natural binary coding: the 8 bit-planes of the 8-bit pixel.

    \\[ q_{c,b}(x) = +1 \text{ if bit } b \text{ of } x_c \text{ is set, else } -1,\quad b = 0..7 \\]

    computed as ``frac(x / 2^{b+1}) - 1/2 >= 0`` (exact in float32), which
    converts to plain element-wise TFLite ops (MUL, FLOOR, SUB). This is what a
    conventional ADC gives; it is not monotonic in the pixel value, which is why
    a thermometer code helps.
    """

    bits = 8

    @property
    def planes_per_channel(self) -> int:
        return self.bits

    def build(self, input_shape):
        channels = int(input_shape[-1])
        b = np.arange(self.bits)
        self._scale = tf.constant(np.tile((2.0 ** -(b + 1))[None], (channels, 1)), tf.float32)
        super().build(input_shape)

    def _preactivation(self, x):
        c = x.shape[-1]
        y = tf.expand_dims(x, -1) * self._scale
        z = (y - tf.floor(y)) - 0.5
        return tf.reshape(z, tf.concat([tf.shape(x)[:-1], [c * self.bits]], 0))


@keras.utils.register_keras_serializable(package="larq_glt", name="FloatInput")
class FloatInput(Encoder):
    """The conventional BNN input: ``x / 127.5 - 1`` in [-1, 1], full precision.

    Not binary: the first convolution must then be full precision (the
    accuracy reference of the paper's comparison).
    """

    binary = False

    @property
    def planes_per_channel(self) -> int:
        return 1

    def _preactivation(self, x):
        return x / 127.5 - 1.0

    def _binarize(self, z):
        return z

    def lut(self, channels=None):
        raise TypeError("the float encoder has no binary look-up table")


_REGISTRY = {"glt": GLT, "thermo": Thermometer, "nbc": NaturalBinary, "float": FloatInput}


def names() -> list[str]:
    return list(_REGISTRY)


def get(encoding: str, **kwargs) -> Encoder:
    """Build an encoder from its CLI name (``glt``, ``thermo``, ``nbc``, ``float``)."""
    try:
        cls = _REGISTRY[encoding]
    except KeyError:
        raise ValueError(f"unknown encoding {encoding!r}; choose one of {names()}") from None
    if cls in (NaturalBinary, FloatInput):
        kwargs.pop("levels", None)
    if cls is not GLT:
        kwargs.pop("per_channel", None)
        kwargs.pop("init", None)
        kwargs.pop("logit_scale", None)
        kwargs.pop("grad_images", None)
    return cls(**kwargs)
