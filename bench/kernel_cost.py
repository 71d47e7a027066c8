"""Instructions per inference of the generated firmware on QEMU mps2-an500 (Cortex-M7).

Builds the default topology (``larq_glt.models.compact()``, 96x96x3 uint8 input,
random batch norm with negative gammas so thresholds are non-trivial) or a given
``.tflite``, generates the firmware with per-op profiling, runs it in QEMU with
``-icount shift=0`` (one instruction = 1 ns of virtual time; SysTick at 25 MHz
ticks every 40 instructions) and prints, per kernel call: instructions, binary
MACs and MACs per instruction; then the total per inference, the arena, the
stack high-water mark, peak RAM (arena + stack + the input frame buffer) and
flash. Every frame's logits are checked against the host build of the same
sources (which the tests check against the LCE interpreter).

    python bench/kernel_cost.py                          # writes benchmarks/kernel_cost.json
    python bench/kernel_cost.py --model model.tflite --frames 4 --board mps2-an386

Counts are for the whole ``model_invoke`` (every kernel, the schedule's glue
included): the `result:` line's cycles. Per-op numbers are the harness's
``ops:`` line (the op's kernel call only).
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np

# Targets of issue 5 (acceptance) and the reference they derive from.
TFLM_CMSIS_VWW_INSTRUCTIONS = 24_000_000
TARGET_INSTRUCTIONS = TFLM_CMSIS_VWW_INSTRUCTIONS // 10
TARGET_MACS_PER_INSTRUCTION = 4.0
TARGET_PEAK_RAM = 64 * 1024


def default_model(out_dir: Path, encoding: str, seed: int) -> Path:
    """Exports models.compact(encoding=...) with random BN statistics and GLT logits."""
    import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)
    import tf_keras as keras
    from larq_glt import export, models, testing

    keras.utils.set_random_seed(seed)  # the binary kernels' initial values

    model = testing.randomize(models.compact(encoding=encoding), seed)
    result = export.export_keras(model, out_dir, n_check=8)
    return Path(result.out_dir) / "model.tflite"


def test_frames(shape, n: int, seed: int) -> np.ndarray:
    """Smooth random images (more like camera frames than uniform noise) plus noise."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    frames = []
    for _ in range(n):
        coarse = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, c)).astype(np.float32)
        img = np.kron(coarse, np.ones((8, 8, 1), np.float32))[:h, :w]
        img += rng.normal(0, 12, size=img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(frames)


def input_densities(model, calls, frame: np.ndarray, work: Path) -> dict:
    """Fraction of set bits (-1 values) in each bit-packed input, by call index: the
    bit-sliced bconv sums min(set, unset) window bits, so its cost depends on it.
    Computed with the host build of deploy/runtime (deploy/firmware/hostlib.py)."""
    from deploy.firmware import hostlib

    work.mkdir(parents=True, exist_ok=True)
    lib = hostlib.build(work)
    values = {model.inputs[0]: frame[None]}
    out = {}
    for k, call in enumerate(calls):
        x = values[call.inputs[0]]
        if call.op_name == "LceBconv2d":
            cin = int(call.params["binary_zero_point"]) * 2 * int(call.params["groups"])
            bits = np.unpackbits(np.ascontiguousarray(x).view(np.uint8), bitorder="little")
            out[k] = float(bits.sum() / (bits.size * cin / (32 * int(call.params["in_words"]))))
        values[call.outputs[0]] = hostlib.run_call(lib, call, model.tensors, x)
    return out


def measure(tflite: Path, board: str, n_frames: int, work: Path, seed: int = 0) -> dict:
    from deploy import codegen
    from deploy import emulators
    from deploy.firmware import harness
    from deploy.firmware import host
    from deploy.emulators import protocol
    from larq_glt import flatbuffer

    model = flatbuffer.read_model(tflite)
    gen = codegen.generate(model)
    frames = test_frames(gen.input_shape, n_frames, seed)

    exe = host.build(gen, work / "host")
    host_classes, host_logits = host.run(exe, frames)

    out = harness.render_harness(board, work / "fw", model_sources=gen.sources,
                                 frames=[f.tobytes() for f in frames],
                                 options=harness.HarnessOptions(max_frames=n_frames, profile=True))
    elf = harness.build_firmware(out)
    size = harness.size_report(elf, board)
    run = emulators.run(board, elf, timeout=600)
    if not run.ok:
        raise SystemExit(f"firmware run failed: {run.describe()}")
    results = [protocol.parse_result(l) for l in run.lines if l.startswith("result:")]
    # in order (op names may repeat): "ops: frame N <name> <cycles> <name> <cycles> ..."
    ops = [[int(v) for v in l.split()[4::2]] for l in run.lines if l.startswith("ops: frame ")]
    stats = [l for l in run.lines if l.startswith("stats:")]
    if len(results) != n_frames or len(ops) != n_frames or not stats:
        raise SystemExit("missing result/ops/stats lines:\n" + "\n".join(run.lines[-20:]))
    for i, r in enumerate(results):
        got = np.array([int(x, 16) for x in r.logits_hex], dtype=np.uint32)
        if r.class_index != host_classes[i] or not np.array_equal(got, host_logits[i].view(np.uint32)):
            raise SystemExit(f"frame {i}: firmware logits differ from the host build")
    stat = stats[-1].split()
    stack_used = int(stat[stat.index("stack_used") + 1])

    density = input_densities(model, gen.calls, frames[0], work / "hostlib")
    per_frame = [r.cycles for r in results]
    per_op = []
    if any(len(o) != len(gen.calls) for o in ops):
        raise SystemExit(f"{len(ops[0])} profiled ops for {len(gen.calls)} calls")
    for k, (name, call) in enumerate(zip(gen.op_names, gen.calls)):
        cycles = [o[k] for o in ops]
        instr = int(np.median(cycles))
        row = {"op": name, "function": call.function, "instructions": instr,
               "instructions_min": int(min(cycles)), "instructions_max": int(max(cycles)),
               "binary_macs": int(call.binary_macs)}
        if call.binary_macs:
            row["macs_per_instruction"] = round(call.binary_macs / instr, 3)
        if k in density:
            row["input_density"] = round(density[k], 3)
        if call.notes:
            row["notes"] = list(call.notes)
        per_op.append(row)
    total = int(np.median(per_frame))
    bconv = [r for r in per_op if r["binary_macs"]]
    frame_buffer = int(np.prod(gen.input_shape))
    peak = gen.arena_bytes + stack_used + frame_buffer
    return {
        "board": board,
        "model": str(tflite),
        "frames": n_frames,
        "instructions_per_inference": total,
        "instructions_per_inference_min": int(min(per_frame)),
        "instructions_per_inference_max": int(max(per_frame)),
        "ops": per_op,
        "binary_macs": int(sum(r["binary_macs"] for r in per_op)),
        "bconv_min_macs_per_instruction": min((r["macs_per_instruction"] for r in bconv), default=None),
        "arena_bytes": gen.arena_bytes,
        "scratch_bytes": gen.scratch_bytes,
        "stack_used_bytes": stack_used,
        "input_frame_bytes": frame_buffer,
        "peak_ram_bytes": peak,
        "weight_bytes": gen.weight_bytes,
        "weight_bytes_reference_only": int(sum(c.arrays[n].nbytes for c in gen.calls
                                               for n in c.reference_arrays)),
        "flash_bytes": size["flash_bytes"],
        "note": "flash_bytes includes the built-in test frames "
                f"({n_frames} x {frame_buffer} bytes) and the harness",
        "targets": {
            "instructions_per_inference_max": TARGET_INSTRUCTIONS,
            "bconv_macs_per_instruction_min": TARGET_MACS_PER_INSTRUCTION,
            "peak_ram_bytes_max": TARGET_PEAK_RAM,
        },
        "meets": {
            "instructions": total <= TARGET_INSTRUCTIONS,
            "macs_per_instruction": all(r["macs_per_instruction"] >= TARGET_MACS_PER_INSTRUCTION
                                        for r in bconv),
            "peak_ram": peak < TARGET_PEAK_RAM,
        },
    }


def print_report(rep: dict) -> None:
    print(f"{rep['board']}: {rep['model']}  ({rep['frames']} frames, logits equal to the host build)")
    print(f"{'op':40s} {'function':18s} {'instructions':>12s} {'binary MACs':>12s} {'MACs/instr':>10s}"
          f" {'in density':>10s}")
    for r in rep["ops"]:
        mpi = f"{r['macs_per_instruction']:.2f}" if "macs_per_instruction" in r else ""
        macs = f"{r['binary_macs']:,}" if r["binary_macs"] else ""
        dens = f"{r['input_density']:.2f}" if "input_density" in r else ""
        print(f"{r['op'][:40]:40s} {r['function']:18s} {r['instructions']:12,d} {macs:>12s} {mpi:>10s}"
              f" {dens:>10s}")
    total = rep["instructions_per_inference"]
    print(f"total per inference (model_invoke): {total:,} instructions "
          f"(target <= {rep['targets']['instructions_per_inference_max']:,}; "
          f"{TFLM_CMSIS_VWW_INSTRUCTIONS / total:.1f}x fewer than TFLM+CMSIS-NN VWW)")
    print(f"binary MACs {rep['binary_macs']:,}: {rep['binary_macs'] / total:.2f} per instruction overall")
    print(f"arena {rep['arena_bytes']:,} B (scratch {rep['scratch_bytes']:,}) + stack used "
          f"{rep['stack_used_bytes']:,} B + input frame {rep['input_frame_bytes']:,} B = peak RAM "
          f"{rep['peak_ram_bytes']:,} B (target < {TARGET_PEAK_RAM:,})")
    print(f"weights {rep['weight_bytes']:,} B ({rep['weight_bytes_reference_only']:,} of them read only by the "
          f"reference kernels); firmware flash {rep['flash_bytes']:,} B ({rep['note']})")
    print("meets targets:", ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in rep["meets"].items()))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help=".tflite to measure (default: export models.compact())")
    ap.add_argument("--encoding", default="glt", help="encoder of the default model (glt, thermo, nbc)")
    ap.add_argument("--board", default="mps2-an500")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "kernel_cost.json")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kernel_cost.") as tmp:
        work = Path(tmp)
        tflite = args.model or default_model(work / "export", args.encoding, args.seed)
        rep = measure(tflite, args.board, args.frames, work, args.seed)
    if args.model is None:
        rep["model"] = f"models.compact(encoding={args.encoding!r}), random BN (seed {args.seed})"
    rep["host"] = {"python": platform.python_version(), "machine": platform.machine()}
    try:
        rep["qemu"] = subprocess.run(["qemu-system-arm", "--version"], capture_output=True,
                                     text=True).stdout.splitlines()[0]
        rep["gcc"] = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True,
                                    text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        pass
    print_report(rep)
    if not args.no_write:
        from larq_glt import atomic

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(args.out, json.dumps(rep, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
