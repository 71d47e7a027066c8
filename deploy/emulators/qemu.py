"""Run firmware in qemu-system-arm (mps2-an500 / mps2-an386).

UART0 is QEMU's stdio: the host writes frame packets to QEMU's stdin and reads the
firmware's lines from its stdout (binary-clean: a plain stdio chardev, no monitor
multiplexer). `-icount shift=0` makes virtual time count instructions (1 ns each),
which the firmware's SysTick counter turns into instruction counts; semihosting
SYS_EXIT_EXTENDED gives QEMU the firmware's exit code.

    with QemuSession(elf, "mps2-an500", timeout=60) as s:
        s.wait_for(r"^larq-glt boot:")
        s.write(packet); line = s.read_line(10)
    result = s.result          # RunResult: status, exit_code, lines
"""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Sequence

from deploy.boards import Board, load_board
from deploy.emulators.result import EmulatorError, EmulatorTimeout, RunResult
from deploy.boards.toolchain import qemu_system_arm

FATAL_PREFIX = "fatal:"


def qemu_command(elf: "str | os.PathLike", board: "str | Board", *, icount_shift: int = 0,
                 extra_args: Sequence[str] = ()) -> list[str]:
    board = load_board(board)
    if not board.qemu:
        raise EmulatorError(f"board {board.name} is not a QEMU board (it runs in {board.emulator})")
    return [qemu_system_arm(), "-M", board.qemu["machine"], "-nographic", "-monitor", "none",
            "-serial", "stdio", "-icount", f"shift={icount_shift}",
            "-semihosting-config", "enable=on,target=native",
            "-kernel", str(Path(elf).resolve()), *extra_args]


class QemuSession:
    """A running QEMU with its UART on pipes. Every session has a deadline
    (`timeout` seconds from start): past it the emulator is killed and the run
    reported as a timeout."""

    def __init__(self, elf, board: "str | Board", *, timeout: float = 120.0,
                 icount_shift: int = 0, extra_args: Sequence[str] = ()):
        self.board = load_board(board)
        self.elf = Path(elf)
        if not self.elf.is_file():
            raise EmulatorError(f"firmware {self.elf} does not exist")
        self.timeout = timeout
        self.command = qemu_command(self.elf, self.board, icount_shift=icount_shift,
                                    extra_args=extra_args)
        self.lines: list[str] = []
        self.result: RunResult | None = None
        self._queue: "queue.Queue[str | None]" = queue.Queue()
        self._stderr: list[bytes] = []
        self._proc: subprocess.Popen | None = None
        self._killed_at_deadline = False
        self._stopped_by_host = False

    # -- lifecycle
    def start(self) -> "QemuSession":
        try:
            self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            raise EmulatorError(f"cannot start QEMU: {exc}") from None
        self._t0 = time.monotonic()
        self._deadline = self._t0 + self.timeout
        self._readers = [threading.Thread(target=f, daemon=True) for f in (self._read_stdout, self._read_stderr)]
        for reader in self._readers:
            reader.start()
        return self

    def __enter__(self) -> "QemuSession":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_stdout(self) -> None:
        buf = b""
        fd = self._proc.stdout.fileno()
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            for raw in done:
                line = raw.decode("ascii", errors="replace").rstrip("\r")
                self.lines.append(line)
                self._queue.put(line)
        if buf:
            line = buf.decode("ascii", errors="replace").rstrip("\r")
            self.lines.append(line)
            self._queue.put(line)
        self._queue.put(None)             # EOF

    def _read_stderr(self) -> None:
        for chunk in iter(lambda: self._proc.stderr.read(4096), b""):
            self._stderr.append(chunk)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _remaining(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        return max(0.0, left if timeout is None else min(timeout, left))

    # -- I/O
    def write(self, data: bytes) -> None:
        if not self.running:
            raise EmulatorError("QEMU is not running: " + self._finish().describe())
        try:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()
        except BrokenPipeError:
            raise EmulatorError("QEMU closed its UART: " + self._finish().describe()) from None

    def read_line(self, timeout: float | None = None) -> str | None:
        """Next UART line, or None after `timeout` s (or at the deadline, or at EOF)."""
        try:
            line = self._queue.get(timeout=self._remaining(timeout))
        except queue.Empty:
            return None
        if line is None:
            self._queue.put(None)         # keep reporting EOF
        return line

    def wait_for(self, pattern: str, timeout: float | None = None) -> "re.Match":
        """Read lines until one matches `pattern` (regex, searched); EmulatorTimeout otherwise."""
        rx = re.compile(pattern)
        end = time.monotonic() + self._remaining(timeout)
        while True:
            line = self.read_line(max(0.0, end - time.monotonic()))
            if line is None:
                why = "QEMU exited" if not self.running else "timed out"
                raise EmulatorTimeout(f"{why} waiting for a line matching {pattern!r}", self.lines[-20:])
            m = rx.search(line)
            if m:
                return m
            if line.startswith(FATAL_PREFIX):
                raise EmulatorError(f"firmware crashed waiting for {pattern!r}: {line}")

    # -- ending
    def wait(self) -> RunResult:
        """Wait for the firmware to stop by itself (until the deadline)."""
        try:
            self._proc.wait(timeout=self._remaining(None))
        except subprocess.TimeoutExpired:
            self._killed_at_deadline = True
            self._kill()
        return self._finish()

    def close(self) -> RunResult:
        """End the session now (an always-on firmware is stopped here)."""
        if self._proc is None:
            raise EmulatorError("session was never started")
        if self.result is None and self.running:
            self._stopped_by_host = True
            self._kill()
        return self._finish()

    def _kill(self) -> None:
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._proc.wait()

    def _finish(self) -> RunResult:
        if self.result is not None:
            return self.result
        if self._proc.poll() is None:
            self._proc.wait()
        for stream in (self._proc.stdin,):
            try:
                stream.close()
            except OSError:
                pass
        # Let the readers drain what QEMU wrote before it ended: the status below
        # reads stderr, which a loaded machine may not have delivered yet.
        end = time.monotonic() + 5.0
        for reader in self._readers:
            reader.join(timeout=max(0.0, end - time.monotonic()))
        rc = self._proc.returncode
        stderr = b"".join(self._stderr).decode(errors="replace")
        fatal = any(l.startswith(FATAL_PREFIX) for l in self.lines)
        if self._killed_at_deadline:
            status, code = "timeout", None
        elif self._stopped_by_host:
            status, code = ("crash", None) if fatal else ("stopped", None)
        elif rc < 0 or "Lockup" in stderr or fatal:
            status, code = "crash", rc
        elif rc != 0 and not self.lines and stderr.strip():
            status, code = "error", rc      # QEMU refused to start (bad machine, bad ELF...)
        else:
            status, code = "exited", rc
        self.result = RunResult(status=status, exit_code=code, lines=list(self.lines), emulator="qemu",
                                elapsed_s=time.monotonic() - self._t0, command=self.command,
                                stderr=stderr)
        return self.result


def run_qemu(elf, board: "str | Board", *, timeout: float = 60.0, input_bytes: bytes = b"",
             icount_shift: int = 0, extra_args: Sequence[str] = ()) -> RunResult:
    """Run a firmware until it exits (semihosting) or `timeout` seconds pass."""
    session = QemuSession(elf, board, timeout=timeout, icount_shift=icount_shift,
                          extra_args=extra_args).start()
    if input_bytes:
        session.write(input_bytes)
    return session.wait()
