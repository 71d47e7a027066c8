"""Anchors: published int8 person detectors and larq-glt models, measured side by side.

Every model in ``../shared/reference_models`` (TFLite flatbuffers and the
MLPerf Keras HDF5) and every larq-glt model given with ``--model NAME=PATH``
(default: the shipped ``models/person_detect``) is scored by the same loader
on the same ``../shared/data/vww96`` images (``person/`` and ``non_person/``,
250 each; class index 1 = person):

- images: decoded once by ``larq_glt.data.images.decode_image`` (96×96 RGB
  uint8); for a model whose side differs they are resized from 96 by the same
  module's ``fit_square`` (PIL bilinear, antialiased when shrinking: the
  convention that reproduces the README's figures). The accuracy of those models
  with ``tf.image.resize(..., "bilinear")`` (no antialiasing) is reported
  beside it: the choice moves some of them by several points;
- input convention, derived from the model's input tensor: float32 → pixel/255;
  an integer input → pixel + zero point, which needs the zero point to be the
  type's minimum (int8: pixel − 128 with scale 1/255; uint8: the raw pixel) and
  is refused otherwise;
- interpreter: ``tf.lite.Interpreter`` for builtin-only flatbuffers, the LCE
  interpreter (``use_reference_bconv=True``, the firmware's bit-exact host
  reference) for flatbuffers with LCE ops, ``tf_keras`` for ``.h5``/``.keras``;
- prediction: argmax of the (dequantized) output, so probabilities and logits
  are scored alike; which of the two a model emits is read off its outputs.

Reported per model: accuracy with a 95% Wilson interval, flatbuffer bytes,
weight bits, and for larq-glt models instructions per inference and peak RAM on
``mps2-an500`` from ``bench/mcu_cost.measure`` (QEMU, one firmware build per
model). Weight bits of a TFLite model: the elements of the filter tensors of
CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED times the bits of their stored
type (int8: 8, float32: 32); biases, scales and zero points are not counted.
Weight bits of a larq-glt model are the project's own figure,
``larq_glt.report.model_report(flatbuffer)["flatbuffer_weight_bits"]`` (bit-packed
filters at 1 bit plus padding, folded batch norm and other floats at 32, GLT
thresholds). The reference models' Cortex-M7 instructions are those measured
and stated in ``../shared/reference_models/README.md`` (TFLM + CMSIS-NN),
cited, not re-measured.

    python bench/anchors.py                       # writes benchmarks/anchors.{md,json}, figures/anchors.png
                                                  # (and re-renders benchmarks/RESULTS.md)
    python bench/anchors.py --model wide=runs/glt-w2 --model pruned=runs/glt-w2-p50/export
    python bench/anchors.py --no-mcu --out /tmp/anchors   # accuracy and size only (no QEMU)

A larq-glt PATH is an export directory (``model.tflite``), a ``.tflite`` file
or a training run directory (exported into a temporary directory first).
Nothing is cached: model files and images are read where they are, never copied.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np

import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)

from larq_glt import atomic

REFERENCES = ROOT.parent / "shared" / "reference_models"
IMAGES = ROOT.parent / "shared" / "data" / "vww96"
CLASS_NAMES = ("non_person", "person")
DEFAULT_MODEL = "person_detect=models/person_detect"
WEIGHT_OPS = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1}  # op -> index of its filter input
COST_SOURCE = ("../shared/reference_models/README.md: TFLM + CMSIS-NN (release, -O2) on QEMU mps2-an500, "
               "-icount shift=0, SysTick × 40 = instructions")


class AnchorError(RuntimeError):
    """A model or image folder this benchmark cannot score."""


# -- statistics -----------------------------------------------------------------------
def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# -- images ---------------------------------------------------------------------------
def load_images(root, size: int = 96) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(images uint8 [N, size, size, 3], labels [N], relative names)`` from ``root/{non_person,person}``."""
    from larq_glt.data.images import decode_image, is_image_file

    root = Path(root)
    images, labels, names = [], [], []
    for label, cls in enumerate(CLASS_NAMES):
        folder = root / cls
        if not folder.is_dir():
            raise AnchorError(f"{folder} does not exist: the images must be in {root}/{{{','.join(CLASS_NAMES)}}}/")
        for p in sorted(folder.iterdir()):
            if p.is_file() and is_image_file(p.name):
                images.append(decode_image(str(p), size))
                labels.append(label)
                names.append(f"{cls}/{p.name}")
    if not images:
        raise AnchorError(f"{root} holds no images")
    return np.stack(images), np.array(labels), names


