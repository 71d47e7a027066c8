"""Benchmark: input codes on a linear image sensor's ADC output, against sRGB photos.

The question of issue 14: where the comparators see a *linear* photo-signal
(``larq_glt/data/sensor.py``: no gamma, exposure varying from scene to scene,
shot and read noise), most of an image sits in the lowest codes and a uniform
thermometer wastes its levels on highlights. Does a learned thermometer (GLT)
then beat the fixed codes? The same compact topology and recipe with inputs

- ``nbc``: natural binary coding, the 8 bit-planes (24 planes);
- ``thermo``: the uniform thermometer, K = 2, 4, 8;
- ``thermo-q``: a fixed thermometer at the training data's k/(K+1) quantiles
  (GLT initialised from the data and frozen), K = 2, 4, 8;
- ``glt-u``: GLT from the uniform thermometer, K = 4;
- ``glt-q``: GLT from the data's quantiles, K = 4;

each on sRGB photos (``--sensor srgb``) and on the linear sensor's codes
(``--sensor linear``, default :class:`SensorConfig`), with 2 seeds. Every model
is then tested at fixed exposures (:data:`sensor.EVAL_EXPOSURES`): the linear
cells on the sensor's codes at that gain, the sRGB cells on the photo's linear
light times that gain re-encoded with the sRGB curve (``sensor.srgb_exposure``).

Writes ``benchmarks/sensor.json``, ``benchmarks/sensor.md``, figures under
``benchmarks/figures/sensor_*.png`` and re-renders ``benchmarks/RESULTS.md``.

    .venv/bin/python bench/sensor.py              # the benchmark (resumes: finished cells are reused)
    .venv/bin/python bench/sensor.py --smoke      # tiny end-to-end check in a temp dir

Size: chosen to finish on this 2-core machine while it is shared — 32×32 px
images (resized from imagenette96), 3,000 training and 3,000 validation
images (a hashed, class-mixed subset of Imagenette's own split), the default
topology at width 1, 10 epochs. Cells run in order of importance: the K = 4
linear cells first (the acceptance), then K = 4 on sRGB, then K = 2 and 8.
Each cell is an ordinary run directory under ``--work`` (default
``bench/_work/sensor``): finished cells are reused, an interrupted one
resumes from its last epoch, the exposure tests are cached (``exposure.json``).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import larq_glt  # noqa: E402,F401
import numpy as np  # noqa: E402

from bench import encodings as enc_bench  # noqa: E402  (shared helpers: cells, statistics)
from bench import figures  # noqa: E402
from larq_glt import atomic  # noqa: E402
from larq_glt.data import sensor  # noqa: E402

RESULTS_NAME = "sensor.json"
PAGE_NAME = "sensor.md"
FIGURES = "figures"
INPUTS = ("linear", "srgb")


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str  # nbc | thermo | thermo-q | glt-u | glt-q
    levels: int | None  # None: nbc (8 bit-planes)

    @property
    def label(self) -> str:
        return self.name if self.levels is None else f"{self.name} K={self.levels}"

    @property
    def key(self) -> str:
        return self.name if self.levels is None else f"{self.name}-k{self.levels}"

    def train_options(self) -> dict:
        """TrainConfig fields (encoding, levels, glt_init, model overrides)."""
        if self.name == "nbc":
            return {"encoding": "nbc", "levels": 8, "glt_init": "uniform", "model": {}}
        if self.name == "thermo":
            return {"encoding": "thermo", "levels": self.levels, "glt_init": "uniform", "model": {}}
        from larq_glt.encoders import DEFAULT_LOGIT_SCALE

        glt = {"glt_lr_multiplier": DEFAULT_LOGIT_SCALE}
        if self.name == "thermo-q":
            return {"encoding": "glt", "levels": self.levels, "glt_init": "quantile",
                    "model": {**glt, "glt_trainable": False}}
        init = {"glt-u": "uniform", "glt-q": "quantile"}[self.name]
        return {"encoding": "glt", "levels": self.levels, "glt_init": init, "model": glt}


#: In order of importance: (input, variants); every seed of a group before the next group.
def plan_groups(inputs=INPUTS) -> list[tuple[str, list[Variant]]]:
    k4 = [Variant("nbc", None), Variant("thermo", 4), Variant("thermo-q", 4), Variant("glt-u", 4),
          Variant("glt-q", 4)]
    k28 = [Variant(n, k) for k in (2, 8) for n in ("thermo", "thermo-q")]
    groups = [(i, k4) for i in inputs] + [(i, k28) for i in inputs]
    return groups


class SensorHoldout(enc_bench.Holdout):
    """Imagenette's split, as photos or through the linear sensor."""

    def __init__(self, prepared, batch_size: int, sensor_config):
        super().__init__(prepared, batch_size)
        self.sensor = sensor_config

    def splits(self, replicate: int):
        from larq_glt.data import AugmentConfig, DatasetSplits

        p = self.prepared
        return DatasetSplits(p.train, p.val, p.info, batch_size=self.batch_size, seed=replicate,
                             augment=AugmentConfig(), sensor=self.sensor)


