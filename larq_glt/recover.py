"""A trained model recovered from its converted flatbuffer.

A larq-glt export keeps everything its deployed function needs: the sign of
every binary weight, each batch norm folded into LCE's per-channel thresholds
(bit outputs) or multiplier and bias (the classifier), and the GLT thresholds.
:func:`from_flatbuffer` rebuilds the :func:`~larq_glt.models.compact` model
with exactly that function, so a shipped model whose run directory is gone can
still be fine-tuned or continued::

    python -m larq_glt.train --init-from models/person_detect ...

```python
from larq_glt import recover
model = recover.from_flatbuffer("models/person_detect/model.tflite")
recover.config_from_flatbuffer("models/person_detect/model.tflite")   # its ModelConfig
```

What the flatbuffer does not keep, and the rebuilt model therefore lacks:

- the latent weights' magnitudes: every latent weight becomes ±``latent``
  (small, so that fine-tuning can still flip signs);
- the batch norms' statistics as trained: each becomes the affine map LCE
  applied (mean 0, variance 1 − ε). Training normalises with the batch's own
  statistics, so before a run starts from it :func:`calibrate` gives every
  batch norm its input's statistics on sample images, inference unchanged;
- the GLT logits beyond the integer thresholds they round to.

Only what :func:`~larq_glt.models.compact` builds with a GLT or thermometer
encoder (shortcut and shuffled blocks included) is recognised (any other flatbuffer: :class:`RecoverError`). The
topology is read from the flatbuffer itself (filters as built, width 1), so
layer names and shapes equal the original's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import larq_glt  # noqa: F401  (TF_USE_LEGACY_KERAS)
from larq_glt import flatbuffer
from larq_glt.models import Block, ModelConfig

__all__ = ["RecoverError", "config_from_flatbuffer", "from_flatbuffer", "flatbuffer_path", "calibrate"]

#: Magnitude of the recovered latent weights (larq clips them to [-1, 1]).
LATENT = 0.05

_SAME = 0  # LCE's padding option: TFLite's Padding enum (0 SAME, 1 VALID)


class RecoverError(ValueError):
    """The flatbuffer is not a model this module can rebuild (message says why)."""


def flatbuffer_path(path) -> Path | None:
    """The ``.tflite`` a path names: the file itself, or an export folder's
    ``model.tflite``; None for anything else (a run directory, a ``.keras``)."""
    path = Path(path)
    if path.suffix == ".tflite" and path.is_file():
        return path
    if path.is_dir() and (path / "model.tflite").is_file():
        return path / "model.tflite"
    return None


def _read(path) -> flatbuffer.Model:
    try:
        return flatbuffer.read_model(path)
    except (OSError, flatbuffer.ModelFormatError) as e:
        raise RecoverError(f"{path}: {e}") from None


def _const(model, op, k: int, role: str) -> np.ndarray:
    if k >= len(op.inputs) or op.inputs[k] < 0 or model.tensors[op.inputs[k]].data is None:
        raise RecoverError(f"{op.opcode} (op {op.index}) has no constant {role}")
    return np.asarray(model.tensors[op.inputs[k]].data)


def _encoder_thresholds(model, channels: int) -> np.ndarray:
    """[channels, K] integer thresholds of the GLT/thermometer front end: the
    constant its SUB takes from the pixel (plane +1 iff pixel >= threshold)."""
    subs = [op for op in model.operators if op.opcode == "SUB" and len(op.inputs) == 2
            and op.inputs[1] >= 0 and model.tensors[op.inputs[1]].data is not None]
    if len(subs) != 1 or not any(op.opcode == "LceQuantize" for op in model.operators):
        raise RecoverError("the front end is not a thermometer (one SUB of constant thresholds, then "
                           "LceQuantize): only GLT and thermometer encodings can be recovered")
    t = np.asarray(model.tensors[subs[0].inputs[1]].data, dtype=np.float64)
    if t.size % channels or np.any(t != np.round(t)):
        raise RecoverError(f"the front end's thresholds ({t.size} values) are not integer levels "
                           f"of {channels} channels")
    t = t.reshape(channels, -1)
    if np.any(np.diff(t, axis=1) <= 0) or t.min() < 1 or t.max() > 255:
        raise RecoverError("the front end's thresholds are not strictly increasing within 1..255")
    return t.astype(np.int64)


def _bconvs(model) -> list[dict]:
    """Each LceBconv2d in execution order, with what the rebuild needs."""
    from larq_glt import opset

    from larq_glt import shuffle

    shortcuts = {sc.bconv: sc for sc in opset.shortcuts(model)}
    shuffles = {sh.bconv: sh for sh in opset.word_shuffles(model)}
    convs = []
    for op in model.operators:
        if op.opcode != "LceBconv2d":
            continue
        o = op.custom_options or {}
        missing = {"channels_in", "stride_height", "stride_width", "padding"} - set(o)
        if missing:
            raise RecoverError(f"LceBconv2d (op {op.index}) lacks the options {sorted(missing)}")
        filt = _const(model, op, 1, "filter")
        if filt.ndim != 4 or filt.dtype != np.int32:
            raise RecoverError(f"LceBconv2d (op {op.index}): filter is not bit-packed INT32 [O, H, W, I]")
        out_c, fh, fw, gw = (int(d) for d in filt.shape)
        cin = int(o["channels_in"])
        words = -(-cin // 32)
        groups = 1 if gw == words else words // gw
        out = model.tensors[op.outputs[0]]
        # a shortcut block's bits leave through its LceQuantize (ADD of the input's signs)
        tail = model.operators[shortcuts[op.index].quantize] if op.index in shortcuts else op
        consumers = model.consumers(tail.outputs[0])
        pool = len(consumers) == 1 and consumers[0].opcode == "LceBMaxPool2d"
        po = (consumers[0].custom_options or {}) if pool else {}
        if op.index in shuffles:  # a shuffled block: float conv, float pool, GATHER
            sh = shuffles[op.index]
            if list(sh.order) != shuffle.word_order(len(sh.order), groups):
                raise RecoverError(f"GATHER (op {sh.gather}) is not the word shuffle of {groups} groups")
            pool = sh.pool is not None
            bo = model.operators[sh.pool].builtin_options if pool else {}
            po = {"filter_height": bo.get("filter_height"), "filter_width": bo.get("filter_width"),
                  "stride_height": bo.get("stride_h"), "stride_width": bo.get("stride_w")}
        if pool:
            if (int(po.get("filter_height", 0)), int(po.get("filter_width", 0)),
                    int(po.get("stride_height", 0)), int(po.get("stride_width", 0))) != (2, 2, 2, 2):
                raise RecoverError(f"the pool after LceBconv2d (op {op.index}) is not 2×2 with stride 2")
        conv = dict(op=op, filter=filt, out_c=out_c, fh=fh, fw=fw, cin=cin, groups=groups,
                    stride=(int(o["stride_height"]), int(o["stride_width"])),
                    same=int(o["padding"]) == _SAME, pad_values=float(o.get("pad_values", 0)),
                    bits=out.type_name == "INT32", pool=pool, shortcut=op.index in shortcuts,
                    shuffle=op.index in shuffles)
        if conv["bits"]:
            conv["thresholds"] = _const(model, op, 4, "thresholds").astype(np.int64).reshape(-1)
        elif out.type_name == "FLOAT32":
            conv["multiplier"] = _const(model, op, 2, "post_activation_multiplier").astype(np.float64).reshape(-1)
            conv["bias"] = _const(model, op, 3, "post_activation_bias").astype(np.float64).reshape(-1)
        else:
            raise RecoverError(f"LceBconv2d (op {op.index}) has {out.type_name} output")
        convs.append(conv)
    if len(convs) < 2:
        raise RecoverError("fewer than two binary convolutions: not a compact larq-glt model")
    return convs


def config_from_flatbuffer(path) -> ModelConfig:
    """The ModelConfig whose ``compact`` model converts to this flatbuffer's
    topology (filters as built, width 1)."""
    return _config(_read(path))


def _config(model) -> ModelConfig:
    if (len(model.inputs) != 1 or model.tensors[model.inputs[0]].type_name != "UINT8"
            or len(model.tensors[model.inputs[0]].shape) != 4):
        raise RecoverError("the input is not one uint8 image [1, H, W, C]")
    _, h, w, channels = model.tensors[model.inputs[0]].shape
    if h != w:
        raise RecoverError(f"the input is {h}×{w}; compact models are square")
    levels = _encoder_thresholds(model, channels).shape[1]
    convs = _bconvs(model)
    stem, body, head = convs[0], convs[1:-1], convs[-1]
    if stem["fh"] != stem["fw"] or stem["stride"][0] != stem["stride"][1] or stem["groups"] != 1:
        raise RecoverError("the stem is not a square, ungrouped convolution with equal strides")
    if head["bits"] or head["same"] or head["pool"]:
        raise RecoverError("the last binary convolution is not a VALID classifier with float output")
    blocks = []
    for c in body:
        if c["fh"] != c["fw"] or c["stride"] != (1, 1) or not c["same"] or \
                not (c["bits"] or c["shortcut"] or c["shuffle"]):
            raise RecoverError(f"LceBconv2d (op {c['op'].index}) is not a SAME stride-1 square block")
        blocks.append(Block(filters=c["out_c"], groups=c["groups"], pool=c["pool"], kernel=c["fh"],
                            shortcut=c["shortcut"], shuffle=c["shuffle"]))
    pads = {c["pad_values"] for c in convs if c["same"]}
    if len(pads) > 1:
        raise RecoverError(f"the convolutions pad with different values {sorted(pads)}; compact pads all alike")
    return ModelConfig(
        input_size=int(h), channels=int(channels), num_classes=head["out_c"], encoding="glt", levels=levels,
        per_channel=True, glt_lr_multiplier=1.0, stem_filters=stem["out_c"], stem_kernel=stem["fh"],
        stem_stride=stem["stride"][0], stem_pool=stem["pool"], blocks=tuple(blocks), width=1.0,
        pad_values=pads.pop() if len(pads) == 1 else 1.0)


def _kernel(conv: dict, latent: float) -> np.ndarray:
    """Keras kernel [H, W, C/groups, O] of ±latent from LCE's packed filter (bit 1 = -1)."""
    cin_group = conv["cin"] // conv["groups"]
    f = np.ascontiguousarray(conv["filter"]).view(np.uint8)
    bits = np.unpackbits(f, axis=-1, bitorder="little")[..., :cin_group]  # [O, H, W, C/groups]
    return (latent * (1.0 - 2.0 * bits)).transpose(1, 2, 3, 0).astype(np.float32)


