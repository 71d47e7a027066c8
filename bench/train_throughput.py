"""Training throughput (images/s) of the default model for each input encoding.

Measures ``model.fit`` steps on in-memory uint8 batches (so data decoding is not
part of the number), after warm-up steps that absorb tracing. Every encoding
trains the same compact topology and recipe; only the encoder differs, so the
ratio glt / thermo is GLT's training overhead (learned, rounded thresholds and
the surrogate gradient) over a fixed thermometer.

    python bench/train_throughput.py                      # writes benchmarks/train_throughput.{json,md}
    python bench/train_throughput.py --steps 30 --batch-size 64 --repeats 3
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

from larq_glt import atomic, models


def measure(encoding: str, steps: int, warmup: int, batch_size: int, image_size: int, seed: int) -> float:
    keras.utils.set_random_seed(seed)
    model = models.compact(encoding=encoding, num_classes=10, input_size=image_size)
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
    p.add_argument("--encodings", nargs="+", default=["glt", "thermo", "nbc", "float"])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "train_throughput"))
    args = p.parse_args(argv)

    samples = {e: [] for e in args.encodings}
    for r in range(args.repeats):  # interleave so machine noise hits every encoding alike
        for e in args.encodings:
            ips = measure(e, args.steps, args.warmup, args.batch_size, args.image_size, seed=r)
            samples[e].append(ips)
            print(f"repeat {r + 1}: {e:7s} {ips:8.1f} images/s", flush=True)
    result = {
        "command": "python bench/train_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "settings": vars(args),
        "images_per_second": {e: {"median": float(np.median(v)), "all": v} for e, v in samples.items()},
    }
    med = {e: result["images_per_second"][e]["median"] for e in samples}
    if "glt" in med and "thermo" in med:
        result["glt_overhead_vs_thermo"] = med["thermo"] / med["glt"] - 1.0
    atomic.write_json(args.out + ".json", result)
    lines = [
        "# Training throughput by input encoding",
        "",
        f"Command: `{result['command'].strip()}`  ",
        f"Machine: {result['machine']['cpus']} CPUs, TensorFlow {tf.__version__}; default compact model, "
        f"{args.image_size}×{args.image_size}×3, batch {args.batch_size}, median of {args.repeats} interleaved repeats "
        f"of {args.steps} steps.",
        "",
        "| encoding | images/s (median) | runs |",
        "| --- | ---: | --- |",
    ]
    for e in samples:
        lines.append(f"| {e} | {med[e]:.1f} | {', '.join(f'{v:.1f}' for v in samples[e])} |")
    if "glt_overhead_vs_thermo" in result:
        lines += ["", f"GLT overhead over thermo: {100 * result['glt_overhead_vs_thermo']:.1f}% (target: under 15%)."]
    atomic.write_text(args.out + ".md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
