#!/usr/bin/env python3
"""Always-on person detection in an emulated board, fed real frames over the UART.

    python deploy/demo.py --board nucleo                      # sample photos, shipped model
    python deploy/demo.py --board mps2-an500 --images ../shared/data/vww96

Builds the firmware if needed (UART frame source), starts the emulator (Renode
for the Nucleo boards, QEMU for the mps2 boards; a Nucleo board falls back to
the QEMU board with the same core when Renode is not installed), streams every
image through the framed UART protocol, and prints per frame the prediction,
score, counter (instructions in QEMU; in Renode emulated DWT ticks, i.e.
emulated time x clock, with the instructions derived from them) and whether
the logits equal the host reference (the LCE interpreter) bit for bit. At the
end: agreement, accuracy when the image folders are named after the classes,
average counter per frame, and frames per second of emulation. The firmware's always-on loop never stops
by itself: the demo ends it.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
import numpy as np

from larq_glt.cli import HelpFormatter  # first: quiets TensorFlow before anything imports it

from deploy import emulators
from deploy.firmware import image as firmware
from deploy.emulators import protocol
from deploy.firmware import samples
from deploy.boards import toolchain
from deploy.boards import BoardError, load_board

#: When Renode is absent, a Nucleo board's firmware is run on the QEMU board with the same core.
QEMU_STAND_IN = {"cortex-m7": "mps2-an500", "cortex-m4": "mps2-an386"}


class DemoError(RuntimeError):
    pass


def load_images(folder, shape, limit=None, class_names=()):
    """Images under ``folder`` (recursively, sorted), resized; labels from a parent
    folder named like a class (``person/``, ``non_person/``), else None."""
    from larq_glt.data.images import decode_image, is_image_file

    root = Path(folder)
    if not root.is_dir():
        raise DemoError(f"--images {root} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_file(p.name))
    if limit:
        # Take from every class folder in turn, so a limit keeps the classes balanced.
        by_dir = {}
        for p in files:
            by_dir.setdefault(p.parent, []).append(p)
        files = [p for group in zip(*by_dir.values()) for p in group][:limit] if len(by_dir) > 1 else files[:limit]
    frames, labels, names, skipped = [], [], [], 0
    for p in files:
        try:
            frames.append(decode_image(str(p), shape[0]))
        except Exception:
            skipped += 1
            continue
        label = next((class_names.index(part) for part in reversed(p.relative_to(root).parts[:-1])
                      if part in class_names), None)
        labels.append(label)
        names.append(str(p.relative_to(root)))
    if not frames:
        raise DemoError(f"--images {root} holds no readable images ({skipped} unreadable)")
    if skipped:
        print(f"skipped {skipped} unreadable image(s) in {root}", file=sys.stderr)
    return np.stack(frames), labels, names


def host_reference(tflite: Path, frames: np.ndarray) -> np.ndarray:
    """Logits of the LCE interpreter, the bit-exact reference."""
    import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    interp = Interpreter(tflite.read_bytes(), use_reference_bconv=True)
    return np.concatenate([interp.predict(f[None]) for f in frames]).astype(np.float32)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_if_needed(board: str, model_path: Path, out: Path, rebuild: bool):
    """Rebuild when the model, the project's sources or the board changed."""
    stamp = out / "demo-stamp.json"
    sources = sorted(p for d in ("deploy", "firmware_templates") for p in (ROOT / d).rglob("*")
                     if p.is_file() and p.suffix in (".py", ".c", ".h", ".j2", ".toml"))
    want = {"model": _digest(model_path), "board": board,
            "sources": hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()}
    if not rebuild and stamp.is_file() and (out / "firmware.elf").is_file():
        try:
            if json.loads(stamp.read_text()) == want:
                return None
        except json.JSONDecodeError:
            pass
    result = firmware.build(board, model=model_path, out=out, frame_source="uart")
    stamp.write_text(json.dumps(want))
    return result


