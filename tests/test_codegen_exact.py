"""Generated firmware sources on the host against the LCE interpreter, bit for bit.

For each input encoder (GLT, fixed thermometer, natural binary code), a compact
model with random batch norm (negative gammas: thresholds of every sign) and
random GLT thresholds is exported with larq_glt.export, turned into C by
deploy.codegen (fused front end + stem: level tables for the thermometers, front
end strips for NBC), built with gcc and run on 60 frames; the logits must equal
Interpreter(use_reference_bconv=True)'s byte for byte. The default 96x96 topology
is checked the same way, with the optimized and the reference kernels.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import larq_glt  # noqa: F401  (legacy Keras before TensorFlow)
from deploy import codegen
from deploy.firmware import host
from larq_glt import export, flatbuffer, models, opset
from larq_glt.models import Block, ModelConfig

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

N_FRAMES = 60
SMALL = dict(input_size=32, stem_kernel=4, stem_stride=4, stem_filters=32,
             blocks=(Block(64, 1, pool=True), Block(64, 2, pool=False)), num_classes=3)


def randomize(model, seed):
    from larq_glt import testing

    return testing.randomize(model, seed)


def frames_for(shape, n, seed):
    """Uniform noise, smooth images, flat frames and the extremes 0 and 255."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    out = rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8)
    for i in range(n // 3, 2 * n // 3):  # smooth: blocks of 8x8 plus noise
        coarse = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, c)).astype(np.float32)
        img = np.kron(coarse, np.ones((8, 8, 1), np.float32))[:h, :w] + rng.normal(0, 10, (h, w, c))
        out[i] = np.clip(img, 0, 255).astype(np.uint8)
    out[0], out[1] = 0, 255
    out[2] = rng.integers(0, 256, size=c, dtype=np.uint8)  # one colour
    return out


def lce_logits(tflite_path, frames):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    interp = Interpreter(tflite_path.read_bytes(), use_reference_bconv=True)
    return np.stack([np.asarray(interp.predict(f[None]), np.float32).reshape(-1) for f in frames])


def check_exact(tflite_path, tmp_path, seed, reference=False, n=N_FRAMES):
    model = flatbuffer.read_model(tflite_path)
    gen = codegen.generate(model, reference=reference)
    exe = host.build(gen, tmp_path / ("ref" if reference else "opt"))
    frames = frames_for(gen.input_shape, n, seed)
    classes, logits = host.run(exe, frames)
    expected = lce_logits(tflite_path, frames)
    bad = [i for i in range(n) if logits[i].tobytes() != expected[i].tobytes()]
    assert not bad, f"{len(bad)} of {n} frames differ, first {bad[0]}: {logits[bad[0]]} vs {expected[bad[0]]}"
    assert np.array_equal(classes, np.argmax(expected, axis=1))
    return gen


@pytest.fixture(scope="module", params=["glt", "thermo", "nbc"])
def small_model(request, tmp_path_factory):
    encoding = request.param
    model = randomize(models.compact(ModelConfig(**SMALL, encoding=encoding)), seed=len(encoding))
    out = tmp_path_factory.mktemp(encoding) / "export"
    return encoding, export.export_keras(model, out, n_check=4).out_dir / "model.tflite"


def test_small_model_bit_exact(small_model, tmp_path):
    encoding, path = small_model
    gen = check_exact(path, tmp_path, seed=3)
    stem = gen.calls[0]
    assert stem.op_name == "FRONTEND+LceBconv2d" and stem.inputs == (flatbuffer.read_model(path).inputs[0],)
    if encoding == "nbc":  # 256 patterns per channel: front end strips + glt_bconv2d_opt
        assert stem.params["lv_groups"] == 0 and stem.scratch_bytes > 0
    else:  # 9 patterns per channel: level tables
        assert stem.params["lv_groups"] == 1 and stem.params["lv_rows"] == 3 * 9 + 1