def _affine(bn, gamma: np.ndarray, beta: np.ndarray) -> None:
    """Set a BatchNormalization to y = gamma * x + beta (mean 0, variance 1 - eps)."""
    n = len(gamma)
    bn.set_weights([gamma.astype(np.float32), beta.astype(np.float32), np.zeros(n, np.float32),
                    np.full(n, 1.0 - bn.epsilon, np.float32)])


def from_flatbuffer(path, latent: float = LATENT):
    """The compact Keras model computing what the flatbuffer at ``path`` (a
    ``.tflite`` or an export folder) computes; see the module docstring."""
    from larq_glt import encoders, models

    file = flatbuffer_path(path) or Path(path)
    fb = _read(file)
    config = _config(fb)
    thresholds = _encoder_thresholds(fb, config.channels)
    convs = _bconvs(fb)
    model = models.compact(config)
    model.recovered_from = str(file)  # _init_from: its batch norms need calibrate()
    names = ["stem_conv", *(f"block{i + 1}_conv" for i in range(len(config.blocks))), "classifier"]
    bns = ["stem_bn", *(f"block{i + 1}_bn" for i in range(len(config.blocks))), "classifier_bn"]

    encoder = model.get_layer("encoder")
    k = config.levels
    logits = np.stack([encoders._gap_logits_for(t.astype(np.float64), k) for t in thresholds])
    encoder.logits.assign((logits / encoder.logit_scale).astype(np.float32))
    got = np.asarray(encoder._integer_thresholds().numpy(), dtype=np.int64)
    if not np.array_equal(got, thresholds):
        raise RecoverError(f"{file}: the GLT thresholds could not be reproduced ({got.tolist()})")

    for conv, name, bn_name in zip(convs, names, bns):
        layer, bn = model.get_layer(name), model.get_layer(bn_name)
        kernel = _kernel(conv, latent)
        if layer.kernel.shape != kernel.shape:
            raise RecoverError(f"{file}: {name} has kernel {tuple(kernel.shape)} in the flatbuffer and "
                               f"{tuple(layer.kernel.shape)} in the rebuilt model")
        layer.kernel.assign(kernel)
        taps = conv["fh"] * conv["fw"] * (conv["cin"] // conv["groups"])
        if conv["bits"]:
            # LCE sets an output bit (-1) when acc = popcount(x xor w) > threshold; the
            # conv's output is d = taps - 2 acc, so y = d + 2 threshold - taps + 1/2 is
            # negative exactly then (and the 2×2 max pool commutes with the sign).
            t = np.clip(conv["thresholds"], -(2 ** 30), 2 ** 30).astype(np.float64)
            _affine(bn, np.ones(conv["out_c"]), 2.0 * t - taps + 0.5)
        else:
            # the classifier, a shortcut block (whose input signs the model adds after) or
            # a shuffled block (whose sign the next conv takes after the shuffle)
            _affine(bn, conv["multiplier"], conv["bias"])  # LCE: multiplier * d + bias
    return model


def calibrate(model, images, batch_size: int = 64) -> None:
    """Set every batch norm's moving statistics to those of its input on
    ``images`` (uint8, the model's input) and adapt its gamma and beta so that
    the model's inference function does not change: a model rebuilt by
    :func:`from_flatbuffer` then behaves about the same in training mode (batch
    statistics) as in inference, and fine-tuning starts where the export is."""
    import tf_keras as keras

    if len(images) == 0:
        raise ValueError("calibrate needs at least one image")
    bns = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    if not bns:
        return
    probe = keras.Model(model.inputs, [bn.input for bn in bns])
    counts, sums, squares = [0] * len(bns), [0.0] * len(bns), [0.0] * len(bns)
    for i in range(0, len(images), batch_size):
        outs = probe(np.asarray(images[i:i + batch_size]), training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for k, o in enumerate(outs):  # per layer: the maps differ in size
            f = np.asarray(o, np.float64).reshape(-1, o.shape[-1])
            counts[k] += f.shape[0]
            sums[k] = sums[k] + f.sum(0)
            squares[k] = squares[k] + (f * f).sum(0)
    for bn, n, s, q in zip(bns, counts, sums, squares):
        gamma, beta, mean, var = (w.astype(np.float64) for w in bn.get_weights())
        scale = gamma / np.sqrt(var + bn.epsilon)  # inference: scale * x + shift
        shift = beta - mean * scale
        new_mean = s / n
        new_var = np.maximum(q / n - new_mean ** 2, 0.0)
        new_gamma = scale * np.sqrt(new_var + bn.epsilon)
        bn.set_weights([new_gamma.astype(np.float32), (shift + new_mean * scale).astype(np.float32),
                        new_mean.astype(np.float32), new_var.astype(np.float32)])
