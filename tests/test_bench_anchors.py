"""bench/anchors.py: the one loader and evaluator every anchor goes through, on tiny
generated Keras models converted to TFLite (float input, and int8/uint8 inputs
quantized by the converter; softmax and logit outputs) and generated images;
no ../shared data here."""
from pathlib import Path

import numpy as np
import pytest

from bench import anchors  # imports larq_glt first: legacy Keras

SIDE = 8  # the models' side; the images are 16×16, so every model resizes


def _images(root: Path, n=10, seed=0):
    """Bright images are `person`, dark ones `non_person`; 2 of each class get the other class's tone."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for label, cls in enumerate(anchors.CLASS_NAMES):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            bright = (label == 1) != (i < 2)
            base = 190 if bright else 60
            img = np.clip(base + rng.normal(0, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"{i:03d}.png")
    (root / "person" / "notes.txt").write_text("not an image")
    return 2 * n, 2 * n - 4  # images, correct answers of a brightness detector


def _keras_model(softmax: bool):
    """Mean brightness m in [0, 1] → logits 8·(0.5 − m, m − 0.5) (then softmax when asked)."""
    import tf_keras as keras

    x = keras.Input((SIDE, SIDE, 3))
    h = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2)
    y = dense(h)
    dense.set_weights([np.array([[-8 / 3, 8 / 3]] * 3, np.float32), np.array([4, -4], np.float32)])
    if softmax:
        y = keras.layers.Softmax()(y)
    return keras.Model(x, y)


def _tflite(model, path: Path, input_type=None) -> Path:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if input_type is not None:
        rng = np.random.default_rng(1)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([np.concatenate([np.zeros((1, SIDE, SIDE, 3)), np.ones(
            (1, SIDE, SIDE, 3)), rng.uniform(0, 1, (1, SIDE, SIDE, 3))]).astype(np.float32)[i:i + 1]]
                                                for i in range(3))
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = input_type
        conv.inference_output_type = input_type
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import tensorflow as tf

    root = tmp_path_factory.mktemp("anchors")
    n, correct = _images(root / "images")
    files = {}
    for softmax in (True, False):
        kind = "prob" if softmax else "logit"
        model = _keras_model(softmax)
        model.save(root / f"{kind}.h5")
        files[f"{kind}.h5"] = root / f"{kind}.h5"
        files[f"{kind}_float.tflite"] = _tflite(model, root / f"{kind}_float.tflite")
        files[f"{kind}_int8.tflite"] = _tflite(model, root / f"{kind}_int8.tflite", tf.int8)
    files["prob_uint8.tflite"] = _tflite(_keras_model(True), root / "prob_uint8.tflite", tf.uint8)
    return root, files, n, correct


def test_images_load_in_class_order_and_skip_other_files(tiny):
    root, _, n, _ = tiny
    x, y, names = anchors.load_images(root / "images", 16)
    assert x.shape == (n, 16, 16, 3) and x.dtype == np.uint8
    assert y.tolist() == [0] * (n // 2) + [1] * (n // 2)
    assert names[0] == "non_person/000.png" and names[-1] == f"person/{n // 2 - 1:03d}.png"


def test_missing_class_folder_is_an_error(tmp_path):
    (tmp_path / "person").mkdir()
    with pytest.raises(anchors.AnchorError, match="non_person"):
        anchors.load_images(tmp_path)


@pytest.mark.parametrize("name,interpreter,dtype,output", [
    ("prob_float.tflite", "tf.lite.Interpreter", "float32", "probabilities"),
    ("logit_float.tflite", "tf.lite.Interpreter", "float32", "logits"),
    ("prob_int8.tflite", "tf.lite.Interpreter", "int8", "probabilities"),
    ("logit_int8.tflite", "tf.lite.Interpreter", "int8", "logits"),
    ("prob_uint8.tflite", "tf.lite.Interpreter", "uint8", "probabilities"),
    ("prob.h5", "tf_keras", "float32", "probabilities"),
    ("logit.h5", "tf_keras", "float32", "logits"),
])
def test_every_format_scores_the_brightness_detector_alike(tiny, name, interpreter, dtype, output):
    root, files, n, correct = tiny
    x, y, _ = anchors.load_images(root / "images", 16)
    res = anchors.evaluate(anchors.runner_for(files[name]), x, y)
    assert (res["interpreter"], res["input_dtype"], res["output"], res["side"]) == (interpreter, dtype, output, SIDE)
    assert res["correct"] == correct and res["images"] == n
    assert res["ci95"] == pytest.approx(list(anchors.wilson(correct, n)))
    assert res["recall"] == {"non_person": 0.8, "person": 0.8}
    assert set(res["other_resize"]) == {"tf"} and res["resize"] == "pil"


def test_quantized_inputs_are_the_pixel_shifted_by_the_zero_point(tiny):
    """int8 input: pixel − 128 (scale 1/255); the dequantized outputs follow the float model's."""
    root, files, _, _ = tiny
    x, _, _ = anchors.load_images(root / "images", 16)
    float_out = anchors.runner_for(files["logit_float.tflite"]).predict(x)
    int8 = anchors.runner_for(files["logit_int8.tflite"])
    assert np.abs(int8.predict(x) - float_out).max() < 0.2
    assert anchors.model_input(np.array([0, 128, 255], np.uint8), np.int8, -128).tolist() == [-128, 0, 127]
    assert anchors.model_input(np.array([0, 255], np.uint8), np.uint8, 0).tolist() == [0, 255]
    assert anchors.model_input(np.array([0, 255], np.uint8), np.float32).tolist() == [0.0, 1.0]
    with pytest.raises(anchors.AnchorError, match="zero point"):
        anchors.model_input(np.array([0], np.uint8), np.int8, 0)


