"""The C runtime against the LCE interpreter, bit for bit.

Tiny larq models (uint8 thermometer encoder, binary convs with one- and
zero-padding, groups, strides, dilation, 1x1, binary max pools, random batch
norm with negative gammas, a relu-fused conv, global average pooling, a binary
dense layer) are converted with larq_compute_engine, read with
larq_glt.flatbuffer, lowered with deploy.lowering and run call by call through the
host-built kernels (optimized and reference). Outputs must equal
larq_compute_engine's Interpreter(use_reference_bconv=True) byte for byte.

Also here: lowering errors and the front-end table construction on hand-made
models (no converter needed).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from larq_glt.flatbuffer import Model, Operator, Tensor, read_model
from deploy.lower import (
    OUT_BITS,
    OUT_FLOAT,
    UnsupportedOpError,
    bitpack,
    lower_model,
    lower_operator,
)
from deploy.firmware import hostlib

N_INPUTS = 50


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return hostlib.build(tmp_path_factory.mktemp("glt_runtime"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Both models converted once: {name: (keras model, flatbuffer path)}."""
    from tests import lce_models

    out = {}
    d = tmp_path_factory.mktemp("lce_models")
    for name, build in (("body", lce_models.body_model), ("head", lce_models.head_model)):
        keras_model = build()
        path = d / f"{name}.tflite"
        path.write_bytes(lce_models.convert(keras_model))
        out[name] = (keras_model, path)
    return out


def interpreter(path):
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter(path.read_bytes(), use_reference_bconv=True)


def run_calls(lib, model: Model, calls, frame: np.ndarray, reference: bool) -> dict[int, np.ndarray]:
    values = {model.inputs[0]: frame}
    for c in calls:
        values[c.outputs[0]] = hostlib.run_call(lib, c, model.tensors, values[c.inputs[0]], reference)
    return values


def lce_outputs(interp, frame):
    out = interp.predict(frame)
    return out if isinstance(out, list) else [out]


def test_body_model_bit_exact(lib, converted):
    _, path = converted["body"]
    model = read_model(path)
    calls = lower_model(model)
    separate = lower_model(model, fuse_stem=False)
    ops = [c.op_name for c in calls]
    # the front end and the first conv (33 thermometer planes: 2 words, 3x3 one-padded)
    # fuse into one call that reads the frame; its thermometer uses level tables
    assert ops[0] == "FRONTEND+LceBconv2d" and calls[0].inputs == (model.inputs[0],)
    assert calls[0].params["lv_groups"] == 1 and calls[0].params["words"] == 2
    assert [c.op_name for c in separate][:2] == ["FRONTEND", "LceBconv2d"]
    assert ops.count("LceBconv2d") == 4 and ops.count("LceBMaxPool2d") == 2
    bconvs = [c for c in calls if c.op_name == "LceBconv2d"]
    assert {c.params["output_type"] for c in bconvs} == {OUT_BITS, OUT_FLOAT}
    assert any(c.params["zero_padding"] and c.params["groups"] == 2 for c in bconvs)
    assert any(c.params["dilation_h"] == 2 for c in bconvs)
    assert any(c.params["stride_h"] == 2 for c in bconvs)
    interp = interpreter(path)
    rng = np.random.default_rng(11)
    frames = [rng.integers(0, 256, size=(1, 9, 7, 3), dtype=np.uint8) for _ in range(N_INPUTS)]
    frames[0][:] = 0
    frames[1][:] = 255
    for i, frame in enumerate(frames):
        (expected,) = lce_outputs(interp, frame)
        for schedule, reference in ((calls, False), (calls, True), (separate, False)) if i < 10 else ((calls, False),):
            got = run_calls(lib, model, schedule, frame, reference)[model.outputs[0]]
            assert got.dtype == np.float32
            assert got.tobytes() == expected.astype(np.float32).tobytes(), \
                f"frame {i}, reference={reference}, fused={schedule is calls}"


