"""Stage: the emulators. Running a firmware ELF in QEMU (mps2 boards) or Renode
(Nucleo boards), and talking to it over its UART with the frame protocol.

    result.py    RunResult, EmulatorError, EmulatorTimeout (what every runner returns/raises)
    qemu.py      QEMU runs and interactive sessions
    renode.py    Renode runs, sessions, and the generated .repl/.resc/.robot files
    protocol.py  the UART frame protocol (host side; the harness renders its C side)

This module chooses between the runners.

QEMU runs the mps2 boards; Renode runs the Nucleo boards when `renode` is
installed. `choose_emulator` makes that choice (or honours a forced one) and says
clearly why a board cannot run here.
"""
from __future__ import annotations

from deploy.boards import toolchain
from deploy.boards.board import Board, load_board
from deploy.emulators.result import STATUSES, EmulatorError, EmulatorTimeout, RunResult  # noqa: F401  (the package's API)

__all__ = ["choose_emulator", "open_session", "run", "RunResult", "EmulatorError", "EmulatorTimeout", "STATUSES"]


def choose_emulator(board: "str | Board", force: str | None = None) -> str:
    """"qemu" or "renode" for this board. force: "qemu" | "renode" | None (automatic)."""
    board = load_board(board)
    if force not in (None, "qemu", "renode"):
        raise EmulatorError(f"unknown emulator {force!r}: choose qemu or renode")
    wanted = force or board.emulator
    if wanted == "qemu":
        if board.qemu is None:
            raise EmulatorError(f"board {board.name} has no QEMU machine (it runs in {board.emulator}); "
                                f"QEMU boards: mps2-an500, mps2-an386")
        toolchain.qemu_system_arm()
        return "qemu"
    if board.renode is None:
        raise EmulatorError(f"board {board.name} has no Renode description (it runs in {board.emulator})")
    if toolchain.renode() is None:
        raise EmulatorError(
            f"board {board.name} runs in Renode, which is not installed (it is not a Debian package: "
            f"install Renode 1.15.3 or 1.16+ from its release packages); the generated .repl/.resc/.robot files "
            f"can still be used elsewhere")
    return "renode"


def open_session(board: "str | Board", elf, *, force: str | None = None, model_name: str | None = None,
                 **kwargs):
    """An interactive session (write bytes / read lines) on the chosen emulator.
    model_name: the name in the firmware's boot line (Renode's generated suite waits
    for it; None: the one deploy/firmware/image.py recorded next to the ELF)."""
    board = load_board(board)
    kind = choose_emulator(board, force)
    if kind == "qemu":
        from deploy.emulators.qemu import QemuSession
        return QemuSession(elf, board, **kwargs)
    from deploy.emulators.renode import RenodeSession
    return RenodeSession(elf, board, model_name=model_name, **kwargs)


def run(board: "str | Board", elf, *, force: str | None = None, timeout: float = 60.0,
        model_name: str | None = None, **kwargs) -> RunResult:
    """Run a firmware to its end (or the timeout) on the chosen emulator.
    model_name: as for open_session (Renode only)."""
    board = load_board(board)
    kind = choose_emulator(board, force)
    if kind == "qemu":
        from deploy.emulators.qemu import run_qemu
        return run_qemu(elf, board, timeout=timeout, **kwargs)
    from deploy.emulators.renode import run_renode
    return run_renode(elf, board, timeout=timeout, model_name=model_name, **kwargs)
