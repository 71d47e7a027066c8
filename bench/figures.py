"""Figures of the encoding benchmarks (``bench/encodings.py``; ``bench/sensor.py``
shares ``pyplot`` and ``save``): accuracy per encoding, accuracy under tone
changes, learned transfer curves. Drawn headless (Agg), written atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from larq_glt import atomic

FIGURES = "figures"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path) -> None:
    from larq_glt import plots

    atomic.write_bytes(path, plots.render_png(fig))
    pyplot().close(fig)


_COLOURS = {"glt": "tab:red", "thermo": "tab:blue", "nbc": "tab:green", "float": "tab:gray"}



def _chance(ax, result: dict, dataset: str) -> None:
    classes = result["datasets"].get(dataset, {}).get("class_names")
    if classes:
        ax.axhline(1.0 / len(classes), color="black", linestyle=":", linewidth=0.8, label="chance")


def plot_accuracy(result: dict, path: Path) -> None:
    """Clean validation accuracy per encoding, one panel per dataset: bar =
    mean, whisker = min..max, dots = the individual runs."""
    plt = pyplot()
    datasets = [d for d in result["datasets"] if d in result["summary"]]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        encs = [e for e in result["settings"]["encodings"] if e in result["summary"][ds]]
        for i, enc in enumerate(encs):
            s = result["summary"][ds][enc]["clean"]
            if s["n"] == 0:
                continue
            ax.bar(i, s["mean"], color=_COLOURS.get(enc, "tab:orange"), alpha=0.6)
            ax.errorbar(i, s["mean"], yerr=[[s["mean"] - s["min"]], [s["max"] - s["mean"]]], color="black", capsize=5)
            runs = [c["tone"]["clean"] for c in result["cells"] if c["dataset"] == ds and c["encoding"] == enc]
            ax.plot([i] * len(runs), runs, "o", color="black", markersize=3)
        ax.set_xticks(range(len(encs)), encs)
        _chance(ax, result, ds)
        ax.set_ylabel("validation accuracy")
        n = max((result["summary"][ds][e]["clean"]["n"] for e in encs), default=0)
        unit = "folds" if result["datasets"][ds].get("protocol") == "kfold" else "seeds"
        ax.set_title(f"{ds}: mean, min–max over {n} {unit}")
        classes = result["datasets"].get(ds, {}).get("class_names") or [0]
        lo = min([c["tone"]["clean"] for c in result["cells"] if c["dataset"] == ds] + [1.0 / len(classes)])
        ax.set_ylim(max(0.0, lo - 0.1), 1.0)
        ax.grid(axis="y", alpha=0.3)
    save(fig, path)


def plot_tone(result: dict, dataset: str, path: Path) -> None:
    """Accuracy under each tone condition, grouped by condition, one bar per
    encoding (mean, whisker min..max)."""
    plt = pyplot()
    summary = result["summary"][dataset]
    encs = [e for e in result["settings"]["encodings"] if e in summary]
    conds = result["conditions"]
    fig, ax = plt.subplots(figsize=(9, 3.8))
    width = 0.8 / max(1, len(encs))
    for j, enc in enumerate(encs):
        xs, means, lo, hi = [], [], [], []
        for i, c in enumerate(conds):
            s = summary[enc][c["key"]]
            if s["n"]:
                xs.append(i - 0.4 + width * (j + 0.5))
                means.append(s["mean"])
                lo.append(s["mean"] - s["min"])
                hi.append(s["max"] - s["mean"])
        ax.bar(xs, means, width, label=enc, color=_COLOURS.get(enc, "tab:orange"), alpha=0.75)
        ax.errorbar(xs, means, yerr=[lo, hi], fmt="none", color="black", capsize=2, linewidth=0.8)
    ax.set_xticks(range(len(conds)), [c["label"] for c in conds])
    _chance(ax, result, dataset)
    ax.set_ylabel("validation accuracy")
    ax.set_title(f"{dataset}: accuracy under global tone changes (mean, min–max)")
    ax.set_ylim(0.0, 1.0)
    ax.legend(fontsize=8, ncol=len(encs) + 1, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    save(fig, path)


def plot_transfer(thresholds: list, levels: int, title: str, path: Path) -> None:
    """Learned GLT code value per channel against the uniform thermometer: the
    first run solid, the other runs faint."""
    from larq_glt.encoders import uniform_thresholds
    from larq_glt.plots import code_values

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    xs = np.arange(256)
    ax.step(xs, code_values(uniform_thresholds(levels)[None])[0], where="post", color="black", linestyle="--",
            label=f"uniform thermometer (K={levels})")
    colours = ("tab:red", "tab:green", "tab:blue")
    for r, t in enumerate(thresholds):
        t = np.asarray(t)
        names = ["R", "G", "B"] if t.shape[0] == 3 else [f"ch{c}" for c in range(t.shape[0])]
        for c, codes in enumerate(code_values(t)):
            ax.step(xs, codes, where="post", color=colours[c % 3], alpha=1.0 if r == 0 else 0.3,
                    linewidth=1.5 if r == 0 else 1.0, label=f"GLT {names[c]}" if r == 0 else None)
    ax.set_xlabel("pixel value (ADC code)")
    ax.set_ylabel("code value (planes on)")
    ax.set_xlim(0, 255)
    ax.set_ylim(-0.2, levels + 0.2)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    save(fig, path)
