"""External teachers (Keras .h5/.keras, TFLite float and quantized) and
images without labels: small generated models and images, no shared data."""
import json
import numpy as np
import pytest
from PIL import Image

import larq_glt  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from larq_glt import data, distillation, teachers
from larq_glt.teachers import TeacherError

CLASSES = ("non_person", "person")
SIDE = 8


def _float_model(softmax: bool, side=SIDE, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((side, side, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(2, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, x)


def _images(n=6, side=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)


def _reference(model, images, side=SIDE, scale=1 / 255.0):
    x = tf.image.resize(tf.cast(images, tf.float32), (side, side), method="bilinear") * scale
    return model(x).numpy()


def _tflite(model, path, quantized: bool):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantized:
        rng = np.random.default_rng(1)

        def representative():
            for _ in range(16):
                yield [rng.uniform(0, 1, (1, SIDE, SIDE, 3)).astype(np.float32)]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())
    return path


def test_spec_options_are_parsed_and_checked():
    assert teachers.parse_spec("runs/a") == ("runs/a", {})
    path, opts = teachers.parse_spec("m.h5:input=unit,classes=non_person+person")
    assert path == "m.h5" and opts == {"input": "unit", "classes": CLASSES}
    for bad in ("m.h5:input=linear", "m.h5:colour=rgb", "m.h5:output=softmax"):
        with pytest.raises(TeacherError):
            teachers.parse_spec(bad)


@pytest.mark.parametrize("softmax", [True, False])
def test_keras_h5_teacher_float_input_and_output_kind(tmp_path, softmax):
    model = _float_model(softmax)
    path = tmp_path / "t.h5"
    model.save(path)
    with pytest.raises(TeacherError, match="input=raw\\|unit\\|symmetric"):
        teachers.load(str(path) + ":classes=non_person+person", CLASSES)
    t = teachers.load(f"{path}:input=unit,classes=non_person+person", CLASSES)
    assert t.output == ("probabilities" if softmax else "logits") and t.side == SIDE
    images = _images()
    ref = _reference(model, images)
    expected = np.log(ref) if softmax else tf.nn.log_softmax(ref).numpy()
    np.testing.assert_allclose(t(tf.constant(images)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_tflite_float_teacher_derives_probabilities(tmp_path):
    model = _float_model(softmax=True)
    path = _tflite(model, tmp_path / "f.tflite", quantized=False)
    t = teachers.load(f"{path}:input=unit,classes=non_person+person", CLASSES)
    assert t.output == "probabilities"
    images = _images()
    np.testing.assert_allclose(np.exp(t(tf.constant(images)).numpy()), _reference(model, images), atol=1e-4)


@pytest.mark.parametrize("softmax", [True, False])
def test_tflite_quantized_teacher_derives_input_and_dequantizes(tmp_path, softmax):
    model = _float_model(softmax)
    path = _tflite(model, tmp_path / "q.tflite", quantized=True)
    t = teachers.load(f"{path}:classes=non_person+person", CLASSES)
    assert t.input == "unit"  # from the input scale 1/255
    assert t.output == ("probabilities" if softmax else "logits")
    images = _images(n=32)
    got = np.exp(t(tf.constant(images)).numpy())
    ref = _reference(model, images)
    ref = ref if softmax else tf.nn.softmax(ref).numpy()
    assert np.abs(got - ref).max() < 0.05  # int8 quantization error


def test_class_count_order_and_names_are_checked(tmp_path):
    path = tmp_path / "t.h5"
    _float_model(True).save(path)
    with pytest.raises(TeacherError, match="outputs 2 classes, this dataset has 3"):
        teachers.load(f"{path}:input=unit,classes=a+b", ("a", "b", "c"))
    with pytest.raises(TeacherError, match="in that order"):
        teachers.load(f"{path}:input=unit,classes=person+non_person", CLASSES)
    with pytest.raises(TeacherError, match="class order is unknown"):
        teachers.load(f"{path}:input=unit", CLASSES)
    with pytest.raises(TeacherError, match="no such file"):
        teachers.load(str(tmp_path / "missing.h5"), CLASSES)


def test_ensemble_averages_probabilities(tmp_path):
    a, b = _float_model(True, seed=0), _float_model(True, seed=1)
    a.save(tmp_path / "a.h5")
    b.save(tmp_path / "b.h5")
    specs = [f"{tmp_path / n}.h5:input=unit,classes=non_person+person" for n in "ab"]
    ensemble = teachers.load_all(specs, CLASSES)
    images = _images()
    expected = np.log((_reference(a, images) + _reference(b, images)) / 2)
    np.testing.assert_allclose(ensemble(tf.constant(images)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_kd_loss_of_unlabelled_examples_is_the_full_kd_term():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(4, 2)).astype(np.float32)
    t = rng.normal(size=(4, 2)).astype(np.float32)
    labelled = distillation.kd_loss([0, 1, 0, 1], s, t, alpha=0.5, temperature=2.0).numpy()
    unlabelled = distillation.kd_loss([-1] * 4, s, t, alpha=0.5, temperature=2.0).numpy()
    kd_only = distillation.kd_loss([0, 1, 0, 1], s, t, alpha=0.0, temperature=2.0).numpy()
    np.testing.assert_allclose(unlabelled, kd_only, rtol=1e-6)
    assert labelled != unlabelled


def _image_tree(root, n, side=16):
    for i, img in enumerate(_images(n, side, seed=3)):
        sub = root / f"d{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(sub / f"{i}.png")
    (root / "notes.txt").write_text("not an image")
    return root


def test_unlabelled_folder_joins_the_training_set(tmp_path):
    pool = _image_tree(tmp_path / "pool", 10)
    splits = data.load("synthetic", image_size=16, batch_size=8, unlabelled=[str(pool)],
                       num_train=20, num_val=8, num_classes=2)
    _, labels = splits.arrays("train")
    assert len(labels) == 30 and (labels == data.UNLABELLED).sum() == 10
    assert splits.info.extra["unlabelled"]["images"] == 10
    assert splits.num_classes == 2


def test_unlabelled_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DatasetError, match="holds no image files"):
        data.load("synthetic", image_size=16, unlabelled=[str(tmp_path / "empty")])
    with pytest.raises(data.DatasetError, match="does not exist"):
        data.load("synthetic", image_size=16, unlabelled=[str(tmp_path / "nope")])
    with pytest.raises(data.DatasetError, match="class names"):
        data.load("unlabelled", data_dir=str(_image_tree(tmp_path / "p", 4)), image_size=16)


def _cli(*args):
    from larq_glt import train

    return train.main(list(args))


def test_cli_refuses_unlabelled_without_a_usable_teacher(tmp_path, capsys):
    pool = str(_image_tree(tmp_path / "pool", 6))
    out = str(tmp_path / "run")
    assert _cli("--dataset", "synthetic", "--unlabelled", pool, "--out", out) == 2
    assert "give --kd-teacher" in capsys.readouterr().err
    assert _cli("--dataset", "synthetic", "--unlabelled", pool, "--kd-teacher", "auto", "--out", out) == 2
    assert "auto" in capsys.readouterr().err
    assert _cli("--dataset", "unlabelled", "--data-dir", pool, "--kd-teacher", str(tmp_path / "t.h5"),
                "--out", out) == 2
    assert "classes" in capsys.readouterr().err
    path = tmp_path / "t3.h5"
    three = keras.Sequential([keras.Input((SIDE, SIDE, 3)), keras.layers.Flatten(), keras.layers.Dense(3)])
    three.save(path)
    assert _cli("--dataset", "unlabelled", "--data-dir", pool, "--kd-teacher",
                f"{path}:input=unit,classes=non_person+person", "--out", out) == 2
    assert "outputs 3 classes, this dataset has 2" in capsys.readouterr().err


@pytest.mark.slow
def test_train_on_unlabelled_pool_scores_agreement_with_the_teacher(tmp_path):
    from larq_glt.training import TrainConfig, train

    pool = _image_tree(tmp_path / "pool", 40, side=32)
    path = tmp_path / "t.h5"
    _float_model(True).save(path)
    cfg = TrainConfig(dataset="unlabelled", data_dir=str(pool), image_size=32, epochs=1, batch_size=8,
                      out=str(tmp_path / "run"), val_fraction=0.25, progress=False,
                      kd_teacher=f"{path}:input=unit,classes=non_person+person", mosaic=0.5,
                      mosaic_grid=3, model={"stem_filters": 32, "blocks": [{"filters": 32, "groups": 1, "pool": False}]})
    from larq_glt.training import load_data

    augment = load_data(cfg).augment
    assert (augment.mosaic, augment.mosaic_grid) == (0.5, 3)  # the teacher labels the mosaics it is shown
    metrics = train(cfg)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["mosaic"], saved["mosaic_grid"]) == (0.5, 3)
    assert metrics["teacher"]["val_labels"] == "teacher"
    assert metrics["final"]["data"]["num_val"] == 10
    assert 0.0 <= metrics["final"]["val_accuracy"] <= 1.0
    # the validation labels are the teacher's choices on the held-out images
    splits = data.load("unlabelled", data_dir=str(pool), image_size=32, val_fraction=0.25,
                       class_names=CLASSES)
    x, _ = splits.arrays("val")
    teacher = teachers.load(cfg.kd_teacher, CLASSES)
    choices = teacher(tf.constant(x)).numpy().argmax(1)
    model = keras.models.load_model(tmp_path / "run" / "model.keras")
    agreement = float(np.mean(model.predict(x, verbose=0).argmax(1) == choices))
    assert agreement == pytest.approx(metrics["final"]["val_accuracy"])
    # the run resumes with the options it was started with (its saved class names included)
    import dataclasses

    resumed = train(dataclasses.replace(cfg, epochs=2), resume=True)
    assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]


def test_zoom_augmentation_is_seeded_and_keeps_flat_images_flat():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (4, 24, 24, 3), dtype=np.uint8))
    config = data.AugmentConfig(flip=False, shift=0.0, brightness=0.0, contrast=0.0, gamma=0.0, zoom=0.5)
    a = data.augment_batch(x, [1, 2], config).numpy()
    assert a.dtype == np.uint8 and a.shape == x.shape
    np.testing.assert_array_equal(a, data.augment_batch(x, [1, 2], config).numpy())
    assert not np.array_equal(a, data.augment_batch(x, [1, 3], config).numpy())
    assert not np.array_equal(a, x.numpy())
    flat = tf.fill([2, 24, 24, 3], tf.constant(77, tf.uint8))
    np.testing.assert_array_equal(data.augment_batch(flat, [5, 6], config).numpy(), 77)
    with pytest.raises(ValueError, match="zoom"):
        data.AugmentConfig(zoom=1.0)


