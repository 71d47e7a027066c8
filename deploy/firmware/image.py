"""From a flatbuffer to a firmware ELF for a board: the library behind
``python deploy/build.py``.

```python
from deploy.firmware import image as firmware
result = firmware.build("mps2-an500", model="models/person_detect/model.tflite", out="build/mps2-an500")
print(result.size["flash_bytes"], result.elf)
```

Steps: read the flatbuffer, generate the model sources (:mod:`deploy.codegen`),
check that weights, frames and RAM fit the board — *before* compiling, with
the numbers — render the harness (:mod:`deploy.harness`), compile with
``arm-none-eabi-gcc -Wall -Wextra -Werror``, and write ``size.json``.
The output directory is replaced atomically: a failed build never leaves a
half-written one.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from deploy import codegen, lower
from deploy.firmware import harness
from deploy.firmware import samples
from deploy.boards import Board, load_board
from deploy.templates import ROOT
from larq_glt import atomic, sizes
from larq_glt.flatbuffer import ModelFormatError, read_model

__all__ = ["FirmwareError", "BuildResult", "build", "resolve_model", "DEFAULT_MODEL", "model_metadata"]

#: The shipped person detector (see models/person_detect/MODEL_CARD.md); the default of build.py and the demo.
DEFAULT_MODEL = ROOT / "models" / "person_detect" / "model.tflite"
#: Code and libc estimate used for the pre-compile fit check (the real size comes after linking).
CODE_ESTIMATE = 24 * 1024


class FirmwareError(RuntimeError):
    """A build that cannot be done (message says what and the numbers)."""


@dataclasses.dataclass
class BuildResult:
    board: Board
    out_dir: Path
    elf: Path
    model_path: Path
    generated: codegen.GeneratedModel
    size: dict
    frames: np.ndarray
    frame_labels: list
    frame_names: list
    class_names: list


def model_metadata(model_path: Path) -> dict:
    """``model.json`` written by ``larq_glt.export`` next to the flatbuffer (class names...)."""
    meta = Path(model_path).with_name("model.json")
    if meta.is_file():
        try:
            return json.loads(meta.read_text())
        except json.JSONDecodeError as e:
            raise FirmwareError(f"{meta} is not valid JSON: {e}") from None
    return {}


def _check_out(out_dir: Path) -> None:
    """Refuse an --out whose replacement would destroy something, before any work."""
    try:
        atomic.check_output_dir(out_dir)
    except atomic.OutputError as e:
        raise FirmwareError(f"--out {e}") from None


def resolve_model(model=None, run_dir=None) -> Path:
    """The flatbuffer to build: ``--model``, else a run's export (made if missing), else the default."""
    if model is not None and run_dir is not None:
        raise FirmwareError("give --model or --run-dir, not both")
    if model is not None:
        path = Path(model)
        if not path.is_file():
            raise FirmwareError(f"--model {path}: no such file")
        return path
    if run_dir is not None:
        run = Path(run_dir)
        exported = run / "export" / "model.tflite"
        if not exported.is_file():
            if not (run / "model.keras").is_file():
                raise FirmwareError(f"--run-dir {run} has no trained model (model.keras); train with "
                                    f"python -m larq_glt.train --out {run}")
            from larq_glt import export  # TensorFlow only when a run must be converted

            try:
                export.export(run)
            except (export.ExportError, atomic.OutputError) as e:
                raise FirmwareError(f"exporting {run}: {e}") from None
        return exported
    if not DEFAULT_MODEL.is_file():
        raise FirmwareError(f"the default model {DEFAULT_MODEL} is missing; pass --model or --run-dir")
    return DEFAULT_MODEL


def model_name(model_path: Path) -> str:
    """The model's name in the firmware (boot line, Renode suites): its folder's name as one token."""
    name = "".join(ch if ch.isalnum() or ch in "_.-+" else "_" for ch in Path(model_path).parent.name)
    return name or "model"


