"""``benchmarks/RESULTS.md``: one page rendered from the benchmark files present.

    .venv/bin/python bench/results_page.py                 # re-render benchmarks/RESULTS.md
    .venv/bin/python bench/results_page.py --dir /tmp/x    # another results folder

Each entry of :data:`SECTIONS` becomes a section when its file exists in the
folder: rendered from its JSON by a function here (``encodings.json``), or the
Markdown page its own script writes (``PRUNE_KD.md``, ``train_throughput.md``,
the shipped model's ``MODEL_CARD.md``, ...), or else a link to the JSON. The page is never edited by hand: a
hand-written reading of the encoding benchmark goes to ``encodings_notes.md``,
which is included under the generated one. No TensorFlow needed here.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
PAGE = "RESULTS.md"
BINARY_ENCODINGS = ("glt", "thermo", "nbc")


# -- formatting helpers ----------------------------------------------------------
def _acc(v) -> str:
    return "–" if v is None else f"{v:.3f}"


def _mean_std(s: dict) -> str:
    if not s or not s.get("n"):
        return "–"
    return f"{s['mean']:.3f}" + (f" ± {s['std']:.3f}" if s.get("std") is not None else "")


def _range(s: dict) -> str:
    if not s or not s.get("n"):
        return "–"
    return f"{s['min']:.3f}–{s['max']:.3f}"


def _secs(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _points(d: float) -> str:
    return f"{100 * d:+.1f}"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    sep = ["---:" if a == "r" else ":---:" if a == "c" else "---" for a in align]
    return ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"] + [
        "| " + " | ".join(r) + " |" for r in rows
    ]


def _unit(result: dict, ds: str) -> str:
    return "folds" if result["datasets"].get(ds, {}).get("protocol") == "kfold" else "seeds"


# -- the honest reading, computed from the numbers ---------------------------------
def compare(a: dict, b: dict) -> tuple[float, bool]:
    """(mean difference a - b, whether the min..max ranges are disjoint)."""
    return a["mean"] - b["mean"], a["min"] > b["max"] or a["max"] < b["min"]


def reading(result: dict) -> list[str]:
    """Bullet points stating what the numbers show, GLT's losses included."""
    out = []
    conds = result["conditions"]
    tone_keys = [c["key"] for c in conds if c["key"] != "clean"]
    label = {c["key"]: c["label"] for c in conds}
    for ds, summary in result["summary"].items():
        encs = [e for e in result["settings"]["encodings"] if summary.get(e, {}).get("clean", {}).get("n")]
        if not encs:
            continue
        unit = _unit(result, ds)
        n = min(summary[e]["clean"]["n"] for e in encs)
        ranked = sorted(encs, key=lambda e: -summary[e]["clean"]["mean"])
        out.append(f"**{ds}**, clean validation accuracy (mean over {n} {unit}): "
                   + " > ".join(f"{e} {summary[e]['clean']['mean']:.3f}" for e in ranked) + ".")
        if "glt" in encs:
            parts = []
            for e in encs:
                if e == "glt":
                    continue
                d, disjoint = compare(summary["glt"]["clean"], summary[e]["clean"])
                parts.append(f"{_points(d)} points vs {e} "
                             + ("(min–max ranges disjoint)" if disjoint else f"(ranges overlap: not resolved by {n} {unit})"))
            if parts:
                out.append(f"{ds}: GLT " + "; ".join(parts) + ".")
            binary = [e for e in encs if e in BINARY_ENCODINGS]
            lost = []
            for k in ["clean"] + tone_keys:
                best = max(binary, key=lambda e: summary[e][k]["mean"] if summary[e][k]["n"] else -1)
                if best != "glt" and summary[best][k]["n"]:
                    d, disjoint = compare(summary["glt"][k], summary[best][k])
                    lost.append(f"{label[k]} ({best} {_points(-d)} points{', disjoint' if disjoint else ''})")
            out.append(f"{ds}: conditions where GLT does **not** have the best mean among the binary encodings "
                       f"({', '.join(binary)}): " + (", ".join(lost) if lost else "none") + ".")
        drops = {}
        for e in encs:
            clean = summary[e]["clean"]["mean"]
            vals = [clean - summary[e][k]["mean"] for k in tone_keys if summary[e][k]["n"]]
            if vals:
                drops[e] = sum(vals) / len(vals)
        if drops:
            out.append(f"{ds}: mean accuracy lost to the {len(tone_keys)} tone changes (clean minus changed, "
                       "averaged over conditions): "
                       + ", ".join(f"{e} {100 * v:.1f}" for e, v in sorted(drops.items(), key=lambda kv: kv[1]))
                       + " points.")
        for other in [e for e in encs if e != "glt"] if "glt" in encs else []:
            diffs = [f"{label[k]} {_points(summary['glt'][k]['mean'] - summary[other][k]['mean'])}"
                     for k in tone_keys if summary["glt"][k]["n"] and summary[other][k]["n"]]
            out.append(f"{ds}: GLT minus {other} under each tone change (points): " + ", ".join(diffs) + ".")
        # GLT variants (glt-lrM: thresholds learning M times faster) against the uniform thermometer
        for v in [e for e in encs if e.startswith("glt-")] if "thermo" in encs else []:
            d, disjoint = compare(summary[v]["clean"], summary["thermo"]["clean"])
            diffs = [f"{label[k]} {_points(summary[v][k]['mean'] - summary['thermo'][k]['mean'])}"
                     for k in tone_keys if summary[v][k]["n"] and summary["thermo"][k]["n"]]
            out.append(f"{ds}: {v} minus thermo: clean {_points(d)}"
                       + (" (min–max ranges disjoint)" if disjoint else f" (ranges overlap: not resolved by {n} {unit})")
                       + "; under each tone change: " + ", ".join(diffs) + ".")
    return out