def test_default_model_bit_exact_optimized_and_reference(tmp_path):
    """The product topology (96x96x3, GLT with 8 levels, 4x4/4 stem, four grouped
    blocks, 3x3 classifier); its activation arena no longer holds the encoded frame."""
    model = randomize(models.compact(), seed=11)
    path = export.export_keras(model, tmp_path / "export", n_check=4).out_dir / "model.tflite"
    gen = check_exact(path, tmp_path, seed=5)
    assert gen.arena_bytes < 8 * 1024  # the 96x96 encoded frame alone was 36 KB
    check_exact(path, tmp_path, seed=6, reference=True, n=8)


SHIPPED = Path(__file__).resolve().parents[1] / "models" / "person_detect" / "model.tflite"


@pytest.mark.skipif(not SHIPPED.exists(), reason="models/person_detect/model.tflite not present")
def test_shipped_model_bit_exact(tmp_path):
    """The shipped person detector, whose stem sums exceed a byte (segments on
    cores without the DSP extension, one saturating pass with complemented lanes
    on those with it): the generated code equals LCE on 20 frames."""
    gen = check_exact(SHIPPED, tmp_path, seed=20, n=20)
    stem = gen.calls[0]
    taps = stem.params["filter_h"] * stem.params["filter_w"]
    assert stem.params["lv_groups"] >= 1 and stem.params["lv_segment_taps"] < taps, stem.notes
    compare = stem.arrays["lv_compare"].reshape(stem.params["lv_groups"], -1)
    assert (compare[:, 26] == 1).all(), stem.notes  # the DSP cores' single pass decides every lane


@pytest.mark.qemu
@pytest.mark.skipif(not SHIPPED.exists(), reason="models/person_detect/model.tflite not present")
def test_shipped_model_bit_exact_on_cortex_m7(tmp_path):
    """The same on QEMU mps2-an500 (Cortex-M7, DSP extension): the stem's single
    saturating pass over sums beyond a byte equals LCE on 6 frames."""
    from deploy import emulators
    from deploy.firmware import image as firmware
    from deploy.emulators import protocol
    from tests.conftest import have_arm_toolchain

    if not have_arm_toolchain():
        pytest.skip("arm-none-eabi-gcc / qemu-system-arm not installed")
    frames = frames_for((96, 96, 3), 6, seed=21)
    result = firmware.build("mps2-an500", model=SHIPPED, out=tmp_path / "fw", frames=frames, max_frames=6)
    run = emulators.run("mps2-an500", result.elf, timeout=120)
    assert run.status == "exited" and run.exit_code == 0, run.describe()
    results = [r for r in map(protocol.parse_result, run.lines) if r]
    assert len(results) == 6
    want = lce_logits(SHIPPED, frames)
    got = np.array([r.logit_bits for r in results], dtype=np.uint32)
    np.testing.assert_array_equal(got, want.view(np.uint32))


@pytest.mark.parametrize("blocks", [
    # one lane group per group (6x6 after the pool), then a dense one with two lane groups
    (Block(64, 1, pool=True), Block(64, 2, pool=False, shortcut=True), Block(64, 1, pool=False, shortcut=True)),
    # three lane groups (the column list), a shortcut before a pool, a 1x1 shortcut
    (Block(96, 1, pool=False, shortcut=False), Block(96, 1, pool=True, shortcut=True),
     Block(96, 3, pool=False, shortcut=True, kernel=1)),
], ids=["groups", "lanes"])
def test_shortcut_blocks_bit_exact(blocks, tmp_path):
    """Binary shortcut blocks (BN(conv(sign x)) + sign x): LCE's four ops
    (LceDequantize, LceBconv2d to float, ADD, LceQuantize) run as one binary conv
    with two thresholds per channel; random batch norm with negative gammas
    exercises the inverted filters."""
    cfg = ModelConfig(input_size=48, stem_kernel=4, stem_stride=4, stem_filters=blocks[0].filters if
                      blocks[0].shortcut else 32, blocks=blocks, num_classes=3)
    model = randomize(models.compact(cfg), seed=21)
    path = export.export_keras(model, tmp_path / "export", n_check=4).out_dir / "model.tflite"
    fb = flatbuffer.read_model(path)
    assert sum(op.opcode == "ADD" for op in fb.operators) == 2
    assert len(opset.shortcuts(fb)) == 2 and opset.unsupported_ops(fb) == []
    gen = check_exact(path, tmp_path, seed=7)
    fused = [c for c in gen.calls if len(c.op_indices) == 4]
    assert len(fused) == 2 and all(c.op_name == "LceBconv2d+shortcut" for c in fused)
    assert any(c.params["conv.lane_groups"] for c in fused)
    assert all(fb.operators[c.op_indices[0]].opcode == "LceBconv2d" for c in fused)
    check_exact(path, tmp_path, seed=8, reference=True, n=12)


