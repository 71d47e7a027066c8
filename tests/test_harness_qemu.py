"""Firmware harness with the stand-in model: builds for every board with -Werror,
and runs on the QEMU boards (boot line, built-in and streamed frames, NAK paths,
deterministic instruction counts, exit codes, crash and hang reports)."""
import random
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from deploy.emulators import protocol
from deploy.boards import known_boards, load_board
from deploy.firmware.harness import HarnessError, HarnessOptions, build_firmware, render_harness, size_report
from deploy.emulators.qemu import QemuSession, run_qemu
from tests.fixtures.stub_model.reference import CLASS_NAMES, stub_reference

STUB = Path(__file__).parent / "fixtures" / "stub_model"
SOURCES = {"model.c": STUB / "model.c", "model.h": STUB / "model.h"}
FRAME_BYTES = 16 * 16 * 3
QEMU_BOARDS = ["mps2-an500", "mps2-an386"]

needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                               reason="arm-none-eabi-gcc not installed (apt-get install gcc-arm-none-eabi)")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None,
                                reason="needs arm-none-eabi-gcc and qemu-system-arm")
pytestmark = pytest.mark.qemu


def frames(n, seed):
    rng = random.Random(seed)
    return [rng.randbytes(FRAME_BYTES) for _ in range(n)]


BUILTIN = frames(3, seed=11)


def build(tmp, board, name, **kw):
    opts = kw.pop("options", HarnessOptions())
    out = render_harness(board, tmp / name, model_sources=SOURCES, model_name="stub", options=opts, **kw)
    return build_firmware(out)


