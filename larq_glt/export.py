"""Export: a trained run becomes an LCE flatbuffer whose input is the raw image.

``python -m larq_glt.export RUN_DIR [--out DIR] [--check-images DIR]``

1. The model is rebuilt with its encoder in ``preactivation`` form (``x - t``)
   so that the LCE converter fuses the sign into ``LceQuantize`` → the first
   ``LceBconv2d``: the flatbuffer's input is the ``uint8`` image and nothing
   outside the model pre-processes pixels.
2. ``larq_compute_engine.convert_keras_model`` converts it.
3. The LCE interpreter and the Keras model run on a check set (real images
   when given, else generated ones); any differing predicted class fails the
   export.
4. The flatbuffer is checked against what this project's firmware runtime can
   execute: an unsupported op is refused, naming the op and the Keras layer.
5. Written atomically into the output directory: ``model.tflite``,
   ``encoder.json`` (integer thresholds and the 256-entry LUT per channel),
   ``adc_levels.csv`` (GLT/thermo comparator levels for a sensor designer),
   ``model.json`` (class names, input, encoding), ``report.md`` / ``report.json``.

```python
from larq_glt import export
result = export.export("runs/vww-glt")
print(result.verification)
```
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
from pathlib import Path

import larq_glt  # noqa: F401
from larq_glt.cli import HelpFormatter  # first: quiets TensorFlow before anything imports it
import numpy as np

from larq_glt import atomic, encoders, report, sizes
from larq_glt.runs import RunDir, RunError, load_model

__all__ = ["ExportError", "ExportResult", "export", "export_model", "export_keras", "check_images_from"]


class ExportError(RuntimeError):
    """The model cannot be exported as a deployable fully-binarized flatbuffer."""


@dataclasses.dataclass
class ExportResult:
    out_dir: Path
    tflite: Path
    verification: dict
    report: dict


def _preactivation_clone(model):
    """The same model with its encoder emitting ``x - t`` (sign done by LceQuantize)."""
    import tf_keras as keras

    def clone(layer):
        cfg = layer.get_config()
        if isinstance(layer, encoders.Encoder) and layer.binary:
            cfg["output"] = "preactivation"
        return layer.__class__.from_config(cfg)

    clone_model = keras.models.clone_model(model, clone_function=clone)
    clone_model.set_weights(model.get_weights())
    return clone_model


def _shortcut_layer(layer) -> bool:
    """The sign or the sum of a binary shortcut block (models.Block(shortcut=True)):
    an Add of a batch norm and a SteSign. The runtime fuses them with the block's
    conv; the flatbuffer check (opset.unsupported_ops) confirms it can."""
    import larq as lq
    import tf_keras as keras

    def parents(l):
        return [n.inbound_layers for n in l._inbound_nodes]

    if isinstance(layer, keras.layers.Add):
        inbound = [p for node in parents(layer) for p in (node if isinstance(node, list) else [node])]
        return sorted(type(p).__name__ for p in inbound) == ["BatchNormalization", "SteSign"]
    if isinstance(layer, lq.quantizers.SteSign):
        return all(isinstance(n.outbound_layer, keras.layers.Add) for n in layer._outbound_nodes)
    return False


def check_model_layers(model) -> None:
    """Refuse, before converting, what cannot become a fully-binarized flatbuffer."""
    import larq as lq
    import tf_keras as keras

    from larq_glt.models import check_binary_groups
    from larq_glt.shuffle import WordShuffle

    # a WordShuffle converts to a GATHER that the runtime runs only between a
    # block's conv and the next one's sign; the flatbuffer check (opset) says so
    allowed = (keras.layers.InputLayer, keras.layers.BatchNormalization, keras.layers.MaxPool2D,
               keras.layers.Flatten, keras.layers.Reshape, encoders.Encoder, lq.layers.QuantConv2D, WordShuffle)
    for layer in model.layers:
        if _shortcut_layer(layer):
            continue
        if not isinstance(layer, allowed):
            raise ExportError(
                f"layer {layer.name!r} ({type(layer).__name__}) is not supported by the deploy runtime; "
                f"supported layers: encoders, QuantConv2D, BatchNormalization, MaxPool2D, Flatten, WordShuffle"
            )
        if isinstance(layer, lq.layers.QuantConv2D):
            if layer.groups > 1:
                check_binary_groups(int(layer.input_shape[-1]), layer.groups, layer.name)
            if layer.input_quantizer is None or layer.kernel_quantizer is None:
                raise ExportError(f"layer {layer.name!r}: QuantConv2D without binary input and kernel quantizers "
                                  f"would convert to a float CONV_2D")
        if isinstance(layer, encoders.Encoder) and not layer.binary:
            raise ExportError(
                f"layer {layer.name!r}: the '{type(layer).__name__}' encoder feeds a full-precision first "
                f"convolution (CONV_2D), which the fully-binarized runtime does not run; train with "
                f"--encoding glt, thermo or nbc to deploy"
            )


def check_images_from(path, image_size: int, limit: int = 64) -> np.ndarray:
    """Up to ``limit`` real images (uint8, resized) from a folder tree, in sorted order."""
    from larq_glt.data.images import decode_image, is_image_file

    root = Path(path)
    if not root.is_dir():
        raise ExportError(f"--check-images {root} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p.name))
    images = []
    for p in files:
        try:
            images.append(decode_image(str(p), image_size))
        except Exception:  # unreadable check images are skipped, not fatal
            continue
        if len(images) >= limit:
            break
    if not images:
        raise ExportError(f"--check-images {root} holds no readable images")
    return np.stack(images)


def generated_check_images(shape, n: int = 64, seed: int = 0) -> np.ndarray:
    """Images with structure (gradients, blobs, tone changes) plus uniform noise."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    out = []
    for i in range(n):
        if i % 4 == 0:
            img = rng.integers(0, 256, (h, w, c))
        else:
            base = np.stack([np.sin(xx * rng.uniform(1, 12) + rng.uniform(0, 6)) *
                             np.cos(yy * rng.uniform(1, 12) + rng.uniform(0, 6)) for _ in range(c)], -1)
            gamma = rng.uniform(0.4, 2.5)
            img = 255 * ((base + 1) / 2) ** gamma * rng.uniform(0.3, 1.0) + rng.normal(0, 8, (h, w, c))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def _interpreter(flatbuffer: bytes):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    # The optimized LCE kernel refuses grouped binary convs; the reference one is exact.
    return Interpreter(flatbuffer, use_reference_bconv=True)