def caveats(result: dict) -> list[str]:
    s = result["settings"]
    out = [
        "Runs per cell are few (seeds on Imagenette, folds on VWW): a mean difference smaller than the spread is "
        "not a result, and disjoint min–max ranges over 2–3 runs are weak evidence, not a significance test.",
        f"Training is short and small ({s['image_size']}×{s['image_size']} px, "
        f"{s['imagenette']['epochs']} Imagenette epochs, width {s['width']:g}): absolute accuracies are far below "
        "what full-resolution, full-length training reaches; the comparison between encodings is the point.",
        "Training already jitters gamma, gain and contrast by ±30 % (the default augmentation) for every "
        "encoding; the tone tests (gamma 0.5/2.0, exposure ×0.4/×1.8, contrast ×0.5) lie outside that range, "
        "so they measure extrapolation, and part of any robustness comes from the augmentation, not the encoder.",
        "`float` feeds a full-precision first convolution with the float image: it is the reference a fully "
        "binarized network gives up, not a deployable alternative (its stem weights are 32-bit floats).",
    ]
    vww = result["datasets"].get("vww")
    if vww and vww.get("init", "scratch") == "scratch":
        out.append("VWW has 500 images: each fold trains on about 333 images from scratch, which is far too few for "
                   "a BNN; those numbers compare encodings in a small-data regime and are not the accuracy of the "
                   "shipped person detector (pre-trained on Imagenette, see its own section).")
    elif vww:
        out.append(f"VWW has 500 images: each fold fine-tunes the {vww['init']} model of the same encoding on about "
                   "333 images, so the VWW numbers measure how well each encoding's pre-trained network transfers, "
                   "on 167 validation images per fold.")
    if s.get("smoke") or s.get("synthetic"):
        out.insert(0, "**This is a smoke or synthetic run, not the benchmark: the numbers mean nothing.**")
    return out