def test_head_model_bit_exact(lib, converted):
    _, path = converted["head"]
    model = read_model(path)
    calls = lower_model(model)
    assert [c.op_name for c in calls] == [
        "FRONTEND+LceBconv2d", "LceBconv2d", "MEAN", "LceQuantize", "LceDequantize",
        "FULLY_CONNECTED", "SOFTMAX"]
    interp = interpreter(path)
    rng = np.random.default_rng(12)
    logits_i, probs_i = model.outputs
    for i in range(N_INPUTS):
        frame = rng.integers(0, 256, size=(1, 12, 10, 3), dtype=np.uint8)
        expected_logits, expected_probs = lce_outputs(interp, frame)
        for reference in (False, True) if i < 10 else (False,):
            values = run_calls(lib, model, calls, frame, reference)
            assert values[logits_i].tobytes() == expected_logits.astype(np.float32).tobytes(), f"frame {i}"
            # softmax: exp without libm, last-bit differences allowed
            np.testing.assert_allclose(values[probs_i], expected_probs, rtol=1e-5, atol=1e-12)
            assert np.argmax(values[probs_i]) == np.argmax(expected_probs)


def test_lowered_parameters_match_lce_rules(converted):
    _, path = converted["head"]
    model = read_model(path)
    calls = lower_model(model, fuse_stem=False)
    conv1, conv2 = calls[1], calls[2]
    # VALID, stride (2, 1) on 12x10 with a 3x3 filter; 30 thermometer planes in one word
    assert (conv1.params["out_h"], conv1.params["out_w"], conv1.params["pad_top"]) == (5, 8, 0)
    assert conv1.params["output_type"] == OUT_BITS
    assert conv1.arrays["thresholds"].min() >= -1 and conv1.arrays["thresholds"].max() <= 1 << 30
    # relu fused into a float-output conv: the true value K - 2*acc must stay >= 0,
    # i.e. LCE clamps 2*acc to [0, K]
    k = 3 * 3 * 64
    assert (conv2.params["clamp_min"], conv2.params["clamp_max"]) == (0, k)
    op = model.operators[conv2.op_indices[0]]
    post_mul = model.tensors[op.inputs[2]].data
    post_bias = model.tensors[op.inputs[3]].data
    assert np.array_equal(conv2.arrays["multiplier"], (-1.0 * post_mul.astype(np.float64)).astype(np.float32))
    expected_bias = (post_bias.astype(np.float64) + k * post_mul.astype(np.float64)).astype(np.float32)
    assert np.array_equal(conv2.arrays["bias"], expected_bias)


def test_frontend_lut_is_the_thermometer(converted):
    keras_model, path = converted["body"]
    model = read_model(path)
    front = lower_model(model, fuse_stem=False)[0]
    from tests.lce_models import Thermometer

    (layer,) = [l for l in keras_model.layers if isinstance(l, Thermometer)]
    t = layer.thresholds.reshape(-1)  # plane j = k * 3 + c
    lut = front.arrays["lut"].reshape(3, 256, front.params["words"])
    values = np.arange(256, dtype=np.float32)
    for c in range(3):
        # plane j of channel c is -1 (bit 1) when x - t_j < 0
        planes = np.zeros((256, t.size), dtype=bool)
        for j in range(c, t.size, 3):
            planes[:, j] = (values - t[j]) < 0
        assert np.array_equal(lut[c], bitpack(planes)), f"channel {c}"


# ------------------------------------------------------------------ lowering errors (no converter)


def t(index, shape, type_name, data=None, scale=None, zero_point=None):
    dtype = {"UINT8": np.uint8, "FLOAT32": np.float32, "INT32": np.int32, "BOOL": np.bool_}[type_name]
    return Tensor(index, f"t{index}", tuple(shape), np.dtype(dtype), type_name,
                  None if data is None else np.asarray(data, dtype=dtype), scale, zero_point)


def encoder_model(mix_channels: bool) -> Model:
    """uint8 [1,4,5,3] -> CAST -> (GATHER channels [0,0,1] + ADD if mixing) -> SUB -> LceQuantize."""
    tensors = [
        t(0, (1, 4, 5, 3), "UINT8"),
        t(1, (1, 4, 5, 3), "FLOAT32"),
        t(2, (3,), "INT32", [0, 0, 1]),
        t(3, (1, 4, 5, 3), "FLOAT32"),
        t(4, (1, 4, 5, 3), "FLOAT32"),
        t(5, (3,), "FLOAT32", [100.5, 20.5, 300.5]),
        t(6, (1, 4, 5, 3), "FLOAT32"),
        t(7, (1, 4, 5, 1), "INT32"),
    ]
    ops = [Operator(0, "CAST", True, (0,), (1,))]
    src = 1
    if mix_channels:
        ops += [Operator(1, "GATHER", True, (1, 2), (3,), {"axis": 3}),
                Operator(2, "ADD", True, (1, 3), (4,), {"fused_activation_function": 0})]
        src = 4
    ops += [Operator(len(ops), "SUB", True, (src, 5), (6,), {"fused_activation_function": 0}),
            Operator(len(ops) + 1, "LceQuantize", False, (6,), (7,), {}, None)]
    return Model("synthetic", 3, "", 1, tuple(tensors), tuple(ops), (0,), (7,))


