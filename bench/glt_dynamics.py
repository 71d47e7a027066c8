"""Experiment: do GLT's thresholds move where the loss wants them? On what setting?

A small generated linear-sensor task (``data.synthetic`` images through
``data.sensor.linear_sensor``: most codes below ~60 of 255) and a tiny binary
network (GLT → one binary 3×3 conv → BN → global pooling → dense), trained
with the project's recipe (Adam 2e-3). For each threshold setting — the
initialisation (``uniform``/``quantile``) and the thresholds' learning-rate
multiplier (GLT's ``logit_scale``) — it reports how far the thresholds moved,
whether they moved toward the dark codes where the data is, and the accuracy.
Writes ``benchmarks/glt_dynamics.json`` and ``.md``; a few minutes of CPU.

    .venv/bin/python bench/glt_dynamics.py
    .venv/bin/python bench/glt_dynamics.py --render   # re-render the page (with glt_dynamics_notes.md)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import larq_glt  # noqa: E402,F401
import numpy as np  # noqa: E402

from larq_glt import atomic  # noqa: E402

MULTIPLIERS = (1.0, 3.0, 10.0, 30.0)
INITS = ("uniform", "quantile")


def task(num: int, size: int, seed: int, exposure=(1 / 8, 1 / 2), num_classes: int = 4):
    """Generated images → linear-sensor codes, labels (train and validation)."""
    from larq_glt.data import sensor, synthetic

    cfg = sensor.SensorConfig(exposure_min=exposure[0], exposure_max=exposure[1])
    out = []
    for split, n in ((0, num), (1, num // 2)):
        x, y = synthetic.generate(n, size, num_classes, seed, split=split)
        out.append((sensor.linear_sensor(x, seed=[seed, split], config=cfg), y))
    return out


def tiny_model(levels: int, init: str, multiplier: float, num_classes: int, train_codes, seed: int,
               surrogate: float = 1.0):
    import larq as lq
    import tf_keras as keras

    from larq_glt import encoders

    keras.utils.set_random_seed(seed)
    enc = encoders.GLT(levels=levels, init=init, logit_scale=multiplier, name="encoder",
                       surrogate_width=surrogate * 128.0 / (levels + 1))
    if init == "quantile":
        enc.init_from_data(train_codes)
    inputs = keras.Input(train_codes.shape[1:], dtype="uint8")
    x = enc(inputs)
    x = lq.layers.QuantConv2D(32, 3, strides=2, padding="same", kernel_quantizer="ste_sign",
                              kernel_constraint="weight_clip", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(num_classes)(x)
    model = keras.Model(inputs, x)
    model.compile(keras.optimizers.Adam(2e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model, enc


def train_thresholds(levels=4, init="uniform", multiplier=1.0, epochs=6, num=512, size=16, seed=0,
                     batch_size=32, surrogate=1.0):
    """Train the tiny model; returns the thresholds before/after, accuracy and data quantiles."""
    (xt, yt), (xv, yv) = task(num, size, seed)
    model, enc = tiny_model(levels, init, multiplier, int(yt.max()) + 1, xt, seed, surrogate)
    before = enc.thresholds().copy()
    model.fit(xt, yt, batch_size=batch_size, epochs=epochs, verbose=0, shuffle=True)
    after = enc.thresholds().copy()
    acc = float(model.evaluate(xv, yv, verbose=0)[1])
    return {"init": init, "multiplier": multiplier, "surrogate": surrogate, "levels": levels,
            "before": before.tolist(),
            "after": after.tolist(), "mean_move": float(np.mean(after - before)),
            "max_abs_move": int(np.abs(after - before).max()), "val_accuracy": acc,
            "data_p50_p95_p99": np.percentile(xt, [50, 95, 99]).tolist(),
            "steps": epochs * int(np.ceil(num / batch_size))}


def render(result: dict, notes: str = "") -> str:
    lines = ["# GLT threshold dynamics on a generated linear-sensor task", "",
             "Written by `bench/glt_dynamics.py` (see its docstring for the task). "
             f"{result['settings']['num']} training images of {result['settings']['size']} px, "
             f"K = {result['settings']['levels']}, {result['rows'][0]['steps']} Adam steps at 2e-3, "
             f"seeds {result['settings']['seeds']}; the data's 50/95/99th percentile codes: "
             f"{', '.join(f'{v:.0f}' for v in result['rows'][0]['data_p50_p95_p99'])}.", "",
             "Surrogate: the half-width of the triangular surrogate gradient as a multiple of the default "
             "128/(K+1) codes.", "",
             "| init | multiplier | surrogate | seed | thresholds before (R) | after (R) | mean move (codes) "
             "| val accuracy |",
             "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: |"]
    for r in result["rows"]:
        lines.append(f"| {r['init']} | {r['multiplier']:g} | {r.get('surrogate', 1.0):g}× | {r['seed']} | "
                     f"{r['before'][0]} | {r['after'][0]} | "
                     f"{r['mean_move']:+.1f} | {r['val_accuracy']:.3f} |")
    lines += ["", notes, "", f"CPU time: {result['cpu_s']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--multipliers", type=float, nargs="+", default=list(MULTIPLIERS))
    p.add_argument("--inits", nargs="+", default=list(INITS), choices=INITS)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--out", default=str(ROOT / "benchmarks"))
    p.add_argument("--surrogates", type=float, nargs="+", default=[1.0],
                   help="surrogate half-widths, as multiples of the default 128/(K+1)")
    p.add_argument("--append", action="store_true", help="add the rows to the existing glt_dynamics.json")
    p.add_argument("--render", action="store_true", help="only re-render the page from the JSON")
    args = p.parse_args(argv)
    out = Path(args.out)
    notes = out / "glt_dynamics_notes.md"
    if args.render:
        import json

        result = json.loads((out / "glt_dynamics.json").read_text())
        atomic.write_text(out / "glt_dynamics.md", render(result, notes.read_text().strip() if notes.exists() else ""))
        return 0
    cpu0 = time.process_time()
    rows = []
    for init in args.inits:
        for m in args.multipliers:
            for w in args.surrogates:
                for seed in range(args.seeds):
                    r = {**train_thresholds(args.levels, init, m, args.epochs, seed=seed, surrogate=w), "seed": seed}
                    rows.append(r)
                    print(f"{init:8s} x{m:<5g} w x{w:g} seed {seed}: R {r['before'][0]} -> {r['after'][0]}  "
                          f"mean move {r['mean_move']:+.1f}  acc {r['val_accuracy']:.3f}", flush=True)
    result = {"benchmark": "glt_dynamics", "settings": {"num": 512, "size": 16, "levels": args.levels,
                                                        "epochs": args.epochs, "seeds": list(range(args.seeds))},
              "rows": rows, "cpu_s": time.process_time() - cpu0}
    if args.append and (out / "glt_dynamics.json").exists():
        import json

        old = json.loads((out / "glt_dynamics.json").read_text())
        result["rows"], result["cpu_s"] = old["rows"] + rows, old["cpu_s"] + result["cpu_s"]
    atomic.write_json(out / "glt_dynamics.json", result)
    atomic.write_text(out / "glt_dynamics.md", render(result, notes.read_text().strip() if notes.exists() else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
