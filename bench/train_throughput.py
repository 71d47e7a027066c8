"""Training throughput (images/s) of the default model for each input encoding.

Measures ``model.fit`` steps on in-memory uint8 batches (so data decoding is not
part of the number), after warm-up steps that absorb tracing. Every encoding
trains the same compact topology and recipe; only the encoder differs, so the
ratio glt / thermo is GLT's training overhead (learned, rounded thresholds and
the surrogate gradient) over a fixed thermometer. ``glt/K`` is GLT with its
thresholds' gradient taken from K images of each batch
(``ModelConfig.glt_grad_images``, :mod:`larq_glt.sampled_gradient`).

A second table trains the GLT model at widths 1 and 2 with keras' grouped
convolutions on TensorFlow's own kernel (``larq_glt.grouped_conv``, the default)
and through keras' XLA wrapper (its own default): the same arithmetic.

    python bench/train_throughput.py                      # writes benchmarks/train_throughput.{json,md}
    python bench/train_throughput.py --steps 60 --batch-size 64 --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import larq_glt  # noqa: F401
import numpy as np
import tensorflow as tf
import tf_keras as keras

from larq_glt import atomic, grouped_conv, models

GROUPED_PATHS = ("native", "xla")


def measure(encoding: str, steps: int, warmup: int, batch_size: int, image_size: int, seed: int,
            width: float = 1.0, grouped: str = "native") -> float:
    if grouped == "xla":
        with grouped_conv.keras_xla():  # model built and traced on keras' own path
            return measure(encoding, steps, warmup, batch_size, image_size, seed, width, "xla-held")
    if grouped == "native" and not grouped_conv.install():
        raise RuntimeError("this TensorFlow has no native grouped convolution")
    if grouped == "xla-held" and grouped_conv.installed():
        raise RuntimeError("keras' XLA path was asked for, the native one is installed")
    keras.utils.set_random_seed(seed)
    encoding, _, sample = encoding.partition("/")  # "glt/8": the thresholds' gradient from 8 images
    model = models.compact(encoding=encoding, num_classes=10, input_size=image_size, width=width,
                           glt_grad_images=int(sample or 0))
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (batch_size * 4, image_size, image_size, 3), dtype=np.uint8)
    y = rng.integers(0, 10, (batch_size * 4,), dtype=np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat().prefetch(2)
    model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encodings", nargs="+", default=["glt", "glt/8", "thermo", "nbc", "float"],
                   help="input encodings; glt/K: GLT with its thresholds' gradient from K images of each batch")
    p.add_argument("--steps", type=int, default=60)  # 30 steps fell inside the machine's throttling bursts
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    p.add_argument("--grouped-widths", type=float, nargs="*", default=[1.0, 2.0],
                   help="widths of the GLT model timed with both grouped-convolution paths (none: skip)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "train_throughput"))
    args = p.parse_args(argv)

    samples = {e: [] for e in args.encodings}
    grouped = {f"{w:g}/{g}": [] for w in args.grouped_widths for g in GROUPED_PATHS}
    for r in range(args.repeats):  # interleave so machine noise hits every case alike
        for e in args.encodings:
            ips = measure(e, args.steps, args.warmup, args.batch_size, args.image_size, seed=r)
            samples[e].append(ips)
            print(f"repeat {r + 1}: {e:7s} {ips:8.1f} images/s", flush=True)
        for key in grouped:
            width, path = key.split("/")
            ips = measure("glt", args.steps, args.warmup, args.batch_size, args.image_size, seed=r,
                          width=float(width), grouped=path)
            grouped[key].append(ips)
            print(f"repeat {r + 1}: glt width {width} grouped convs {path:6s} {ips:8.1f} images/s", flush=True)
    grouped_conv.install()
    result = {
        "command": "python bench/train_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "settings": vars(args),
        "images_per_second": {e: {"median": float(np.median(v)), "all": v} for e, v in samples.items()},
        "grouped_conv": grouped_rows(grouped, args.grouped_widths),
    }
    med = {e: result["images_per_second"][e]["median"] for e in samples}
    if "glt" in med and "thermo" in med:
        result["glt_overhead_vs_thermo"] = med["thermo"] / med["glt"] - 1.0
    sampled = [e for e in med if e.startswith("glt/")]
    if sampled and "thermo" in med:
        result["glt_sampled_overhead_vs_thermo"] = {e: med["thermo"] / med[e] - 1.0 for e in sampled}
    atomic.write_json(args.out + ".json", result)
    text = render(result)
    atomic.write_text(args.out + ".md", text)
    print(text, end="")
    return 0


def render(result: dict) -> str:
    """The Markdown page of a result (its JSON holds everything it shows)."""
    settings = result["settings"]
    rates = result["images_per_second"]
    grouped = result.get("grouped_conv", [])
    lines = [
        "# Training throughput by input encoding",
        "",
        f"Command: `{result['command'].strip()}`  ",
        f"Machine: {result['machine']['cpus']} CPUs, TensorFlow {result['machine']['tensorflow']}; default compact "
        f"model, {settings['image_size']}×{settings['image_size']}×3, batch {settings['batch_size']}, median of "
        f"{settings['repeats']} interleaved repeats of {settings['steps']} steps.",
        "",
        "| encoding | images/s (median) | runs |",
        "| --- | ---: | --- |",
    ]
    for e, r in rates.items():
        lines.append(f"| {e} | {r['median']:.1f} | {', '.join(f'{v:.1f}' for v in r['all'])} |")
    if "glt_overhead_vs_thermo" in result:
        overhead = result["glt_overhead_vs_thermo"]
        lines += ["", f"GLT overhead over thermo: {100 * overhead:.1f}% "
                  f"({'within' if overhead < 0.15 else 'over'} the target of 15%). "
                  "GLT learns its thresholds, so its step also carries the stem's gradient with respect to its "
                  "input planes and the surrogate over every plane; thermo's step has neither."]
    for e, overhead in result.get("glt_sampled_overhead_vs_thermo", {}).items():
        k = e.split("/")[1]
        lines += ["", f"GLT with its thresholds' gradient from {k} of {settings['batch_size']} images ({e}): "
                  f"{100 * overhead:.1f}% over thermo ({'within' if overhead < 0.15 else 'over'} the target of 15%). "
                  "The stem's input gradient and the surrogate run on those images only "
                  "(`ModelConfig.glt_grad_images`)."]
    lines += ["", "Single runs on this shared 2-core machine vary widely (the runs column): only large "
              "differences between medians mean something."]
    if grouped:
        lines += _grouped_lines(grouped)
    return "\n".join(lines) + "\n"


def grouped_rows(samples: dict, widths) -> list[dict]:
    """One row per width: images/s (median and every run) on each grouped-convolution path."""
    rows = []
    for w in widths:
        row = {"width": float(w)}
        for path in GROUPED_PATHS:
            runs = samples[f"{w:g}/{path}"]
            row[path] = {"median": float(np.median(runs)), "all": runs}
        row["speedup"] = row["native"]["median"] / row["xla"]["median"]
        rows.append(row)
    return rows


def _grouped_lines(rows: list[dict]) -> list[str]:
    lines = ["", "## Grouped convolutions: TensorFlow's kernel against keras' XLA wrapper", "",
             "The GLT model (groups 1/2/4/8) at each width; `native` is the default (`larq_glt.grouped_conv`), "
             "`xla` keras' own path. Same arithmetic, same flatbuffer.", "",
             "| width | native images/s (median) | xla images/s (median) | speed-up | runs native / xla |",
             "| ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        n, x = r["native"], r["xla"]
        lines.append(f"| {r['width']:g} | {n['median']:.1f} | {x['median']:.1f} | {r['speedup']:.2f}× | "
                     f"{', '.join(f'{v:.1f}' for v in n['all'])} / {', '.join(f'{v:.1f}' for v in x['all'])} |")
    return lines

if __name__ == "__main__":
    sys.exit(main())