# -- the encodings section -------------------------------------------------------------
def render_encodings(result: dict, folder: Path) -> str:
    s = result["settings"]
    conds = result["conditions"]
    summary = result.get("summary", {})
    cells = result["cells"]
    encs = s["encodings"]
    figs = result.get("figures", {})
    n_expected = result.get("expected_cells") or sum(
        len(d.get("replicates", [])) for d in result["datasets"].values()) * len(encs)
    lines = []
    status = "complete" if result.get("complete") else f"**partial: {len(cells)} of {n_expected} cells finished**"
    lines += [
        f"Status: {status}. Produced by `bench/encodings.py` (its docstring explains the budget).",
        "",
        f"Every cell trains the same topology (`models.compact`, default blocks, width {s['width']:g}) with the same "
        f"recipe ({s['optimizer']}, learning rate {s['learning_rate']:g}, batch {s['batch_size']}, "
        f"{s['augment']}, GLT initialised {s['glt_init']}) at {s['image_size']}×{s['image_size']} px, "
        f"K = {s['levels']} levels per colour channel; only the input encoding differs.",
        "",
    ]
    for ds, d in result["datasets"].items():
        cfg = s.get(ds, {})
        if d.get("protocol") == "kfold":
            lines.append(f"- **{ds}**: `{cfg.get('data_dir')}`, {d['pool']} images ({', '.join(d['class_names'])}), "
                         f"{d['folds']}-fold cross-validation with fixed stratified folds of {d['fold_sizes']} images "
                         f"({d['split']}); fold f trains on the other folds with seed f for "
                         f"{d['epochs']} epochs and is validated on fold f"
                         + (", starting from scratch." if d.get("init", "scratch") == "scratch" else
                            f", starting from the finished {d['init']} run of the same encoding (seed f mod the "
                            f"number of {d['init']} seeds; the classifier starts fresh)."))
        else:
            lines.append(f"- **{ds}**: `{cfg.get('data_dir')}`, {d['num_train']:,} train / {d['num_val']:,} validation "
                         f"images ({len(d['class_names'])} classes, split: {d['split']}), {d['epochs']} epochs, "
                         f"replicates {', '.join(d['replicates'])}.")
        if d.get("skipped"):
            lines[-1] += f" {d['skipped']} unreadable file(s) skipped."
    lines += ["", "Tone conditions (applied to the validation images, `larq_glt.data.tone`): "
              + "; ".join(f"**{c['label']}**: {c['description']}" for c in conds) + ".", ""]

    # accuracy
    lines += ["### Accuracy per encoding", ""]
    datasets = [ds for ds in result["datasets"] if ds in summary]
    header = ["encoding"]
    for ds in datasets:
        header += [f"{ds} mean ± std", f"{ds} min–max", f"{ds} n"]
    rows = []
    for e in encs:
        row = [f"`{e}`"]
        for ds in datasets:
            st = summary[ds].get(e, {}).get("clean", {})
            row += [_mean_std(st), _range(st), str(st.get("n", 0))]
        rows.append(row)
    lines += _table(header, rows)
    for ds in datasets:
        bits = {}
        for c in cells:
            if c["dataset"] == ds and c.get("weight_bits"):
                bits.setdefault(c["encoding"], c["weight_bits"])
        if bits:
            lines += ["", f"Weight bits per model on {ds} (as `larq_glt.summary` counts them: binary weights 1 bit, float weights 32): "
                      + ", ".join(f"{e} {b:,}" for e, b in bits.items()) + "."]
    if figs.get("accuracy"):
        lines += ["", f"![accuracy per encoding]({figs['accuracy']})"]
    lines.append("")

    # tone tables
    for ds in datasets:
        lines += [f"### Tone robustness: {ds}", "",
                  f"Validation accuracy, mean ± std over {_unit(result, ds)}.", ""]
        rows = []
        for e in encs:
            if e not in summary[ds]:
                continue
            rows.append([f"`{e}`"] + [_mean_std(summary[ds][e][c["key"]]) for c in conds])
        lines += _table(["encoding"] + [c["label"] for c in conds], rows)
        if figs.get("tone", {}).get(ds):
            lines += ["", f"![tone robustness on {ds}]({figs['tone'][ds]})"]
        lines.append("")

    # transfer curves
    glt_cells = [c for c in cells if c["encoding"].startswith("glt") and c.get("thresholds")]
    if glt_cells:
        lines += ["### Learned GLT transfer curves", "",
                  "Code value (planes on) against pixel value per colour channel, against the uniform thermometer "
                  "GLT started from. Integer thresholds of each GLT run:", ""]
        rows = []
        for c in glt_cells:
            for ch, t in zip("RGB", c["thresholds"]):
                rows.append([c["dataset"], c["encoding"], c["replicate_label"], ch, " ".join(str(v) for v in t)])
        lines += _table(["dataset", "encoding", "run", "channel", "thresholds"], rows, align="lllll")
        lines.append("")
        for ds, rel in figs.get("transfer", {}).items():
            lines.append(f"![GLT transfer curves on {ds}]({rel})")
        for enc, by_ds in figs.get("transfer_variants", {}).items():
            for ds, rel in by_ds.items():
                lines.append(f"![{enc} transfer curves on {ds}]({rel})")
        lines.append("")

    # reading
    lines += ["### What the numbers say", ""]
    lines += [f"- {b}" for b in reading(result)]
    lines += ["", "Caveats:", ""] + [f"- {c}" for c in caveats(result)]
    notes = folder / "encodings_notes.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    lines.append("")

    # per run
    lines += ["### Every run", ""]
    header = ["dataset", "encoding", "run"] + [c["label"] for c in conds] + ["train wall s", "train CPU s"]
    rows = [[c["dataset"], f"`{c['encoding']}`", c["replicate_label"]]
            + [_acc(c["tone"].get(k["key"])) for k in conds]
            + [_secs(c.get("train_wall_s")), _secs(c.get("train_cpu_s"))] for c in cells]
    lines += _table(header, rows, align="lll" + "r" * (len(conds) + 2))
    lines.append("")

    # time
    lines += ["### Time", ""]
    rows = []
    for ds in result["datasets"]:
        cs = [c for c in cells if c["dataset"] == ds]
        t = result.get("timing", {}).get(ds, {})
        cpu = [c["train_cpu_s"] for c in cs if c.get("train_cpu_s") is not None]
        wall = sum(c.get("train_wall_s") or 0 for c in cs)
        rows.append([ds, str(len(cs)), _secs(wall), _secs(wall / len(cs)) if cs else "–",
                     _secs(sum(cpu)) + ("" if len(cpu) == len(cs) else f" ({len(cpu)} cells)"),
                     _secs(sum(c.get("tone_cpu_s") or 0 for c in cs)), _secs(t.get("load_cpu_s"))])
    lines += _table(["dataset", "cells", "training wall s (sum of epochs)", "per cell", "training CPU s",
                     "tone evaluation CPU s", "data loading CPU s"], rows)
    tm = result.get("timing", {})
    lines += ["",
              f"Last invocation: {_secs(tm.get('invocation_wall_s'))} s wall, {_secs(tm.get('invocation_cpu_s'))} s "
              f"CPU (cells finished by earlier invocations are reused, not re-timed). CPU time is the process's user + "
              f"system time over all its threads (up to 2× wall on this {result['machine']['cpus']}-core machine); "
              "wall times include slow-down from other jobs sharing the machine. Training CPU is that of the "
              "invocation that finished the cell (an interrupted part is not counted).", ""]

    # reproduce
    lines += ["### Reproduce", "", "```", result["command"],
              ".venv/bin/python bench/results_page.py   # re-render this page from the JSON files",
              ".venv/bin/python bench/encodings.py --smoke   # a few-minute end-to-end check (temp dir)", "```", ""]
    return "\n".join(lines)