def verify(model, flatbuffer: bytes, images: np.ndarray, source: str) -> dict:
    """Keras vs LCE interpreter on ``images``: class agreement and max logit difference."""
    interp = _interpreter(flatbuffer)
    lce = np.concatenate([interp.predict(images[i:i + 1]) for i in range(len(images))])
    keras_logits = model.predict(images, verbose=0, batch_size=32)
    agree = lce.argmax(-1) == keras_logits.argmax(-1)
    finite = np.isfinite(lce).all(-1) & np.isfinite(keras_logits).all(-1)
    return {
        "non_finite_images": np.flatnonzero(~finite).tolist(),
        "images": int(len(images)),
        "source": source,
        "class_agreement": float(agree.mean()),
        "disagreeing_images": np.flatnonzero(~agree).tolist(),
        "max_abs_logit_difference": float(np.abs(lce - keras_logits).max()),
    }


def encoder_json(encoder) -> dict:
    lut = encoder.lut()
    doc = {
        "encoding": {encoders.GLT: "glt", encoders.Thermometer: "thermo",
                     encoders.NaturalBinary: "nbc"}[type(encoder)],
        "layer": type(encoder).__name__,
        "planes_per_channel": int(encoder.planes_per_channel),
        "plane_layout": "channel-major: plane k of colour channel c is input channel c * K + k of the first conv",
        "semantics": "plane = +1 where the LUT entry is 1, -1 where it is 0; for thermometers plane k is +1 iff pixel >= thresholds[c][k]",
        "lut": (lut > 0).astype(int).tolist(),
    }
    if isinstance(encoder, encoders.ThermometerBase):
        doc["thresholds"] = encoder.thresholds().tolist()
    return doc


def adc_levels_csv(encoder) -> str:
    """Comparator levels of a K-level (non-linear) thermometer ADC, per channel.

    A comparator fires when the pixel's 8-bit code is >= t, i.e. when the analog
    input exceeds the code boundary ``(t - 0.5) / 256`` of full scale.
    """
    t = encoder.thresholds()
    buf = io.StringIO()
    buf.write("channel,level,threshold_code,fraction_of_full_scale,millivolts_at_1V_full_scale\n")
    for c, row in enumerate(t):
        for k, code in enumerate(row):
            frac = (int(code) - 0.5) / 256.0
            buf.write(f"{c},{k + 1},{int(code)},{frac:.6f},{1000 * frac:.2f}\n")
    return buf.getvalue()


