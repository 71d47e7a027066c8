"""Boards as data: one TOML file per board in deploy/boards/, loaded into a Board.

Everything board-specific that code needs (memory map, UART, LED, cycle counter,
compiler flags, which emulator runs it) lives in those files; the firmware
templates and the emulator runners read it from here, never from constants of
their own.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

BOARDS_DIR = Path(__file__).resolve().parent  # <name>.toml beside this module

FAMILIES = ("mps2", "stm32f7", "stm32l4")
EMULATORS = ("qemu", "renode")
CYCLE_COUNTERS = ("dwt", "systick")


class BoardError(ValueError):
    """Unknown board or malformed board file."""


@dataclass(frozen=True)
class MemoryRegion:
    origin: int
    length: int

    @property
    def end(self) -> int:
        return self.origin + self.length

    def contains(self, addr: int) -> bool:
        return self.origin <= addr < self.end


@dataclass(frozen=True)
class Uart:
    kind: str            # "cmsdk-apb-uart" | "stm32-usart" | "stm32-lpuart"
    name: str            # peripheral name (Renode's, for the Nucleo boards)
    base: int
    baud: int
    tx: str | None = None
    rx: str | None = None
    af: int | None = None


@dataclass(frozen=True)
class Led:
    kind: str            # "gpio" | "mps2-fpgaio"
    name: str
    pin: int
    port: str | None = None   # GPIO port letter for kind "gpio"
    base: int | None = None   # register address for kind "mps2-fpgaio"

    @property
    def port_index(self) -> int | None:
        return None if self.port is None else ord(self.port.upper()) - ord("A")


@dataclass(frozen=True)
class CycleCounter:
    kind: str            # "dwt" | "systick"
    cycles_per_tick: int = 1


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    family: str
    cpu: str
    cflags: tuple[str, ...]
    clock_hz: int
    emulator: str
    irq_count: int
    stack_size: int
    flash: MemoryRegion
    ram: MemoryRegion
    uart: Uart
    led: Led
    cycle_counter: CycleCounter
    qemu: Mapping[str, Any] | None = None
    renode: Mapping[str, Any] | None = None
    stm32: Mapping[str, Any] | None = None
    source: Path | None = field(default=None, compare=False)

    @property
    def is_stm32(self) -> bool:
        return self.family.startswith("stm32")

    @property
    def board_template(self) -> str:
        """Board support template under firmware_templates/harness/."""
        return "board_stm32.c.j2" if self.is_stm32 else f"board_{self.family}.c.j2"

    def template_context(self) -> dict[str, Any]:
        """The board as plain data for the Jinja templates."""
        return {
            "name": self.name, "description": self.description, "family": self.family,
            "cpu": self.cpu, "cflags": list(self.cflags), "clock_hz": self.clock_hz,
            "emulator": self.emulator, "irq_count": self.irq_count,
            "stack_size": self.stack_size,
            "flash": {"origin": self.flash.origin, "length": self.flash.length},
            "ram": {"origin": self.ram.origin, "length": self.ram.length},
            "uart": vars(self.uart).copy(),
            "led": dict(vars(self.led), port_index=self.led.port_index),
            "cycle_counter": vars(self.cycle_counter).copy(),
            "qemu": dict(self.qemu or {}), "renode": dict(self.renode or {}),
            "stm32": dict(self.stm32 or {}),
        }


def known_boards() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


def load_board(name_or_board: "str | Board") -> Board:
    """Load deploy/boards/<name>.toml. Unknown name -> BoardError listing the known ones."""
    if isinstance(name_or_board, Board):
        return name_or_board
    name = str(name_or_board)
    path = BOARDS_DIR / f"{name}.toml"
    if not path.is_file():
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(known_boards())}")
    return load_board_file(path)


def load_board_file(path: Path) -> Board:
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(f"{path}: not valid TOML: {exc}") from None
    try:
        return _board_from_dict(data, Path(path))
    except KeyError as exc:
        raise BoardError(f"{path}: missing key {exc.args[0]!r}") from None
    except TypeError as exc:
        raise BoardError(f"{path}: malformed entry: {exc}") from None


def _board_from_dict(d: dict, path: Path) -> Board:
    board = Board(
        name=d["name"], description=d["description"], family=d["family"], cpu=d["cpu"],
        cflags=tuple(d["cflags"]), clock_hz=int(d["clock_hz"]), emulator=d["emulator"],
        irq_count=int(d["irq_count"]), stack_size=int(d["stack_size"]),
        flash=MemoryRegion(**d["memory"]["flash"]), ram=MemoryRegion(**d["memory"]["ram"]),
        uart=Uart(**d["uart"]), led=Led(**d["led"]),
        cycle_counter=CycleCounter(**d["cycle_counter"]),
        qemu=d.get("qemu"), renode=d.get("renode"), stm32=d.get("stm32"), source=path,
    )
    problems = []
    if board.name != path.stem:
        problems.append(f"name {board.name!r} differs from the file name {path.stem!r}")
    if board.family not in FAMILIES:
        problems.append(f"family {board.family!r} not one of {FAMILIES}")
    if board.emulator not in EMULATORS:
        problems.append(f"emulator {board.emulator!r} not one of {EMULATORS}")
    if board.cycle_counter.kind not in CYCLE_COUNTERS:
        problems.append(f"cycle_counter.kind {board.cycle_counter.kind!r} not one of {CYCLE_COUNTERS}")
    if board.emulator == "qemu" and not (board.qemu or {}).get("machine"):
        problems.append("emulator qemu needs [qemu] machine")
    if board.is_stm32 and not board.stm32:
        problems.append("an STM32 board needs an [stm32] table")
    if board.emulator == "renode" and not (board.renode or {}).get("uart"):
        problems.append("emulator renode needs [renode] uart")
    if board.led.kind == "gpio" and board.led.port is None:
        problems.append("led kind gpio needs a port")
    if board.stack_size % 8 or board.stack_size >= board.ram.length:
        problems.append(f"stack_size {board.stack_size} must be a multiple of 8 and fit in RAM")
    if problems:
        raise BoardError(f"{path}: " + "; ".join(problems))
    return board