def exposure_evaluator(input_: str):
    """``evaluate(model, splits)``: accuracy on the validation split as the
    pipeline gives it (``clean``) and at each fixed exposure."""

    def evaluate(model, splits):
        images, labels = splits.arrays("val")
        predict = lambda x: np.argmax(model.predict(x, batch_size=256, verbose=0), -1)  # noqa: E731
        acc = {"clean": float(np.mean(predict(splits.sensor_codes(images)) == labels))}
        for e in sensor.EVAL_EXPOSURES:
            x = splits.sensor_codes(images, exposure=e) if input_ == "linear" else sensor.srgb_exposure(images, e)
            acc[exposure_key(e)] = float(np.mean(predict(x) == labels))
        return acc

    return evaluate


def exposure_key(e: float) -> str:
    return f"exposure_{e:g}"


def exposure_label(e: float) -> str:
    return f"×1/{round(1 / e)}" if e < 1 else f"×{e:g}"


# -- one cell -----------------------------------------------------------------------------
def train_config(args, input_: str, variant: Variant, seed: int, out: Path):
    from larq_glt import training

    opts = variant.train_options()
    return training.TrainConfig(
        dataset="synthetic" if args.synthetic else "folder",
        data_dir=None if args.synthetic else str(args.imagenette_dir), out=str(out),
        encoding=opts["encoding"], levels=opts["levels"], glt_init=opts["glt_init"], epochs=args.epochs,
        batch_size=args.batch_size, image_size=args.image_size, learning_rate=args.learning_rate, seed=seed,
        augment=True, limit=args.limit, progress=args.verbose, model={"width": args.width, **opts["model"]},
        sensor=input_, sensor_params={},
    )


_IDENTITY = ("sensor", "sensor_params", "glt_init", "encoding", "levels", "model", "epochs", "image_size", "limit",
             "seed", "batch_size", "learning_rate")


def check_cell(run_dir: Path, cfg) -> None:
    """A cell directory that holds a run with other settings is refused."""
    from larq_glt.runs import RunDir

    run = RunDir(run_dir)
    if not run.config.exists():
        return
    saved, want = run.read_json(run.config), cfg.to_dict()
    clashes = [f"{k}: saved {saved.get(k)!r}, asked {want.get(k)!r}" for k in _IDENTITY if saved.get(k) != want.get(k)]
    if clashes:
        raise enc_bench.BenchError(f"{run_dir} holds a run with other settings ({'; '.join(clashes)}); "
                                   f"delete it or pass another --work")


# -- summary --------------------------------------------------------------------------------
def summarize(cells: list[dict]) -> dict:
    """``{input: {variant key: {condition: stats}}}``."""
    out: dict = {}
    for c in cells:
        out.setdefault(c["input"], {}).setdefault(c["variant"], []).append(c)
    return {inp: {v: {k: enc_bench.stats(r["accuracy"].get(k) for r in rows) for k in rows[0]["accuracy"]}
                  for v, rows in vs.items()} for inp, vs in out.items()}


def _fmt(s: dict | None) -> str:
    if not s or not s.get("n"):
        return "–"
    txt = f"{100 * s['mean']:.1f}"
    if s.get("std") is not None:
        txt += f" ± {100 * s['std']:.1f}"
    return txt