def test_mosaic_grid_puts_four_batch_images_at_half_side_in_the_quadrants():
    from larq_glt.data import augment

    # image k is flat with value 10 * (k + 1): each quadrant shows which image it holds
    x = tf.constant(np.stack([np.full((24, 24, 3), 10 * (k + 1), np.uint8) for k in range(5)]))
    g = augment.mosaic_grid(x).numpy()
    assert g.shape == (5, 24, 24, 3) and g.dtype == np.uint8
    for i in range(5):
        quadrants = [g[i, :12, :12], g[i, :12, 12:], g[i, 12:, :12], g[i, 12:, 12:]]
        for t, q in enumerate(quadrants):
            np.testing.assert_array_equal(q, 10 * ((i + t) % 5 + 1))
    # a tile is the whole image at half side, by area averaging
    rng = np.random.default_rng(1)
    y = rng.integers(0, 256, (2, 8, 8, 1)).astype(np.uint8)
    tile = augment.mosaic_grid(tf.constant(y)).numpy()[0, :4, :4, 0]
    np.testing.assert_array_equal(tile, np.round(y[0, :, :, 0].reshape(4, 2, 4, 2).astype(float).mean((1, 3))))
    # odd sides keep their size
    assert augment.mosaic_grid(tf.zeros([3, 25, 23, 3], tf.uint8)).shape == (3, 25, 23, 3)