def _frames_for(gen: codegen.GeneratedModel, frames, count: int | None):
    if frames is None:
        frames, labels, names = samples.load(gen.input_shape)
    else:
        frames = np.asarray(frames, dtype=np.uint8)
        labels, names = [None] * len(frames), [f"frame{i}" for i in range(len(frames))]
    if frames.shape[1:] != tuple(gen.input_shape):
        raise FirmwareError(f"frames of shape {frames.shape[1:]} do not match the model input {gen.input_shape}")
    if count is not None:
        frames, labels, names = frames[:count], list(labels)[:count], list(names)[:count]
    return frames, list(labels), list(names)


def check_fit(board: Board, gen: codegen.GeneratedModel, *, frame_bytes: int, stack: int, uart_frames: bool) -> dict:
    """Refuse, before compiling, a model that cannot fit the board."""
    flash_need = gen.weight_bytes + frame_bytes + CODE_ESTIMATE
    # Streaming needs a RAM buffer for one received frame.
    ram_need = gen.arena_bytes + stack + (gen.input_bytes if uart_frames else 0) + 2048
    numbers = {
        "flash_estimate": flash_need, "flash_capacity": board.flash.length,
        "ram_estimate": ram_need, "ram_capacity": board.ram.length,
        "weights": gen.weight_bytes, "frames": frame_bytes, "arena": gen.arena_bytes, "stack": stack,
    }
    problems = []
    if flash_need > board.flash.length:
        problems.append(f"flash: weights {gen.weight_bytes:,} + built-in frames {frame_bytes:,} + code ~{CODE_ESTIMATE:,} "
                        f"= {flash_need:,} bytes > {board.flash.length:,} bytes of flash on {board.name}")
    if ram_need > board.ram.length:
        problems.append(f"RAM: arena {gen.arena_bytes:,} + stack {stack:,}"
                        + (f" + frame buffer {gen.input_bytes:,}" if uart_frames else "")
                        + f" + ~2,048 = {ram_need:,} bytes > {board.ram.length:,} bytes of RAM on {board.name}")
    if problems:
        raise FirmwareError("the model does not fit the board: " + "; ".join(problems))
    return numbers


def check_stack_size(board, stack_size: int | None) -> None:
    """Refuse a stack size the board cannot have (None: the board's own)."""
    if stack_size is not None and (stack_size <= 0 or stack_size % 8 or stack_size >= board.ram.length):
        raise FirmwareError(f"--stack-size must be a positive multiple of 8 bytes below the {board.ram.length:,} "
                            f"bytes of RAM on {board.name} (its default: {board.stack_size:,}), got {stack_size}")