def test_weight_bits_count_filter_elements_times_their_type(tiny):
    _, files, _, _ = tiny
    assert anchors.tflite_weight_bits(files["prob_int8.tflite"]) == {"weight_params": 6, "weight_bits": 48}
    assert anchors.tflite_weight_bits(files["prob_float.tflite"]) == {"weight_params": 6, "weight_bits": 192}
    assert anchors.keras_weight_bits(files["prob.h5"]) == {"weight_params": 6, "weight_bits": 192}


def test_resize_methods_and_unknown_method():
    img = np.zeros((1, 16, 16, 3), np.uint8)
    img[:, :, 8:] = 255
    for method in anchors.RESIZES:
        out = anchors.resize(img, 8, method)
        assert out.shape == (1, 8, 8, 3) and out[0, 0, 0, 0] == 0 and out[0, 0, -1, 0] == 255
    assert anchors.resize(img, 16) is img
    with pytest.raises(anchors.AnchorError, match="resize"):
        anchors.resize(img, 8, "nearest")


def test_wilson_interval():
    low, high = anchors.wilson(420, 500)
    assert low == pytest.approx(0.8053, abs=1e-4) and high == pytest.approx(0.8695, abs=1e-4)
    assert anchors.wilson(0, 10)[0] == pytest.approx(0.0) and anchors.wilson(10, 10)[1] == pytest.approx(1.0)
    assert anchors.wilson(0, 0) == (0.0, 1.0)


README = """\
| file | from | bytes |
| --- | --- | ---: |
| `a.tflite` | x | 1 |

| file | MACs | instructions per inference (TFLM + CMSIS-NN) | (TFLM reference kernels) | TFLM arena bytes |
| --- | ---: | ---: | ---: | ---: |
| `a.tflite` | 7,489,664 | 24,025,600 | 101,173,893 | 100,708 |
| `b.tflite` | 382,611 | 4,054,040 | 13,774,053 | 33,268 |

Notes:
"""


def test_reference_costs_are_read_from_the_readme_table():
    costs = anchors.reference_costs(README)
    assert costs == {
        "a.tflite": {"macs": 7_489_664, "instructions": 24_025_600, "instructions_reference_kernels": 101_173_893,
                     "arena_bytes": 100_708},
        "b.tflite": {"macs": 382_611, "instructions": 4_054_040, "instructions_reference_kernels": 13_774_053,
                     "arena_bytes": 33_268},
    }


def test_model_arguments():
    name, path = anchors.parse_model_arg("w2=runs/x")
    assert name == "w2" and path == anchors.ROOT / "runs" / "x"
    for bad in ("runs/x", "=runs/x", "w2="):
        with pytest.raises(anchors.AnchorError, match="NAME=PATH"):
            anchors.parse_model_arg(bad)
    with pytest.raises(anchors.AnchorError, match="not a folder"):
        anchors.reference_models(Path("/nonexistent"))
    with pytest.raises(anchors.AnchorError, match="neither"):
        anchors.larq_glt_flatbuffer(Path("/nonexistent"), Path("/tmp"))