def test_mosaic_grid_of_side_three_puts_nine_batch_images_row_by_row():
    from larq_glt.data import augment

    x = tf.constant(np.stack([np.full((24, 24, 1), 10 * (k + 1), np.uint8) for k in range(11)]))
    g = augment.mosaic_grid(x, 3).numpy()
    assert g.shape == (11, 24, 24, 1)
    for i in (0, 5, 10):
        for r in range(3):
            for c in range(3):
                np.testing.assert_array_equal(g[i, 8 * r:8 * r + 8, 8 * c:8 * c + 8], 10 * ((i + 3 * r + c) % 11 + 1))
    assert augment.mosaic_grid(tf.zeros([2, 25, 23, 3], tf.uint8), 3).shape == (2, 25, 23, 3)


def test_mosaic_up_to_three_by_three_mixes_both_sizes_on_the_same_images():
    from larq_glt.data import augment

    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (200, 24, 24, 3), dtype=np.uint8))
    only = dict(flip=False, shift=0.0, brightness=0.0, contrast=0.0, gamma=0.0)
    a = data.augment_batch(x, [1, 2], data.AugmentConfig(mosaic=0.5, mosaic_grid=3, **only)).numpy()
    two = np.all(a == augment.mosaic_grid(x).numpy(), axis=(1, 2, 3))
    three = np.all(a == augment.mosaic_grid(x, 3).numpy(), axis=(1, 2, 3))
    kept = np.all(a == x.numpy(), axis=(1, 2, 3))
    assert np.all(two | three | kept) and 25 < two.sum() < 75 and 25 < three.sum() < 75
    # the same images are replaced as with 2x2 mosaics only: the size has its own random stream
    b = data.augment_batch(x, [1, 2], data.AugmentConfig(mosaic=0.5, **only)).numpy()
    np.testing.assert_array_equal(kept, np.all(b == x.numpy(), axis=(1, 2, 3)))
    with pytest.raises(ValueError, match="mosaic_grid"):
        data.AugmentConfig(mosaic=0.5, mosaic_grid=5)