RESIZES = ("pil", "tf")


def resize(images: np.ndarray, side: int, method: str = "pil") -> np.ndarray:
    """uint8 square images resized to ``side``: ``pil`` = ``larq_glt.data.images.fit_square`` (PIL bilinear,
    antialiased when shrinking); ``tf`` = ``tf.image.resize(..., "bilinear")`` (no antialiasing), rounded."""
    if images.shape[1] == side and images.shape[2] == side:
        return images
    if method == "pil":
        from PIL import Image

        from larq_glt.data.images import fit_square

        return np.stack([np.asarray(fit_square(Image.fromarray(im), side), dtype=np.uint8) for im in images])
    if method == "tf":
        import tensorflow as tf

        out = tf.image.resize(images.astype(np.float32), (side, side), method="bilinear").numpy()
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    raise AnchorError(f"resize method {method!r} is not one of {RESIZES}")


def model_input(images: np.ndarray, dtype, zero_point: int = 0) -> np.ndarray:
    """The input tensor for uint8 pixels: float → pixel/255; integer → pixel + zero point."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return images.astype(dtype) / np.asarray(255.0, dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if zero_point != info.min or info.max - info.min != 255:
            raise AnchorError(f"a {dtype} input with zero point {zero_point}: the pixel mapping is not "
                              f"pixel + zero point (only 8-bit inputs whose zero point is {info.min} are known)")
        return (images.astype(np.int16) + zero_point).astype(dtype)
    raise AnchorError(f"input type {dtype} is not an image type")


# -- models ---------------------------------------------------------------------------
class Runner:
    """One model behind one call: uint8 images of its side in, float outputs [N, classes] out."""

    def __init__(self, path, kind: str, side: int, input_dtype, predict, interpreter: str):
        self.path, self.kind, self.side, self.input_dtype = Path(path), kind, side, np.dtype(input_dtype)
        self._predict, self.interpreter = predict, interpreter

    def predict(self, images: np.ndarray, method: str = "pil") -> np.ndarray:
        return np.asarray(self._predict(resize(images, self.side, method)), dtype=np.float32)


def tflite_runner(path) -> Runner:
    """A flatbuffer: tf.lite.Interpreter, or the LCE interpreter when it holds LCE ops."""
    from larq_glt.flatbuffer import read_model_bytes

    path = Path(path)
    data = path.read_bytes()
    fb = read_model_bytes(data, str(path))
    lce = any(not op.builtin for op in fb.operators)
    if lce:
        from larq_compute_engine.tflite.python.interpreter import Interpreter

        interp = Interpreter(data, num_threads=1, use_reference_bconv=True)
        (shape,), (dtype,) = interp.input_shapes, interp.input_types
        zp = int((interp.input_zero_points or [0])[0] or 0)
        out_scale, out_zp = (interp.output_scales or [None])[0], (interp.output_zero_points or [0])[0]

        def invoke(x):
            return interp.predict(x)
    else:
        import tensorflow as tf

        interp = tf.lite.Interpreter(model_content=data, num_threads=1)
        interp.allocate_tensors()
        inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
        shape, dtype, zp = tuple(inp["shape"]), inp["dtype"], int(inp["quantization"][1])
        out_scale, out_zp = outp["quantization"]

        def invoke(x):
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            return interp.get_tensor(outp["index"])

    def predict(images):
        x = model_input(images, dtype, zp)
        out = np.concatenate([invoke(x[i:i + 1]) for i in range(len(x))]).astype(np.float32)
        if out_scale:  # dequantize
            out = (out - float(out_zp or 0)) * float(out_scale)
        return out.reshape(len(x), -1)

    if shape[1] != shape[2]:
        raise AnchorError(f"{path}: input {shape} is not square")
    return Runner(path, "tflite-lce" if lce else "tflite", int(shape[1]), dtype, predict,
                  "larq_compute_engine Interpreter (reference bconv)" if lce else "tf.lite.Interpreter")


def keras_runner(path) -> Runner:
    """A Keras ``.h5``/``.keras`` model with a float input (pixel/255)."""
    import tf_keras as keras

    model = keras.models.load_model(path, compile=False)
    shape = model.input_shape
    dtype = np.dtype(model.input.dtype.name if hasattr(model.input.dtype, "name") else model.input.dtype)

    def predict(images):
        return model.predict(model_input(images, dtype), batch_size=50, verbose=0)

    return Runner(path, "keras", int(shape[1]), dtype, predict, "tf_keras")


def runner_for(path) -> Runner:
    path = Path(path)
    if path.suffix == ".tflite":
        return tflite_runner(path)
    if path.suffix in (".h5", ".keras"):
        return keras_runner(path)
    raise AnchorError(f"{path}: not a .tflite, .h5 or .keras model")


def output_kind(outputs: np.ndarray) -> str:
    """``probabilities`` when every row lies in [0, 1] and sums to 1 (±0.02 for quantization), else ``logits``."""
    ok = (outputs.min() >= -1e-6) and (outputs.max() <= 1 + 1e-6) and np.allclose(outputs.sum(1), 1, atol=0.02)
    return "probabilities" if ok else "logits"


def evaluate(runner: Runner, images: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy (argmax), its Wilson interval, per-class recall and the output kind."""
    t0 = time.perf_counter()
    out = runner.predict(images)
    seconds = time.perf_counter() - t0
    if out.shape[1] != len(CLASS_NAMES):
        raise AnchorError(f"{runner.path}: {out.shape[1]} outputs, expected {len(CLASS_NAMES)} (index 1 = person)")
    pred = out.argmax(1)
    correct = int((pred == labels).sum())
    low, high = wilson(correct, len(labels))
    other = {}
    if runner.side != images.shape[1]:  # the same model with the other resize
        for method in RESIZES[1:]:
            k = int((runner.predict(images, method).argmax(1) == labels).sum())
            other[method] = {"correct": k, "accuracy": k / len(labels), "ci95": list(wilson(k, len(labels)))}
    return {
        "images": int(len(labels)),
        "correct": correct,
        "accuracy": correct / len(labels),
        "ci95": [low, high],
        "recall": {cls: float((pred[labels == i] == i).mean()) for i, cls in enumerate(CLASS_NAMES)},
        "output": output_kind(out),
        "resize": "pil" if runner.side != images.shape[1] else None,
        "other_resize": other,
        "side": runner.side,
        "input_dtype": runner.input_dtype.name,
        "interpreter": runner.interpreter,
        "seconds": round(seconds, 2),
    }