def test_frontend_lut_of_a_separable_encoder():
    (front,) = lower_model(encoder_model(mix_channels=False))
    assert front.op_name == "FRONTEND" and front.op_indices == (0, 1, 2)
    lut = front.arrays["lut"].reshape(3, 256, 1)
    v = np.arange(256)
    # SUB with thresholds 100.5, 20.5, 300.5: bit c set when x_c < threshold_c;
    # bit 2 never depends on its channel (always < 300.5): a constant, kept in table 0
    assert np.array_equal(lut[0, :, 0], (v < 100.5).astype(np.uint32) | 4)
    assert np.array_equal(lut[1, :, 0], (v < 20.5).astype(np.uint32) << 1)
    assert np.array_equal(lut[2, :, 0], np.zeros(256, np.uint32))
    rng = np.random.default_rng(0)
    for _ in range(5):
        px = rng.integers(0, 256, size=(50, 3))
        ored = lut[0, px[:, 0], 0] | lut[1, px[:, 1], 0] | lut[2, px[:, 2], 0]
        direct = bitpack(px.astype(np.float32) - np.float32([100.5, 20.5, 300.5]) < 0)[:, 0]
        assert np.array_equal(ored, direct)


def test_encoder_mixing_channels_is_refused():
    with pytest.raises(UnsupportedOpError, match="depends on both input channels 0 and 1"):
        lower_model(encoder_model(mix_channels=True))


def test_unsupported_operator_is_named():
    model = encoder_model(mix_channels=False)
    bad = dataclasses.replace(model.operators[2], opcode="CONV_2D", builtin=True)
    with pytest.raises(UnsupportedOpError, match=r"operator 2 \(CONV_2D\) is not supported"):
        lower_operator(model, bad)
    encoder_bad = dataclasses.replace(model, operators=(
        model.operators[0], dataclasses.replace(model.operators[1], opcode="EXP"), model.operators[2]))
    with pytest.raises(UnsupportedOpError, match=r"operator 1 \(EXP\) is not supported in the uint8 input encoder"):
        lower_model(encoder_bad)


def test_bconv_with_inconsistent_output_shape_is_refused():
    filt = np.zeros((8, 3, 3, 1), np.int32)
    tensors = (t(0, (1, 5, 5, 1), "INT32"), t(1, filt.shape, "INT32", filt),
               t(2, (8,), "INT32", np.zeros(8)), t(3, (1, 4, 4, 1), "INT32"))
    opts = dict(channels_in=32, stride_height=1, stride_width=1, dilation_height_factor=1,
                dilation_width_factor=1, padding=0, pad_values=1, fused_activation_function=0)
    op = Operator(0, "LceBconv2d", False, (0, 1, -1, -1, 2), (3,), {}, opts)
    model = Model("synthetic", 3, "", 1, tensors, (op,), (0,), (3,))
    with pytest.raises(UnsupportedOpError, match=r"operator 0 \(LceBconv2d\): output shape \[1, 4, 4, 1\] differs"):
        lower_model(model)


def test_threshold_infinities_are_clamped_for_the_optimized_kernel():
    filt = np.zeros((3, 1, 1, 1), np.int32)
    thr = np.array([-(2**31), 2**31 - 1, 7], np.int32)
    tensors = (t(0, (1, 2, 2, 1), "INT32"), t(1, filt.shape, "INT32", filt),
               t(2, (3,), "INT32", thr), t(3, (1, 2, 2, 1), "INT32"))
    opts = dict(channels_in=32, stride_height=1, stride_width=1, dilation_height_factor=1,
                dilation_width_factor=1, padding=1, pad_values=0, fused_activation_function=0)
    op = Operator(0, "LceBconv2d", False, (0, 1, -1, -1, 2), (3,), {}, opts)
    (call,) = lower_model(Model("synthetic", 3, "", 1, tensors, (op,), (0,), (3,)))
    assert call.arrays["thresholds"].tolist() == [-1, 1 << 30, 7]
