"""Cost of one inference on a Cortex-M7: instructions, MACs per instruction, flash, RAM.

Builds the model (default: the shipped person detector) for QEMU's mps2-an500
with per-op profiling and the UART frame source (the frame sits in a RAM
buffer, as a camera frame would), streams the sample photos, and reads the
firmware's own counts: with ``-icount shift=0`` one instruction is one
nanosecond of virtual time, so the 25 MHz SysTick counter counts instructions
(in steps of 40). Reports, against the MLPerf Tiny int8 VWW reference
(MobileNetV1 0.25, 96×96, TFLM + CMSIS-NN on the same QEMU board: 24.0 M
instructions, 100,708-byte arena, 333,288-byte model):

- instructions per inference (mean over frames, and per op);
- binary MACs per instruction for each binary convolution;
- flash bytes (ELF), peak RAM = planned arena + measured stack high-water mark
  + the 96×96×3 input frame buffer.

    python bench/mcu_cost.py                     # writes benchmarks/mcu_cost.{json,md}
    python bench/mcu_cost.py --model runs/x/export/model.tflite --out /tmp/cost
    python bench/mcu_cost.py --tflm-dir ../tflite-micro   # adds the TFLM runtime beside the generated one
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np

from deploy import emulators
from deploy.firmware import image as firmware
from deploy.emulators import protocol
from deploy.firmware import samples
from larq_glt import atomic

MLPERF_REFERENCE = {
    "model": "MLPerf Tiny VWW int8 MobileNetV1 0.25 (96x96), TFLM + CMSIS-NN",
    "instructions": 24_000_000,
    "instructions_reference_kernels": 101_000_000,
    "arena_bytes": 100_708,
    "model_bytes": 333_288,
}


def _shown(path) -> str:
    """A path inside the project relative to it (results stay machine-independent)."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _run(model, board, frames, out_dir, timeout, profile_repeat=1):
    """Build with per-op profiling, stream ``frames``; (build, frames, results, ops, stats)."""
    build = firmware.build(board, model=model, out=out_dir, frame_source="uart", profile=True,
                           profile_repeat=profile_repeat)
    if frames is None:
        frames, _, _ = samples.load(build.generated.input_shape)
    with emulators.open_session(board, build.elf, timeout=timeout * profile_repeat * (len(frames) + 2)) as session:
        session.wait_for(r"^larq-glt boot: ", timeout=timeout)
        client = protocol.FrameClient(session, timeout=timeout * profile_repeat)
        results, ops = client.stream_profiled([f.tobytes() for f in frames])
        stats = protocol.parse_stats(client.command("stats", "stats:"))
    return build, frames, results, ops, stats


