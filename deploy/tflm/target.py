"""TensorFlow Lite Micro target: the model as a TFLM flatbuffer + op resolver,
in the same board harness as the generated runtime (``--runtime tflm``).

```python
from deploy.tflm import target as tflm
result = tflm.build("mps2-an500", model="export/model.tflite", out="build/tflm",
                    tflm_dir="/path/to/tflite-micro")      # its library built first
print(tflm.format_size_report(result))
```

larq-glt contains no TFLM code: the build compiles larq-glt's TFLM kernels
(``deploy/tflm/*.cc``: LceQuantize, LceDequantize, LceBconv2d, LceBMaxPool2d
and GltFrontend, each calling the C kernel cores of ``deploy/runtime``) and a
generated model wrapper (``firmware_templates/tflm/``) against the user's TFLM
tree and its prebuilt ``libtensorflow-microlite.a``.

The uint8 input encoder cannot run as TFLM builtins, so the flatbuffer is
rewritten first (``rewrite.py``: a fused ``GltStem`` or ``GltFrontend`` op,
and the lane tables of the generated runtime's bit-sliced convolution). The rewritten flatbuffer is saved as
``model_tflm.tflite`` next to the firmware.

The wrapper implements ``model.h`` (``model_init`` / ``model_invoke``), so the
harness's ``main.c``, its UART ``result:`` lines and its instruction counting
are the generated runtime's. The boot line's ``arena`` is TFLM's real
``arena_used_bytes()``.

The concerns live beside this module: ``library.py`` (the user's TFLM tree and
its library), ``ops.py`` (the custom ops, their options, the resolver, the
arena estimate), ``rewrite.py`` (the flatbuffer for TFLM) and the C++ kernels;
this module renders the sources and builds the firmware, and re-exports their
public names.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from deploy.firmware import image as firmware
from deploy.firmware import harness
from deploy.boards import Board, load_board
from deploy.templates import ROOT, RUNTIME_DIR, render
from deploy.tflm.errors import TflmError
from deploy.tflm.library import (BUILD_TYPES, DEBIAN_PACKAGES, LIBRARY, TflmLibrary, find_library,
                                 library_instructions, missing_package, target_arch)
from deploy.tflm.ops import (CUSTOM_OPS, FRONTEND_OP, OPTION_KEYS, STEM_OP, estimate_arena, lce_options,
                             resolver_method, resolver_ops)
from deploy.tflm.rewrite import STEM_ARRAYS, tflm_model
from larq_glt import atomic
from larq_glt.flatbuffer import Model, ModelFormatError, read_model_bytes

__all__ = ["TflmError", "TflmLibrary", "TflmBuildResult", "build", "find_library", "tflm_model",
           "resolver_ops", "resolver_method", "lce_options", "estimate_arena", "format_size_report",
           "model_sources", "CUSTOM_OPS", "OPTION_KEYS", "FRONTEND_OP", "STEM_OP", "STEM_ARRAYS",
           "BUILD_TYPES", "LIBRARY", "target_arch", "library_instructions"]

KERNEL_DIR = Path(__file__).resolve().parent  # the C++ kernels beside this module


@dataclasses.dataclass
class TflmBuildResult:
    board: Board
    out_dir: Path
    elf: Path
    model_path: Path
    library: TflmLibrary | None
    size: dict
    frames: np.ndarray
    frame_labels: list
    frame_names: list
    class_names: list
    resolver: list
    arena_bytes: int
    tflm_model_bytes: int
    notes: list


def _io(model: Model):
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TflmError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                        "the harness needs one uint8 frame in and one float logits vector out")
    inp, out = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    if inp.type_name != "UINT8" or len(inp.shape) != 4 or inp.shape[0] != 1:
        raise TflmError(f"model input is {inp.type_name} {list(inp.shape)}, not a UINT8 [1, H, W, C] frame")
    if out.type_name != "FLOAT32":
        raise TflmError(f"model output is {out.type_name}, the harness reads FLOAT32 logits")
    return inp, out


def model_sources(data: bytes, model: Model, *, name: str, class_names, arena_bytes: int,
                  resolver: list, source: str) -> dict:
    """model.h, model_tflm.cc and model_data.cc/.h rendered from firmware_templates/tflm,
    plus larq-glt's TFLM kernels and the C kernel cores they call."""
    inp, out = _io(model)
    num_classes = int(np.prod(out.shape))
    class_names = list(class_names or [f"class{i}" for i in range(num_classes)])
    if len(class_names) != num_classes:
        raise TflmError(f"{len(class_names)} class names for {num_classes} model outputs")
    ctx = {
        "name": name, "source": source, "class_names": class_names, "num_classes": num_classes,
        "input": {"h": inp.shape[1], "w": inp.shape[2], "c": inp.shape[3], "bytes": inp.nbytes},
        # unique per op (the harness's `ops:` line is parsed into a dict): LceBconv2d_1, ...
        "op_names": [f"{op.opcode}_{i}" for i, op in enumerate(model.operators)], "arena_bytes": arena_bytes,
        "resolver": resolver, "model_bytes": len(data),
        "model_data": data,
    }
    sources = {out_name: render(f"tflm/{tpl}", **ctx) for tpl, out_name in (
        ("model.h.j2", "model.h"), ("model_tflm.cc.j2", "model_tflm.cc"),
        ("model_data.h.j2", "model_data.h"), ("model_data.cc.j2", "model_data.cc"))}
    for f in sorted(KERNEL_DIR.glob("*.h")) + sorted(KERNEL_DIR.glob("*.cc")):
        sources[f"tflm/{f.name}"] = f.read_text()
    for f in sorted(RUNTIME_DIR.glob("*.[ch]")):
        sources[f"runtime/{f.name}"] = f.read_text()
    return sources


