"""Renode files generated per build, and the Renode runners.

render_renode_files() writes, from firmware_templates/renode/:
  <board>.repl   platform: `using "platforms/cpus/stm32f746.repl"` + DWT + LD1 for
                 nucleo; a self-contained description for nucleo-l4r5zi (Renode 1.15
                 has no STM32L4R5 platform)
  <board>.resc   creates the machine, loads the platform and the ELF, showAnalyzer on the UART
  <board>.robot  renode-test suite: boot line, then the first result lines (built-in
                 frames) or ping/stats answers (UART frame source), and LD1's state
                 after a frame of each LED class

Supported: Renode 1.15.3 and 1.16+. Renode is not installable on the development
machines: these files are checked here for syntax and peripheral names
(tests/test_renode_files.py) and run where Renode is installed (run_renode /
RenodeSession).

Time in Renode is virtual: a Robot `timeout=` counts emulated seconds, and while
the firmware polls its UART, emulated time can run at ~1% of wall time, so a
10 s wait for a line that never comes can take ~15 minutes to fail. The suites'
timeouts are therefore small emulated times, sized from what the firmware needs
(a frame is a few ms of emulated time) with a wide margin, so a stuck firmware
fails in well under a minute of wall time.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from deploy.boards import Board, load_board
from deploy.emulators.result import EmulatorError, EmulatorTimeout, RunResult
from deploy.boards import toolchain
from deploy.templates import render

BOOT_PREFIX = "larq-glt boot: board"


class RenodeError(EmulatorError):
    """Renode files cannot be generated for this input, or Renode failed."""


def _renode_path(p: Path) -> str:
    s = str(Path(p).resolve())
    if any(c.isspace() for c in s) or '"' in s:
        raise RenodeError(f"Renode's @path syntax cannot take whitespace or quotes: {s}")
    return s


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def model_name_of(elf: "str | os.PathLike") -> str | None:
    """The model name a firmware prints in its boot line, from the size.json that
    deploy/firmware/image.py writes next to the ELF; None when there is none."""
    info = Path(elf).parent / "size.json"
    try:
        name = json.loads(info.read_text()).get("model_name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


def render_renode_files(board: "str | Board", elf: "str | os.PathLike", out_dir: "str | os.PathLike", *,
                        model_name: str | None = None, frame_source: str = "builtin",
                        result_count: int = 2, led_classes: "tuple[tuple[int, str], tuple[int, str]] | None" = None,
                        led_frames: int = 4, uart_port: int | None = None, boot_timeout: float = 0.5,
                        result_timeout: float = 0.5, console_timeout: float = 0.1) -> dict[str, Path]:
    """Write <board>.repl/.resc/.robot into out_dir; returns {"repl", "resc", "robot"} paths.

    model_name: the name in the firmware's boot line; None: the one recorded next to
      the ELF by deploy/firmware/image.py (model_name_of), else the suite waits for the boot
      line up to `model ` (substring match) rather than for a wrong name.
    frame_source: the firmware's ("builtin": the test waits for `result_count` result
      lines; "uart": it checks the command console with ping/stats instead).
    led_classes: ((index, name) of the class that lights LD1, (index, name) of one
      that clears it): the built-in-frames suite waits for a result of each and
      asserts LD1's state there (emulation paused on the line). In UART mode LD1 is
      only checked to be off before any frame.
    led_frames: built-in frames in one cycle (bounds the LED waits).
    uart_port: also expose the UART on this TCP port (frame streaming; see RenodeSession).
    *_timeout: emulated (virtual) seconds, see the module docstring: boot line,
      each result line (a frame is a few ms of emulated time), console answers.
    """
    board = load_board(board)
    if board.renode is None:
        raise RenodeError(f"board {board.name} has no [renode] section (it runs in {board.emulator})")
    if frame_source not in ("builtin", "uart"):
        raise RenodeError(f"frame_source {frame_source!r} not one of builtin, uart")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / f"{board.name}.{k}" for k in ("repl", "resc", "robot")}
    if model_name is None:
        model_name = model_name_of(elf)
    boot_line = f"{BOOT_PREFIX} {board.name} model" + (f" {model_name}" if model_name else "")
    ctx = {
        "board": board.template_context(),
        "model_name": model_name or "a larq-glt model",
        "machine_name": f"glt-{board.name}",
        "repl_path": _renode_path(paths["repl"]),
        "resc_path": _renode_path(paths["resc"]),
        "elf_path": _renode_path(Path(elf)),
        "uart_port": uart_port,
        "boot_line": boot_line,
        "result_count": result_count if frame_source == "builtin" else 0,
        "frame_source": frame_source,
        "led_classes": led_classes if frame_source == "builtin" else None,
        "led_check": led_classes is not None,
        "led_timeout": _seconds(result_timeout * (led_frames + 1)),
        "boot_timeout": _seconds(boot_timeout),
        "result_timeout": _seconds(result_timeout),
        "console_timeout": _seconds(console_timeout),
    }
    for kind, tpl in (("repl", "platform.repl.j2"), ("resc", "machine.resc.j2"), ("robot", "test.robot.j2")):
        _write_atomic(paths[kind], render(f"renode/{tpl}", **ctx))
    return paths


def _seconds(t: float) -> str:
    """A Robot timeout argument: seconds without float noise ("0.5", "2")."""
    return f"{t:.6f}".rstrip("0").rstrip(".")


def run_renode(elf, board: "str | Board", *, timeout: float = 300.0, out_dir=None, **render_kwargs) -> RunResult:
    """Run the generated Robot suite with renode-test; exit code 0 = all waits passed."""
    board = load_board(board)
    exe = toolchain.renode_test()
    if exe is None:
        raise RenodeError("renode-test not found: install Renode 1.15.3 or 1.16+ (with its test dependencies)")
    out_dir = Path(out_dir or Path(elf).parent / "renode")
    paths = render_renode_files(board, elf, out_dir, **render_kwargs)
    t0 = time.monotonic()
    cmd = [exe, str(paths["robot"]), "--results-dir", str(out_dir / "results")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return RunResult("timeout", None, out.splitlines(), "renode", time.monotonic() - t0, cmd)
    lines = proc.stdout.splitlines()
    return RunResult("exited", proc.returncode, lines, "renode", time.monotonic() - t0, cmd, proc.stderr)


class RenodeSession:
    """Renode running the generated .resc headless, its UART on a local TCP socket
    (CreateServerSocketTerminal): the same write()/read_line() interface as QemuSession,
    for streaming frames with deploy.protocol.FrameClient."""

    def __init__(self, elf, board: "str | Board", *, timeout: float = 300.0, port: int = 0,
                 out_dir=None, model_name: str | None = None):
        self.board = load_board(board)
        self.timeout = timeout
        self.port = port or _free_port()
        self.out_dir = Path(out_dir or Path(elf).parent / "renode")
        self.paths = render_renode_files(self.board, elf, self.out_dir, model_name=model_name,
                                         frame_source="uart", uart_port=self.port)
        self.lines: list[str] = []
        self._buf = b""
        self._proc = None
        self._sock = None
        self._log = None
        self.log_path = self.out_dir / "renode.log"
        self.result: RunResult | None = None

    def start(self) -> "RenodeSession":
        exe = toolchain.renode()
        if exe is None:
            raise RenodeError("renode not found: install Renode 1.15.3 or 1.16+")
        self.command = [exe, "--disable-gui", "--console", "-p", str(self.paths["resc"]), "-e", "start"]
        # stdin stays open (a pipe, closed in close()): Renode's console monitor quits
        # on end-of-file, disposing the machine ~0.2 s after starting it. Its output
        # goes to a log file, never to an unread pipe that would fill and stall it.
        self._log = open(self.log_path, "wb")
        self._proc = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        self._t0 = time.monotonic()
        self._deadline = self._t0 + self.timeout
        while self._sock is None:
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > self._t0 + 60:
                    code = self._proc.poll()
                    self.close()
                    why = "ended" if code is None else f"exited with code {code}"
                    raise RenodeError(f"Renode did not open the UART socket on port {self.port} "
                                      f"(Renode {why}); last lines of {self.log_path}:\n  "
                                      + "\n  ".join(self.log_tail()))
                time.sleep(0.5)
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def write(self, data: bytes) -> None:
        self._sock.sendall(data)

    def read_line(self, timeout: float | None = None) -> str | None:
        end = min(self._deadline, time.monotonic() + (timeout if timeout is not None else self.timeout))
        while b"\n" not in self._buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(4096)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\n", 1)
        line = raw.decode("ascii", errors="replace").rstrip("\r")
        self.lines.append(line)
        return line

    def wait_for(self, pattern: str, timeout: float | None = None):
        import re
        rx = re.compile(pattern)
        end = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            line = self.read_line(max(0.0, end - time.monotonic()))
            if line is None:
                raise EmulatorTimeout(f"timed out waiting for a line matching {pattern!r}", self.lines[-20:])
            m = rx.search(line)
            if m:
                return m

    def log_tail(self, n: int = 10) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()[-n:]
        except OSError:
            return []

    def close(self) -> RunResult:
        if self.result is not None:
            return self.result
        if self._sock is not None:
            self._sock.close()
        status = "stopped"
        if self._proc is not None and self._proc.poll() is None:
            try:
                self._proc.stdin.close()        # Renode's monitor reads end-of-file and quits
            except OSError:
                pass
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self._proc.pid, 9)    # what is left of its process group
            except ProcessLookupError:
                pass
            self._proc.wait()
        elif self._proc is not None:
            status = "exited"
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        if self._log is not None:
            self._log.close()
        fatal = any(l.startswith("fatal:") for l in self.lines)
        self.result = RunResult("crash" if fatal else status,
                                None if self._proc is None else self._proc.returncode,
                                list(self.lines), "renode", time.monotonic() - getattr(self, "_t0", time.monotonic()),
                                getattr(self, "command", []))
        return self.result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