def _range(s: dict | None) -> str:
    if not s or not s.get("n"):
        return "–"
    return f"{100 * s['min']:.1f}–{100 * s['max']:.1f}"


def reading(result: dict) -> list[str]:
    """What the numbers show, computed (the acceptance comparison first)."""
    out = []
    summ = result["summary"]
    for inp in INPUTS:
        s = summ.get(inp, {})
        if not s:
            continue
        for glt in ("glt-u-k4", "glt-q-k4"):
            if glt not in s:
                continue
            parts = []
            for other in ("thermo-k4", "thermo-q-k4", "nbc"):
                if other not in s:
                    continue
                a, b = s[glt]["clean"], s[other]["clean"]
                d = a["mean"] - b["mean"]
                disjoint = a["min"] > b["max"] or a["max"] < b["min"]
                parts.append(f"{100 * d:+.1f} points vs {other} ("
                             + ("seed ranges disjoint" if disjoint else "seed ranges overlap") + ")")
            if parts:
                out.append(f"**{inp}**, {glt} (n = {s[glt]['clean']['n']}): " + "; ".join(parts) + ".")
    return out


# -- figures ------------------------------------------------------------------------------------
_COLOURS = {"nbc": "tab:green", "thermo": "tab:blue", "thermo-q": "tab:purple", "glt-u": "tab:red",
            "glt-q": "tab:orange"}


