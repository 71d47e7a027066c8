"""Firmware generation: host build bit-exact with the LCE interpreter, QEMU
build bit-exact with the host, board fit checks and build.py errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from deploy import codegen
from deploy.firmware import image as firmware
from deploy.firmware import host
from larq_glt.flatbuffer import read_model
from tests.conftest import have_arm_toolchain

needs_arm = pytest.mark.skipif(not have_arm_toolchain(),
                               reason="arm-none-eabi-gcc / qemu-system-arm not installed (make test installs them)")


def _frames(n, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    frames[::3] = np.clip(frames[::3] // 3 + 40, 0, 255)  # some low-contrast, dark frames
    return frames


def _lce(tflite, frames):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    it = Interpreter(tflite.read_bytes(), use_reference_bconv=True)
    return np.concatenate([it.predict(f[None]) for f in frames]).astype(np.float32)


@pytest.mark.parametrize("reference", [False, True])
def test_host_build_is_bit_exact_with_lce(exported_default, tmp_path, reference):
    tflite = exported_default / "model.tflite"
    gen = codegen.generate(read_model(tflite), class_names=["non_person", "person"], reference=reference)
    exe = host.build(gen, tmp_path / "host")
    frames = _frames(50)
    classes, logits = host.run(exe, frames)
    want = _lce(tflite, frames)
    np.testing.assert_array_equal(logits.view(np.uint32), want.view(np.uint32))
    np.testing.assert_array_equal(classes, want.argmax(1))


def test_generated_sources_are_deterministic(exported_default):
    fb = read_model(exported_default / "model.tflite")
    a = codegen.generate(fb, class_names=["n", "p"]).sources
    b = codegen.generate(fb, class_names=["n", "p"]).sources
    assert a == b
    assert "static const uint32_t" in a["model.c"] and "model_invoke" in a["model.c"]


@needs_arm
@pytest.mark.qemu
@pytest.mark.slow
def test_qemu_firmware_matches_host_and_lce(exported_default, tmp_path):
    from deploy import emulators
    from deploy.emulators import protocol

    frames = _frames(4, seed=3)
    result = firmware.build("mps2-an500", model=exported_default / "model.tflite", out=tmp_path / "fw",
                            frames=frames, max_frames=4, profile=True)
    run = emulators.run("mps2-an500", result.elf, timeout=120)
    assert run.status == "exited" and run.exit_code == 0, run.describe()
    results = [r for r in map(protocol.parse_result, run.lines) if r]
    assert len(results) == 4
    want = _lce(exported_default / "model.tflite", frames)
    got = np.array([r.logit_bits for r in results], dtype=np.uint32)
    np.testing.assert_array_equal(got, want.view(np.uint32))
    exe = host.build(result.generated, tmp_path / "host")
    _, host_logits = host.run(exe, frames)
    np.testing.assert_array_equal(got, host_logits.view(np.uint32))
    instructions = [r.cycles for r in results]
    print("instructions per inference on mps2-an500:", instructions)
    assert all(100_000 < n < 50_000_000 for n in instructions)
    ops = [protocol.parse_ops(l) for l in run.lines if l.startswith("ops:")]
    assert len(ops) == 4
    assert "selfcheck: ok" in run.lines


def wake_lines(results, led="LED0"):
    """The wake/sleep lines a QEMU board prints for these results (LED off at boot)."""
    out, on = [], False
    for r in results:
        wake = r.class_name == "person"
        if wake != on:
            out.append(f"{'wake' if wake else 'sleep'}: {led} {'on' if wake else 'off'} at frame {r.frame} "
                       f"class {r.class_name}")
        on = wake
    return out


@needs_arm
@pytest.mark.qemu
@pytest.mark.slow
def test_forced_selfcheck_failure_is_reported_and_results_stay_exact(exported_default, tmp_path):
    """A build that simulates a broken SIMD comparison (GE flags inverted, as
    Renode 1.15.3's USUB8): the boot self-check names it in a clear line, the
    stem runs its portable path, and every logit still equals LCE's. The board
    prints the LED's wake/sleep transitions."""
    from deploy import emulators
    from deploy.emulators import protocol
    from deploy.firmware import samples

    sample_frames, _, _ = samples.load((96, 96, 3))
    frames = np.concatenate([sample_frames, _frames(2, seed=3)])
    result = firmware.build("mps2-an500", model=exported_default / "model.tflite", out=tmp_path / "fw",
                            frames=frames, max_frames=len(frames), simulate_broken_simd=True)
    run = emulators.run("mps2-an500", result.elf, timeout=180)
    assert run.status == "exited" and run.exit_code == 0, run.describe()
    assert run.lines[0].startswith("larq-glt boot: board mps2-an500 model export ")
    assert run.lines[1] == ("selfcheck: FAILED stem SIMD: UADD8+SEL comparison (GE flags); "
                            "using the portable path (slower, results exact)"), run.lines[:3]
    results = [r for r in map(protocol.parse_result, run.lines) if r]
    want = _lce(exported_default / "model.tflite", frames)
    np.testing.assert_array_equal(np.array([r.logit_bits for r in results], dtype=np.uint32),
                                  want.view(np.uint32))
    assert [l for l in run.lines if l.startswith(("wake:", "sleep:"))] == wake_lines(results)


@needs_arm
@pytest.mark.qemu
@pytest.mark.slow
def test_profile_repeat_gives_per_call_counts(exported_default, tmp_path):
    """PROFILE_REPEAT runs each op n times per timing and prints the mean: the same
    logits, per-op counts within one SysTick tick (40 instructions) of the single
    run's once a common offset is removed, and a result-line total that counts every
    repeat. The offset is the median difference: the timer read (board_cycles, a
    few dozen instructions) is paid once per timing, so a single run's count holds
    all of it and a mean of n only 1/n; it must stay under one tick itself (it is
    ~23 here). Each difference is then within 45 of the true offset (the single
    timing is off by less than a tick, 40, the mean by less than 40 / 8), so all
    of them lie in a window narrower than 90; the median only estimates that
    offset, so the window is checked, not the distance to the median."""
    from deploy import emulators
    from deploy.emulators import protocol

    frames = _frames(2, seed=5)
    runs = {}
    for repeat in (1, 8):
        result = firmware.build("mps2-an500", model=exported_default / "model.tflite",
                                out=tmp_path / f"fw{repeat}", frames=frames, max_frames=2, profile=True,
                                profile_repeat=repeat)
        run = emulators.run("mps2-an500", result.elf, timeout=120)
        assert run.status == "exited" and run.exit_code == 0, run.describe()
        runs[repeat] = ([r for r in map(protocol.parse_result, run.lines) if r],
                        [protocol.parse_ops(l)["ops"] for l in run.lines if l.startswith("ops:")])
    (one, one_ops), (rep, rep_ops) = runs[1], runs[8]
    assert [r.logit_bits for r in one] == [r.logit_bits for r in rep]
    diffs = {}
    for k, (single, mean) in enumerate(zip(one_ops, rep_ops)):
        assert single.keys() == mean.keys()
        diffs.update({(k, name): single[name] - mean[name] for name in single})
    offset = float(np.median(list(diffs.values())))
    assert -5 <= offset <= 40, offset
    low, high = min(diffs.items(), key=lambda kv: kv[1]), max(diffs.items(), key=lambda kv: kv[1])
    assert high[1] - low[1] < 90, (low, high, offset)
    for a, b in zip(one, rep):
        assert 7 * a.cycles < b.cycles < 9 * a.cycles


@needs_arm
def test_nucleo_build_and_size_report(exported_default, tmp_path):
    out = tmp_path / "nucleo"
    proc = subprocess.run([sys.executable, "deploy/build.py", "--board", "nucleo", "--model",
                           str(exported_default / "model.tflite"), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "flash:" in proc.stdout and "arena peak" in proc.stdout
    size = json.loads((out / "size.json").read_text())
    assert 0 < size["flash_bytes"] < 1024 * 1024 and size["board"] == "nucleo"
    assert (out / "firmware.elf").is_file()
    assert (out / "renode" / "nucleo.resc").is_file() and (out / "renode" / "nucleo.robot").is_file()
    robot = (out / "renode" / "nucleo.robot").read_text()
    assert "Wait For Line On Uart     larq-glt boot: board nucleo model export    " in robot
    assert "Wait For Line On Uart     class 1 person score    " in robot
    assert "Wait For Line On Uart     class 0 non_person score    " in robot
    assert robot.count("Assert LED State") == 2
    # Built for the STM32F746's memory map: vector table at the start of flash.
    readelf = subprocess.run(["arm-none-eabi-readelf", "-S", str(out / "firmware.elf")], capture_output=True, text=True).stdout
    assert " 08000000 " in readelf


def test_unknown_board_lists_known_ones(exported_default, capsys):
    from deploy import build

    assert build.main(["--board", "arduino", "--model", str(exported_default / "model.tflite")]) == 2
    err = capsys.readouterr().err
    assert "arduino" in err and "nucleo" in err and "mps2-an500" in err


def test_bad_profile_repeat_is_refused(exported_default, capsys):
    from deploy import build

    model = str(exported_default / "model.tflite")
    assert build.main(["--board", "mps2-an500", "--model", model, "--profile", "--profile-repeat", "0"]) == 2
    assert "--profile-repeat must be 1 or more, got 0" in capsys.readouterr().err
    assert build.main(["--board", "mps2-an500", "--model", model, "--profile-repeat", "4"]) == 2
    assert "--profile-repeat needs --profile" in capsys.readouterr().err


def test_stem_table_cap_reaches_the_generator(exported_default, tmp_path, monkeypatch, capsys):
    """--stem-table-kib N: N KiB reach firmware.build; a cap at the tables' size
    keeps them, a byte less takes the words algorithm; size.json records the cap."""
    from deploy import build
    from deploy import lower

    model = str(exported_default / "model.tflite")
    assert build.main(["--board", "mps2-an500", "--model", model, "--stem-table-kib", "-1"]) == 2
    assert "--stem-table-kib must be 0 or more, got -1" in capsys.readouterr().err
    seen = {}

    def fake_build(board, **kw):
        seen.update(kw)
        raise firmware.FirmwareError("stop here")

    with monkeypatch.context() as m:
        m.setattr(firmware, "build", fake_build)
        assert build.main(["--board", "mps2-an500", "--model", model, "--stem-table-kib", "16"]) == 2
        assert seen["stem_table_max_bytes"] == 16 * 1024
        assert build.main(["--board", "mps2-an500", "--model", model]) == 2
        assert seen["stem_table_max_bytes"] is None
    fb = read_model(model)
    tables = codegen.generate(fb).calls[0].arrays["lv_table"].nbytes
    assert tables > 1024
    assert codegen.generate(fb, stem_table_max_bytes=tables).calls[0].params["lv_groups"] > 0
    words = codegen.generate(fb, stem_table_max_bytes=tables - 1).calls[0]
    assert words.params["lv_groups"] == 0 and f"level tables over {tables - 1:,} bytes" in words.notes[1]
    assert "level tables disabled" in codegen.generate(fb, stem_table_max_bytes=0).calls[0].notes[1]
    out = tmp_path / "b"
    firmware.build("mps2-an500", model=model, out=out, compile=False, stem_table_max_bytes=tables - 1)
    assert ".lv_groups = 0," in (out / "model.c").read_text()  # the words algorithm
    assert json.loads((out / "size.json").read_text())["stem_table_max_bytes"] == tables - 1
    firmware.build("mps2-an500", model=model, out=tmp_path / "d", compile=False)
    assert ".lv_groups = 0," not in (tmp_path / "d" / "model.c").read_text()
    assert json.loads((tmp_path / "d" / "size.json").read_text())["stem_table_max_bytes"] == lower.STEM_TABLE_MAX_BYTES


def test_model_that_does_not_fit_is_refused_before_compiling(exported_default, tmp_path, monkeypatch):
    from deploy.boards import board as boards

    real = boards.load_board("mps2-an386")
    tiny = boards.Board(**{**real.__dict__, "ram": boards.MemoryRegion(real.ram.origin, 16 * 1024)})
    monkeypatch.setattr(firmware, "load_board", lambda b: tiny)
    with pytest.raises(firmware.FirmwareError, match=r"does not fit.*RAM: arena [\d,]+ \+ stack"):
        firmware.build("mps2-an386", model=exported_default / "model.tflite", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_missing_model_file_is_clear(tmp_path):
    with pytest.raises(firmware.FirmwareError, match="no such file"):
        firmware.build("mps2-an500", model=tmp_path / "nope.tflite", out=tmp_path / "o")


def test_corrupt_model_is_refused(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(firmware.FirmwareError):
        firmware.build("mps2-an500", model=bad, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()
