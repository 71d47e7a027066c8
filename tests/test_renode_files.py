"""Generated Renode files (.repl/.resc/.robot): Renode 1.15 conventions, only
peripherals that exist, and Robot waits that match what the firmware prints
(checked against the harness built natively with the stand-in board)."""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from deploy.firmware.harness import render_harness
from deploy.emulators.renode import RenodeError, render_renode_files

STUB = Path(__file__).parent / "fixtures" / "stub_model"

# Peripheral names defined by Renode 1.15.3's platforms/cpus/stm32f746.repl
# (renode/renode at tag v1.15.3, commit 03756cb5a3112fb94aeffef227ddec48db531cad),
# read with the search tool; `sysbus` is implicit in every platform.
STM32F746_REPL_PERIPHERALS = {
    "sysbus", "fsmcBank1", "sram", "flash", "usart1", "usart2", "usart3", "usart6", "can1", "nvic",
    "cpu", "exti", "nvicInput23", "nvicInput40", "gpioPortA", "gpioPortB", "gpioPortC", "gpioPortD",
    "gpioPortE", "gpioPortF", "gpioPortG", "gpioPortH", "gpioPortI", "gpioPortJ", "gpioPortK",
    "ethernet", "rom", "spi1", "spi2", "spi3", "dma1", "dma2", "ltdc", "dma2d", "i2c1", "i2c2", "i2c3",
    "i2c4", "syscfg", "lptim1Isr", "rtc", "rcc", "rng", "pwrCr1", "pwrCsr1", "sdmmc", "flash_regs",
    "timer5", "timer6",
}
# Peripheral model types used (all in Renode 1.15's renode-infrastructure).
RENODE_TYPES = {"Miscellaneous.DWT", "Miscellaneous.LED", "IRQControllers.NVIC", "CPU.CortexM",
                "Memory.MappedMemory", "UART.STM32F7_USART", "GPIOPort.STM32_GPIOPort"}

DEFINITION = re.compile(r"^(\w+):\s*(\S+)\s*@\s*(\w+)?", re.M)   # name: Type @ parent ...
UPDATE = re.compile(r"^(\w+):\s*$", re.M)                        # name:   (block updating it)
CONNECTION = re.compile(r"->\s*(\w+)@")
SYSBUS_REF = re.compile(r"sysbus\.(\w+)(?:\.(\w+))?")


def repl_names(text):
    defined = {m[1]: (m[2], m[3]) for m in DEFINITION.finditer(text)}
    updated = set(UPDATE.findall(text)) - {"init"}
    return defined, updated


@pytest.fixture()
def files(tmp_path):
    def make(board, **kw):
        elf = tmp_path / "fw" / "firmware.elf"
        elf.parent.mkdir(exist_ok=True)
        elf.write_bytes(b"\x7fELF")
        return render_renode_files(board, elf, tmp_path / "renode", model_name="stub", **kw)
    return make


def test_nucleo_repl_builds_on_renode_stm32f746(files):
    paths = files("nucleo")
    text = paths["repl"].read_text()
    assert text.splitlines()[2] == 'using "platforms/cpus/stm32f746.repl"'
    defined, updated = repl_names(text)
    assert defined == {"dwt": ("Miscellaneous.DWT", "sysbus"), "LD1": ("Miscellaneous.LED", "gpioPortB")}
    assert "dwt: Miscellaneous.DWT @ sysbus 0xE0001000\n    frequency: 216000000" in text
    assert "LD1: Miscellaneous.LED @ gpioPortB 0" in text
    assert "gpioPortB:\n    0 -> LD1@0" in text
    # new names do not clash, updated and referenced names exist in stm32f746.repl
    assert not set(defined) & STM32F746_REPL_PERIPHERALS
    known = STM32F746_REPL_PERIPHERALS | set(defined)
    assert updated <= STM32F746_REPL_PERIPHERALS
    assert {p for _, p in defined.values()} <= known
    assert set(CONNECTION.findall(text)) <= known


