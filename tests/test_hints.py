"""FitNets hints (larq_glt.hints): the student learns a Keras teacher's
feature map beside its probabilities. Small generated teachers and images."""
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

import larq_glt  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from larq_glt import distillation, hints, models, runs, teachers
from larq_glt.hints import HintError

CLASSES = ("non_person", "person")
SIDE = 32
#: A student whose block1 output is 4x4 (stem 4x4/4 and its pool on 32 px).
STUDENT = {"stem_filters": 32, "blocks": [{"filters": 32, "groups": 1, "pool": False}]}


def _teacher_model(seed=0, feature_side=4):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIDE, SIDE, 3))
    x = keras.layers.Conv2D(8, 3, strides=SIDE // feature_side, padding="same", activation="relu",
                            name="t_feat")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="t_pool")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def _teacher(tmp_path, **kw):
    path = tmp_path / "t.h5"
    _teacher_model(**kw).save(path)
    return f"{path}:input=unit,classes=non_person+person"


def _student():
    return models.compact(models.ModelConfig.from_dict({**models.ModelConfig().to_dict(), **STUDENT,
                                                         "input_size": SIDE, "num_classes": 2}))


def _images(n=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, SIDE, SIDE, 3), dtype=np.uint8)


def test_spec_and_weight_are_checked():
    assert hints.parse("block4_bn:activation_26") == ("block4_bn", "activation_26")
    for bad in ("block4_bn", ":a", "a:", "a:b:c", ""):
        with pytest.raises(HintError, match="STUDENT_LAYER:TEACHER_LAYER"):
            hints.parse(bad)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(HintError, match="--kd-hint-weight"):
            hints.check_weight(bad)


def test_cosine_loss_compares_directions_per_position():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(2, 3, 3, 5)).astype(np.float32)
    t = np.abs(rng.normal(size=(2, 3, 3, 5))).astype(np.float32)
    cos = (s * t).sum(-1) / np.linalg.norm(s, axis=-1) / np.linalg.norm(t, axis=-1)
    assert float(hints.cosine_loss(s, t)) == pytest.approx(float(np.mean(1 - cos)), rel=1e-5)
    assert float(hints.cosine_loss(3.0 * t, t)) == pytest.approx(0.0, abs=1e-6)  # scale does not matter
    assert float(hints.cosine_loss(-t, t)) == pytest.approx(2.0, abs=1e-6)
    t[0, 0, 0] = 0.0  # a dead position: cosine 0, no nan
    assert np.isfinite(float(hints.cosine_loss(s, t)))


def test_hint_needs_one_keras_teacher_and_layers_of_one_size(tmp_path):
    spec = _teacher(tmp_path)
    one = teachers.load_all([spec], CLASSES)
    student = _student()
    hint = hints.Hint(student, one, "block1_bn:t_feat", weight=0.5)
    assert (hint.weight, hint.head.filters) == (0.5, 8)
    with pytest.raises(HintError, match="exactly one teacher, got 2"):
        hints.Hint(student, teachers.load_all([spec, spec], CLASSES), "block1_bn:t_feat")
    with pytest.raises(HintError, match="student has no layer 'block9_bn'"):
        hints.Hint(student, one, "block9_bn:t_feat")
    with pytest.raises(HintError, match="no layer 'nope'"):
        hints.Hint(student, one, "block1_bn:nope")
    with pytest.raises(HintError, match="needs a feature map"):
        hints.Hint(student, one, "block1_bn:t_pool")
    with pytest.raises(HintError, match="4x4 and the teacher's 't_feat' 8x8"):
        hints.Hint(student, teachers.load_all([_teacher(tmp_path / "8", feature_side=8)], CLASSES),
                   "block1_bn:t_feat")
    converter = tf.lite.TFLiteConverter.from_keras_model(_teacher_model())
    (tmp_path / "t.tflite").write_bytes(converter.convert())
    lite = teachers.load_all([f"{tmp_path / 't.tflite'}:input=unit,classes=non_person+person"], CLASSES)
    with pytest.raises(HintError, match="needs a Keras teacher"):
        hints.Hint(student, lite, "block1_bn:t_feat")


def test_teacher_gives_probabilities_and_features_in_one_pass(tmp_path):
    t = teachers.load(_teacher(tmp_path), CLASSES)
    x = tf.constant(_images())
    log_p, features = t.with_layer("t_feat")(x)
    np.testing.assert_allclose(log_p.numpy(), t(x).numpy(), rtol=1e-6, atol=1e-6)
    inner = keras.Model(t.model.inputs, t.model.get_layer("t_feat").output)
    np.testing.assert_allclose(features.numpy(), inner(tf.cast(x, tf.float32) / 255.0).numpy(), rtol=1e-5, atol=1e-6)


