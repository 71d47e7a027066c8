import json

import numpy as np
import pytest

import larq_glt  # noqa: F401
import larq as lq
import tf_keras as keras

from larq_glt import encoders, export, models, report
from larq_glt.models import Block, ModelConfig

SMALL = dict(input_size=32, stem_kernel=2, stem_stride=2, stem_filters=32,
             blocks=(Block(64, 1, pool=True), Block(64, 2, pool=True)), num_classes=3)


def _randomize_bn(model, seed=0):
    """Random BN statistics, so thresholds, multipliers and signs are exercised."""
    from larq_glt import testing

    return testing.randomize(model, seed)


@pytest.fixture(scope="module", params=["glt", "thermo", "nbc"])
def exported(request, tmp_path_factory):
    model = _randomize_bn(models.compact(ModelConfig(**SMALL, encoding=request.param)))
    out = tmp_path_factory.mktemp(request.param) / "export"
    return request.param, model, export.export_keras(model, out, class_names=["a", "b", "c"], n_check=48)


def test_interpreter_agrees_with_keras(exported):
    _, model, result = exported
    v = result.verification
    assert v["class_agreement"] == 1.0 and v["images"] == 48
    assert v["max_abs_logit_difference"] < 1e-3
    assert (result.out_dir / "model.tflite").stat().st_size > 0


def test_input_is_raw_uint8_and_every_conv_binary(exported):
    _, _, result = exported
    rep = json.loads((result.out_dir / "report.json").read_text())
    assert rep["input"]["type"] == "UINT8" and rep["input"]["shape"] == [1, 32, 32, 3]
    assert rep["all_convs_binary"] and rep["binary_conv_layers"] == 4
    assert rep["other_macs"] == 0 and rep["binary_macs"] > 0
    assert "CONV_2D" not in rep["op_counts"]
    assert rep["ops"][0]["op"] == "CAST"
    md = (result.out_dir / "report.md").read_text()
    assert "LceBconv2d" in md and "fully binarized" in md


def test_encoder_json_lut_reproduces_first_planes(exported):
    name, model, result = exported
    doc = json.loads((result.out_dir / "encoder.json").read_text())
    lut = np.array(doc["lut"])  # (C, 256, K) of 0/1
    x = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    planes = model.get_layer("encoder")(x).numpy()
    k = doc["planes_per_channel"]
    from_lut = np.stack([lut[c][x[..., c]] for c in range(3)], axis=-2)  # (..., C, K)
    np.testing.assert_array_equal(np.where(from_lut.reshape(*x.shape[:-1], 3 * k) > 0, 1.0, -1.0), planes)
    if name in ("glt", "thermo"):
        t = np.array(doc["thresholds"])
        np.testing.assert_array_equal(lut, (np.arange(256)[None, :, None] >= t[:, None, :]).astype(int))
        csv = (result.out_dir / "adc_levels.csv").read_text().splitlines()
        assert len(csv) == 1 + t.size and csv[1].startswith("0,1,")
    meta = json.loads((result.out_dir / "model.json").read_text())
    assert meta["class_names"] == ["a", "b", "c"] and meta["encoding"] == name


def test_default_model_report_is_fully_binary(tmp_path):
    model = _randomize_bn(models.compact())
    result = export.export_keras(model, tmp_path / "e", n_check=8)
    rep = result.report
    assert rep["all_convs_binary"] and rep["binary_conv_layers"] == 6
    assert [o["layer"] for o in rep["ops"] if o["op"] == "LceBconv2d"][0] == "stem_conv"


def test_grouped_conv_not_multiple_of_32_is_refused(tmp_path):
    inputs = keras.Input((16, 16, 3), dtype="uint8")
    x = encoders.Thermometer(levels=8)(inputs)
    x = lq.layers.QuantConv2D(48, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", padding="same")(x)
    x = lq.layers.QuantConv2D(48, 3, groups=2, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                              padding="same", name="bad_group")(x)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    with pytest.raises(models.ModelConfigError, match="bad_group.*24 input channels per group"):
        export.export_keras(model, tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_unsupported_layer_is_refused(tmp_path):
    inputs = keras.Input((16, 16, 3), dtype="uint8")
    x = encoders.Thermometer(levels=8)(inputs)
    x = lq.layers.QuantConv2D(32, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(x))
    with pytest.raises(export.ExportError, match="'gap' \\(GlobalAveragePooling2D\\) is not supported"):
        export.export_keras(model, tmp_path / "e")


def test_conv_the_runtime_cannot_run_is_refused_with_its_layer(tmp_path):
    """Op names are not enough: a 9x9 binary conv converts to LceBconv2d, which
    the runtime has, but with more filter taps than its kernels handle."""
    inputs = keras.Input((16, 16, 3), dtype="uint8")
    x = encoders.Thermometer(levels=8)(inputs)
    x = lq.layers.QuantConv2D(32, 2, strides=2, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(x)
    x = lq.layers.QuantConv2D(32, 9, padding="same", input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                              name="huge")(x)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    with pytest.raises(report.ReportError, match="op LceBconv2d .*Keras layer 'huge'.*9x9 has more than 64 taps"):
        export.export_keras(model, tmp_path / "e")
    assert not (tmp_path / "e").exists()


def test_float_encoder_is_refused(tmp_path):
    with pytest.raises(export.ExportError, match="full-precision first convolution"):
        export.export_keras(models.compact(ModelConfig(**{**SMALL, "encoding": "float"})), tmp_path / "e")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not_tflite"])
def test_report_tool_on_bad_files(tmp_path, exported, damage, capsys):
    good = (exported[2].out_dir / "model.tflite").read_bytes()
    bad = {"truncated": good[: len(good) // 3], "garbage": bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
           "empty": b"", "not_tflite": b"PK\x03\x04 this is a zip file" * 20}[damage]
    path = tmp_path / "bad.tflite"
    path.write_bytes(bad)
    with pytest.raises(report.ReportError):
        report.read_file(path)
    assert report.main([str(path)]) == 2
    assert "error:" in capsys.readouterr().err


def test_report_cli_prints_markdown(exported, capsys):
    assert report.main([str(exported[2].tflite)]) == 0
    assert "| LceBconv2d |" in capsys.readouterr().out