def test_l4r5zi_repl_is_self_contained(files):
    paths = files("nucleo-l4r5zi")
    text = paths["repl"].read_text()
    assert "using" not in text
    defined, updated = repl_names(text)
    known = set(defined) | {"sysbus"}
    assert {t for t, _ in defined.values()} <= RENODE_TYPES
    assert {p for _, p in defined.values() if p} <= known and updated - {"sysbus"} <= known
    assert set(CONNECTION.findall(text)) <= known
    assert defined["lpuart1"] == ("UART.STM32F7_USART", "sysbus")
    assert "lpuart1: UART.STM32F7_USART @ sysbus 0x40008000" in text and "lowPowerMode: true" in text
    assert "gpioPortC: GPIOPort.STM32_GPIOPort @ sysbus <0x48000800, +0x400>" in text
    assert "LD1: Miscellaneous.LED @ gpioPortC 7" in text
    assert 'Tag <0x40021008 4> "RCC_CFGR" 0x0000000F' in text      # SWS reads as the PLL
    # emulated time at one instruction per 120 MHz cycle (Renode's default would be 100 MIPS)
    assert 'cpuType: "cortex-m4f"\n    nvic: nvic\n    PerformanceInMips: 120\n' in text


@pytest.mark.parametrize("board,uart", [("nucleo", "usart3"), ("nucleo-l4r5zi", "lpuart1")])
def test_resc_and_robot_follow_renode_examples(files, board, uart):
    paths = files(board, led_classes=((1, "person"), (0, "background")))
    resc = paths["resc"].read_text()
    assert "using sysbus" in resc and "mach create $name" in resc
    assert f"machine LoadPlatformDescription @{paths['repl'].resolve()}" in resc
    assert f"showAnalyzer sysbus.{uart}" in resc
    assert re.search(r"\$bin \?= @/\S+/fw/firmware\.elf", resc)
    assert "sysbus LoadELF $bin" in resc and "cpu VectorTableOffset 0x08000000" in resc
    robot = paths["robot"].read_text()
    assert robot.startswith("*** Comments ***\n") and "\n*** Variables ***\n" in robot and "*** Test Cases ***" in robot
    assert re.search(rf"^\$\{{UART\}}\s{{2,}}sysbus\.{uart}$", robot, re.M)
    assert re.search(r"^    Create Terminal Tester    \$\{UART\}$", robot, re.M)
    assert re.search(r"^    Start Emulation$", robot, re.M)
    assert re.search(rf"^    Create LED Tester\s+sysbus\.gpioPort\w\.LD1$", robot, re.M)
    assert re.search(r"^    Assert LED State\s{2,}true\s{2,}timeout=0$", robot, re.M)
    assert re.search(r"^    Assert LED State\s{2,}false\s{2,}timeout=0$", robot, re.M)
    # every peripheral a script names exists in the platform
    text = paths["repl"].read_text()
    defined, _ = repl_names(text)
    known = set(defined) | (STM32F746_REPL_PERIPHERALS if board == "nucleo" else set())
    for m in SYSBUS_REF.finditer(resc + robot):
        assert m[1] in known, m[0]
        if m[2]:
            assert defined.get(m[2], (None, None))[1] == m[1], m[0]


def wait_patterns(robot):
    """The text each `Wait For Line On Uart` waits for (Robot separates arguments by 2+ spaces)."""
    out = []
    for line in robot.splitlines():
        parts = re.split(r"\s{2,}", line.strip())
        if parts[0] == "Wait For Line On Uart":
            assert "=" not in parts[1], line        # a '=' would turn it into a named argument
            assert re.fullmatch(r"timeout=\d+(\.\d+)?", parts[2]), line    # every wait is bounded
            assert all(p == "pauseEmulation=true" for p in parts[3:]), line
            out.append(parts[1])
        elif parts[0] == "Write Line To Uart":
            assert parts[2:] == ["waitForEcho=false"], line   # the firmware echoes nothing
            out.append(("write", parts[1]))
        elif parts[0] == "Assert LED State":
            assert parts[2:] == ["timeout=0"], line
            out.append(("led", parts[1]))
    return out