def build(board, *, model=None, run_dir=None, out=None, tflm_dir=None, opt_level: str = "-O2",
          frame_source: str = "builtin", frames=None, max_frames: int | None = None, profile: bool = False,
          stack_size: int | None = None, arena_bytes: int | None = None, build_type: str | None = None,
          accelerate: bool = True, compile: bool = True, stem_table_max_bytes: int | None = None) -> TflmBuildResult:
    """Generate and compile the TFLM firmware for ``board`` (see the module docstring).
    ``build_type`` picks the TFLM library build (BUILD_TYPE) when the tree has several;
    ``accelerate=False`` leaves the LceBconv2d ops as LCE wrote them (no stem, no lane tables);
    ``compile=False`` renders the sources without a TFLM tree (for inspection/tests)."""
    board = load_board(board)
    firmware.check_stack_size(board, stack_size)
    out_dir = Path(out or ROOT / "build" / f"{board.name}-tflm")
    try:
        atomic.check_output_dir(out_dir)  # before any work
    except atomic.OutputError as e:
        raise TflmError(f"--out {e}") from None
    library = find_library(tflm_dir, board, build_type) if (compile or tflm_dir is not None) else None
    try:
        model_path = firmware.resolve_model(model, run_dir)
    except firmware.FirmwareError as e:
        raise TflmError(str(e)) from None
    original = model_path.read_bytes()
    try:
        fb = read_model_bytes(original, str(model_path))
    except ModelFormatError as e:
        raise TflmError(str(e)) from None
    lce_options(fb)
    data, notes = tflm_model(original, fb, accelerate=accelerate, stem_table_max_bytes=stem_table_max_bytes)
    tfb = read_model_bytes(data, f"{model_path} (rewritten for TFLM)")
    resolver = resolver_ops(tfb, library.tree if library else None)
    inp, _ = _io(tfb)
    arena = arena_bytes or estimate_arena(tfb)
    meta = firmware.model_metadata(model_path)
    name = "".join(ch if ch.isalnum() or ch in "_.-+" else "_" for ch in model_path.parent.name or "model")
    sources = model_sources(data, tfb, name=name or "model", class_names=meta.get("class_names"),
                            arena_bytes=arena, resolver=resolver, source=model_path.name)
    builtin = frame_source == "builtin"
    shape = tuple(inp.shape[1:])
    if frames is None:
        from deploy.firmware import samples

        frames, labels, names = samples.load(shape)
    else:
        frames = np.asarray(frames, dtype=np.uint8)
        labels, names = [None] * len(frames), [f"frame{i}" for i in range(len(frames))]
    if frames.shape[1:] != shape:
        raise TflmError(f"frames of shape {frames.shape[1:]} do not match the model input {shape}")
    class_names = list(meta.get("class_names") or
                       [f"class{i}" for i in range(int(np.prod(tfb.tensors[tfb.outputs[0]].shape)))])
    positive = class_names.index("person") if "person" in class_names else min(1, len(class_names) - 1)

    cxx_flags, link_inputs = [], []
    if library is not None:
        cxx_flags = [*library.defines, *(f"-isystem{d}" for d in library.include_dirs)]
        link_inputs = [str(library.library)]
    options = harness.HarnessOptions(opt_level=opt_level, max_frames=max_frames, profile=profile,
                                     stack_size=stack_size, positive_class=positive, arena_bytes=arena,
                                     include_dirs=("runtime", "tflm"), cxx_flags=tuple(cxx_flags),
                                     link_inputs=tuple(link_inputs))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build.", dir=out_dir.parent))
    try:
        work = staging / out_dir.name
        harness.render_harness(board, work, model_sources=sources, model_name=name or "model",
                               frames=[f.tobytes() for f in frames] if builtin else [],
                               frame_source=frame_source, options=options, input_bytes=inp.nbytes)
        (work / "model_tflm.tflite").write_bytes(data)
        size = {}
        elf = work / "firmware.elf"
        if compile:
            elf = harness.build_firmware(work)
            size = harness.size_report(elf, board)
            size["elf"] = str(out_dir / "firmware.elf")   # where it ends up, not the staging copy
        size.update({"model": str(model_path), "model_name": name or "model", "board": board.name, "runtime": "tflm",
                     "tflm_library": str(library.library) if library else None,
                     "arena_bytes": arena, "tflm_model_bytes": len(data), "resolver": [r["name"] for r in resolver],
                     "frame_source": frame_source, "opt_level": opt_level, "notes": notes})
        (work / "size.json").write_text(json.dumps(size, indent=2, default=str) + "\n")
        with atomic.directory(out_dir) as final:
            final.rmdir()
            shutil.move(str(work), str(final))
    except (harness.HarnessError, atomic.OutputError) as e:
        package = missing_package(str(e))
        if package:
            raise TflmError(f"the TFLM firmware does not build: the Debian package {package} is missing "
                            f"(sudo apt-get install {package}); the compiler said:\n{e}") from None
        raise TflmError(str(e)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return TflmBuildResult(board=board, out_dir=out_dir, elf=out_dir / "firmware.elf", model_path=model_path,
                           library=library, size=size, frames=frames, frame_labels=list(labels),
                           frame_names=list(names), class_names=class_names, resolver=resolver,
                           arena_bytes=arena, tflm_model_bytes=len(data), notes=notes)


def format_size_report(result: TflmBuildResult) -> str:
    s, b = result.size, result.board
    lines = [f"firmware: {result.elf} (TensorFlow Lite Micro)", f"board: {b.name} — {b.description}",
             f"model: {result.model_path}"]
    if result.library is not None:
        lines.append(f"TFLM library: {result.library.library} (BUILD_TYPE={result.library.build_type})")
    if "flash_bytes" in s:
        lines += [
            f"flash: {s['flash_bytes']:,} of {b.flash.length:,} bytes ({100 * s['flash_bytes'] / b.flash.length:.1f}%)",
            f"RAM:   {s['ram_bytes']:,} of {b.ram.length:,} bytes ({100 * s['ram_bytes'] / b.ram.length:.1f}%), "
            f"of which stack budget {s.get('stack_bytes', 0):,} and tensor arena {result.arena_bytes:,}",
        ]
    lines += [f"flatbuffer for TFLM: {result.tflm_model_bytes:,} bytes (model_tflm.tflite)",
              f"resolver: {', '.join(r['name'] for r in result.resolver)}",
              "arena: sized from the model; the boot line's `arena` is TFLM's arena_used_bytes()"]
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
