"""Capacity sweep: person-detector topologies trained the new way, under the deployment budgets.

Each candidate is a run directory trained with ``--dataset unlabelled`` (an
image pool labelled by the teachers; see ``bench/person_distil.py``). For each
one, in this order:

1. its person-logit offset is chosen on its held-out pool images and their
   2×2 scenes, exactly as ``bench/person_distil.py`` chooses it (never on vww96),
   and folded into the classifier's batch-norm bias;
2. it is converted by LCE (``larq_glt.export``, verified against Keras) into a
   temporary directory: weight bits and ``all convs binary`` are read off the
   flatbuffer;
3. its firmware runs in QEMU ``mps2-an500`` (``bench/mcu_cost.measure``):
   instructions per inference and peak RAM;
4. only then the flatbuffer is scored on the 500 ``vww96`` images by the loader
   of ``bench/anchors.py`` (LCE interpreter, 95% Wilson interval).

A run trained with ``precision: float`` (a *float twin*: the same topology
with full-precision convolutions) skips steps 2 and 3: it is scored as the
Keras model and marked not deployable. Beside a binary run of the same topology
and recipe it tells what binarization costs and what the topology could fit.

Nothing is chosen or shipped here; the table describes where accuracy and cost
go with width, blocks, stem and pruning. Rows compare topologies only where
their recipe and epochs are the same (the table states both).

    python bench/capacity_sweep.py runs/pd-w1-e16 runs/pd-w2-e16 runs/pd-w3-prune

writes ``benchmarks/capacity_sweep.{json,md}`` and shows the table in
``benchmarks/anchors.md`` (re-rendered from ``benchmarks/anchors.json``, which
it needs). A run that is not finished, or not trained on the pool, exits 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Issue 13's budgets for a shipped person detector.
BUDGETS = {"weight_bits": 1_000_000, "instructions": 4_800_000, "peak_ram_bytes": 65_536}


class SweepError(Exception):
    pass


def topology(config: dict) -> dict:
    """What distinguishes one compact topology from another, from a ``ModelConfig`` dict:
    filter counts as built (the width multiplier applied; a pruned model's config holds them at width 1)."""
    from larq_glt.models import scaled_filters

    width = config.get("width", 1.0)
    stem = f"{config['stem_kernel']}×{config['stem_kernel']}/{config['stem_stride']}"
    if config.get("stem_pool"):
        stem += " + pool"
    return {"width": width, "stem": stem, "stem_filters": scaled_filters(config["stem_filters"], width),
            "blocks": len(config["blocks"]), "filters": [scaled_filters(b["filters"], width) for b in config["blocks"]],
            "groups": [b["groups"] for b in config["blocks"]],
            "pools": [i + 1 for i, b in enumerate(config["blocks"]) if b.get("pool", True)],
            "shortcuts": [i + 1 for i, b in enumerate(config["blocks"]) if b.get("shortcut", False)],
            "shuffles": [i + 1 for i, b in enumerate(config["blocks"]) if b.get("shuffle", False)],
            "input": _input_text(config)}


def _input_text(config: dict) -> str:
    """The input coding: a thermometer's level count matters as much as a filter count."""
    encoding = config.get("encoding", "glt")
    if encoding in ("glt", "thermo"):
        text = f"{encoding.upper()} {config.get('levels', 8)} levels"
        if config.get("glt_grad_images"):  # a training detail, named because rows are compared on it
            text += f" (thresholds' gradient from {config['glt_grad_images']} images per batch)"
        return text
    return encoding.upper()


def within_budgets(row: dict) -> list[str]:
    """The budgets ``row`` breaks (empty: deployable as issue 13 defines it)."""
    if row.get("precision") == "float":
        return ["not deployable: full-precision convolutions (the float twin of a topology)"]
    broken = [f"{k.replace('_', ' ')} {row[k]:,.0f} > {v:,}" for k, v in BUDGETS.items() if row[k] > v]
    if not row["all_convs_binary"]:
        broken.append("a convolution is not LceBconv2d")
    return broken


def run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not (run_dir / "model.keras").is_file() or not path.is_file():
        raise SweepError(f"{run_dir} holds no finished run (model.keras and config.json)")
    config = json.loads(path.read_text())
    if config.get("dataset") != "unlabelled":
        raise SweepError(f"{run_dir} was not trained with --dataset unlabelled")
    if config.get("model_config", {}).get("precision") == "float" and config.get("final_model_config"):
        raise SweepError(f"{run_dir} is a pruned float twin: a float twin stands for the topology as trained, unpruned")
    return config


def sweep_row(run_dir: Path, board: str, images, labels) -> dict:
    from bench import anchors, mcu_cost, person_distil
    from larq_glt import export, report, runs

    config = run_config(run_dir)
    scored = person_distil.score_candidate(run_dir)  # held-out agreement and the offset
    names = list(config["class_names"])
    positive = names.index("person")
    model = person_distil.with_offset(runs.load_model(run_dir), scored["person_offset"], positive)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if config["model_config"].get("precision") == "float":
        return _float_row(run_dir, config, scored, model, metrics, images, labels)
    with tempfile.TemporaryDirectory() as tmp:
        result = export.export_keras(model, Path(tmp) / "export", class_names=names,
                                     extra_meta={"run_dir": str(run_dir), "person_offset": scored["person_offset"]})
        tflite = result.tflite
        rep = report.model_report(report.read_flatbuffer(tflite.read_bytes(), str(tflite)),
                                  flatbuffer_bytes=tflite.stat().st_size)
        cost = mcu_cost.measure(tflite, board=board, op_repeat=1)
        vww = anchors.evaluate(anchors.tflite_runner(tflite), images, labels)
    row = {
        "run": str(run_dir),
        "topology": topology(config.get("final_model_config") or config["model_config"]),
        "trained_as": topology(config["model_config"]) if config.get("final_model_config") else None,
        "recipe": scored["recipe"], "epochs_trained": len(metrics["epochs"]),
        "flatbuffer_bytes": int(rep["flatbuffer_bytes"]), "weight_bits": int(rep["flatbuffer_weight_bits"]),
        "binary_macs": int(rep["binary_macs"]), "all_convs_binary": bool(rep["all_convs_binary"]),
        "instructions": float(cost["instructions_per_inference"]["mean"]),
        "instructions_range": [cost["instructions_per_inference"]["min"], cost["instructions_per_inference"]["max"]],
        "peak_ram_bytes": int(cost["peak_ram_bytes"]), "board": board,
        "person_offset": scored["person_offset"], "heldout_images": scored["heldout_images"],
        "balanced_agreement_calibrated": scored["balanced_agreement_calibrated"],
        "vww96": {k: vww[k] for k in ("accuracy", "correct", "images", "ci95", "recall")},
    }
    row["over_budget"] = within_budgets(row)
    return row


def _float_row(run_dir: Path, config: dict, scored: dict, model, metrics: dict, images, labels) -> dict:
    """A float twin (``precision: float``): what the topology can fit when nothing
    is binarized. No flatbuffer, no firmware; scored as the Keras model on the same images."""
    from bench import anchors
    from larq_glt import summary

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        vww = anchors.evaluate(anchors.keras_runner(path), images, labels)
    cost = summary.model_cost(model)["total"]
    row = {
        "run": str(run_dir), "precision": "float", "topology": topology(config["model_config"]), "trained_as": None,
        "recipe": scored["recipe"], "epochs_trained": len(metrics["epochs"]),
        "flatbuffer_bytes": None, "weight_bits": None, "binary_macs": int(cost["binary_macs"]),
        "other_macs": int(cost["other_macs"]), "all_convs_binary": False,
        "instructions": None, "instructions_range": None, "peak_ram_bytes": None, "board": None,
        "person_offset": scored["person_offset"], "heldout_images": scored["heldout_images"],
        "balanced_agreement_calibrated": scored["balanced_agreement_calibrated"],
        "vww96": {k: vww[k] for k in ("accuracy", "correct", "images", "ci95", "recall")},
    }
    row["over_budget"] = within_budgets(row)
    return row


def _number(value, fmt: str = ",.0f") -> str:
    return "—" if value is None else format(value, fmt)


def _filters_text(t: dict) -> str:
    return f"{t['stem_filters']} + {'/'.join(map(str, t['filters']))}"


def _topology_text(t: dict) -> str:
    text = (f"{t['input']}, " if "input" in t else "") + (
            f"stem {t['stem']}, {t['blocks']} blocks (groups {'/'.join(map(str, t['groups']))}); filters "
            f"{_filters_text(t)} (width {t['width']:g})")
    if "pools" in t:  # rows measured before these keys existed lack them
        text += f"; pools after block {'/'.join(map(str, t['pools'])) or 'none'}"
    if t.get("shortcuts"):
        text += f"; shortcuts in block {'/'.join(map(str, t['shortcuts']))}"
    if t.get("shuffles"):
        text += f"; words shuffled after block {'/'.join(map(str, t['shuffles']))}"
    return text


def render(result: dict) -> str:
    from bench.person_distil import _recipe

    lines = [
        "# Capacity sweep: person-detector topologies under the deployment budgets",
        "",
        f"Command: `{result['command']}`  ",
        "Each run's person-logit offset is chosen on its held-out pool images and their 2×2 scenes (as "
        "`bench/person_distil.py` does), its flatbuffer measured in QEMU `mps2-an500` (`bench/mcu_cost.measure`), "
        "then scored once on the 500 `vww96` images by the loader of `bench/anchors.py` (a float twin, which has "
        "no flatbuffer, as its Keras model). Nothing is chosen here. "
        f"Budgets: ≤ {BUDGETS['weight_bits']:,} weight bits, every convolution `LceBconv2d`, ≤ "
        f"{BUDGETS['instructions']:,} instructions, peak RAM ≤ {BUDGETS['peak_ram_bytes']:,} B.",
        "",
        "| run | topology (filters: stem + blocks) | recipe | epochs | weight bits | binary MACs | instructions (mps2-an500) | peak RAM B "
        "| held-out balanced agreement (calibrated) | vww96 [95% Wilson] | person / non-person recall | budgets |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in result["rows"]:
        v = r["vww96"]
        if r.get("trained_as"):
            t = r["trained_as"]
            topo = (f"stem {t['stem']}, {t['blocks']} blocks (groups {'/'.join(map(str, t['groups']))}); filters "
                    f"{_filters_text(t)} (width {t['width']:g}), pruned to {_filters_text(r['topology'])}")
        else:
            topo = _topology_text(r["topology"])
        if r.get("precision") == "float":
            topo += ", **float twin**"
        float_macs = f" ({r['other_macs']:,} float)" if r.get("other_macs") else ""
        lines.append(
            f"| `{r['run']}` | {topo} | {_recipe(r['recipe'])} | {r['epochs_trained']} | {_number(r['weight_bits'])} | "
            f"{r['binary_macs']:,}{float_macs} | {_number(r['instructions'])} | {_number(r['peak_ram_bytes'])} | "
            f"{100 * r['balanced_agreement_calibrated']:.1f}% | {100 * v['accuracy']:.1f}% "
            f"[{100 * v['ci95'][0]:.1f}, {100 * v['ci95'][1]:.1f}] | {100 * v['recall']['person']:.1f}% / "
            f"{100 * v['recall']['non_person']:.1f}% | {'within' if not r['over_budget'] else '; '.join(r['over_budget'])} |")
    lines += ["", "Epochs count every epoch of the run itself (dense, pruning ramp, fine-tuning); a run started "
                  "from another run's weights lists it in its recipe. vww96 intervals of ±4 points cannot separate "
                  "rows a few points apart; the held-out agreement (1,339 images and their scenes) is the finer "
                  "yardstick.", ""]
    if any(r.get("precision") == "float" for r in result["rows"]):
        lines += ["A **float twin** is a topology trained with full-precision convolutions (ReLU in place of the "
                  "input signs, `precision: float`): it cannot be deployed, and shows what the topology fits when "
                  "nothing is binarized (scored as the Keras model, on the same images).", ""]
    lines += [f"Wall time: {result['seconds']:,.0f} s (2-core machine shared with training).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", help="run directories trained with --dataset unlabelled")
    p.add_argument("--board", default="mps2-an500")
    p.add_argument("--images", default=None, help="folder with person/ and non_person/ (default: ../shared/data/vww96)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "capacity_sweep"), help="output path without extension")
    args = p.parse_args(argv)
    out = Path(args.out)
    anchors_json = out.parent / "anchors.json"
    t0 = time.perf_counter()
    import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)
    from bench import anchors
    from larq_glt import atomic

    try:
        for r in args.runs:
            run_config(Path(r))
        if not anchors_json.is_file():
            raise SweepError(f"{anchors_json} is missing: run bench/anchors.py first (the sweep is shown in "
                             "its page)")
        images, labels, _ = anchors.load_images(args.images or anchors.IMAGES)
    except (SweepError, anchors.AnchorError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    for r in args.runs:
        print(f"{r} ...", flush=True)
        rows.append(sweep_row(Path(r), args.board, images, labels))
    shown = argv if argv is not None else sys.argv[1:]
    result = {"command": "python bench/capacity_sweep.py " + " ".join(shown), "budgets": BUDGETS, "rows": rows,
              "seconds": round(time.perf_counter() - t0, 1)}
    atomic.write_json(str(out) + ".json", result)
    text = render(result)
    atomic.write_text(str(out) + ".md", text)
    anchors.write_page(json.loads(anchors_json.read_text()), anchors_json.with_suffix(".md"))
    if (out.parent / "RESULTS.md").exists():  # the results page includes the anchors page
        from bench import results_page

        results_page.write(out.parent)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