def test_a_distillation_step_trains_the_head_and_the_student_through_the_hint(tmp_path):
    (tmp_path / "a").mkdir()
    one = teachers.load_all([_teacher(tmp_path / "a")], CLASSES)
    student = _student()
    hint = hints.Hint(student, one, "block1_bn:t_feat")
    x = tf.constant(_images())
    y = tf.fill([8], distillation.UNLABELLED)
    # the hint term alone reaches the student's layers before its layer, not the classifier
    _, t_feat = hint.teacher_outputs(x)
    with tf.GradientTape() as tape:
        _, s_feat = hint.student_outputs(x, training=True)
        loss = hint.loss(s_feat, t_feat)
    stem, classifier = student.get_layer("stem_conv").kernel, student.get_layer("classifier").kernel
    g_stem, g_cls, g_head = tape.gradient(loss, [stem, classifier, hint.head.kernel])
    assert float(tf.reduce_max(tf.abs(g_stem))) > 0 and float(tf.reduce_max(tf.abs(g_head))) > 0
    assert g_cls is None
    # a fit step reports the hint term and moves the head
    d = distillation.Distiller(student, one, alpha=0.5, temperature=1.0, hint=hint)
    d.compile(optimizer=keras.optimizers.Adam(1e-2), metrics=["accuracy"])
    before = hint.head.kernel.numpy().copy()
    hist = d.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=1, verbose=0)
    assert hist.history["hint"][0] > 0
    assert not np.array_equal(before, hint.head.kernel.numpy())


def _pool(root, n=24):
    for i, img in enumerate(_images(n, seed=3)):
        sub = root / f"d{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(sub / f"{i}.png")
    return root


def _cli(*args):
    from larq_glt import train

    return train.main(list(args))


def test_cli_refuses_a_hint_it_cannot_train(tmp_path, capsys):
    pool, out = str(_pool(tmp_path / "pool")), str(tmp_path / "run")
    base = ["--dataset", "unlabelled", "--data-dir", pool, "--image-size", str(SIDE), "--out", out, "--quiet"]
    spec = _teacher(tmp_path)
    assert _cli("--dataset", "synthetic", "--kd-hint", "a:b", "--out", out) == 2
    assert "give --kd-teacher PATH" in capsys.readouterr().err
    assert _cli("--dataset", "synthetic", "--kd-teacher", "auto", "--kd-hint", "a:b", "--out", out) == 2
    assert "give --kd-teacher PATH" in capsys.readouterr().err
    assert _cli(*base, "--kd-teacher", spec, "--kd-teacher", spec, "--kd-hint", "a:b") == 2
    assert "exactly one Keras teacher" in capsys.readouterr().err
    assert _cli(*base, "--kd-teacher", "t.tflite:input=unit,classes=non_person+person", "--kd-hint", "a:b") == 2
    assert "exactly one Keras teacher" in capsys.readouterr().err
    assert _cli(*base, "--kd-teacher", spec, "--kd-hint", "a:b", "--prune-epochs", "1") == 2
    assert "not supported with pruning" in capsys.readouterr().err
    assert _cli(*base, "--kd-teacher", spec, "--kd-hint-weight", "0.5") == 2
    assert "give --kd-hint too" in capsys.readouterr().err
    assert _cli(*base, "--kd-teacher", spec, "--kd-hint", "block1_bn") == 2
    assert "STUDENT_LAYER:TEACHER_LAYER" in capsys.readouterr().err
    assert _cli(*base, "--kd-teacher", spec, "--kd-hint", "block1_bn:t_feat", "--kd-hint-weight", "-1") == 2
    assert "--kd-hint-weight must be" in capsys.readouterr().err
    # layers are checked once the teacher is loaded, before any epoch
    assert _cli(*base, "--kd-teacher", spec, "--kd-hint", "block7_bn:t_feat", "--model-config",
                json.dumps(STUDENT), "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert "student has no layer 'block7_bn'" in err and len(err.strip().splitlines()) == 1
    assert runs.RunDir(out).last_epoch() == 0
    # a saved run resumes only with its own hint
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["kd_hint"] == "block7_bn:t_feat"
    assert _cli(*base, "--kd-teacher", spec, "--kd-hint", "block1_bn:t_feat", "--model-config",
                json.dumps(STUDENT), "--epochs", "1", "--resume") == 2
    assert "kd_hint: saved 'block7_bn:t_feat', given 'block1_bn:t_feat'" in capsys.readouterr().err


def test_help_states_the_default_weight():
    from larq_glt import train

    text = " ".join(train.build_parser().format_help().split())
    assert f"default {hints.DEFAULT_WEIGHT:g}: larq_glt.hints.DEFAULT_WEIGHT" in text


@pytest.mark.slow
def test_a_hinted_run_resumes_identically_and_exports_the_student_alone(tmp_path):
    from larq_glt import export
    from larq_glt.training import TrainConfig, train

    pool = _pool(tmp_path / "pool", 32)
    cfg = TrainConfig(dataset="unlabelled", data_dir=str(pool), image_size=SIDE, epochs=2, batch_size=8,
                      val_fraction=0.25, progress=False, kd_teacher=_teacher(tmp_path), kd_temperature=1.0,
                      kd_hint="block1_bn:t_feat", model=STUDENT, out=str(tmp_path / "full"))
    metrics = train(cfg)
    assert all(e["hint_term"] > 0 for e in metrics["epochs"])
    assert metrics["teacher"]["hint"] == {"layers": "block1_bn:t_feat", "weight": hints.DEFAULT_WEIGHT}
    cut = dataclasses.replace(cfg, out=str(tmp_path / "cut"))
    train(cut, _interrupt_after=1)
    train(cut, resume=True)  # the head and its optimizer slots come back from the checkpoint
    a, b = runs.load_model(cfg.out), runs.load_model(cut.out)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    result = export.export_keras(a, tmp_path / "export", class_names=list(CLASSES))
    plain = export.export_keras(_student(), tmp_path / "plain", class_names=list(CLASSES))
    from larq_glt import report

    ops = [report.model_report(report.read_flatbuffer(r.tflite.read_bytes(), str(r.tflite)))["ops"]
           for r in (result, plain)]
    assert ops[0] == ops[1]