def test_page_json_and_plot_from_references(tiny, tmp_path):
    """The reference half of main() on the tiny models: page rows, the plot, the verdict line."""
    root, files, _, _ = tiny
    x, y, _ = anchors.load_images(root / "images", 16)
    entries = [anchors.reference_entry(files[n], x, y, anchors.reference_costs(README.replace("a.tflite", n)))
               for n in ("prob_int8.tflite", "logit_float.tflite", "prob.h5")]
    ours = dict(entries[1], name="ours", group="larq-glt", trained_on="model.json: vww96 (fine-tune)",
                mcu={"instructions": 1_500_000.0, "peak_ram_bytes": 31_144})
    result = {"command": "python bench/anchors.py", "models": entries + [ours], "figure": "figures/anchors.png",
              "images": {"path": "x", "count": len(y), "per_class": {"non_person": 10, "person": 10}},
              "seconds": 1.0}
    page = anchors.render(result)
    assert "| `prob_int8` | " in page and "| 48 | 8×8 int8 | probabilities | 80.0% [" in page
    assert "24,025,600 ¹" in page and "| 1,500,000 | 31,144 |" in page
    assert "– (Keras HDF5," in page and "Not held-out figures" in page
    smaller = sum(1 for e in entries if e["flatbuffer_bytes"] and e["flatbuffer_bytes"] <= ours["flatbuffer_bytes"])
    assert smaller >= 1 and f"of the {smaller} reference flatbuffer(s) not larger than it, 0 score higher" in page
    png = anchors.plot(result, tmp_path / "figures" / "anchors.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "figures" / "anchors.png").read_bytes() == png


@pytest.mark.slow
def test_lce_flatbuffers_run_in_the_firmwares_host_reference(exported_default, tmp_path):
    """A larq-glt export goes through the LCE interpreter with the raw uint8 image, as deploy/demo.py does."""
    from deploy.demo import host_reference

    _images(tmp_path / "images", n=3)
    x, y, _ = anchors.load_images(tmp_path / "images", 96)
    runner = anchors.runner_for(exported_default / "model.tflite")
    assert (runner.kind, runner.side, runner.input_dtype.name) == ("tflite-lce", 96, "uint8")
    np.testing.assert_array_equal(runner.predict(x), host_reference(exported_default / "model.tflite", x))
    assert anchors.evaluate(runner, x, y)["other_resize"] == {}


@pytest.mark.slow
def test_a_run_directory_is_exported_into_the_temporary_folder(tmp_path):
    """--model NAME=RUN_DIR: the run's model.keras is exported (not into the run) before it is scored."""
    from larq_glt import models, testing

    run = tmp_path / "run"
    run.mkdir()
    testing.randomize(models.compact(input_size=32), 0).save(run / "model.keras")
    tflite = anchors.larq_glt_flatbuffer(run, tmp_path / "tmp")
    assert tflite == tmp_path / "tmp" / "export" / "model.tflite" and tflite.is_file()
    assert not (run / "export").exists()
    assert anchors.larq_glt_flatbuffer(tmp_path / "tmp" / "export", tmp_path) == tflite
    assert anchors.larq_glt_flatbuffer(tflite, tmp_path) == tflite


def test_a_model_fine_tuned_on_the_images_is_scored_by_its_cross_validated_figure(tmp_path):
    """bench/person_adapt.py's card: the page shows the fold figure, the direct one only as resubstitution."""
    import json

    entry = {"name": "ours", "images": 20, "correct": 19, "accuracy": 0.95, "ci95": [0.76, 0.99],
             "recall": {"person": 1.0, "non_person": 0.9}}
    assert anchors.with_cross_validated(dict(entry), tmp_path) == entry  # no card: as measured
    cv = {"images": 20, "correct": 14, "accuracy": 0.7, "wilson95": [0.48, 0.85],
          "per_class": {"non_person": 0.6, "person": 0.8}, "folds": [{}] * 5}
    (tmp_path / "card.json").write_text(json.dumps({"cross_validated": dict(cv, images=500)}))
    assert anchors.with_cross_validated(dict(entry), tmp_path) == entry  # another image set: not this one's
    (tmp_path / "card.json").write_text(json.dumps({"cross_validated": cv}))
    scored = anchors.with_cross_validated(dict(entry), tmp_path)
    assert (scored["correct"], scored["accuracy"], scored["ci95"]) == (14, 0.7, [0.48, 0.85])
    assert scored["resubstitution"]["accuracy"] == 0.95 and scored["accuracy_kind"].startswith("5-fold")
