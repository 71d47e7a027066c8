"""Cost of one inference under TensorFlow Lite Micro vs larq-glt's generated runtime,
on the same model and board (QEMU mps2-an500, Cortex-M7, -icount shift=0: the
firmware's SysTick count is instructions, in steps of 40).

Both firmwares are the same harness with the UART frame source (the frame sits in
a RAM buffer, as a camera frame would; no frames in flash) and per-op profiling;
the sample photos are streamed and each runtime's logits must agree bit for bit.
Reported per runtime:

- instructions per inference (mean over frames) and per op;
- flash: the whole firmware (code + weights / flatbuffer + libc);
- RAM: the arena actually used (generated: the planned arena; TFLM: its
  ``arena_used_bytes()`` from the boot line) + the measured stack high-water
  mark + the harness's input frame buffer; and the ELF's static RAM.

    python bench/tflm_cost.py --tflm-dir /path/to/tflite-micro          # default model
    python bench/tflm_cost.py --tflm-dir ... --model export/model.tflite --out /tmp/tflm_cost

Writes <out>.json and <out>.md (default benchmarks/tflm_cost.{json,md}). The
recorded command names the TFLM tree ``<tflite-micro>`` (it is the user's own
checkout, see README: TensorFlow Lite Micro); the JSON's ``tflm_library``
gives its commit when the tree is a git checkout. ``compare()`` and
``command_line()`` are what bench/mcu_cost.py calls.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np

from deploy import emulators
from deploy.firmware import image as firmware
from deploy.emulators import protocol
from deploy.firmware import samples
from deploy.tflm import target as tflm
from larq_glt import atomic


#: How the recorded commands name the user's TFLM tree (its path is of one machine).
TREE_PLACEHOLDER = "<tflite-micro>"


def _shown(path) -> str:
    """A path inside the project relative to it (results stay machine-independent)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def command_line(script: str, argv) -> str:
    """``python <script> <argv>`` as recorded in a result, ``--tflm-dir`` shown as TREE_PLACEHOLDER."""
    args, after_flag = [], False
    for a in argv:
        if after_flag:
            a, after_flag = TREE_PLACEHOLDER, False
        elif a == "--tflm-dir":
            after_flag = True
        elif a.startswith("--tflm-dir="):
            a = f"--tflm-dir={TREE_PLACEHOLDER}"
        args.append(a)
    return " ".join(["python", script, *args]).strip()