def test_a_shortcut_block_is_never_fused_into_the_stem(small_model):
    """The stem fusion never stores the encoded frame, which a shortcut block
    reads a second time for its bits: a shortcut conv reading the front end stays
    a conv call of its own (compact models never build one; any flatbuffer may)."""
    import dataclasses

    from deploy import lower

    _, path = small_model
    fb = flatbuffer.read_model(path)
    calls = lower.lower_model(fb, fuse_stem=False)
    conv = calls[1]
    assert calls[0].op_name == "FRONTEND" and conv.op_name == "LceBconv2d"
    assert lower.fuse_stem_calls(fb, calls)[0].op_name == "FRONTEND+LceBconv2d"
    shortcut = dataclasses.replace(conv, op_name="LceBconv2d+shortcut")
    kept = lower.fuse_stem_calls(fb, [calls[0], shortcut] + calls[2:])
    assert [c.op_name for c in kept[:2]] == ["FRONTEND", "LceBconv2d+shortcut"]


def test_shortcut_blocks_need_whole_words_per_group():
    cfg = ModelConfig(input_size=32, stem_filters=16, blocks=(Block(16, shortcut=True),))
    assert "multiple of 32 per group" in models.topology_problem(cfg)
    with pytest.raises(models.ModelConfigError, match="multiple of 32 per group"):
        models.compact(cfg)


@pytest.mark.parametrize("blocks", [
    # a shuffle before a pool (6x6 -> 3x3), then one without, into grouped convs
    (Block(64, 1, pool=True), Block(128, 2, pool=True, shuffle=True), Block(128, 4, pool=False, shuffle=True),
     Block(128, 2, pool=False)),
    # three groups of one word each, with the lanes' column list (96 outputs per group)
    (Block(96, 1, pool=False), Block(288, 3, pool=True, shuffle=True), Block(96, 3, pool=False)),
], ids=["pool", "three-groups"])
def test_shuffled_blocks_bit_exact(blocks, tmp_path):
    """Shuffled blocks (larq_glt.shuffle): LCE's float conv, float max pool,
    GATHER and LceQuantize run on bits (conv with bit output, binary pool, word
    copy); random batch norm with negative gammas exercises the inverted filters."""
    cfg = ModelConfig(input_size=48, stem_kernel=4, stem_stride=4, stem_filters=32, blocks=blocks, num_classes=3)
    model = randomize(models.compact(cfg), seed=31)
    path = export.export_keras(model, tmp_path / "export", n_check=4).out_dir / "model.tflite"
    fb = flatbuffer.read_model(path)
    shuffles = opset.word_shuffles(fb)
    assert len(shuffles) == sum(b.shuffle for b in blocks) and opset.unsupported_ops(fb) == []
    assert any(s.pool is not None for s in shuffles)
    gen = check_exact(path, tmp_path, seed=9)
    gathers = [c for c in gen.calls if c.op_name == "GATHER+LceQuantize"]
    assert len(gathers) == len(shuffles)
    assert not any(c.op_name == "LceQuantize" for c in gen.calls[1:])  # no float tensor is stored
    check_exact(path, tmp_path, seed=10, reference=True, n=12)
