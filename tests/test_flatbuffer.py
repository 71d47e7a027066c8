"""larq_glt/flatbuffer.py: reading models, and clear errors for bad files.

A real LCE-converted model is read in test_kernels_vs_lce.py (it needs the
converter); here the flatbuffers are built in Python, so the tests are fast.
"""
from __future__ import annotations

import random
import time

import numpy as np
import pytest

from larq_glt.flatbuffer import ModelFormatError, read_model, read_model_bytes
from tests.kernels.fbbuild import OpSpec, TensorSpec, build_model


def small_model() -> bytes:
    return build_model(
        tensors=[
            TensorSpec("input", [1, 2, 3, 40], "FLOAT32"),
            TensorSpec("shape", [2], "INT32", data=np.array([6, 40], np.int32)),
            TensorSpec("flat", [6, 40], "FLOAT32"),
            TensorSpec("packed", [6, 2], "INT32"),
            TensorSpec("filter", [2, 1, 1, 2], "INT32", data=np.arange(4, dtype=np.int32) - 2),
            TensorSpec("q", [3], "INT8", data=np.array([1, -2, 3], np.int8), scale=[0.5], zero_point=[-3]),
        ],
        operators=[
            OpSpec("RESHAPE", [0, 1], [2], reshape=[6, 40]),
            OpSpec("LceQuantize", [2], [3]),
            OpSpec("LceBconv2d", [3, 4, -1, -1, -1], [3],
                   custom_options={"channels_in": 40, "stride_height": 2, "padding": 1}),
        ],
        inputs=[0],
        outputs=[3],
        description="made in a test",
    )


def test_reads_tensors_operators_and_options(tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(small_model())
    m = read_model(path)
    assert (m.version, m.description, m.subgraph_count) == (3, "made in a test", 1)
    assert m.inputs == (0,) and m.outputs == (3,)
    assert [t.name for t in m.tensors] == ["input", "shape", "flat", "packed", "filter", "q"]
    inp, shape, _, packed, filt, q = m.tensors
    assert inp.shape == (1, 2, 3, 40) and inp.dtype == np.float32 and inp.data is None
    assert inp.nbytes == 2 * 3 * 40 * 4
    assert shape.data.tolist() == [6, 40] and shape.dtype == np.int32
    assert filt.data.shape == (2, 1, 1, 2) and filt.data.reshape(-1).tolist() == [-2, -1, 0, 1]
    assert not filt.data.flags.writeable
    assert packed.type_name == "INT32" and packed.data is None
    assert q.dtype == np.int8 and q.scale.tolist() == [0.5] and q.zero_point.tolist() == [-3]
    reshape, quantize, bconv = m.operators
    assert (reshape.opcode, reshape.builtin, reshape.inputs, reshape.outputs) == ("RESHAPE", True, (0, 1), (2,))
    assert reshape.builtin_options == {"new_shape": [6, 40]}
    assert (quantize.opcode, quantize.builtin, quantize.custom_options) == ("LceQuantize", False, None)
    assert bconv.inputs == (3, 4, -1, -1, -1)
    assert bconv.custom_options == {"channels_in": 40, "stride_height": 2, "padding": 1}
    assert m.producer(2) is reshape and m.consumers(3) == [bconv]


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        read_model(tmp_path / "absent.tflite")
    with pytest.raises(ModelFormatError, match="directory"):
        read_model(tmp_path)


@pytest.mark.parametrize("content,match", [
    (b"", "too short"),
    (b"TFL3", "too short"),
    (b"\x00" * 64, "not a TFLite flatbuffer"),
    (b"PK\x03\x04" + b"\x00" * 60, "not a TFLite flatbuffer"),  # a zip file
    (b'{"model": 1}' + b" " * 40, "not a TFLite flatbuffer"),
])
def test_not_a_tflite_file(tmp_path, content, match):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError, match=match) as e:
        read_model(path)
    assert str(path) in str(e.value)


def test_every_truncation_is_a_clear_error():
    data = small_model()
    for n in range(len(data)):
        with pytest.raises(ModelFormatError):
            read_model_bytes(data[:n], source="cut.tflite")


def test_corruption_gives_model_format_error_or_a_model_never_a_crash():
    data = small_model()
    rng = random.Random(42)
    errors = 0
    start = time.monotonic()
    for _ in range(1500):
        b = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            b[rng.randrange(8, len(b))] = rng.randrange(256)  # keep the identifier
        try:
            read_model_bytes(bytes(b), source="corrupt.tflite")
        except ModelFormatError as e:
            assert "corrupt.tflite" in str(e)
            errors += 1
    assert errors > 100  # most corruptions are detected
    assert time.monotonic() - start < 20  # a corrupt length never makes us loop for long


def test_huge_vector_length_is_rejected_quickly():
    data = bytearray(small_model())
    m = read_model_bytes(bytes(data))
    # find the subgraph's tensor vector length (6) followed by its offsets, set it huge
    needle = (len(m.tensors)).to_bytes(4, "little")
    hits = [i for i in range(0, len(data) - 4, 4) if data[i:i + 4] == needle]
    assert hits
    detected = 0
    for i in hits:
        b = bytearray(data)
        b[i:i + 4] = (0x7FFFFFF0).to_bytes(4, "little")
        start = time.monotonic()
        try:
            read_model_bytes(bytes(b))
        except ModelFormatError:
            detected += 1
        assert time.monotonic() - start < 2
    assert detected >= 1


def test_inconsistent_tensor_data_size_is_reported():
    data = build_model(
        tensors=[TensorSpec("w", [3], "INT32", data=np.arange(2, dtype=np.int32))],
        operators=[], inputs=[0], outputs=[0])
    with pytest.raises(ModelFormatError, match=r"tensor 0 \('w'\) has 8 data bytes"):
        read_model_bytes(data)


def test_out_of_range_indices_are_reported():
    bad_io = build_model(tensors=[TensorSpec("x", [1], "FLOAT32")], operators=[], inputs=[0], outputs=[5])
    with pytest.raises(ModelFormatError, match="out of range"):
        read_model_bytes(bad_io)
    bad_op = build_model(tensors=[TensorSpec("x", [1], "FLOAT32")],
                         operators=[OpSpec("RESHAPE", [0], [3])], inputs=[0], outputs=[0])
    with pytest.raises(ModelFormatError, match=r"operator 0 \(RESHAPE\) writes tensor 3"):
        read_model_bytes(bad_op)