def tree_commit(tree) -> str | None:
    """The git commit of the TFLM tree, or None if it is not a git checkout."""
    try:
        proc = subprocess.run(["git", "-C", str(tree), "rev-parse", "--verify", "-q", "HEAD"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    top = subprocess.run(["git", "-C", str(tree), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    # a tree inside another repository (e.g. under this project) is not a TFLM checkout of its own
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != Path(tree).resolve():
        return None
    return proc.stdout.strip()


def _stream(board, elf, frames, timeout):
    """Boot fields, results, per-op counts and the stats of streaming `frames`."""
    with emulators.open_session(board, elf, timeout=timeout * (len(frames) + 2)) as session:
        boot = protocol.parse_boot(session.wait_for(r"^larq-glt boot: .*", timeout=timeout)[0])
        client = protocol.FrameClient(session, timeout=timeout)
        results, per_frame = client.stream_profiled([f.tobytes() for f in frames])
        ops = [list(o.items()) for o in per_frame]
        stats = protocol.parse_stats(client.command("stats", "stats:"))
    return boot, results, ops, stats


def _per_op(ops):
    """[(op name, mean instructions)] in execution order."""
    return [{"op": name, "instructions_mean": float(np.mean([frame[i][1] for frame in ops]))}
            for i, (name, _) in enumerate(ops[0])]


def _summary(runtime, build_size, arena, boot, results, ops, stats, input_bytes, extra):
    total = [r.cycles for r in results]
    stack = int(stats.get("stack_used", 0))
    return {
        "runtime": runtime,
        "instructions_per_inference": {"mean": float(np.mean(total)), "min": int(min(total)), "max": int(max(total))},
        "per_op": _per_op(ops),
        "flash_bytes": build_size["flash_bytes"],
        "elf_ram_bytes": build_size["ram_bytes"],
        "arena_bytes": int(arena),
        "stack_high_water_bytes": stack,
        "input_frame_bytes": input_bytes,
        "peak_ram_bytes": int(arena) + stack + input_bytes,
        "boot": boot.fields if boot else {},
        **extra,
    }


def compare(model=None, board="mps2-an500", tflm_dir=None, frames=None, out_dir=None, timeout=120.0,
            build_type=None) -> dict:
    """Builds and streams both runtimes; their logits must be bit-identical."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(out_dir or tmp)
        gen_build = firmware.build(board, model=model, out=work / "generated", frame_source="uart", profile=True)
        gen = gen_build.generated
        if frames is None:
            frames, _, _ = samples.load(gen.input_shape)
        t_build = tflm.build(board, model=model, out=work / "tflm", tflm_dir=tflm_dir, frame_source="uart",
                             profile=True, frames=frames, build_type=build_type)
        g = _stream(board, gen_build.elf, frames, timeout)
        t = _stream(board, t_build.elf, frames, timeout)
        release = None
        if t_build.library.build_type != "release":
            try:  # the smallest TFLM build (no error strings) for the flash figure, if the tree has it
                rel = tflm.build(board, model=model, out=work / "tflm-release", tflm_dir=tflm_dir,
                                 frame_source="uart", frames=frames, build_type="release")
                release = {"flash_bytes": rel.size["flash_bytes"], "elf_ram_bytes": rel.size["ram_bytes"]}
            except tflm.TflmError:
                pass
    g_bits = [r.logit_bits for r in g[1]]
    t_bits = [r.logit_bits for r in t[1]]
    if g_bits != t_bits:
        raise RuntimeError(f"TFLM and the generated runtime disagree: {t_bits} vs {g_bits}")
    generated = _summary("generated", gen_build.size, gen.arena_bytes, *g, gen.input_bytes,
                         {"weight_bytes": gen.weight_bytes})
    lib = t_build.library
    tflm_res = _summary("tflm", t_build.size, int(t[0].fields["arena"]), *t, gen.input_bytes,
                        {"flatbuffer_bytes": t_build.tflm_model_bytes, "arena_capacity_bytes": t_build.arena_bytes,
                         "resolver": [r["name"] for r in t_build.resolver], "notes": t_build.notes,
                         "tflm_library": {"target_arch": lib.target_arch, "build_type": lib.build_type,
                                          "kernels": lib.kernels or "reference",
                                          "commit": tree_commit(lib.tree)}})
    if release:
        tflm_res["release_build"] = release
    ratio = tflm_res["instructions_per_inference"]["mean"] / generated["instructions_per_inference"]["mean"]
    return {
        "board": board,
        "model": _shown(gen_build.model_path),
        "frames": len(frames),
        "logits_identical": True,
        "generated": generated,
        "tflm": tflm_res,
        "tflm_over_generated": {
            "instructions": ratio,
            "flash_bytes": tflm_res["flash_bytes"] - generated["flash_bytes"],
            "peak_ram_bytes": tflm_res["peak_ram_bytes"] - generated["peak_ram_bytes"],
        },
    }


def render(res: dict) -> str:
    g, t = res["generated"], res["tflm"]
    rows = [
        ("instructions per inference", f"{g['instructions_per_inference']['mean']:,.0f}",
         f"{t['instructions_per_inference']['mean']:,.0f}"),
        ("flash (whole firmware)", f"{g['flash_bytes']:,}", f"{t['flash_bytes']:,}"),
        ("arena used", f"{g['arena_bytes']:,}", f"{t['arena_bytes']:,}"),
        ("stack high-water", f"{g['stack_high_water_bytes']:,}", f"{t['stack_high_water_bytes']:,}"),
        ("peak RAM (arena + stack + frame)", f"{g['peak_ram_bytes']:,}", f"{t['peak_ram_bytes']:,}"),
    ]
    lines = [f"{res['model']} on {res['board']}, {res['frames']} frames, logits identical: {res['logits_identical']}",
             f"{'':34} {'generated':>12} {'TFLM':>12}"]
    lines += [f"{a:34} {b:>12} {c:>12}" for a, b, c in rows]
    if "release_build" in t:
        lines.append(f"{'flash, TFLM BUILD_TYPE=release':34} {'':>12} {t['release_build']['flash_bytes']:>12,}")
    lines.append(f"TFLM library: {t['tflm_library']}")
    return "\n".join(lines)


def render_markdown(res: dict) -> str:
    """The page bench/results_page.py includes (``<out>.md``)."""
    g, t = res["generated"], res["tflm"]
    lib = t["tflm_library"]
    gi, ti = g["instructions_per_inference"], t["instructions_per_inference"]
    flash_t = f"{t['flash_bytes']:,} B"
    if "release_build" in t:
        flash_t += f" ({t['release_build']['flash_bytes']:,} B with `BUILD_TYPE=release`)"
    lines = [
        f"# TensorFlow Lite Micro vs the generated runtime ({res['board']}, -icount shift=0)",
        "",
        f"Command: `{res['command']}`  ",
        f"Model: `{res['model']}`; {res['frames']} sample frames streamed over the UART; "
        f"logits identical: {'yes' if res['logits_identical'] else 'no'}.  ",
        f"TFLM library: `TARGET_ARCH={lib['target_arch']} BUILD_TYPE={lib['build_type']}`, "
        f"{lib['kernels']} kernels" + (f", tflite-micro commit `{lib['commit']}`" if lib.get("commit") else "")
        + ".",
    ]
    if res.get("model_note"):
        lines += ["", f"Model note: {res['model_note']}"]
    lines += [
        "",
        "| | generated runtime | TFLM + larq-glt kernels |",
        "| --- | ---: | ---: |",
        f"| instructions per inference | {gi['mean']:,.0f} (min {gi['min']:,}, max {gi['max']:,}) | "
        f"{ti['mean']:,.0f} (min {ti['min']:,}, max {ti['max']:,}) |",
        f"| flash (whole firmware, frames over UART) | {g['flash_bytes']:,} B | {flash_t} |",
        f"| arena | {g['arena_bytes']:,} B | {t['arena_bytes']:,} B (`arena_used_bytes()`) |",
        f"| stack high-water | {g['stack_high_water_bytes']:,} B | {t['stack_high_water_bytes']:,} B |",
        f"| peak RAM (arena + stack + input frame) | {g['peak_ram_bytes']:,} B | {t['peak_ram_bytes']:,} B |",
        "",
        f"TFLM / generated instructions: {res['tflm_over_generated']['instructions']:.3f}. "
        f"TFLM flatbuffer: {t['flatbuffer_bytes']:,} B; resolver: {', '.join(t['resolver'])}.",
    ]
    lines += [f"- {n}" for n in t.get("notes", [])]
    lines += ["", "## Per op (instructions, mean over the frames)", ""]
    if len(g["per_op"]) == len(t["per_op"]):
        lines += ["| generated op | instructions | TFLM op | instructions |", "| --- | ---: | --- | ---: |"]
        lines += [f"| {a['op']} | {a['instructions_mean']:,.0f} | {b['op']} | {b['instructions_mean']:,.0f} |"
                  for a, b in zip(g["per_op"], t["per_op"])]
    else:
        for name, r in (("generated", g), ("TFLM", t)):
            lines += [f"| {name} op | instructions |", "| --- | ---: |"]
            lines += [f"| {o['op']} | {o['instructions_mean']:,.0f} |" for o in r["per_op"]] + [""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tflm-dir", required=True, help="tflite-micro tree with libtensorflow-microlite.a built")
    p.add_argument("--model", help="a .tflite (default: the shipped person detector)")
    p.add_argument("--board", default="mps2-an500")
    p.add_argument("--build-type", choices=tflm.BUILD_TYPES,
                   help="which TFLM library build (default: release_with_logs if built; `release` has no "
                        "error strings and no per-op profiling hook)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "tflm_cost"), help="output path without extension")
    p.add_argument("--model-note", help="what the model is, recorded in the JSON (e.g. for a --model outside the repo)")
    args = p.parse_args(argv)
    try:
        res = compare(args.model, args.board, args.tflm_dir, build_type=args.build_type)
    except firmware.FirmwareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.model_note:
        res["model_note"] = args.model_note
    res["command"] = command_line("bench/tflm_cost.py", argv if argv is not None else sys.argv[1:])
    atomic.write_json(args.out + ".json", res)
    atomic.write_text(args.out + ".md", render_markdown(res))
    print(render(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
