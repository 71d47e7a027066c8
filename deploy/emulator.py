"""Common run result of the emulator runners and the choice between them.

QEMU runs the mps2 boards; Renode runs the Nucleo boards when `renode` is
installed. `choose_emulator` makes that choice (or honours a forced one) and says
clearly why a board cannot run here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from deploy.boards import Board, load_board
from deploy import toolchain

STATUSES = ("exited", "stopped", "timeout", "crash", "error")


class EmulatorError(RuntimeError):
    """The emulator could not be started, or a board cannot run on the chosen one."""


class EmulatorTimeout(EmulatorError):
    """An expected line did not arrive in time (the firmware hangs or is too slow)."""

    def __init__(self, message: str, tail: list[str]):
        super().__init__(message + ("\nlast UART lines:\n  " + "\n  ".join(tail) if tail else
                                    "\n(no UART output)"))
        self.tail = tail


@dataclass
class RunResult:
    """How an emulator run ended.

    status: "exited" (the firmware stopped itself; exit_code is its code),
            "stopped" (still running when the host ended the session: the always-on case),
            "timeout" (still running at the run's deadline: a hang),
            "crash" (fault handler report, emulator abort/lockup, or a signal),
            "error" (the emulator itself failed to start or run).
    """
    status: str
    exit_code: int | None
    lines: list[str] = field(default_factory=list)
    emulator: str = ""
    elapsed_s: float = 0.0
    command: list[str] = field(default_factory=list)
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "exited" and self.exit_code == 0

    def tail(self, n: int = 20) -> list[str]:
        return self.lines[-n:]

    def describe(self) -> str:
        code = "" if self.exit_code is None else f" (code {self.exit_code})"
        last = "\n  ".join(self.tail(10)) or "(no UART output)"
        extra = f"\nemulator stderr: {self.stderr.strip()[-500:]}" if self.stderr.strip() else ""
        return f"{self.emulator}: {self.status}{code} after {self.elapsed_s:.1f} s; last UART lines:\n  {last}{extra}"


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
    for it; None: the one deploy/firmware.py recorded next to the ELF)."""
    board = load_board(board)
    kind = choose_emulator(board, force)
    if kind == "qemu":
        from deploy.qemu import QemuSession
        return QemuSession(elf, board, **kwargs)
    from deploy.renode import RenodeSession
    return RenodeSession(elf, board, model_name=model_name, **kwargs)


def run(board: "str | Board", elf, *, force: str | None = None, timeout: float = 60.0,
        model_name: str | None = None, **kwargs) -> RunResult:
    """Run a firmware to its end (or the timeout) on the chosen emulator.
    model_name: as for open_session (Renode only)."""
    board = load_board(board)
    kind = choose_emulator(board, force)
    if kind == "qemu":
        from deploy.qemu import run_qemu
        return run_qemu(elf, board, timeout=timeout, **kwargs)
    from deploy.renode import run_renode
    return run_renode(elf, board, timeout=timeout, model_name=model_name, **kwargs)