def tflite_weight_bits(path) -> dict:
    """Filter elements of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED × the bits of their type."""
    from larq_glt.flatbuffer import read_model

    fb = read_model(path)
    params, bits, seen = 0, 0, set()
    for op in fb.operators:
        if op.opcode in WEIGHT_OPS:
            t = fb.tensors[op.inputs[WEIGHT_OPS[op.opcode]]]
            if t.index in seen or not t.is_constant:
                continue
            seen.add(t.index)
            params += t.size
            bits += t.size * (8 * t.dtype.itemsize if t.dtype is not None else 0)
    return {"weight_params": int(params), "weight_bits": int(bits)}


def keras_weight_bits(path) -> dict:
    """The same rule for a Keras file: conv/dense kernels at 32 bits (float32)."""
    import tf_keras as keras

    model = keras.models.load_model(path, compile=False)
    params = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):  # DepthwiseConv2D is a Conv2D
            kernel = getattr(layer, "depthwise_kernel", None) or layer.kernel
            params += int(np.prod(kernel.shape))
    return {"weight_params": params, "weight_bits": 32 * params}


# -- the reference models' README --------------------------------------------------------
def _number(cell: str):
    digits = re.sub(r"[^\d]", "", cell)
    return int(digits) if digits else None


def reference_costs(readme_text: str) -> dict:
    """``{file: {macs, instructions, instructions_reference_kernels, arena_bytes}}`` from the README's
    cost table (the one whose header names ``instructions per inference``)."""
    costs, columns = {}, None
    for line in readme_text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            columns = None
            continue
        if any("instructions per inference" in c for c in cells):
            columns = cells
            continue
        if columns is None or set(cells[0]) <= set("-: "):
            continue
        row = dict(zip(columns, cells))
        name = row[columns[0]].strip("`")
        costs[name] = {
            "macs": _number(row.get("MACs", "")),
            "instructions": _number(next(v for k, v in row.items() if "CMSIS-NN" in k)),
            "instructions_reference_kernels": _number(next((v for k, v in row.items() if "reference kernels" in k),
                                                           "")),
            "arena_bytes": _number(next((v for k, v in row.items() if "arena" in k), "")),
        }
    return costs


