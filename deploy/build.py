#!/usr/bin/env python3
"""Build Cortex-M firmware from an exported model.

    python deploy/build.py --board nucleo                      # the shipped default model
    python deploy/build.py --board mps2-an500 --run-dir runs/vww-glt
    python deploy/build.py --board nucleo --model export/model.tflite --out build/nucleo -Os

Writes the generated sources, a Makefile and firmware.elf into --out, prints
the size report (flash and RAM by section, arena peak, stack budget) and saves
it as size.json. Renode boards also get <board>.repl/.resc/.robot in renode/.
"""
from __future__ import annotations

import argparse
import sys

from larq_glt.cli import HelpFormatter  # first: quiets TensorFlow before anything imports it
from deploy.boards import BoardError, known_boards
from deploy.lower.stem import STEM_TABLE_MAX_BYTES

STEM_TABLE_KIB = STEM_TABLE_MAX_BYTES // 1024


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python deploy/build.py", description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--board", required=True, help=f"target board: {', '.join(known_boards())}")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="an exported .tflite (model.json beside it gives the class names)")
    src.add_argument("--run-dir", help="a training run directory (exported first if needed)")
    p.add_argument("--out", help="build directory (default: build/<board>)")
    opt = p.add_mutually_exclusive_group()
    opt.add_argument("-O2", dest="opt", action="store_const", const="-O2", help="optimize for speed (default)")
    opt.add_argument("-Os", dest="opt", action="store_const", const="-Os", help="optimize for size")
    p.add_argument("--frame-source", choices=("builtin", "uart"), default="builtin",
                   help="builtin: sample photos compiled in, looped forever; uart: frames streamed by the host")
    p.add_argument("--max-frames", type=int, help="stop after N frames (QEMU boards exit; default: always on)")
    p.add_argument("--profile", action="store_true", help="print per-op cycle counts after each result")
    p.add_argument("--profile-repeat", type=int, default=1, metavar="N",
                   help="with --profile: run each op N times per timing and print the mean (finer than a "
                        "coarse cycle counter's tick; the result line's total then counts every repeat)")
    p.add_argument("--debug", action="store_true",
                   help="check after every op that no kernel wrote outside its planned arena bytes")
    p.add_argument("--reference-kernels", action="store_true", help="use the readable reference kernels")
    p.add_argument("--stack-size", type=int, help="stack bytes: a multiple of 8 (default: the board's)")
    p.add_argument("--stem-table-kib", type=int, metavar="KIB",
                   help=f"flash the fused stem's level tables may take (default: {STEM_TABLE_KIB}); past it, or "
                        "with 0, the stem runs the words algorithm: no tables, more instructions and arena")
    p.add_argument("--runtime", choices=("generated", "tflm"), default="generated",
                   help="generated: larq-glt's static C runtime; tflm: TensorFlow Lite Micro (needs --tflm-dir)")
    p.add_argument("--tflm-dir", help="a TensorFlow Lite Micro tree with its library built (for --runtime tflm)")
    p.set_defaults(opt="-O2")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from deploy.firmware import image as firmware
    from deploy.boards import toolchain

    if args.max_frames is not None and args.max_frames < 1:
        print(f"error: --max-frames must be at least 1, got {args.max_frames}", file=sys.stderr)
        return 2
    if args.profile_repeat < 1:
        print(f"error: --profile-repeat must be 1 or more, got {args.profile_repeat}", file=sys.stderr)
        return 2
    if args.profile_repeat > 1 and not args.profile:
        print("error: --profile-repeat needs --profile", file=sys.stderr)
        return 2
    if args.stem_table_kib is not None and args.stem_table_kib < 0:
        print(f"error: --stem-table-kib must be 0 or more, got {args.stem_table_kib}", file=sys.stderr)
        return 2
    stem_table_max_bytes = None if args.stem_table_kib is None else args.stem_table_kib * 1024

    if args.runtime == "tflm":
        ignored = [flag for flag, used in (("--profile", args.profile), ("--profile-repeat", args.profile_repeat > 1),
                                           ("--debug", args.debug), ("--reference-kernels", args.reference_kernels))
                   if used]
        if ignored:
            print(f"error: {', '.join(ignored)} only apply to --runtime generated (larq-glt's own runtime); "
                  f"TFLM runs its interpreter", file=sys.stderr)
            return 2
    try:
        if args.runtime == "tflm":
            from deploy.tflm import target as tflm

            result = tflm.build(args.board, model=args.model, run_dir=args.run_dir, out=args.out,
                                tflm_dir=args.tflm_dir, opt_level=args.opt, frame_source=args.frame_source,
                                max_frames=args.max_frames, stack_size=args.stack_size,
                                stem_table_max_bytes=stem_table_max_bytes)
            print(tflm.format_size_report(result))
            return 0
        result = firmware.build(args.board, model=args.model, run_dir=args.run_dir, out=args.out,
                                opt_level=args.opt, frame_source=args.frame_source, max_frames=args.max_frames,
                                profile=args.profile, profile_repeat=args.profile_repeat,
                                reference_kernels=args.reference_kernels,
                                stack_size=args.stack_size, debug=args.debug,
                                stem_table_max_bytes=stem_table_max_bytes)
    except (BoardError, firmware.FirmwareError, toolchain.ToolchainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(firmware.format_size_report(result))
    print(f"size report: {result.out_dir / 'size.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