def test_mosaic_augmentation_replaces_a_seeded_share_of_the_batch():
    from larq_glt.data import augment

    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (200, 16, 16, 3), dtype=np.uint8))
    only = dict(flip=False, shift=0.0, brightness=0.0, contrast=0.0, gamma=0.0)
    a = data.augment_batch(x, [1, 2], data.AugmentConfig(mosaic=0.5, **only)).numpy()
    np.testing.assert_array_equal(a, data.augment_batch(x, [1, 2], data.AugmentConfig(mosaic=0.5, **only)).numpy())
    grid = augment.mosaic_grid(x).numpy()
    replaced = np.all(a == grid, axis=(1, 2, 3))
    kept = np.all(a == x.numpy(), axis=(1, 2, 3))
    assert np.all(replaced | kept) and 70 < replaced.sum() < 130
    assert np.all(np.all(data.augment_batch(x, [1, 2], data.AugmentConfig(mosaic=1.0, **only)).numpy() == grid,
                         axis=(1, 2, 3)))
    # without mosaic, augmentation is what it was (its random stream is separate)
    plain = data.AugmentConfig()
    np.testing.assert_array_equal(data.augment_batch(x, [4, 5], plain).numpy(),
                                  data.augment_batch(x, [4, 5], data.AugmentConfig(mosaic=0.0)).numpy())
    with pytest.raises(ValueError, match="mosaic"):
        data.AugmentConfig(mosaic=1.5)


