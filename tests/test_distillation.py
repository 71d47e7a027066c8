import numpy as np
import pytest

import larq_glt  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from larq_glt import distillation, models
from larq_glt.distillation import DistillationError


def kd_reference(labels, s, t, alpha, temperature):
    """NumPy: mean of alpha*CE(y, s) + (1-alpha)*T^2*KL(softmax(t/T) || softmax(s/T))."""
    s = s.astype(np.float64)
    t = t.astype(np.float64)

    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    ce = -log_softmax(s)[np.arange(len(labels)), labels]
    p_t = np.exp(log_softmax(t / temperature))
    kl = (p_t * (np.log(p_t) - log_softmax(s / temperature))).sum(axis=1)
    return np.mean(alpha * ce + (1 - alpha) * temperature**2 * kl)


@pytest.mark.parametrize("alpha,temperature", [(0.5, 4.0), (0.0, 1.0), (1.0, 2.0), (0.1, 10.0)])
def test_kd_loss_matches_numpy_reference(alpha, temperature):
    rng = np.random.default_rng(0)
    s = rng.normal(0, 3, (16, 10)).astype(np.float32)
    t = rng.normal(0, 3, (16, 10)).astype(np.float32)
    y = rng.integers(0, 10, 16)
    got = distillation.kd_loss(y, s, t, alpha, temperature).numpy()
    np.testing.assert_allclose(got, kd_reference(y, s, t, alpha, temperature), rtol=1e-5, atol=1e-6)


def test_kd_loss_is_cross_entropy_at_alpha_one_and_zero_kl_on_agreement():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(8, 5)).astype(np.float32)
    y = rng.integers(0, 5, 8)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, s).numpy()
    np.testing.assert_allclose(distillation.kd_loss(y, s, -s, 1.0, 3.0).numpy(), ce, rtol=1e-6)
    # a student equal to its teacher pays only the label term
    np.testing.assert_allclose(distillation.kd_loss(y, s, s, 0.3, 3.0).numpy(), 0.3 * ce, rtol=1e-5)


def _tiny(seed, trainable=True):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 4, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_distiller_trains_the_student_only():
    student, teacher = _tiny(0), _tiny(1)
    t_before = [w.copy() for w in teacher.get_weights()]
    s_before = [w.copy() for w in student.get_weights()]
    d = distillation.Distiller(student, teacher, alpha=0.5, temperature=2.0)
    d.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (32, 4, 4, 3), dtype=np.uint8)
    y = rng.integers(0, 3, 32)
    hist = d.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert set(hist.history) == {"loss", "accuracy"}
    for a, b in zip(t_before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(s_before, student.get_weights()))
    # the reported loss is the distillation objective at the start of the step
    student.set_weights(s_before)
    expected = distillation.kd_loss(y, student(x), teacher(x), 0.5, 2.0).numpy()
    np.testing.assert_allclose(hist.history["loss"][0], expected, rtol=1e-5)


def test_teacher_is_the_full_precision_counterpart():
    cfg = models.ModelConfig(input_size=32, num_classes=4, stem_filters=32,
                             blocks=(models.Block(64, 1), models.Block(64, 2, pool=False)))
    over = distillation.teacher_model_overrides({"width": 2})
    assert over == {"width": 2, "precision": "float"}
    teacher = models.compact(cfg, encoding=distillation.TEACHER_ENCODING, precision="float")
    student = models.compact(cfg)
    convs = lambda m: [(l.name, l.kernel.shape) for l in m.layers if isinstance(l, keras.layers.Conv2D)]  # noqa: E731
    assert convs(teacher)[1:] == convs(student)[1:]  # the same body and classifier
    assert convs(teacher)[0][1][3] == convs(student)[0][1][3]  # a float image into the same stem width
    import larq as lq
    assert not any(isinstance(l, lq.layers.QuantConv2D) for l in teacher.layers)


def test_teacher_that_does_not_fit_is_refused(tmp_path):
    model = _tiny(0)
    path = tmp_path / "t.keras"
    model.save(path)
    with pytest.raises(DistillationError, match="3 logits per image, this dataset has 10 classes"):
        distillation.load_teacher(path, num_classes=10, image_size=4)
    with pytest.raises(DistillationError, match="--image-size 8"):
        distillation.load_teacher(path, num_classes=3, image_size=8)
    assert distillation.load_teacher(path, num_classes=3, image_size=4).output_shape == (None, 3)


def test_bad_options_are_clear():
    with pytest.raises(DistillationError, match="kd-alpha"):
        distillation.check_options(1.5, 4.0)
    with pytest.raises(DistillationError, match="kd-temperature"):
        distillation.check_options(0.5, 0.0)