def host_run(tmp_path, board, frame_source, stdin=b""):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("host gcc not installed")
    # frame 0: channels 1 and 2 outweigh channel 0, the stub says person; frame 1: background
    kw = {"frames": [bytes([0, 100, 100]) * 256, bytes(768)]} if frame_source == "builtin" else {}
    out = render_harness(board, tmp_path / "host", model_name="stub", frame_source=frame_source,
                         model_sources={"model.c": STUB / "model.c", "model.h": STUB / "model.h",
                                        "host_board.c": STUB / "host_board.c"},
                         **kw)
    srcs = ["main.c", "console.c", "protocol.c", "frames.c", "model.c", "host_board.c"]
    subprocess.run([gcc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-DGLT_MAX_FRAMES=5", "-I.", "-o", "h", *srcs, "-lm"],
                   cwd=out, check=True)
    return subprocess.run([str(out / "h")], input=stdin, capture_output=True, check=True,
                          timeout=30).stdout.decode().splitlines()


@pytest.mark.parametrize("board", ["nucleo", "nucleo-l4r5zi"])
def test_robot_waits_match_the_firmware_output(files, tmp_path, board):
    robot = files(board, result_count=2, led_classes=((1, "person"), (0, "background")))["robot"].read_text()
    steps = wait_patterns(robot)
    assert steps[0] == f"larq-glt boot: board {board} model stub"
    # the LED is asserted on after a person result and off after a background one
    assert steps[-4:] == ["class 1 person score", ("led", "true"), "class 0 background score", ("led", "false")]
    assert re.search(r"^    Wait For Line On Uart\s{2,}class 1 person score\s{2,}timeout=[\d.]+\s{2,}pauseEmulation=true$",
                     robot, re.M)
    lines = host_run(tmp_path, board, "builtin")     # frame 0 is a person, frame 1 background
    i = 0
    for p in (s for s in steps if isinstance(s, str)):   # each wait is met, in order
        while p not in lines[i]:
            i += 1
            assert i < len(lines), f"no line contains {p!r}: {lines}"
        i += 1


def test_robot_timeouts_are_small_emulated_times(files):
    """Robot's timeout= is virtual time, which can run at ~1% of wall time while the
    firmware polls its UART: each wait must stay well under a minute of wall time."""
    for source in ("builtin", "uart"):
        robot = files("nucleo", frame_source=source, led_classes=((1, "person"), (0, "background")))["robot"].read_text()
        timeouts = [float(t) for t in re.findall(r"timeout=([\d.]+)", robot)]
        assert timeouts and max(timeouts) <= 3.0, robot
        assert "emulated (virtual) time" in robot


def test_robot_for_uart_firmware_checks_the_console(files, tmp_path):
    robot = files("nucleo", frame_source="uart", led_classes=((1, "person"), (0, "background")))["robot"].read_text()
    steps = wait_patterns(robot)
    assert steps == ["larq-glt boot: board nucleo model stub", ("write", "ping"), "pong",
                     ("write", "stats"), "stats: frames 0", ("led", "false")]
    stdin = b"".join(s[1].encode() + b"\n" for s in steps if isinstance(s, tuple) and s[0] == "write")
    lines = host_run(tmp_path, "nucleo", "uart", stdin=stdin)
    waits = [s for s in steps if isinstance(s, str)]
    found = [next(k for k, l in enumerate(lines) if w in l) for w in waits]
    assert found == sorted(found)


def test_socket_terminal_for_streaming(files):
    resc = files("nucleo", frame_source="uart", uart_port=4567)["resc"].read_text()
    assert 'emulation CreateServerSocketTerminal 4567 "glt_uart" false' in resc
    assert "connector Connect sysbus.usart3 glt_uart" in resc


def test_renode_refuses_qemu_boards_and_odd_paths(tmp_path):
    with pytest.raises(RenodeError, match="no \\[renode\\] section"):
        render_renode_files("mps2-an500", tmp_path / "f.elf", tmp_path)
    with pytest.raises(RenodeError, match="whitespace"):
        render_renode_files("nucleo", tmp_path / "my fw.elf", tmp_path / "r")


# --- process handling, with stand-ins for renode / renode-test on PATH -----------

FAKE_RENODE = Path(__file__).parent / "fixtures" / "fake_renode"


@pytest.fixture()
def fake_renode(monkeypatch):
    monkeypatch.setenv("PATH", f"{FAKE_RENODE}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_RENODE_MODEL", "person_detect")


def fake_build(tmp_path, model_name="person_detect"):
    """A build directory as deploy/firmware/image.py leaves it: the ELF and its size.json."""
    out = tmp_path / "build"
    out.mkdir()
    (out / "firmware.elf").write_bytes(b"\x7fELF")
    (out / "size.json").write_text(json.dumps({"model_name": model_name, "board": "nucleo"}))
    return out / "firmware.elf"


def test_renode_session_keeps_renode_running_until_closed(fake_renode, tmp_path):
    from deploy.emulators.renode import RenodeSession

    with RenodeSession(fake_build(tmp_path), "nucleo", timeout=20) as s:
        boot = s.wait_for(r"^larq-glt boot: .*", timeout=10)
        assert "model person_detect" in boot.group(0)
        time.sleep(0.5)                 # Renode quits ~0.2 s after start when its stdin is at EOF
        assert s._proc.poll() is None, s.log_tail()
        s.write(b"ping\n")
        assert s.wait_for("^pong$", timeout=10)
    res = s.result
    assert res.status == "stopped" and res.lines[-1] == "pong"
    # close() ended Renode through its monitor's end-of-file, not with a kill
    assert s._proc.returncode == 0
    assert "end of input on the monitor" in s.log_path.read_text()


def test_renode_that_quits_is_a_clear_error(fake_renode, tmp_path, monkeypatch):
    from deploy.emulators import renode

    real_popen = subprocess.Popen

    def popen_devnull(cmd, **kw):          # what the session did before: stdin at EOF
        kw["stdin"] = subprocess.DEVNULL
        return real_popen(cmd, **kw)

    monkeypatch.setattr(renode.subprocess, "Popen", popen_devnull)
    with pytest.raises(RenodeError, match="(?s)exited with code 0.*end of input on the monitor"):
        renode.RenodeSession(fake_build(tmp_path), "nucleo", timeout=20).start()


def test_uart_suite_waits_for_the_real_model_name(fake_renode, tmp_path):
    from deploy.emulators.renode import RenodeSession

    elf = fake_build(tmp_path)
    robot = RenodeSession(elf, "nucleo").paths["robot"].read_text()
    assert wait_patterns(robot)[0] == "larq-glt boot: board nucleo model person_detect"
    assert re.search(r"^    Write Line To Uart\s{2,}ping\s{2,}waitForEcho=false$", robot, re.M)
    assert re.search(r"^    Write Line To Uart\s{2,}stats\s{2,}waitForEcho=false$", robot, re.M)
    # an explicit name wins; with no name anywhere the wait stops before the name
    explicit = RenodeSession(elf, "nucleo", model_name="vww").paths["robot"].read_text()
    assert wait_patterns(explicit)[0] == "larq-glt boot: board nucleo model vww"
    (elf.parent / "size.json").unlink()
    unknown = RenodeSession(elf, "nucleo").paths["robot"].read_text()
    assert wait_patterns(unknown)[0] == "larq-glt boot: board nucleo model"


def test_emulator_run_passes_the_model_name(fake_renode, tmp_path):
    from deploy import emulators

    elf = fake_build(tmp_path)
    res = emulators.run("nucleo", elf, timeout=30)
    assert res.ok, res.describe()
    assert any(re.search(r"Wait For Line On Uart\s{2,}larq-glt boot: board nucleo model person_detect\s", l)
               for l in res.lines), res.lines
    res = emulators.run("nucleo", elf, timeout=30, model_name="other")
    assert any("larq-glt boot: board nucleo model other " in l for l in res.lines)


def test_demo_names_renode_counters_for_what_they_are():
    """Renode's DWT counts emulated time x clock: the demo calls it emulated ticks and
    derives instructions with the CPU's PerformanceInMips."""
    from deploy.boards import load_board
    from deploy.demo import counter_unit

    assert counter_unit(load_board("mps2-an500")) == ("instructions", None)
    unit, per = counter_unit(load_board("nucleo"))
    assert unit == "emulated ticks" and per == pytest.approx(462 / 216)
    assert counter_unit(load_board("nucleo-l4r5zi")) == ("emulated ticks", pytest.approx(1.0))
