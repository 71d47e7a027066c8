"""Firmware harness: render the board/harness templates plus the model's sources
into a build directory, build it with make, and report its size.

    from deploy.firmware.harness import render_harness, build_firmware, size_report, HarnessOptions
    out = render_harness("mps2-an500", "build/mps2", model_sources={"model.c": ..., "model.h": ...},
                         model_name="vww", frames=[b"..."], options=HarnessOptions(max_frames=4))
    elf = build_firmware(out)
    report = size_report(elf, "mps2-an500")

The templates are in firmware_templates/harness/; their variables are listed in
harness_context() below.
"""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from deploy.emulators import protocol
from deploy.boards import Board, load_board
from deploy.boards.toolchain import arm_gcc, find_tool
from deploy.templates import render
from larq_glt import atomic

FRAME_SOURCES = ("uart", "builtin")
# rendered template -> output file (the board support file is chosen per family)
HARNESS_FILES = {
    "board.h.j2": "board.h",
    "startup.c.j2": "startup.c",
    "console.h.j2": "console.h",
    "console.c.j2": "console.c",
    "protocol.h.j2": "protocol.h",
    "protocol.c.j2": "protocol.c",
    "frames.h.j2": "frames.h",
    "frames.c.j2": "frames.c",
    "main.c.j2": "main.c",
    "linker.ld.j2": "linker.ld",
}
_TOKEN = re.compile(r"^[A-Za-z0-9_.\-+]+$")
# one `readelf -S -W` row: [Nr] Name Type Addr Off Size ES Flg ...
_SECTION = re.compile(r"^\s*\[\s*\d+\]\s+(?P<name>\S+)\s+\S+\s+(?P<addr>[0-9a-f]{8})\s+[0-9a-f]+\s+"
                      r"(?P<size>[0-9a-f]+)\s+[0-9a-f]+\s+(?P<flags>[A-Za-z]*)\s", re.M)


class HarnessError(ValueError):
    """Bad harness input (frames, options, sources) or a failed build."""


@dataclass(frozen=True)
class HarnessOptions:
    opt_level: str = "-O2"
    max_frames: int | None = None      # stop (semihosting exit on mps2) after n frames; None: always on
    profile: bool = False              # -DGLT_PROFILE: an `ops:` line of per-op cycles after each result
    profile_repeat: int = 1            # profile builds: run each op this many times per timing (mean reported)
    stack_size: int | None = None      # bytes; None: the board's default
    stats_every: int = 0               # a `stats:` line every n frames (0: only on the `stats` command)
    positive_class: int = 1            # LED on when this class is predicted
    arena_bytes: int = 0               # shown in the boot line unless model.h defines MODEL_ARENA_BYTES
    extra_cflags: tuple[str, ...] = ()
    include_dirs: tuple[str, ...] = () # relative to the build dir (e.g. "runtime")
    cxx_flags: tuple[str, ...] = ()    # extra flags for .cc sources (C++17, arm-none-eabi-g++)
    link_inputs: tuple[str, ...] = ()  # libraries linked after the objects (e.g. a TFLM .a)
    test_fault: int | None = None      # tests only: 1 = crash after boot, 2 = hang after boot


def harness_context(board: Board, *, model_name: str, frames: Sequence[bytes], frame_source: str,
                    options: HarnessOptions, sources: Sequence[str],
                    cxx_sources: Sequence[str] = ()) -> dict:
    """Every variable the harness templates use."""
    frame_bytes = len(frames[0]) if frames else 0
    return {
        "board": board.template_context(),   # the board file as data (memory, uart, led, ...)
        "model_name": model_name,            # one token, shown in the boot line
        "frame_source": frame_source,        # "uart" (host streams frames) or "builtin"
        "frames": [bytes(f) for f in frames],  # built-in frames (raw uint8 HWC), flash
        "frame_bytes": frame_bytes,
        "positive_class": options.positive_class,
        "stats_every": options.stats_every,
        "arena_bytes": options.arena_bytes,
        "stack_size": options.stack_size or board.stack_size,
        "opt_level": options.opt_level,
        "max_frames": options.max_frames,
        "profile": options.profile,
        "profile_repeat": options.profile_repeat,
        "test_fault": options.test_fault,
        "extra_cflags": list(options.extra_cflags),
        "include_dirs": list(options.include_dirs),
        "sources": list(sources),            # every .c file to compile, relative paths
        "cxx_sources": list(cxx_sources),    # every .cc file (compiled and linked with g++ when any)
        "cxx_flags": list(options.cxx_flags),
        "link_inputs": list(options.link_inputs),
        "protocol": protocol.template_constants(),
    }