# -- the page ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Section:
    title: str
    json_name: str
    markdown_name: str | None = None  # the page the benchmark's own script writes
    render: Callable[[dict, Path], str] | None = None


# Paths are relative to the results folder (benchmarks/).
SECTIONS = (
    Section("Input encodings on real images: GLT against the baselines", "encodings.json", render=render_encodings),
    Section("GLT on a linear sensor's ADC codes", "sensor.json", "sensor.md"),
    Section("GLT threshold dynamics on a generated linear-sensor task", "glt_dynamics.json", "glt_dynamics.md"),
    Section("Shipped person-detection model", "../models/person_detect/card.json",
            "../models/person_detect/MODEL_CARD.md"),
    Section("Anchors: published person detectors and larq-glt on the same vww96 images", "anchors.json",
            "anchors.md"),
    Section("Person detectors distilled from published teachers", "person_distil.json", "person_distil.md"),
    Section("Person detector grown by a shortcut block, against continuing it", "person_grow.json",
            "person_grow.md"),
    Section("Grown and continued person detectors on the microcontroller", "grow_probe.json", "grow_probe.md"),
    Section("Person detector continued with blended images (function matching), against continuing it",
            "person_fm20.json", "person_fm20.md"),
    Section("Person detector continued 60 epochs with its GLT thresholds fixed, against the shipped one",
            "person_patient.json", "person_patient.md"),
    Section("Person detector with binary shortcut blocks (probe)", "shortcut_probe.json", "shortcut_probe.md"),
    Section("Person detector distilled from two teachers (probe)", "ensemble_probe.json", "ensemble_probe.md"),
    Section("Fit or domain: where the distilled person detector loses accuracy", "fit_gap.json", "fit_gap.md"),
    Section("Fit on 1,000 pool images: the same topology memorises a small set (probe)", "memorize_probe.json",
            "memorize_probe.md"),
    Section("Float twins: what three topologies fit without binarization (probe)", "float_twin_probe.json",
            "float_twin_probe.md"),
    Section("Float twins: no pool after the stem, or 16 GLT levels (probe)", "input_probe.json",
            "input_probe.md"),
    Section("Person detector with its groups' words shuffled between blocks (probe)", "shuffle_probe.json",
            "shuffle_probe.md"),
    Section("GLT thresholds' gradient from 8 images of each batch (probe, two seeds)", "sampled_gradient_probe.json",
            "sampled_gradient_probe.md"),
    Section("Person detector with a FitNets hint from the teacher's feature maps (probe)", "hint_probe.json",
            "hint_probe.md"),
    Section("The shipped detector continued with a hint from the teacher's 6×6 map", "person_hint.json",
            "person_hint.md"),
    Section("Held-out agreement against vww96 accuracy, over every scored detector", "agreement_transfer.json",
            "agreement_transfer.md"),
    Section("Person detector trained in two stages, float then binary (probe)", "two_stage_probe.json",
            "two_stage_probe.md"),
    Section("Person detector adapted to VWW, cross-validated", "person_adapt.json", "person_adapt.md"),
    Section("Person detector adapted to VWW from the shipped model, cross-validated", "person_adapt_shipped.json",
            "person_adapt_shipped.md"),
    Section("Person detector: fine-tuning recipe chosen by cross-validation", "person_detector_cv.json",
            "person_detector_cv.md"),
    Section("Person detector: held-out accuracy of the cross-validation models", "person_detector_cv.json",
            "person_detector_heldout.md"),
    Section("Block pruning and knowledge distillation", "prune_kd.json", "PRUNE_KD.md"),
    Section("Microcontroller cost", "mcu_cost.json", "mcu_cost.md"),
    Section("Kernel cost on Cortex-M7 (QEMU)", "kernel_cost.json", "kernel_cost.md"),
    Section("TensorFlow Lite Micro reference cost", "tflm_cost.json", "tflm_cost.md"),
    Section("Training throughput", "train_throughput.json", "train_throughput.md"),
)

