"""Boards as data (deploy/boards/*.toml), toolchain look-up and emulator choice."""
import os

import pytest

from deploy.boards import toolchain
from deploy.boards import BoardError, known_boards, load_board, load_board_file
from deploy.emulators import EmulatorError, choose_emulator

ALL_BOARDS = ["mps2-an386", "mps2-an500", "nucleo", "nucleo-l4r5zi"]


def test_known_boards_are_the_four_boards():
    assert known_boards() == ALL_BOARDS


@pytest.mark.parametrize("name", ALL_BOARDS)
def test_every_board_file_loads(name):
    b = load_board(name)
    assert b.name == name
    assert b.ram.origin == 0x20000000
    assert b.stack_size < b.ram.length
    assert any(f.startswith("-mcpu=") for f in b.cflags) and "-mthumb" in b.cflags


def test_nucleo_f746zg_memory_map_and_peripherals():
    b = load_board("nucleo")
    assert (b.cpu, b.clock_hz, b.emulator) == ("cortex-m7", 216_000_000, "renode")
    assert (b.flash.origin, b.flash.length) == (0x08000000, 1024 * 1024)
    assert b.ram.length == 320 * 1024
    assert (b.uart.name, b.uart.base, b.uart.tx, b.uart.rx) == ("usart3", 0x40004800, "PD8", "PD9")
    assert (b.led.name, b.led.port, b.led.pin) == ("LD1", "B", 0)
    assert b.cycle_counter.kind == "dwt"
    # Renode 1.15.3 mis-executes the FPv5 VRINTA: single-precision FPv4 code only
    assert "-mfpu=fpv4-sp-d16" in b.cflags and "-mfloat-abi=hard" in b.cflags
    assert b.renode["platform"] == "platforms/cpus/stm32f746.repl"
    assert b.renode["dwt_frequency"] == 216_000_000


def test_nucleo_l4r5zi_memory_map_and_peripherals():
    b = load_board("nucleo-l4r5zi")
    assert (b.cpu, b.clock_hz) == ("cortex-m4", 120_000_000)
    assert (b.flash.length, b.ram.length) == (2 * 1024 * 1024, 640 * 1024)
    assert (b.uart.name, b.uart.base, b.uart.kind) == ("lpuart1", 0x40008000, "stm32-lpuart")
    assert (b.led.port, b.led.pin) == ("C", 7)


@pytest.mark.parametrize("name,machine,cpu", [("mps2-an500", "mps2-an500", "cortex-m7"),
                                              ("mps2-an386", "mps2-an386", "cortex-m4")])
def test_mps2_boards_follow_qemu_model(name, machine, cpu):
    b = load_board(name)
    assert b.emulator == "qemu" and b.qemu["machine"] == machine and b.cpu == cpu
    assert (b.uart.kind, b.uart.base) == ("cmsdk-apb-uart", 0x40004000)
    assert (b.flash.origin, b.flash.length) == (0, 0x400000)     # ZBT SSRAM1
    assert b.clock_hz == 25_000_000
    # 25 MHz SysTick under -icount shift=0 (1 ns per instruction): 40 instructions per tick
    assert (b.cycle_counter.kind, b.cycle_counter.cycles_per_tick) == ("systick", 40)


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(BoardError) as e:
        load_board("nucleo-f999")
    msg = str(e.value)
    assert "nucleo-f999" in msg
    for name in ALL_BOARDS:
        assert name in msg


def test_malformed_board_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\nfamily = "mps2"\n')
    with pytest.raises(BoardError, match="missing key"):
        load_board_file(bad)
    good = (load_board("mps2-an500").source).read_text()
    wrong = tmp_path / "mps2-an500.toml"
    wrong.write_text(good.replace('family = "mps2"', 'family = "avr"'))
    with pytest.raises(BoardError, match="family 'avr'"):
        load_board_file(wrong)


def test_template_context_is_plain_data():
    ctx = load_board("nucleo").template_context()
    assert ctx["led"]["port_index"] == 1
    assert ctx["uart"]["base"] == 0x40004800
    assert ctx["stm32"]["rcc_base"] == 0x40023800


def test_missing_tool_names_the_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(toolchain.ToolchainError, match="gcc-arm-none-eabi"):
        toolchain.arm_gcc()
    with pytest.raises(toolchain.ToolchainError, match="apt-get install qemu-system-arm"):
        toolchain.qemu_system_arm()
    assert "qemu-system-arm" in toolchain.missing_packages()
    with pytest.raises(toolchain.ToolchainError, match="missing Debian packages"):
        toolchain.ensure_installed(run_apt=False)


def test_emulator_choice(monkeypatch):
    if toolchain.have("qemu-system-arm"):
        assert choose_emulator("mps2-an500") == "qemu"
    with pytest.raises(EmulatorError, match="no QEMU machine"):
        choose_emulator("nucleo", force="qemu")
    with pytest.raises(EmulatorError, match="unknown emulator"):
        choose_emulator("nucleo", force="gem5")
    monkeypatch.setattr(toolchain, "renode", lambda: None)
    with pytest.raises(EmulatorError, match="Renode, which is not installed"):
        choose_emulator("nucleo")
    monkeypatch.setattr(toolchain, "renode", lambda: "/opt/renode/renode")
    assert choose_emulator("nucleo") == "renode"
    with pytest.raises(EmulatorError, match="no Renode description"):
        choose_emulator("mps2-an386", force="renode")