def _check_inputs(board: Board, model_name: str, frames: Sequence[bytes], frame_source: str,
                  options: HarnessOptions, input_bytes: int | None) -> None:
    if frame_source not in FRAME_SOURCES:
        raise HarnessError(f"frame_source {frame_source!r} not one of {FRAME_SOURCES}")
    if not _TOKEN.match(model_name):
        raise HarnessError(f"model_name {model_name!r} must be one token of letters, digits, _ . - +")
    if frame_source == "builtin" and not frames:
        raise HarnessError("frame_source 'builtin' needs at least one frame")
    sizes = {len(f) for f in frames}
    if len(sizes) > 1:
        raise HarnessError(f"built-in frames differ in size: {sorted(sizes)} bytes")
    if frames and input_bytes is not None and sizes != {input_bytes}:
        raise HarnessError(f"built-in frames have {sizes.pop()} bytes, the model input has {input_bytes}")
    stack = options.stack_size or board.stack_size
    if stack % 8 or stack <= 0 or stack >= board.ram.length:
        raise HarnessError(f"stack_size {stack} must be a positive multiple of 8 below the RAM size")
    if options.max_frames is not None and options.max_frames <= 0:
        raise HarnessError(f"max_frames must be positive (or None for always-on), not {options.max_frames}")
    if options.profile_repeat < 1:
        raise HarnessError(f"profile_repeat must be 1 or more, not {options.profile_repeat}")
    if options.opt_level not in ("-O0", "-O1", "-O2", "-O3", "-Os", "-Og", "-Oz"):
        raise HarnessError(f"opt_level {options.opt_level!r} is not a gcc -O level")


def _read_source(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, Path):
        if not value.is_file():
            raise HarnessError(f"model source file {value} does not exist")
        return value.read_bytes()
    return str(value).encode()


def render_harness(board: "str | Board", out_dir: "str | os.PathLike", *,
                   model_sources: "Mapping[str, str | bytes | Path]",
                   model_name: str = "model",
                   frames: Iterable[bytes] = (),
                   frame_source: str | None = None,
                   options: HarnessOptions | None = None,
                   input_bytes: int | None = None) -> Path:
    """Write harness + model sources + Makefile into out_dir (replaced atomically).

    model_sources: relative path -> file content (str/bytes) or a Path to copy; must
      include model.h and every .c the model needs (e.g. "runtime/bconv.c"); .c files
      are compiled, .cc files too (as C++17, then linked with g++), other files just copied.
    frames: built-in frames (each exactly MODEL_INPUT_BYTES of raw uint8 HWC).
    frame_source: "uart" or "builtin"; default builtin when frames are given.
    input_bytes: the model's MODEL_INPUT_BYTES, to refuse wrongly sized frames early
      (the C build checks it again with a static assertion).
    Returns the build directory.
    """
    board = load_board(board)
    options = options or HarnessOptions()
    frames = [bytes(f) for f in frames]
    frame_source = frame_source or ("builtin" if frames else "uart")
    _check_inputs(board, model_name, frames, frame_source, options, input_bytes)
    if "model.h" not in model_sources:
        raise HarnessError("model_sources must contain model.h (the model interface)")
    ours = set(HARNESS_FILES.values()) | {"board.c", "Makefile"}
    clash = ours & set(model_sources)
    if clash:
        raise HarnessError(f"model_sources would overwrite harness files: {sorted(clash)}")
    for rel in model_sources:
        p = Path(rel)
        if p.is_absolute() or ".." in p.parts:
            raise HarnessError(f"model source path {rel!r} must be relative, inside the build dir")

    sources = ["main.c", "board.c", "startup.c", "console.c", "protocol.c", "frames.c"]
    sources += sorted(r for r in model_sources if r.endswith(".c"))
    cxx_sources = sorted(r for r in model_sources if r.endswith(".cc"))
    ctx = harness_context(board, model_name=model_name, frames=frames, frame_source=frame_source,
                          options=options, sources=sources, cxx_sources=cxx_sources)
    rendered = {out: render(f"harness/{tpl}", **ctx) for tpl, out in HARNESS_FILES.items()}
    rendered["board.c"] = render(f"harness/{board.board_template}", **ctx)
    rendered["Makefile"] = render("harness/Makefile.j2", **ctx)

    out_dir = Path(out_dir)
    with atomic.directory(out_dir) as tmp:  # rename-based: out_dir is never half-written
        for name, text in rendered.items():
            (tmp / name).write_text(text)
        for rel, value in model_sources.items():
            dest = tmp / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(_read_source(value))
    return out_dir