def build(board, *, model=None, run_dir=None, out=None, opt_level: str = "-O2", frame_source: str = "builtin",
          frames=None, frame_count: int | None = None, max_frames: int | None = None, profile: bool = False,
          profile_repeat: int = 1,
          reference_kernels: bool = False, stack_size: int | None = None, positive_class: int | None = None,
          stats_every: int = 0, debug: bool = False, simulate_broken_simd: bool = False,
          compile: bool = True, stem_table_max_bytes: int | None = None) -> BuildResult:
    """Generate, check and compile the firmware for ``board`` (see the module docstring)."""
    board = load_board(board)
    check_stack_size(board, stack_size)
    out_dir = Path(out or ROOT / "build" / board.name)
    _check_out(out_dir)
    model_path = resolve_model(model, run_dir)
    try:
        fb = read_model(model_path)
    except ModelFormatError as e:
        raise FirmwareError(str(e)) from None
    meta = model_metadata(model_path)
    class_names = meta.get("class_names")
    name = model_name(model_path)
    try:
        gen = codegen.generate(fb, class_names=class_names, name=name, reference=reference_kernels,
                               stem_table_max_bytes=stem_table_max_bytes)
    except (codegen.CodegenError, ValueError) as e:
        raise FirmwareError(f"{model_path}: {e}") from None
    class_names = gen.class_names
    if positive_class is None:
        positive_class = class_names.index("person") if "person" in class_names else min(1, gen.num_classes - 1)

    builtin = frame_source == "builtin"
    frames, labels, names = _frames_for(gen, frames, frame_count)
    stack = stack_size or board.stack_size
    fit = check_fit(board, gen, frame_bytes=frames.nbytes if builtin else 0, stack=stack, uart_frames=not builtin)

    options = harness.HarnessOptions(opt_level=opt_level, max_frames=max_frames, profile=profile,
                                     profile_repeat=profile_repeat,
                                     stack_size=stack_size, positive_class=positive_class,
                                     arena_bytes=gen.arena_bytes, stats_every=stats_every,
                                     include_dirs=("runtime",),
                                     extra_cflags=(("-DGLT_DEBUG",) if debug else ())
                                     + (("-DGLT_SIMULATE_BROKEN_SIMD=1",) if simulate_broken_simd else ()))
    # Build in a temp dir next to the target, then swap it in: no half-written output.
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build.", dir=out_dir.parent))
    try:
        work = staging / out_dir.name
        harness.render_harness(board, work, model_sources=gen.sources, model_name=name,
                               frames=[f.tobytes() for f in frames] if builtin else [],
                               frame_source=frame_source, options=options, input_bytes=gen.input_bytes)
        size = {}
        elf = work / "firmware.elf"
        if compile:
            elf = harness.build_firmware(work)
            size = harness.size_report(elf, board)
        size.update({"model": str(model_path), "model_name": name, "board": board.name, "fit_check": fit, "model_cost": gen.cost(),
                     "arena_bytes": gen.arena_bytes, "frame_source": frame_source, "opt_level": opt_level,
                     "stem_table_max_bytes": lower.STEM_TABLE_MAX_BYTES if stem_table_max_bytes is None
                     else stem_table_max_bytes,
                     "firmware_weight_bytes": gen.weight_bytes, "frame_bytes": int(frames.nbytes) if builtin else 0})
        (work / "size.json").write_text(json.dumps(size, indent=2, default=str) + "\n")
        with atomic.directory(out_dir) as final:
            final.rmdir()
            shutil.move(str(work), str(final))
    except (harness.HarnessError, atomic.OutputError) as e:
        raise FirmwareError(str(e)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if board.emulator == "renode" and compile:
        # Renode's @paths are absolute, so these are written once the ELF is in place.
        from deploy.emulators import renode

        other = 0 if positive_class != 0 else 1
        led = ((positive_class, class_names[positive_class]), (other, class_names[other])) \
            if len(class_names) > 1 else None
        renode.render_renode_files(board, out_dir / "firmware.elf", out_dir / "renode",
                                   model_name=name, frame_source=frame_source, led_classes=led,
                                   led_frames=len(frames) if builtin else 4)
    return BuildResult(board=board, out_dir=out_dir, elf=out_dir / "firmware.elf", model_path=model_path,
                       generated=gen, size=size, frames=frames, frame_labels=labels, frame_names=names,
                       class_names=class_names)


def format_size_report(result: BuildResult) -> str:
    s, b = result.size, result.board
    gen = result.generated
    lines = [f"firmware: {result.elf}", f"board: {b.name} — {b.description}", f"model: {result.model_path}"]
    if "flash_bytes" in s:
        lines += [
            f"{sizes.label('flash_bytes')}: {s['flash_bytes']:,} of {b.flash.length:,} bytes "
            f"({100 * s['flash_bytes'] / b.flash.length:.1f}%)"
            + (f", of which {sizes.label('frame_bytes')} {s['frame_bytes']:,} (--frame-source builtin)"
               if s.get("frame_bytes") else ""),
            f"RAM:   {s['ram_bytes']:,} of {b.ram.length:,} bytes ({100 * s['ram_bytes'] / b.ram.length:.1f}%), "
            f"of which stack budget {s.get('stack_bytes', 0):,}",
        ]
        for name, sec in sorted(s.get("sections", {}).items()):
            size = sec["size"] if isinstance(sec, dict) else sec
            lines.append(f"  {name:<12} {size:>9,} bytes")
    lines += [
        f"model: {sizes.label('firmware_weight_bytes')} {gen.weight_bytes:,} (in flash), arena peak {gen.arena_bytes:,} bytes "
        f"(activations {gen.plan.peak:,} + kernel scratch {gen.scratch_bytes:,}), input frame {gen.input_bytes:,} bytes",
        f"ops: {len(gen.calls)} kernel calls, {sum(c.binary_macs for c in gen.calls):,} binary MACs per inference",
    ]
    return "\n".join(lines)