def export_keras(model, out_dir, *, class_names=None, check_images=None, check_source=None,
                 n_check: int = 64, seed: int = 0, extra_meta=None) -> ExportResult:
    """Export an in-memory Keras model (see the module docstring)."""
    import larq_compute_engine as lce

    check_model_layers(model)
    encoder = next((l for l in model.layers if isinstance(l, encoders.Encoder)), None)
    if encoder is None:
        raise ExportError("the model has no larq_glt input encoder: its input would not be the raw uint8 image")
    if model.input.dtype != "uint8":
        raise ExportError(f"the model input is {model.input.dtype}, not the raw uint8 image")
    atomic.check_output_dir(out_dir)
    try:
        flatbuffer = lce.convert_keras_model(_preactivation_clone(model))
    except Exception as e:  # the converter raises many types; the message is what matters
        raise ExportError(f"LCE conversion failed: {e}") from e

    fb_model = report.read_flatbuffer(flatbuffer, "converted model")
    report.check_deployable(fb_model)

    shape = tuple(int(d) for d in model.input_shape[1:])
    if check_images is None:
        check_images = generated_check_images(shape, n_check, seed)
        check_source = "generated"
    verification = verify(model, flatbuffer, check_images, check_source or "given")
    if verification["non_finite_images"]:  # nan argmaxes "agree" with each other
        raise ExportError(
            f"the model gives non-finite logits (nan or inf) on {len(verification['non_finite_images'])} of "
            f"{verification['images']} check images (a diverged training?); refusing to export"
        )
    if verification["class_agreement"] < 1.0:
        raise ExportError(
            f"the converted model disagrees with Keras on {len(verification['disagreeing_images'])} of "
            f"{verification['images']} check images (max logit difference "
            f"{verification['max_abs_logit_difference']:.3g}); refusing to export"
        )

    out = Path(out_dir)
    rep = report.model_report(fb_model, flatbuffer_bytes=len(flatbuffer))
    rep["verification"] = verification
    class_names = list(class_names or [f"class{i}" for i in range(int(model.output_shape[-1]))])
    meta = {
        "class_names": class_names,
        "input_shape": list(shape),
        "input_dtype": "uint8",
        "encoding": encoder_json(encoder)["encoding"],
        "keras_model": model.name,
        **(extra_meta or {}),
    }
    with atomic.directory(out) as tmp:
        (tmp / "model.tflite").write_bytes(flatbuffer)
        (tmp / "encoder.json").write_text(json.dumps(encoder_json(encoder), indent=1) + "\n")
        if isinstance(encoder, encoders.ThermometerBase):
            (tmp / "adc_levels.csv").write_text(adc_levels_csv(encoder))
        (tmp / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "report.json").write_text(json.dumps(rep, indent=2) + "\n")
        (tmp / "report.md").write_text(report.format_markdown(rep, title=f"{model.name} → model.tflite"))
    return ExportResult(out_dir=out, tflite=out / "model.tflite", verification=verification, report=rep)


def export(run_dir, out=None, *, check_images=None, n_check: int = 64, seed: int = 0) -> ExportResult:
    """Export a run directory (default output: ``RUN_DIR/export``)."""
    run = RunDir(run_dir)
    out = Path(out) if out else run.path / "export"
    atomic.check_output_dir(out)  # before a long conversion, not after it
    model = load_model(run.path)
    cfg = run.read_json(run.config) if run.config.exists() else {}
    images, source = None, None
    if check_images is not None:
        images = check_images_from(check_images, int(model.input_shape[1]), n_check)
        source = str(check_images)
    return export_keras(
        model, out, class_names=cfg.get("class_names"),
        check_images=images, check_source=source, n_check=n_check, seed=seed,
        extra_meta={"run_dir": str(run.path), "dataset": cfg.get("dataset")},
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m larq_glt.export", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("run_dir", help="a training run directory (python -m larq_glt.train --out ...)")
    p.add_argument("--out", help="output directory (default: RUN_DIR/export)")
    p.add_argument("--check-images", help="folder of real images to verify the conversion on (default: generated)")
    p.add_argument("--check-count", type=int, default=64, help="number of check images")
    args = p.parse_args(argv)
    if args.check_count < 1:
        print(f"error: --check-count must be at least 1, got {args.check_count}", file=sys.stderr)
        return 2
    try:
        result = export(args.run_dir, args.out, check_images=args.check_images, n_check=args.check_count)
    except atomic.OutputError as e:
        print(f"error: --out {e}", file=sys.stderr)
        return 2
    except (ExportError, RunError, report.ReportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    v = result.verification
    print(f"wrote {result.out_dir}: model.tflite ({result.report['flatbuffer_bytes']:,} bytes), "
          f"{result.report['flatbuffer_weight_bits']:,} {sizes.label('flatbuffer_weight_bits')}, "
          f"{result.report['binary_macs']:,} binary MACs; "
          f"check on {v['images']} {v['source']} images: class agreement {v['class_agreement']:.0%}, "
          f"max logit difference {v['max_abs_logit_difference']:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
