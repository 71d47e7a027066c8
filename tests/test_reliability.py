"""Reliability: deterministic outputs, sanitized kernels, guarded arenas,
fuzzed inputs, and builds that never leave a half-written directory."""
import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy import codegen
from deploy.firmware import image as firmware
from deploy.firmware import harness
from deploy.firmware import host
from deploy import lower
from larq_glt.flatbuffer import ModelFormatError, read_model, read_model_bytes
from tests.conftest import have_arm_toolchain

needs_arm = pytest.mark.skipif(not have_arm_toolchain(), reason="arm-none-eabi-gcc / qemu-system-arm not installed")


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_arm
@pytest.mark.slow
def test_same_model_gives_identical_sources_and_elf(exported_default, tmp_path):
    a = firmware.build("mps2-an500", model=exported_default / "model.tflite", out=tmp_path / "a")
    b = firmware.build("mps2-an500", model=exported_default / "model.tflite", out=tmp_path / "other" / "b")
    for rel in a.generated.sources:
        assert (a.out_dir / rel).read_bytes() == (b.out_dir / rel).read_bytes(), rel
    assert _sha(a.elf) == _sha(b.elf)


def test_host_runtime_under_asan_and_ubsan(exported_default, tmp_path):
    gen = codegen.generate(read_model(exported_default / "model.tflite"), class_names=["n", "p"])
    exe = host.build(gen, tmp_path / "asan", sanitize=True, extra_cflags=["-DGLT_DEBUG"])
    frames = np.random.default_rng(0).integers(0, 256, (12, 96, 96, 3), dtype=np.uint8)
    frames[0] = 0
    frames[1] = 255
    _, sanitized = host.run(exe, frames)
    _, plain = host.run(host.build(gen, tmp_path / "plain"), frames)
    np.testing.assert_array_equal(sanitized.view(np.uint32), plain.view(np.uint32))


def test_reference_kernels_under_sanitizers(exported_default, tmp_path):
    gen = codegen.generate(read_model(exported_default / "model.tflite"), class_names=["n", "p"], reference=True)
    exe = host.build(gen, tmp_path / "ref", sanitize=True)
    host.run(exe, np.random.default_rng(1).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8))


def test_debug_guard_catches_a_kernel_writing_past_its_tensor(exported_default, tmp_path, monkeypatch):
    real_plan = codegen.memory_plan.plan

    def shifted(buffers):
        # Move the last tensor to the very end of the arena so that it overruns by 16 bytes.
        p = real_plan(buffers)
        last = max(buffers, key=lambda b: b.first)
        p.offsets[last.name] = p.peak - last.size + 16
        return p

    monkeypatch.setattr(codegen.memory_plan, "plan", shifted)
    gen = codegen.generate(read_model(exported_default / "model.tflite"), class_names=["n", "p"])
    exe = host.build(gen, tmp_path / "dbg", extra_cflags=["-DGLT_DEBUG"])
    with pytest.raises(host.HostBuildError, match="arena bounds broken by op"):
        host.run(exe, np.zeros((1, 96, 96, 3), np.uint8))


@pytest.fixture(scope="module")
def small_flatbuffer(tmp_path_factory):
    import larq_glt  # noqa: F401
    from larq_glt import export, models
    from larq_glt.models import Block, ModelConfig

    cfg = ModelConfig(input_size=16, stem_kernel=2, stem_stride=2, blocks=(Block(32, 1, pool=True),), num_classes=2)
    out = tmp_path_factory.mktemp("fuzz") / "e"
    export.export_keras(models.compact(cfg), out, n_check=4)
    return (out / "model.tflite").read_bytes()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_flatbuffers_generate_code_or_raise_clear_errors(small_flatbuffer, data):
    blob = bytearray(small_flatbuffer)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "byte", "truncate", "zero_run"]))
        i = data.draw(st.integers(0, len(blob) - 1))
        if kind == "flip":
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "byte":
            blob[i] = data.draw(st.integers(0, 255))
        elif kind == "truncate":
            del blob[max(8, i):]
        else:
            blob[i:i + 16] = bytes(len(blob[i:i + 16]))
    try:
        model = read_model_bytes(bytes(blob), "fuzzed.tflite")
        codegen.generate(model)
    except (ModelFormatError, lower.UnsupportedOpError, codegen.CodegenError):
        pass  # the project's clear errors


@needs_arm
def test_failed_build_keeps_the_previous_output(exported_default, tmp_path, monkeypatch):
    out = tmp_path / "fw"
    firmware.build("mps2-an386", model=exported_default / "model.tflite", out=out)
    before = _sha(out / "firmware.elf")

    def broken(*a, **k):
        raise harness.HarnessError("simulated compiler failure")

    monkeypatch.setattr(harness, "build_firmware", broken)
    with pytest.raises(firmware.FirmwareError, match="simulated compiler failure"):
        firmware.build("mps2-an386", model=exported_default / "model.tflite", out=out)
    assert _sha(out / "firmware.elf") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fw"], "no staging directory left behind"


def test_plain_tflite_model_is_refused(tmp_path):
    import larq_glt  # noqa: F401
    import tensorflow as tf
    import tf_keras as keras

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inputs))))
    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    with pytest.raises(firmware.FirmwareError, match="raw uint8 image"):
        firmware.build("mps2-an500", model=path, out=tmp_path / "o")
