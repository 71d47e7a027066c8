"""The QEMU demo end to end: frames streamed over the UART, 100% agreement."""
import pytest

from tests.conftest import have_arm_toolchain


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_qemu_demo_streams_frames_with_full_agreement(exported_default, tmp_path, capsys, monkeypatch):
    import deploy.demo as demo

    monkeypatch.setattr(demo, "ROOT", tmp_path)  # build into the test's own directory
    rc = demo.main(["--board", "mps2-an500", "--model", str(exported_default / "model.tflite"), "--rebuild"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "agreement with the host reference: 4/4 (100.0%)" in out
    frames = [l for l in out.splitlines() if l.startswith("frame ")]
    assert len(frames) == 4 and all("host reference: equal" in l for l in frames)
    assert "accuracy:" in out and "average instructions per frame" in out


@pytest.mark.qemu
@pytest.mark.slow
@pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")
def test_demo_on_an_image_folder_reports_accuracy(exported_default, tmp_path, capsys, monkeypatch):
    import numpy as np
    from PIL import Image

    import deploy.demo as demo

    rng = np.random.default_rng(0)
    for cls in ("person", "non_person"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    (tmp_path / "imgs" / "person" / "broken.png").write_bytes(b"not a png")
    monkeypatch.setattr(demo, "ROOT", tmp_path)
    rc = demo.main(["--board", "mps2-an386", "--model", str(exported_default / "model.tflite"),
                    "--images", str(tmp_path / "imgs"), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.out + captured.err
    assert "agreement with the host reference: 4/4 (100.0%)" in captured.out
    assert "accuracy: " in captured.out and "/4 " in captured.out
    assert "skipped 1 unreadable" in captured.err


def test_demo_unknown_board_is_clear(capsys):
    import deploy.demo as demo

    assert demo.main(["--board", "esp32"]) == 2
    assert "esp32" in capsys.readouterr().err