def build_firmware(build_dir: "str | os.PathLike", *, make_args: Sequence[str] = (),
                   jobs: int = 2, timeout: float = 600) -> Path:
    """Run make in build_dir; returns firmware.elf. A failed build raises HarnessError
    with the compiler's output."""
    build_dir = Path(build_dir)
    arm_gcc()          # clear ToolchainError (naming the Debian package) if missing
    make = find_tool("make")
    proc = subprocess.run([make, "-C", str(build_dir), f"-j{jobs}", *make_args],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()
        raise HarnessError(f"firmware build failed in {build_dir}:\n" + "\n".join(out[-40:]))
    elf = build_dir / "firmware.elf"
    if not elf.is_file():
        raise HarnessError(f"make succeeded but {elf} is missing")
    return elf


def size_report(elf: "str | os.PathLike", board: "str | Board", *, top_symbols: int = 15) -> dict:
    """Flash and RAM use of an ELF by section, against the board's capacity.

    Flash = allocated sections placed in the board's flash plus the load image of
    .data; RAM = sections placed in RAM (.stack, .data, .bss). Also the largest
    symbols (nm) so a too-big model shows what to blame.
    """
    board = load_board(board)
    readelf = find_tool("arm-none-eabi-readelf")
    out = subprocess.run([readelf, "-S", "-W", str(elf)], capture_output=True, text=True,
                         check=True).stdout
    sections = {}
    for m in _SECTION.finditer(out):
        name, addr, sz, flags = m["name"], int(m["addr"], 16), int(m["size"], 16), m["flags"]
        if "A" in flags and sz and (board.flash.contains(addr) or board.ram.contains(addr)):
            sections[name] = {"size": sz, "addr": addr,
                              "region": "flash" if board.flash.contains(addr) else "ram"}
    flash = sum(s["size"] for s in sections.values() if s["region"] == "flash")
    flash += sections.get(".data", {}).get("size", 0)      # its initial values live in flash
    ram = sum(s["size"] for s in sections.values() if s["region"] == "ram")
    nm = find_tool("arm-none-eabi-nm")
    syms = []
    nm_out = subprocess.run([nm, "-S", "--size-sort", "-r", "-C", str(elf)],
                            capture_output=True, text=True, check=True).stdout
    for line in nm_out.splitlines()[:top_symbols]:
        parts = line.split()
        if len(parts) >= 4:
            syms.append({"name": parts[3], "size": int(parts[1], 16), "type": parts[2]})
    return {
        "board": board.name,
        "elf": str(elf),
        "sections": {k: v["size"] for k, v in sections.items()},
        "flash_bytes": flash,
        "ram_bytes": ram,
        "stack_bytes": sections.get(".stack", {}).get("size", 0),
        "flash_capacity": board.flash.length,
        "ram_capacity": board.ram.length,
        "flash_fraction": flash / board.flash.length,
        "ram_fraction": ram / board.ram.length,
        "largest_symbols": syms,
    }