def reference_models(folder) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise AnchorError(f"--references {folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".tflite", ".h5", ".keras"))
    if not files:
        raise AnchorError(f"{folder} holds no .tflite/.h5/.keras models")
    return files


# -- larq-glt models -------------------------------------------------------------------
def parse_model_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise AnchorError(f"--model {text!r} is not NAME=PATH")
    p = Path(path)
    return name, p if p.is_absolute() else ROOT / p


def larq_glt_flatbuffer(path: Path, tmp: Path) -> Path:
    """The ``.tflite`` of an export directory, a flatbuffer file, or a run directory exported into ``tmp``."""
    if path.is_file() and path.suffix == ".tflite":
        return path
    if (path / "model.tflite").is_file():
        return path / "model.tflite"
    if (path / "model.keras").is_file():
        from larq_glt import export

        return export.export(path, tmp / "export").tflite
    raise AnchorError(f"{path}: neither a .tflite, an export directory (model.tflite) nor a run directory "
                      "(model.keras)")


def training_data(path: Path) -> str | None:
    """What a larq-glt model was trained on, as its export (``model.json``) or run (``config.json``) says."""
    import json

    for folder in (path if path.is_dir() else path.parent, (path if path.is_dir() else path.parent).parent):
        for meta, keys in (("model.json", ("dataset", "run_dir")), ("config.json", ("data_dir", "dataset"))):
            f = folder / meta
            if f.is_file():
                d = json.loads(f.read_text())
                found = [str(d[k]) for k in keys if d.get(k)]
                if found:
                    return f"{_shown(f)}: " + ", ".join(found)
    return None


def with_cross_validated(entry: dict, path: Path) -> dict:
    """A model fine-tuned on these very images (its ``card.json`` holds a
    ``cross_validated`` figure over the same count, ``bench/person_adapt.py``)
    is scored by that figure; its own accuracy on them, measured on its
    training images, is kept as ``resubstitution`` and never compared."""
    import json

    card = (path if path.is_dir() else path.parent) / "card.json"
    cv = json.loads(card.read_text()).get("cross_validated") if card.is_file() else None
    if not cv or cv.get("images") != entry["images"]:
        return entry
    resub = {k: entry[k] for k in ("correct", "accuracy", "ci95", "recall")}
    return {**entry, "correct": cv["correct"], "accuracy": cv["accuracy"], "ci95": list(cv["wilson95"]),
            "recall": cv["per_class"], "resubstitution": resub,
            "accuracy_kind": f"{len(cv['folds'])}-fold cross-validated ({_shown(card)})"}


def larq_glt_entry(name: str, path: Path, images, labels, *, mcu: bool, board: str) -> dict:
    from larq_glt import report

    with tempfile.TemporaryDirectory() as tmp:
        tflite = larq_glt_flatbuffer(path, Path(tmp))
        data = tflite.read_bytes()
        rep = report.model_report(report.read_flatbuffer(data, str(tflite)), flatbuffer_bytes=len(data))
        entry = {
            "name": name, "group": "larq-glt", "path": _shown(path), "format": "LCE flatbuffer",
            "flatbuffer_bytes": len(data), "file_bytes": len(data), "weight_bits": int(rep["flatbuffer_weight_bits"]),
            "weight_bits_rule": "larq_glt.report (1-bit packed filters + padding, floats 32, thresholds 8)",
            "binary_macs": int(rep["binary_macs"]), "other_macs": int(rep["other_macs"]),
            "all_convs_binary": bool(rep["all_convs_binary"]), "trained_on": training_data(path),
            **evaluate(tflite_runner(tflite), images, labels),
        }
        entry = with_cross_validated(entry, path)
        if mcu:
            from bench import mcu_cost

            cost = mcu_cost.measure(tflite, board=board, op_repeat=1)
            entry["mcu"] = {
                "board": board, "source": "bench/mcu_cost.measure (QEMU, -icount shift=0), this run",
                "instructions": cost["instructions_per_inference"]["mean"],
                "instructions_range": [cost["instructions_per_inference"]["min"],
                                       cost["instructions_per_inference"]["max"]],
                "frames": cost["frames"], "peak_ram_bytes": cost["peak_ram_bytes"],
                "arena_bytes": cost["arena_bytes"], "stack_high_water_bytes": cost["stack_high_water_bytes"],
                "input_frame_bytes": cost["input_frame_bytes"], "flash_bytes": cost["flash_bytes"],
            }
    return entry


def reference_entry(path: Path, images, labels, costs: dict) -> dict:
    if path.suffix == ".tflite":
        size = {"format": "TFLite flatbuffer", "flatbuffer_bytes": path.stat().st_size, **tflite_weight_bits(path)}
    else:
        size = {"format": "Keras HDF5", "flatbuffer_bytes": None, **keras_weight_bits(path)}
    entry = {"name": path.stem, "group": "reference", "path": _shown(path), "file_bytes": path.stat().st_size,
             **size, "weight_bits_rule": "filter elements of CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED × bits of "
                                         "their type",
             **evaluate(runner_for(path), images, labels)}
    if path.name in costs:
        entry["mcu"] = {"board": "mps2-an500", "source": COST_SOURCE, **costs[path.name]}
    return entry


def _shown(path) -> str:
    """Inside the project: relative to it; beside it (../shared): relative with ``..``; else absolute."""
    path = Path(path).resolve()
    if path.is_relative_to(ROOT):
        return str(path.relative_to(ROOT))
    if path.is_relative_to(ROOT.parent):
        return "../" + str(path.relative_to(ROOT.parent))
    return str(path)


# -- output ------------------------------------------------------------------------------
def _int(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _pct(v) -> str:
    return f"{100 * v:.1f}%"


def render(result: dict, sweep: str | None = None) -> str:
    """The page; ``sweep`` is the capacity sweep's table page (``bench/capacity_sweep.py``), shown as a section."""
    rows = sorted(result["models"], key=lambda e: (e["flatbuffer_bytes"] is None, e["flatbuffer_bytes"] or 0))
    lines = [
        "# Anchors: published person detectors and larq-glt on the same 500 vww96 images",
        "",
        f"Command: `{result['command']}`  ",
        f"Images: `{result['images']['path']}`, {result['images']['count']} images "
        f"({', '.join(f'{v} {k}' for k, v in result['images']['per_class'].items())}), decoded once and scored by "
        "the same loader for every model (`bench/anchors.py`; its docstring states the input conventions).",
        "",
        "| model | flatbuffer bytes | weight bits | input | output | accuracy [95% Wilson] | person / non-person "
        "recall | instructions per inference (mps2-an500) | peak RAM bytes |",
        "| --- | ---: | ---: | --- | --- | --- | --- | ---: | ---: |",
    ]
    for e in rows:
        mcu = e.get("mcu") or {}
        name = f"**{e['name']}** (larq-glt)" if e["group"] == "larq-glt" else f"`{e['name']}`"
        fb = (_int(e["flatbuffer_bytes"]) if e["flatbuffer_bytes"]
              else f"– ({e['format']}, {e['file_bytes']:,} B file)")
        instr = _int(mcu.get("instructions"))
        if mcu and e["group"] == "reference":
            instr += " ¹"
        ram = _int(mcu.get("peak_ram_bytes")) if e["group"] == "larq-glt" else (
            f"arena {_int(mcu['arena_bytes'])} ¹" if mcu.get("arena_bytes") else "–")
        lines.append(
            f"| {name} | {fb} | {e['weight_bits']:,} | {e['side']}×{e['side']} {e['input_dtype']} | {e['output']} | "
            f"{_pct(e['accuracy'])} [{_pct(e['ci95'][0])}, {_pct(e['ci95'][1])}] ({e['correct']}/{e['images']})"
            f"{' ²' if e.get('accuracy_kind') else ''} | "
            f"{_pct(e['recall']['person'])} / {_pct(e['recall']['non_person'])} | {instr} | {ram} |")
    lines += [
        "",
        "Rules:",
        "",
        "- **Accuracy**: argmax of the model's output (index 1 = person), on all images; interval: 95% Wilson score "
        "interval for a binomial proportion. Input: float models get pixel/255, int8 models pixel − 128, uint8 "
        "models the raw pixel (the input tensor's type and zero point decide); models whose side is not 96 get the 96×96 "
        "image resized by `larq_glt.data.images.fit_square` (PIL bilinear, antialiased when shrinking; the "
        "convention of the README's figures, which it reproduces; see the resize table below). TFLite models "
        "run in `tf.lite.Interpreter`, LCE flatbuffers in the LCE interpreter (reference bconv: the firmware's "
        "bit-exact host reference), the `.h5` in `tf_keras`. *Output* is read off the outputs: rows in [0, 1] "
        "summing to 1 are probabilities, anything else logits (argmax is the same for both).",
        "- **Weight bits**, references: the elements of the filter tensors of CONV_2D, DEPTHWISE_CONV_2D and "
        "FULLY_CONNECTED × the bits of their stored type (int8 8, float32 32; for the `.h5` its conv and dense "
        "kernels × 32); biases (int32), quantization scales and zero points not counted. larq-glt: the project's "
        "own count, `larq_glt.report.model_report(...)[\"flatbuffer_weight_bits\"]` of the flatbuffer (bit-packed filters at "
        "1 bit plus their padding, folded batch norm at 32 bits per value, GLT thresholds at 8).",
        "- **Instructions and peak RAM**, larq-glt: measured by this run with `bench/mcu_cost.measure` "
        "(firmware built for QEMU `mps2-an500`, `-icount shift=0`, SysTick × 40 = instructions; mean over the "
        "sample photos of `deploy/firmware/samples.py`; peak RAM = planned arena + measured stack high-water mark + the "
        "96×96×3 input frame).",
        f"- ¹ References: as stated in `../shared/reference_models/README.md` ({COST_SOURCE.split(': ', 1)[1]}); "
        "not re-measured here. Its RAM column is the TFLM arena alone (no stack, no input frame outside the arena). "
        "– where the README gives no figure.",
        "",
        f"![accuracy against flatbuffer bytes]({result['figure']})",
        "",
    ]
    resized = [e for e in rows if e.get("other_resize")]
    if resized:
        lines += ["Models whose side is not 96 depend on how the 96×96 image is shrunk: the same models with "
                  "`tf.image.resize(..., 'bilinear')` (no antialiasing, rounded to uint8) instead of PIL's "
                  "antialiased bilinear:", "",
                  "| model | side | accuracy, PIL bilinear (table above) | accuracy, tf.image.resize bilinear |",
                  "| --- | ---: | --- | --- |"]
        for e in resized:
            o = e["other_resize"]["tf"]
            lines.append(f"| `{e['name']}` | {e['side']} | {_pct(e['accuracy'])} [{_pct(e['ci95'][0])}, "
                         f"{_pct(e['ci95'][1])}] | {_pct(o['accuracy'])} [{_pct(o['ci95'][0])}, "
                         f"{_pct(o['ci95'][1])}] |")
        lines.append("")
    ours = [e for e in rows if e["group"] == "larq-glt"]
    refs = [e for e in rows if e["group"] == "reference" and e["flatbuffer_bytes"]]
    if ours:
        lines += ["What the table says:", ""]
        for o in ours:
            smaller = [r for r in refs if r["flatbuffer_bytes"] <= o["flatbuffer_bytes"]]
            beaten_by = [r for r in smaller if r["ci95"][0] > o["ci95"][1]]
            above = [r for r in smaller if r["accuracy"] > o["accuracy"]]
            lines.append(
                f"- **{o['name']}** ({o['flatbuffer_bytes']:,} B, {_pct(o['accuracy'])}): of the "
                f"{len(smaller)} reference flatbuffer(s) not larger than it, {len(above)} score higher"
                + (f", {len(beaten_by)} of them with disjoint 95% intervals ("
                   + ", ".join(f"`{r['name']}` {_pct(r['accuracy'])}" for r in beaten_by) + ")" if beaten_by else "")
                + ".")
        lines.append("")
    for e in (e for e in ours if e.get("accuracy_kind")):
        r = e["resubstitution"]
        lines += [f"² `{e['name']}` was fine-tuned on these images: its figure is {e['accuracy_kind']}, each image "
                  "scored by a model of the same recipe that did not train on it. Scored directly, the shipped model "
                  f"gets {_pct(r['accuracy'])} ({r['correct']}/{e['images']}), on its own training images: not a "
                  "measure of accuracy.", ""]
    seen = [e for e in ours if e.get("trained_on") and "vww" in e["trained_on"].lower() and not e.get("accuracy_kind")]
    if seen:
        lines += ["**Not held-out figures**: " + "; ".join(
            f"`{e['name']}` was trained on VWW images (`{e['trained_on']}`)" for e in seen)
            + ". Where these include the images above (the shipped `models/person_detect` was fine-tuned on 400 of "
            "the 500), its accuracy above is measured partly on its training images and is optimistic. The "
            "MLPerf models were trained on the VWW training split of COCO 2014, of which vww96 is not part.", ""]
    lines += [f"Wall time of this run: {result['seconds']:,.0f} s (2-core machine shared with training).", ""]
    if sweep:  # its own command and wall time stay with it
        lines += ["#" + sweep.strip(), ""]
    return "\n".join(lines)


def write_page(result: dict, md_path) -> str:
    """Writes the page of ``result`` to ``md_path`` with the capacity sweep found beside it, if any."""
    md_path = Path(md_path)
    sweep = md_path.parent / "capacity_sweep.md"
    text = render(result, sweep.read_text() if sweep.is_file() else None)
    atomic.write_text(md_path, text)
    return text


def plot(result: dict, path) -> bytes:
    """Accuracy (with its Wilson interval) against flatbuffer bytes, log x; anchors and larq-glt on one chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from larq_glt import plots

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for group, style in (("reference", dict(color="tab:blue", marker="o", label="published int8/float anchors")),
                         ("larq-glt", dict(color="tab:red", marker="*", markersize=13, label="larq-glt (binary)"))):
        es = [e for e in result["models"] if e["group"] == group and e["flatbuffer_bytes"]]
        if not es:
            continue
        x = np.array([e["flatbuffer_bytes"] for e in es])
        y = np.array([100 * e["accuracy"] for e in es])
        err = np.array([[100 * (e["accuracy"] - e["ci95"][0]) for e in es],
                        [100 * (e["ci95"][1] - e["accuracy"]) for e in es]])
        ax.errorbar(x, y, yerr=err, linestyle="none", capsize=3, **style)
        for i, (e, xi, yi) in enumerate(sorted(zip(es, x, y), key=lambda t: t[1])):  # alternately above, below
            ax.annotate(e["name"].replace("wake_vision_", "wv_").replace("mlperf_tiny_vww_96", "mlperf"),
                        (xi, yi), textcoords="offset points", xytext=(6, 7 if i % 2 else -13), fontsize=7)
    ax.axhline(50, color="grey", linestyle=":", linewidth=1, label="chance (balanced)")
    ax.set_xscale("log")
    sizes = [e["flatbuffer_bytes"] for e in result["models"] if e["flatbuffer_bytes"]]
    ax.set_xlim(min(sizes) / 1.5, max(sizes) * 4)  # room for the labels on the right
    ax.set_xlabel("flatbuffer bytes (log scale)")
    ax.set_ylabel(f"accuracy on vww96 ({result['images']['count']} images), %")
    ax.set_title("Person detection: accuracy against model size (95% Wilson intervals)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    png = plots.render_png(fig)
    plt.close(fig)
    atomic.write_bytes(path, png)
    return png


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", metavar="NAME=PATH",
                   help=f"a larq-glt model (export dir, .tflite or run dir); repeatable (default: {DEFAULT_MODEL})")
    p.add_argument("--references", default=str(REFERENCES), help="folder of reference models")
    p.add_argument("--images", default=str(IMAGES), help="folder with person/ and non_person/")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "anchors"), help="output path without extension")
    p.add_argument("--board", default="mps2-an500")
    p.add_argument("--no-mcu", action="store_true", help="skip the QEMU measurement of the larq-glt models")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        models = [parse_model_arg(m) for m in (args.model or [DEFAULT_MODEL])]
        images, labels, _ = load_images(args.images)
        readme = Path(args.references) / "README.md"
        costs = reference_costs(readme.read_text()) if readme.is_file() else {}
        entries = []
        for path in reference_models(args.references):
            print(f"reference {path.name} ...", flush=True)
            entries.append(reference_entry(path, images, labels, costs))
        for name, path in models:
            print(f"larq-glt {name} ({path}) ...", flush=True)
            entries.append(larq_glt_entry(name, path, images, labels, mcu=not args.no_mcu, board=args.board))
    except AnchorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    figure = out.parent / "figures" / f"{out.name}.png"
    command = "python bench/anchors.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = {
        "command": command.strip(),
        "images": {"path": _shown(args.images), "count": int(len(labels)),
                   "per_class": {c: int((labels == i).sum()) for i, c in enumerate(CLASS_NAMES)}},
        "models": entries,
        "figure": str(figure.relative_to(out.parent)),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    plot(result, figure)
    atomic.write_json(str(out) + ".json", result)
    text = write_page(result, str(out) + ".md")
    if (out.parent / "RESULTS.md").exists():  # the results page includes this one
        from bench import results_page

        results_page.write(out.parent)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