def plot_exposure(result: dict, path: Path) -> None:
    """Accuracy against exposure, K = 4 cells and nbc, one panel per input."""
    plt = figures.pyplot()
    inputs = [i for i in INPUTS if i in result["summary"]]
    fig, axes = plt.subplots(1, len(inputs), figsize=(5.2 * len(inputs), 3.8), squeeze=False, sharey=True)
    exps = sensor.EVAL_EXPOSURES
    for ax, inp in zip(axes[0], inputs):
        s = result["summary"][inp]
        for key in ("nbc", "thermo-k4", "thermo-q-k4", "glt-u-k4", "glt-q-k4"):
            if key not in s:
                continue
            name = key.replace("-k4", "")
            means = [s[key][exposure_key(e)]["mean"] for e in exps]
            lo = [s[key][exposure_key(e)]["min"] for e in exps]
            hi = [s[key][exposure_key(e)]["max"] for e in exps]
            ax.plot(exps, means, "o-", color=_COLOURS[name], label=name + ("" if name == "nbc" else " K=4"))
            ax.fill_between(exps, lo, hi, color=_COLOURS[name], alpha=0.15)
        if inp == "linear":
            ax.axvspan(1 / 8, 1.0, color="grey", alpha=0.1, label="training exposures")
        ax.set_xscale("log", base=2)
        ax.set_xticks(exps, [exposure_label(e) for e in exps])
        ax.set_xlabel("exposure gain (1 = the photo's white at full well)")
        ax.set_title(f"{inp} input: accuracy vs exposure (mean, min–max)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.axhline(0.1, color="black", linestyle=":", linewidth=0.8)
    axes[0][0].set_ylabel("validation accuracy")
    axes[0][0].legend(fontsize=7, loc="lower center")
    figures.save(fig, path)


def plot_transfer(result: dict, path: Path) -> None:
    """Learned K = 4 transfer curves (code value vs ADC code) on linear input,
    against the uniform thermometer and the sRGB curve (what a camera's gamma
    would do to the same linear codes), full range and the dark end."""
    from larq_glt.encoders import uniform_thresholds
    from larq_glt.plots import code_values

    plt = figures.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    xs = np.arange(256)
    k = 4
    for ax, xmax in zip(axes, (255, 64)):
        ax.step(xs, code_values(uniform_thresholds(k)[None])[0], where="post", color="black", linestyle="--",
                label="uniform thermometer")
        ax.plot(xs, k * sensor.linear_to_srgb(xs / 255.0), color="black", linestyle=":",
                label="sRGB curve × K")
        g = float(np.sqrt(result["settings"]["sensor"]["exposure_min"] * result["settings"]["sensor"]["exposure_max"]))
        ax.plot(xs, k * sensor.linear_to_srgb(xs / (255.0 * g)), color="grey", linestyle="-.",
                label=f"sRGB curve × K after ×{1 / g:.1f} gain (undoing the middle training exposure)")
        for c in result["cells"]:
            if c["input"] != "linear" or c["variant"] not in ("glt-u-k4", "glt-q-k4", "thermo-q-k4"):
                continue
            t = np.asarray(c.get("thresholds") or [])
            if t.size == 0:
                continue
            name = c["variant"].replace("-k4", "")
            first = c["seed"] == min(x["seed"] for x in result["cells"] if x["variant"] == c["variant"]
                                     and x["input"] == "linear")
            curve = code_values(t).mean(axis=0)  # the mean over R, G, B
            ax.step(xs, curve, where="post", color=_COLOURS[name], alpha=1.0 if first else 0.4,
                    linewidth=1.6 if first else 1.0,
                    label=(f"{name} (mean of R,G,B)" if first else None))
        ax.set_xlim(0, xmax)
        ax.set_ylim(-0.1, k + 0.1)
        ax.set_xlabel("linear sensor ADC code")
        ax.set_ylabel("code value (planes on)")
        ax.grid(alpha=0.3)
        ax.set_title("K = 4 transfer curves on linear input" + (" (dark end)" if xmax < 255 else ""), fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    figures.save(fig, path)


def plot_histogram(images_codes: dict, path: Path) -> None:
    plt = figures.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, codes in images_codes.items():
        ax.hist(codes.ravel(), bins=np.arange(257) - 0.5, histtype="step", density=True, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("code")
    ax.set_ylabel("share of pixels")
    ax.set_title("Pixel codes of the validation images", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figures.save(fig, path)


# -- page ---------------------------------------------------------------------------------------
def render(result: dict) -> str:
    from bench import results_page

    st = result["settings"]
    done, expected = len(result["cells"]), result["expected_cells"]
    lines = ["# GLT on a linear sensor's ADC codes", ""]
    if not result["complete"]:
        lines += [f"**Partial results: {done} of {expected} cells finished** (committed before the benchmark "
                  "finished; the command under *Reproduce* resumes it, reusing finished cells from its --work "
                  "directory, and re-renders this page).", ""]
    lines += [
        f"Generated by `bench/sensor.py`. Imagenette (`{st['data_dir']}`), {st['num_train']:,} training and "
        f"{st['num_val']:,} validation images (a hashed subset of its own split) at {st['image_size']}×"
        f"{st['image_size']} px, the default compact topology (width {st['width']:g}), {st['epochs']} epochs, Adam "
        f"{st['learning_rate']:g} with cosine decay, batch {st['batch_size']}, the default augmentation; seeds "
        f"{st['seeds']}. GLT cells: thresholds learning {st['glt_lr_multiplier']:g}× faster than the weights "
        "(the new default). Linear input: `larq_glt/data/sensor.py` with its defaults "
        f"(full well {st['sensor']['full_well']:g} e⁻, read noise {st['sensor']['read_noise']:g} e⁻, exposure "
        f"log-uniform in [{st['sensor']['exposure_min']:g}, {st['sensor']['exposure_max']:g}] per image, seeded per "
        "image in validation). Accuracies in %, mean ± sample std over seeds, and min–max.", ""]
    lines += ["## Validation accuracy", ""]
    header = ["input code"] + [f"{i}: mean ± std" for i in INPUTS] + [f"{i}: min–max" for i in INPUTS]
    rows = []
    for v in [v for _, vs in plan_groups(("linear",)) for v in vs]:
        s = [result["summary"].get(i, {}).get(v.key, {}).get("clean") for i in INPUTS]
        rows.append([v.label + (" (24 planes)" if v.levels is None else f" ({3 * v.levels} planes)")]
                    + [_fmt(x) for x in s] + [_range(x) for x in s])
    lines += results_page._table(header, rows)
    lines += ["", *[f"- {r}" for r in reading(result)], ""]
    figs = result.get("figures", {})
    lines += ["## Accuracy against exposure", "",
              "Every model tested at fixed exposure gains: linear cells on the sensor's codes at that gain "
              "(shot and read noise included), sRGB cells on the photo's linear light × gain re-encoded with "
              "the sRGB curve (a camera with gamma but without auto-exposure). Linear training saw gains "
              f"{st['sensor']['exposure_min']:g}–{st['sensor']['exposure_max']:g}; sRGB training saw ±30 % "
              "brightness jitter.", ""]
    if figs.get("exposure"):
        lines += [f"![accuracy vs exposure]({figs['exposure']})", ""]
    exps = sensor.EVAL_EXPOSURES
    header = ["input", "code"] + [exposure_label(e) for e in exps]
    rows = []
    for inp in INPUTS:
        for key in ("nbc", "thermo-k4", "thermo-q-k4", "glt-u-k4", "glt-q-k4"):
            s = result["summary"].get(inp, {}).get(key)
            if s:
                rows.append([inp, key.replace("-k", " K=")] + [_fmt(s[exposure_key(e)]) for e in exps])
    lines += results_page._table(header, rows, "ll" + "r" * len(exps)) + [""]
    lines += ["## Learned transfer curves", ""]
    if figs.get("transfer"):
        lines += [f"![transfer curves]({figs['transfer']})", ""]
    rows = []
    for c in result["cells"]:
        if c["variant"] in ("glt-u-k4", "glt-q-k4", "thermo-q-k4") and c.get("thresholds"):
            rows.append([c["input"], c["variant"].replace("-k4", ""), str(c["seed"]),
                         " / ".join(",".join(str(v) for v in ch) for ch in c["thresholds"])])
    if rows:
        lines += ["Thresholds (ADC codes) per channel R / G / B at the end of training "
                  "(thermo-q: the fixed quantile thermometer, which is also glt-q's start):", ""]
        lines += results_page._table(["input", "code", "seed", "thresholds R / G / B"], rows, "llrl") + [""]
    if figs.get("histogram"):
        lines += [f"![code histogram]({figs['histogram']})", ""]
    notes = Path(result["out"]) / "sensor_notes.md"
    if notes.exists():
        lines += ["## Reading", "", notes.read_text().strip(), ""]
    tm = result["timing"]
    lines += ["## Time", "",
              f"Cells' training wall time: {sum(c['train_wall_s'] for c in result['cells']):,.0f} s in total "
              f"({len(result['cells'])} cells, machine shared with other jobs; this benchmark ran at nice 19). "
              f"Last invocation: {tm.get('invocation_wall_s', 0):,.0f} s wall.", "",
              "## Reproduce", "", "```", result["command"], "```", ""]
    return "\n".join(lines)


# -- main ---------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--imagenette-dir", default=str(ROOT.parent / "shared" / "data" / "imagenette96"))
    p.add_argument("--inputs", nargs="+", default=list(INPUTS), choices=INPUTS)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=3000, help="images per split")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--max-cells", type=int, help="stop after this many cells (in plan order)")
    p.add_argument("--synthetic", action="store_true", help="generated data instead of Imagenette (tests)")
    p.add_argument("--smoke", action="store_true", help="32 px, 1 epoch, 64 images, 1 seed; temp dirs")
    p.add_argument("--work", default=None, help="cells' run directories [bench/_work/sensor]")
    p.add_argument("--out", default=None, help="sensor.json, sensor.md, figures/ [benchmarks]")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--render", action="store_true",
                   help="only redraw the figures and pages from --out's sensor.json (e.g. after editing sensor_notes.md)")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs, args.limit, args.seeds = 1, 64, 1
    if args.work is None or args.out is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench-sensor-smoke-")) if args.smoke else None
        args.work = args.work or str(tmp / "work" if tmp else ROOT / "bench" / "_work" / "sensor")
        args.out = args.out or str(tmp / "benchmarks" if tmp else ROOT / "benchmarks")
    return args


def render_only(out: Path) -> int:
    import json

    from bench import results_page

    result = json.loads((out / RESULTS_NAME).read_text())
    result["out"] = str(out)
    if result["cells"]:
        plot_exposure(result, out / result["figures"]["exposure"])
        plot_transfer(result, out / result["figures"]["transfer"])
    atomic.write_json(out / RESULTS_NAME, result)
    atomic.write_text(out / PAGE_NAME, render(result))
    results_page.write(out)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        return render_only(Path(args.out))
    import tensorflow as tf

    from bench import results_page
    from larq_glt.data import folder, synthetic
    from larq_glt.encoders import DEFAULT_LOGIT_SCALE

    argv = sys.argv[1:] if argv is None else list(argv)
    work, out = Path(args.work), Path(args.out)
    log = lambda msg: print(msg, flush=True)  # noqa: E731
    t_start = time.time()
    common = dict(image_size=args.image_size, seed=0, val_fraction=0.1, limit=args.limit, cache="memory",
                  memory_limit_mb=4096)
    prepared = (synthetic.prepare(None, num_classes=4, **common) if args.synthetic
                else folder.prepare(args.imagenette_dir, **common))
    info = prepared.info
    groups = plan_groups(args.inputs)
    seeds = list(range(args.seeds))
    plan = [(inp, v, s) for inp, vs in groups for s in seeds for v in vs]
    if args.max_cells:
        plan = plan[:args.max_cells]
    result = {
        "benchmark": "sensor",
        "command": " ".join(["nice -n 19 .venv/bin/python bench/sensor.py"] + [shlex.quote(a) for a in argv]),
        "out": str(out),
        "settings": {"image_size": args.image_size, "epochs": args.epochs, "seeds": seeds, "width": args.width,
                     "batch_size": args.batch_size, "learning_rate": args.learning_rate, "limit": args.limit,
                     "num_train": info.num_train, "num_val": info.num_val, "glt_lr_multiplier": DEFAULT_LOGIT_SCALE,
                     "data_dir": "synthetic" if args.synthetic else enc_bench._rel(args.imagenette_dir),
                     "sensor": sensor.SensorConfig().to_dict(), "eval_exposures": list(sensor.EVAL_EXPOSURES)},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
        "cells": [], "timing": {}, "expected_cells": len(plan), "complete": False,
    }
    sources = {inp: SensorHoldout(prepared, args.batch_size, sensor.from_options(inp)) for inp in args.inputs}
    log(f"work: {work}\nout: {out}\ncells: {len(plan)}; {info.num_train} train / {info.num_val} val images")

    def write(final: bool = False):
        result["summary"] = summarize(result["cells"])
        result["complete"] = final and len(result["cells"]) == len(plan)
        result["timing"]["invocation_wall_s"] = round(time.time() - t_start, 1)
        if result["cells"]:
            figs = {"exposure": f"{FIGURES}/sensor_exposure.png", "transfer": f"{FIGURES}/sensor_transfer.png",
                    "histogram": f"{FIGURES}/sensor_histogram.png"}
            plot_exposure(result, out / figs["exposure"])
            plot_transfer(result, out / figs["transfer"])
            if not (out / figs["histogram"]).exists() or final:
                val = prepared.val.images[:500]
                codes = {"sRGB photo": val}
                if "linear" in sources:
                    codes["linear sensor (validation exposures)"] = sources["linear"].splits(0).sensor_codes(val)
                plot_histogram(codes, out / figs["histogram"])
            result["figures"] = figs
        atomic.write_json(out / RESULTS_NAME, result)
        atomic.write_text(out / PAGE_NAME, render(result))
        results_page.write(out)

    for inp, variant, seed in plan:
        run_dir = work / inp / f"{variant.key}-seed{seed}"
        cfg = train_config(args, inp, variant, seed, run_dir)
        check_cell(run_dir, cfg)
        log(f"cell {inp} {variant.label} seed {seed}")
        cell = enc_bench.run_cell(cfg, sources[inp], seed, log, evaluate=exposure_evaluator(inp))
        acc = cell.pop("tone")
        result["cells"].append({"input": inp, "variant": variant.key, "name": variant.name, "levels": variant.levels,
                                "seed": seed, "run": enc_bench._rel(run_dir), "accuracy": acc, **cell})
        log("  " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()) + f"; train {cell['train_wall_s']:.0f} s")
        write()
    write(final=True)
    log(f"wrote {out / RESULTS_NAME} and {out / PAGE_NAME}")
    return 0


if __name__ == "__main__":
    from larq_glt.data import DatasetError
    from larq_glt.runs import RunError
    from larq_glt.training import TrainingError

    try:
        sys.exit(main())
    except (enc_bench.BenchError, enc_bench.FoldError, DatasetError, RunError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