def counter_unit(board) -> tuple[str, float | None]:
    """What the result lines' counter is in this emulator, and instructions per unit
    when it is not instructions itself. QEMU (-icount shift=0): instructions.
    Renode: the DWT counts emulated time x its frequency, emulated time being
    instructions / the CPU's PerformanceInMips (see the board files)."""
    if board.emulator == "qemu":
        return "instructions", None
    r = board.renode or {}
    mips, hz = r.get("performance_in_mips"), r.get("dwt_frequency")
    return "emulated ticks", (mips * 1e6 / hz if mips and hz else None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python deploy/demo.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--board", default="nucleo", help="nucleo, nucleo-l4r5zi, mps2-an500, mps2-an386")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="an exported .tflite (default: the shipped person detector)")
    src.add_argument("--run-dir", help="a training run directory (exported if needed)")
    p.add_argument("--images", help="folder of images (class folders give accuracy); default: sample photos")
    p.add_argument("--limit", type=int, help="stream at most N images")
    p.add_argument("--emulator", choices=("renode", "qemu"), help="force an emulator")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each frame's answer")
    p.add_argument("--rebuild", action="store_true", help="rebuild the firmware even if it is up to date")
    p.add_argument("--quiet", action="store_true", help="only the summary")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        print(f"error: --limit must be at least 1, got {args.limit}", file=sys.stderr)
        return 2
    if not 0 < args.timeout < float("inf"):  # also refuses nan
        print(f"error: --timeout must be a finite number of seconds > 0, got {args.timeout}", file=sys.stderr)
        return 2

    try:
        board = load_board(args.board)
        target = board.name
        if (args.emulator or board.emulator) == "renode" and toolchain.renode() is None:
            target = QEMU_STAND_IN.get(board.cpu)
            if target is None or args.emulator == "renode":
                raise DemoError(f"{board.name} runs in Renode, which is not installed here")
            print(f"Renode is not installed: running the {board.cpu} firmware on QEMU's {target} "
                  f"(same core). The Renode files for {board.name} are generated by "
                  f"`python deploy/build.py --board {board.name}`.", file=sys.stderr)
        model_path = firmware.resolve_model(args.model, args.run_dir)
        out = ROOT / "build" / f"demo-{target}"
        built = build_if_needed(target, model_path, out, args.rebuild)
        if built is not None:
            print(f"built {out / 'firmware.elf'}: flash {built.size['flash_bytes']:,} bytes, "
                  f"arena {built.generated.arena_bytes:,} bytes", file=sys.stderr)
        meta = firmware.model_metadata(model_path)
        class_names = meta.get("class_names") or []
        shape = tuple(meta.get("input_shape") or (96, 96, 3))
        if args.images:
            frames, labels, names = load_images(args.images, shape, args.limit, class_names)
        else:
            frames, labels, names = samples.load(shape)
            if "person" not in class_names:
                labels = [None] * len(frames)
            if args.limit:
                frames, labels, names = frames[:args.limit], labels[:args.limit], names[:args.limit]
        reference = host_reference(model_path, frames)
    except (BoardError, DemoError, firmware.FirmwareError, toolchain.ToolchainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    unit, per_instruction = counter_unit(load_board(target))
    agree, correct, labelled, cycles = 0, 0, 0, []
    start = time.monotonic()
    try:
        with emulators.open_session(target, out / "firmware.elf", force=args.emulator if target == board.name else None,
                                   model_name=firmware.model_name(model_path),
                                   timeout=args.timeout * (len(frames) + 2)) as session:
            boot = session.wait_for(r"^larq-glt boot: .*", timeout=args.timeout)
            if not args.quiet:
                print(boot.group(0))
            client = protocol.FrameClient(session, timeout=args.timeout)
            for i, (frame, label, name) in enumerate(zip(frames, labels, names)):
                res = client.send(frame.tobytes(), i & protocol.MAX_SEQ)
                same = list(res.logit_bits) == reference[i].view(np.uint32).tolist()
                agree += same
                cycles.append(res.cycles)
                mark = ""
                if label is not None:
                    labelled += 1
                    correct += res.class_index == label
                    mark = "  correct" if res.class_index == label else f"  WRONG (is {class_names[label]})"
                if not args.quiet:
                    print(f"frame {i:4d} {name[:40]:40s} {res.class_name:>12s} score {res.score:.3f} "
                          f"{unit} {res.cycles:>9,}  host reference: {'equal' if same else 'DIFFERENT'}{mark}",
                          flush=True)
    except (protocol.ProtocolError, emulators.EmulatorError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    n = len(cycles)
    print(f"\nframes: {n}  agreement with the host reference: {agree}/{n} ({100 * agree / max(n, 1):.1f}%)")
    if labelled:
        print(f"accuracy: {correct}/{labelled} ({100 * correct / labelled:.1f}%)")
    derived = (f" (~{np.mean(cycles) * per_instruction:,.0f} instructions: emulated time x clock, "
               f"not cycles)") if per_instruction else ""
    print(f"average {unit} per frame: {np.mean(cycles):,.0f}{derived}  (emulated on {target}; "
          f"{n / elapsed:.2f} frames/s of emulation incl. UART transfer)")
    return 0 if agree == n else 1


if __name__ == "__main__":
    sys.exit(main())