@pytest.fixture(scope="module")
def firmwares(tmp_path_factory):
    """Per QEMU board: a built-in-frames firmware that stops after 4 frames, and an always-on UART one."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    tmp = tmp_path_factory.mktemp("fw")
    out = {}
    for b in QEMU_BOARDS:
        out[b] = {
            "builtin": build(tmp, b, f"{b}-builtin", frames=BUILTIN,
                             options=HarnessOptions(max_frames=4, profile=True, stats_every=2)),
            "uart": build(tmp, b, f"{b}-uart", frame_source="uart"),
        }
    return out


def check_result(line_or_result, frame, number):
    r = protocol.parse_result(line_or_result) if isinstance(line_or_result, str) else line_or_result
    assert r is not None, line_or_result
    cls, bits, score = stub_reference(frame)
    assert r.frame == number
    assert (r.class_index, r.class_name, r.logit_bits) == (cls, CLASS_NAMES[cls], bits)
    assert abs(r.score - score) < 0.0015
    assert r.cycles > 0
    return r


# ------------------------------------------------------------------ builds

@needs_gcc
@pytest.mark.parametrize("board", known_boards())
@pytest.mark.parametrize("source", ["builtin", "uart"])
def test_builds_with_werror_for_every_board(tmp_path, board, source):
    kw = {"frames": BUILTIN} if source == "builtin" else {"frame_source": "uart"}
    elf = build(tmp_path, board, "fw", options=HarnessOptions(profile=True, max_frames=2), **kw)
    b = load_board(board)
    rep = size_report(elf, b)
    assert 0 < rep["flash_bytes"] < b.flash.length and rep["ram_bytes"] < b.ram.length
    assert rep["sections"][".stack"] == b.stack_size == rep["stack_bytes"]
    assert rep["ram_bytes"] >= b.stack_size + rep["sections"].get(".bss", 0)
    assert rep["flash_bytes"] >= rep["sections"][".text"] + rep["sections"].get(".data", 0)
    if source == "builtin":      # the frames are const: flash, not RAM
        assert rep["sections"][".rodata"] >= len(BUILTIN) * FRAME_BYTES
    # the vector table is where the board boots from
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    addr = {l.split()[2]: int(l.split()[0], 16) for l in nm.splitlines() if len(l.split()) == 3}
    assert addr["g_vectors"] == b.flash.origin
    assert b.ram.origin <= addr["__stack_top"] <= b.ram.origin + b.ram.length


def test_bad_harness_inputs_are_refused(tmp_path):
    with pytest.raises(HarnessError, match="differ in size"):
        render_harness("nucleo", tmp_path / "a", model_sources=SOURCES, frames=[b"ab", b"abc"])
    with pytest.raises(HarnessError, match="model input has 768"):
        render_harness("nucleo", tmp_path / "a", model_sources=SOURCES, frames=[b"ab"], input_bytes=768)
    with pytest.raises(HarnessError, match="needs at least one frame"):
        render_harness("nucleo", tmp_path / "a", model_sources=SOURCES, frame_source="builtin")
    with pytest.raises(HarnessError, match="model.h"):
        render_harness("nucleo", tmp_path / "a", model_sources={"model.c": "int x;"})
    with pytest.raises(HarnessError, match="overwrite harness files"):
        render_harness("nucleo", tmp_path / "a", model_sources=dict(SOURCES, **{"main.c": ""}))
    with pytest.raises(HarnessError, match="one token"):
        render_harness("nucleo", tmp_path / "a", model_sources=SOURCES, model_name="my model")
    assert not (tmp_path / "a").exists()


@needs_gcc
def test_wrong_frame_size_fails_the_c_build_too(tmp_path):
    out = render_harness("mps2-an500", tmp_path / "fw", model_sources=SOURCES, frames=[bytes(100)])
    with pytest.raises(HarnessError, match="glt_frame_size_matches_model"):
        build_firmware(out)


def test_render_replaces_the_build_dir_atomically(tmp_path):
    out = tmp_path / "fw"
    render_harness("mps2-an386", out, model_sources=SOURCES, frame_source="uart")
    (out / "stale.o").write_text("old")
    render_harness("mps2-an386", out, model_sources=SOURCES, frames=BUILTIN)
    assert not (out / "stale.o").exists() and (out / "Makefile").is_file()
    assert "glt_builtin_frames" in (out / "frames.c").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw"]      # no temp dirs left


# ------------------------------------------------------------------ QEMU runs

@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_builtin_frames_in_qemu(firmwares, board):
    res = run_qemu(firmwares[board]["builtin"], board, timeout=30)
    assert res.status == "exited" and res.exit_code == 0, res.describe()
    lines = res.lines
    boot = protocol.parse_boot(lines[0])
    assert (boot.board, boot.model, boot.classes) == (board, "stub", 2), lines[0]
    assert boot.fields["input"] == "16x16x3" and boot.fields["source"] == "builtin"
    results = [l for l in lines if l.startswith("result:")]
    assert len(results) == 4
    for n, line in enumerate(results):
        check_result(line, BUILTIN[n % len(BUILTIN)], n)
    ops = [protocol.parse_ops(l) for l in lines if l.startswith("ops:")]
    assert [o["frame"] for o in ops] == [0, 1, 2, 3]
    assert set(ops[0]["ops"]) == {"channel_sums", "logits"} and ops[0]["ops"]["channel_sums"] > 0
    stats = [protocol.parse_stats(l) for l in lines if l.startswith("stats:")]
    assert [s["frames"] for s in stats] == [2, 4, 4]      # every 2 frames, then at the end
    assert 0 < stats[-1]["stack_used"] < stats[-1]["stack_size"] == load_board(board).stack_size
    assert lines[-1] == "done: frames 4"


@needs_qemu
def test_instruction_counts_are_deterministic(firmwares):
    elf = firmwares["mps2-an500"]["builtin"]
    a = run_qemu(elf, "mps2-an500", timeout=30)
    b = run_qemu(elf, "mps2-an500", timeout=30)
    assert a.ok and b.ok
    assert a.lines == b.lines                      # cycles (= instructions) included
    counts = {protocol.parse_result(l).cycles for l in a.lines if l.startswith("result:")}
    assert len(counts) == 1                        # the stub's work does not depend on the pixels


@needs_qemu
@pytest.mark.parametrize("board", QEMU_BOARDS)
def test_streamed_frames_match_host_and_survive_bad_packets(firmwares, board):
    streamed = frames(4, seed=21)
    with QemuSession(firmwares[board]["uart"], board, timeout=90) as s:
        boot = protocol.parse_boot(s.wait_for(r"^larq-glt boot:", 15).string)
        assert boot.fields["source"] == "uart"
        client = protocol.FrameClient(s, timeout=20)
        results = [check_result(client.send(f, i), f, i) for i, f in enumerate(streamed)]
        results.append(check_result(client.send(streamed[3], 50), streamed[3], 50))
        # a damaged payload is refused with NAK, and the resend goes through
        damaged = protocol.encode_frame(streamed[0], 100, corrupt_payload=True)
        check_result(client.send(streamed[0], 100, first_packet=damaged), streamed[0], 100)
        assert len(client.naks) == 1 and client.naks[0].startswith("nak 100 crc ")
        # a frame of the wrong size is rejected, and the firmware keeps running
        nak = client.send_raw_expect_nak(protocol.encode_frame(streamed[1][:-16], 101))
        assert nak == f"nak 101 length {FRAME_BYTES - 16} expected {FRAME_BYTES}"
        results.append(check_result(client.send(streamed[2], 102), streamed[2], 102))
        stats = protocol.parse_stats(client.command("stats", "stats:"))
        assert (stats["frames"], stats["naks"]) == (7, 2)
        assert s.running
    assert s.result.status == "stopped"            # always-on: the host ended it
    # frames arrive at arbitrary moments, yet each costs the same instruction count:
    # the counter is re-phased before every inference (board_cycles_sync)
    assert len({r.cycles for r in results}) == 1


@needs_qemu
def test_crash_is_reported_with_its_location(tmp_path):
    elf = build(tmp_path, "mps2-an386", "crash", frame_source="uart", options=HarnessOptions(test_fault=1))
    res = run_qemu(elf, "mps2-an386", timeout=20)
    assert res.status == "crash" and res.exit_code == 3, res.describe()
    assert res.lines[0].startswith("larq-glt boot:")
    assert res.lines[-1].startswith("fatal: hardfault pc 0x")
    pc = int(res.lines[-1].split()[3], 16)
    nm = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True).stdout
    main = next(l.split() for l in nm.splitlines() if l.endswith(" main"))
    assert int(main[0], 16) <= pc < int(main[0], 16) + int(main[1], 16)    # it faulted in main


@needs_qemu
def test_hang_ends_in_a_timeout_with_the_last_lines(tmp_path):
    elf = build(tmp_path, "mps2-an500", "hang", frame_source="uart", options=HarnessOptions(test_fault=2))
    res = run_qemu(elf, "mps2-an500", timeout=3)
    assert res.status == "timeout" and res.exit_code is None
    assert 3 <= res.elapsed_s < 10
    assert res.tail(1)[0].startswith("larq-glt boot: board mps2-an500")
    assert "timeout" in res.describe()


@needs_gcc
def test_model_sources_in_subdirectories_are_compiled(tmp_path):
    srcs = dict(SOURCES, **{"runtime/extra.h": "int glt_extra(int x);\n",
                            "runtime/extra.c": '#include "extra.h"\nint glt_extra(int x) { return x + 1; }\n'})
    out = render_harness("nucleo", tmp_path / "fw", model_sources=srcs, frame_source="uart",
                         options=HarnessOptions(include_dirs=("runtime",)))
    assert "runtime/extra.c" in (out / "Makefile").read_text()
    build_firmware(out)
    assert (out / "obj" / "runtime" / "extra.o").is_file()


@needs_qemu
def test_lockup_and_emulator_errors_are_classified(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)     # no vector table: the core locks up at reset
    res = run_qemu(junk, "mps2-an500", timeout=10)
    assert res.status == "crash" and "Lockup" in res.stderr
    fw = build(tmp_path, "mps2-an500", "fw", frame_source="uart")
    res = run_qemu(fw, "mps2-an500", timeout=10, extra_args=["-no-such-option"])
    assert res.status == "error" and res.exit_code != 0 and "no-such-option" in res.stderr


@needs_qemu
def test_a_refusal_is_classified_when_its_stderr_arrives_late(tmp_path, monkeypatch):
    # On a loaded machine QEMU's stderr can reach its reader after the process has
    # ended; the status is decided only once both readers have drained their pipes.
    from deploy.emulators import qemu

    slow = qemu.QemuSession._read_stderr

    def late(self):
        time.sleep(0.5)
        slow(self)

    monkeypatch.setattr(qemu.QemuSession, "_read_stderr", late)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\0" * 64)
    res = run_qemu(junk, "mps2-an500", timeout=10, extra_args=["-no-such-option"])
    assert res.status == "error" and "no-such-option" in res.stderr