_HEADING = re.compile(r"^(#{1,4}) ")


def _demote(markdown: str, levels: int = 2) -> str:
    """Push a page's headings under a section title (code blocks untouched)."""
    out, fence = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fence = not fence
        if not fence and _HEADING.match(line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out)


def _section_body(section: Section, folder: Path) -> str | None:
    js, md = folder / section.json_name, folder / section.markdown_name if section.markdown_name else None
    if section.render and js.exists():
        return section.render(json.loads(js.read_text()), folder)
    if md is not None and md.exists():
        return (_demote(md.read_text().strip())
                + f"\n\n(Included from [{section.markdown_name}]({section.markdown_name}), written with "
                f"[{section.json_name}]({section.json_name}).)")
    if js.exists():
        data = json.loads(js.read_text())
        text = f"Results: [{section.json_name}]({section.json_name}) (no renderer for this file yet)."
        if isinstance(data, dict) and data.get("command"):
            text += f"\n\n```\n{data['command']}\n```"
        return text
    return None


def render(folder) -> str:
    folder = Path(folder)
    parts = []
    for section in SECTIONS:
        body = _section_body(section, folder)
        if body is not None:
            parts.append((section, body))
    lines = ["# Benchmark results", "",
             "Generated by `bench/results_page.py` from the benchmark files in this folder; re-running a benchmark "
             "re-renders it, so do not edit it by hand.", ""]
    if not parts:
        lines.append("No benchmark results yet.")
    for section, _ in parts:
        anchor = re.sub(r"[^a-z0-9 -]", "", section.title.lower()).replace(" ", "-")
        lines.append(f"- [{section.title}](#{anchor})")
    for section, body in parts:
        lines += ["", f"## {section.title}", "", body.rstrip()]
    return "\n".join(lines) + "\n"


def write(folder) -> Path:
    from larq_glt import atomic

    path = Path(folder) / PAGE
    atomic.write_text(path, render(folder))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=str(ROOT / "benchmarks"), help="folder with the benchmark JSON files")
    args = p.parse_args(argv)
    if not Path(args.dir).is_dir():
        print(f"error: {args.dir} is not a folder", file=sys.stderr)
        return 2
    print(write(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