def measure(model=None, board="mps2-an500", frames=None, out_dir=None, timeout=120.0, op_repeat=16) -> dict:
    """Totals from a build that runs each op once; per-op counts from a build
    that runs each op ``op_repeat`` times per timing (SysTick ticks every 40
    instructions, too coarse for small ops), on the same frames, whose logits
    must agree."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(out_dir or tmp)
        build, frames, results, ops, stats = _run(model, board, frames, base / "fw", timeout)
        if op_repeat > 1:
            _, _, rep_results, ops, _ = _run(model, board, frames, base / "fw-repeat", timeout, op_repeat)
            if [r.logit_bits for r in rep_results] != [r.logit_bits for r in results]:
                raise RuntimeError("the op-repeat build's logits differ from the single-run build's")
    gen = build.generated
    per_op = {}
    for name, call in zip(gen.op_names, gen.calls):
        key = name.replace(" ", "_")
        counts = [o[key] for o in ops]
        per_op[name] = {
            "instructions_mean": float(np.mean(counts)),
            "binary_macs": int(call.binary_macs),
            "binary_macs_per_instruction": (call.binary_macs / np.mean(counts)) if call.binary_macs and np.mean(counts) else None,
        }
    total = [r.cycles for r in results]
    stack = stats.get("stack_used", 0)
    peak_ram = gen.arena_bytes + stack + gen.input_bytes
    return {
        "board": board,
        "model": _shown(build.model_path),
        "frames": len(results),
        "instructions_per_inference": {"mean": float(np.mean(total)), "min": int(min(total)), "max": int(max(total))},
        "per_op": per_op,
        "per_op_repeat": op_repeat,
        "binary_macs": int(sum(c.binary_macs for c in gen.calls)),
        "flash_bytes": build.size["flash_bytes"],
        "weight_bytes": gen.weight_bytes,
        "arena_bytes": gen.arena_bytes,
        "stack_high_water_bytes": stack,
        "input_frame_bytes": gen.input_bytes,
        "peak_ram_bytes": peak_ram,
        "reference": MLPERF_REFERENCE,
        "speedup_vs_reference": MLPERF_REFERENCE["instructions"] / float(np.mean(total)),
    }


def render(res: dict, command: str) -> str:
    i = res["instructions_per_inference"]
    lines = [
        "# Cost of one inference on Cortex-M7 (QEMU mps2-an500, -icount shift=0)",
        "",
        f"Command: `{command}`  ",
        f"Model: `{res['model']}`; {res['frames']} sample frames streamed over the UART.",
        "",
        "| metric | this model | MLPerf Tiny int8 VWW reference (TFLM + CMSIS-NN) | target |",
        "| --- | ---: | ---: | --- |",
        f"| instructions per inference | {i['mean']:,.0f} (min {i['min']:,}, max {i['max']:,}) | "
        f"{res['reference']['instructions']:,} | ≤ 2,400,000 (10× fewer) |",
        f"| speed-up vs reference | {res['speedup_vs_reference']:.1f}× | 1× | ≥ 10× |",
        f"| peak RAM (arena + stack + input frame) | {res['peak_ram_bytes']:,} B "
        f"({res['arena_bytes']:,} + {res['stack_high_water_bytes']:,} + {res['input_frame_bytes']:,}) | "
        f"arena alone {res['reference']['arena_bytes']:,} B | < 65,536 B |",
        f"| flash (whole firmware) | {res['flash_bytes']:,} B (weights {res['weight_bytes']:,} B) | "
        f"model {res['reference']['model_bytes']:,} B | |",
        "",
        "## Per op",
        "",
        f"Each op ran {res.get('per_op_repeat', 1)} times per timing in a second build (same frames, same logits): "
        "the mean per call, including the call itself, at a resolution of "
        f"{40 / res.get('per_op_repeat', 1):g} instructions (SysTick ticks every 40).",
        "",
        "| op | instructions | binary MACs | binary MACs / instruction |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, o in res["per_op"].items():
        mpi = f"{o['binary_macs_per_instruction']:.2f}" if o["binary_macs_per_instruction"] else ""
        lines.append(f"| {name} | {o['instructions_mean']:,.0f} | {o['binary_macs']:,} | {mpi} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a .tflite (default: the shipped person detector)")
    p.add_argument("--board", default="mps2-an500")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "mcu_cost"), help="output path without extension")
    p.add_argument("--op-repeat", type=int, default=16,
                   help="per-op counts: each op runs this many times per timing (1: the totals' build)")
    p.add_argument("--tflm-dir", help="also measure TensorFlow Lite Micro (a tree with its library built)")
    args = p.parse_args(argv)
    res = measure(args.model, args.board, op_repeat=args.op_repeat)
    argv = argv if argv is not None else sys.argv[1:]
    if args.tflm_dir:
        from bench import tflm_cost  # the same model and frames under TFLM; logits must be identical

        res["tflm"] = tflm_cost.compare(args.model, args.board, tflm_dir=args.tflm_dir)["tflm"]
        res["command"] = tflm_cost.command_line("bench/mcu_cost.py", argv)  # the tree as <tflite-micro>
    else:
        res["command"] = " ".join(["python", "bench/mcu_cost.py", *argv]).strip()
    atomic.write_json(args.out + ".json", res)
    text = render(res, res["command"])
    if "tflm" in res:
        t = res["tflm"]
        text += ("\n## TensorFlow Lite Micro runtime (same model, identical logits)\n\n"
                 f"instructions per inference {t['instructions_per_inference']['mean']:,.0f}; "
                 f"flash {t['flash_bytes']:,} B; arena {t['arena_bytes']:,} B; "
                 f"stack {t['stack_high_water_bytes']:,} B; peak RAM {t['peak_ram_bytes']:,} B\n")
    atomic.write_text(args.out + ".md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