def test_mixup_blends_pairs_and_leaves_them_to_the_teacher():
    student = keras.Sequential([keras.Input((4, 4, 3), dtype="uint8"), keras.layers.Flatten(), keras.layers.Dense(2)])
    d = distillation.Distiller(student, lambda x: tf.zeros([tf.shape(x)[0], 2]), mixup=0.5)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 256, (64, 4, 4, 3), dtype=np.uint8))
    y = tf.constant(rng.integers(0, 2, 64), tf.int32)
    d.set_epoch_seed(0, 3)
    mx, my = (t.numpy() for t in d._mix(x, y))
    again = d._mix(x, y)[0].numpy()
    np.testing.assert_array_equal(mx, again)  # same epoch seed and step: same draw
    mixed = my == distillation.UNLABELLED
    assert 10 < mixed.sum() < 54
    np.testing.assert_array_equal(mx[~mixed], x.numpy()[~mixed])
    np.testing.assert_array_equal(my[~mixed], y.numpy()[~mixed])
    # every mixed pixel lies between the pixels of two images of the batch
    lo, hi = x.numpy().min(axis=0), x.numpy().max(axis=0)
    assert np.all((mx[mixed] >= lo) & (mx[mixed] <= hi))
    d.set_epoch_seed(0, 4)
    assert not np.array_equal(d._mix(x, y)[0].numpy(), mx)
    with pytest.raises(distillation.DistillationError, match="kd-mixup"):
        distillation.Distiller(student, student, mixup=1.5)


def test_class_balance_weighs_the_classes_the_teacher_sees_alike():
    # the teacher sees one person among four (certainly): that example weighs 2, the others 2/3
    t = tf.constant([[9.0, -9.0]] * 3 + [[-9.0, 9.0]])
    w = distillation.class_balance_weights(t).numpy()
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 2.0], rtol=1e-3)
    np.testing.assert_allclose(w.mean(), 1.0, rtol=1e-6)
    # a batch of one class is weighted alike: the loss is the unweighted one
    same = tf.constant([[2.0, -1.0], [3.0, 0.5]])
    s = tf.constant([[0.3, 0.1], [-0.2, 0.4]])
    np.testing.assert_allclose(distillation.class_balance_weights(same).numpy().mean(), 1.0, rtol=1e-6)
    labels = [distillation.UNLABELLED] * 4
    s4 = tf.constant([[0.5, 0.0], [0.1, 0.2], [1.0, -1.0], [0.0, 0.0]])
    per = [distillation.kd_loss(labels[:1], s4[i:i + 1], t[i:i + 1], temperature=1.0).numpy() for i in range(4)]
    balanced = distillation.kd_loss(labels, s4, t, temperature=1.0, class_balance=True).numpy()
    np.testing.assert_allclose(balanced, np.mean(np.array(per) * w), rtol=1e-5)
    assert not np.isclose(balanced, distillation.kd_loss(labels, s4, t, temperature=1.0).numpy())
    # the weighted loss still trains the student
    with tf.GradientTape() as tape:
        tape.watch(s)
        loss = distillation.kd_loss([0, 1], s, same, class_balance=True)
    assert tape.gradient(loss, s) is not None


def test_the_run_config_turns_class_balance_on_in_the_distiller():
    from larq_glt import training

    student = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    teacher = lambda x: tf.zeros([tf.shape(x)[0], 2])  # noqa: E731
    for on in (False, True):
        cfg = training.TrainConfig(kd_teacher="t.h5", kd_class_balance=on)
        trainer = training._compile(student, keras.optimizers.Adam(), teacher, cfg)
        assert isinstance(trainer, distillation.Distiller) and trainer.class_balance is on


@pytest.mark.parametrize("flags, message", [
    (["--zoom", "1.0"], "--zoom must be in [0, 1)"),
    (["--kd-mixup", "0.5"], "--kd-mixup blends images"),
    (["--kd-class-balance"], "--kd-class-balance weighs examples by the teacher's classes"),
    (["--mosaic", "0.5"], "--mosaic builds scenes"),  # a labelled dataset: only a teacher labels a mosaic
    (["--mosaic", "1.5"], "--mosaic is a probability in [0, 1], got 1.5"),
    (["--mosaic-grid", "3"], "--mosaic-grid sets the mosaics' size: give --mosaic P too"),
    (["--mosaic", "0.5", "--mosaic-grid", "5"], "--mosaic-grid is the largest mosaic side in tiles, 2 to 4, got 5"),
])
def test_cli_refuses_bad_augmentation_options(tmp_path, capsys, flags, message):
    out = str(tmp_path / "run")
    assert _cli("--dataset", "synthetic", *flags, "--out", out) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
