"""How an emulator run ends, and how it fails: the types every runner returns
and raises (QEMU, Renode, the frame client), in a module of their own so that
the runners import nothing back from the package that chooses between them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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
