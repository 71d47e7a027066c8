"""Knowledge distillation: a full-precision teacher guides the binary student.

The student is trained on a mix of the usual cross-entropy with the labels and
the Kullback-Leibler divergence from the teacher's softened class
distribution (Hinton et al.)::

    L = α · CE(y, softmax(s)) + (1 − α) · T² · KL(softmax(t / T) ‖ softmax(s / T))

with ``s``, ``t`` the student and teacher logits, ``α`` (``--kd-alpha``) the
weight of the hard labels and ``T`` (``--kd-temperature``) the softening
temperature; ``T²`` keeps the soft term's gradients at the scale of the hard
term's as ``T`` changes. The teacher runs in inference mode and is not
updated.

```python
from larq_glt import distillation, models

student = models.compact(num_classes=10)
teacher = models.compact(num_classes=10, encoding="float", precision="float")  # trained first
distiller = distillation.Distiller(student, teacher, alpha=0.5, temperature=4.0)
distiller.compile(optimizer="adam", metrics=["accuracy"])
distiller.fit(train_ds, epochs=5)        # updates the student only
```

The default teacher (``--kd-teacher auto``) is the student's full-precision
counterpart: the same topology with a float input and float convolutions
(:func:`teacher_model_overrides`). Training loads any other teacher — a
larq-glt run, a Keras ``.h5``/``.keras`` or a TFLite model, several averaged —
through :mod:`larq_glt.teachers`; :func:`load_teacher` only loads a Keras model
that takes this run's ``uint8`` images as they are.

# References
- Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network",
  arXiv:1503.02531, 2015.
- Nguyen & Guicquero, arXiv:2505.13462, 2025 (KD to recover the accuracy of
  pruned fully-binarized networks).
"""
from __future__ import annotations

import larq_glt  # noqa: F401
import tensorflow as tf
import tf_keras as keras

__all__ = ["DistillationError", "UNLABELLED", "kd_loss", "Distiller", "load_teacher", "teacher_model_overrides", "TEACHER_ENCODING"]

#: Input of the full-precision teacher: the normalised float image.
TEACHER_ENCODING = "float"


class DistillationError(ValueError):
    """A teacher or distillation option that cannot be used."""


def check_options(alpha: float, temperature: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise DistillationError(f"--kd-alpha must be in [0, 1], got {alpha}")
    if not 0.0 < temperature < float("inf"):  # also refuses nan
        raise DistillationError(f"--kd-temperature must be a finite number > 0, got {temperature}")


#: Label of an image that has none (an unlabelled pool): only the teacher labels it.
UNLABELLED = -1


def kd_loss(labels, student_logits, teacher_logits, alpha: float = 0.5, temperature: float = 4.0,
            class_balance: bool = False):
    """Mean over the batch of
    ``α·CE(labels, s) + (1−α)·T²·KL(softmax(t/T) ‖ softmax(s/T))``.

    ``labels`` are integer class ids; the logits are ``(batch, classes)``.
    An example labelled :data:`UNLABELLED` has no CE term and its KD term at
    full weight, ``T²·KL``: the teacher is its only label.

    ``class_balance``: example ``i`` is weighted by ``Σ_c p_i(c) / (C·p̄(c))``,
    ``p_i`` the teacher's probabilities (at T = 1), ``p̄`` their batch mean:
    every class the teacher sees weighs alike in the batch (the weights average
    1), so a pool where the teacher sees few persons still teaches persons as
    much as the rest. A balanced-accuracy objective, not a prior: the offset
    calibrated after training still sets the operating point.
    """
    labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
    s = tf.cast(student_logits, tf.float32)
    t = tf.cast(teacher_logits, tf.float32)
    labelled = labels >= 0
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.maximum(labels, 0), logits=s)
    log_p_t = tf.nn.log_softmax(t / temperature, axis=-1)
    log_p_s = tf.nn.log_softmax(s / temperature, axis=-1)
    kl = temperature**2 * tf.reduce_sum(tf.exp(log_p_t) * (log_p_t - log_p_s), axis=-1)
    per_example = tf.where(labelled, alpha * ce + (1.0 - alpha) * kl, kl)
    if class_balance:
        per_example *= tf.stop_gradient(class_balance_weights(t))
    return tf.reduce_mean(per_example)


def class_balance_weights(teacher_logits):
    """The per-example weights of ``kd_loss(..., class_balance=True)``."""
    p = tf.nn.softmax(tf.cast(teacher_logits, tf.float32), axis=-1)
    share = tf.reduce_mean(p, axis=0)  # > 0: softmax probabilities never vanish
    classes = tf.cast(tf.shape(p)[-1], tf.float32)
    return tf.reduce_sum(p / (classes * share), axis=-1)


class Distiller(keras.Model):
    """Trains ``student`` with :func:`kd_loss` against a frozen ``teacher``.

    ``teacher``: a Keras model or any callable from the input batch to logits
    (or log-probabilities, e.g. a :class:`larq_glt.teachers.Ensemble`).
    ``fit`` reports ``loss`` (the distillation objective) and the compiled
    metrics on the student's logits, against the label where there is one and
    the teacher's choice for :data:`UNLABELLED` examples; ``evaluate`` reports
    the student's plain cross-entropy as ``loss``. Checkpoint and save the
    student itself (and a hint's head, to resume: see :mod:`larq_glt.hints`).

    ``hint``: a :class:`larq_glt.hints.Hint` built on ``student`` and
    ``teacher``; its weighted term is added to the loss (``fit`` also reports
    it as ``hint``) and its head trained with the student.
    """

    def __init__(self, student: keras.Model, teacher: keras.Model, alpha: float = 0.5,
                 temperature: float = 4.0, mixup: float = 0.0, class_balance: bool = False, hint=None,
                 **kwargs):
        super().__init__(**kwargs)
        check_options(alpha, temperature)
        if not 0.0 <= mixup <= 1.0:
            raise DistillationError(f"--kd-mixup must be in [0, 1], got {mixup}")
        self.mixup = float(mixup)
        self.class_balance = bool(class_balance)
        # Seed of the mixup draws, set per epoch by the caller (``set_epoch_seed``):
        # with the step counter it makes each step's draw reproducible on --resume.
        self.epoch_seed = tf.Variable([0, 0], dtype=tf.int64, trainable=False)
        self.student = student
        self.teacher = teacher
        if isinstance(teacher, keras.Model):
            self.teacher.trainable = False
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.hint = hint
        self.hint_head = hint.head if hint is not None else None  # tracked: the optimizer's slots follow it
        self.hint_tracker = keras.metrics.Mean(name="hint") if hint is not None else None

    @property
    def metrics(self):
        compiled = self.compiled_metrics.metrics if self.compiled_metrics is not None else []
        hint = [self.hint_tracker] if self.hint_tracker is not None else []
        return [self.loss_tracker, *hint, *compiled]

    def call(self, inputs, training=False):
        return self.student(inputs, training=training)

    def set_epoch_seed(self, seed: int, epoch: int) -> None:
        self.epoch_seed.assign([seed, epoch])

    def _mix(self, x, y):
        """Replace a ``mixup`` share of the batch by blends ``λ·x_i + (1−λ)·x_j``
        (``λ`` uniform, ``j`` a shuffled partner), labelled by the teacher only."""
        seed = tf.random.experimental.stateless_fold_in(self.epoch_seed, tf.cast(self._train_counter, tf.int64))
        seeds = tf.random.experimental.stateless_split(seed, num=3)
        b = tf.shape(x)[0]
        partner = tf.argsort(tf.random.stateless_uniform([b], seed=seeds[0]))
        lam = tf.random.stateless_uniform([b, 1, 1, 1], seed=seeds[1])
        mixed = tf.cast(tf.round(lam * tf.cast(x, tf.float32) + (1 - lam) * tf.cast(tf.gather(x, partner), tf.float32)),
                        x.dtype)
        chosen = tf.random.stateless_uniform([b], seed=seeds[2]) < self.mixup
        x = tf.where(chosen[:, None, None, None], mixed, x)
        y = tf.where(chosen, tf.fill([b], tf.constant(UNLABELLED, y.dtype)), tf.reshape(y, [-1]))
        return x, y

    def train_step(self, data):
        x, y = data
        if self.mixup:
            x, y = self._mix(x, y)
        if self.hint is not None:
            teacher_logits, teacher_features = self.hint.teacher_outputs(x)
        else:
            teacher_logits = self._teacher_logits(x)
        with tf.GradientTape() as tape:
            if self.hint is not None:
                logits, features = self.hint.student_outputs(x, training=True)
            else:
                logits = self.student(x, training=True)
            loss = kd_loss(y, logits, teacher_logits, self.alpha, self.temperature, self.class_balance)
            if self.hint is not None:
                hint_loss = self.hint.loss(features, teacher_features)
                loss += hint_loss
            if self.student.losses:
                loss += tf.add_n(self.student.losses)
        variables = self.student.trainable_variables
        if self.hint is not None:
            variables = variables + self.hint_head.trainable_variables
            self.hint_tracker.update_state(hint_loss)
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.loss_tracker.update_state(loss)
        y = tf.cast(tf.reshape(y, [-1]), tf.int32)
        y = tf.where(y >= 0, y, tf.argmax(teacher_logits, axis=-1, output_type=tf.int32))
        self.compiled_metrics.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def _teacher_logits(self, x):
        if isinstance(self.teacher, keras.Model):
            return self.teacher(x, training=False)
        return tf.stop_gradient(self.teacher(x))

    def test_step(self, data):
        x, y = data
        logits = self.student(x, training=False)
        ce = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(tf.reshape(y, [-1]), tf.int32), logits=logits)
        )
        self.loss_tracker.update_state(ce)
        self.compiled_metrics.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}


def teacher_model_overrides(model_overrides: dict) -> dict:
    """ModelConfig overrides of the student's full-precision counterpart."""
    return {**model_overrides, "precision": "float"}


def load_teacher(path, num_classes: int, image_size: int) -> keras.Model:
    """Load a saved teacher (a run directory or a ``.keras`` file) and check
    it reads this run's images and predicts its classes."""
    from larq_glt import runs

    teacher = runs.load_model(path)
    in_shape = tuple(teacher.input_shape[1:])
    if in_shape[:2] != (image_size, image_size) or in_shape[2:] not in ((3,), (None,)):
        raise DistillationError(
            f"teacher {path} takes images of shape {in_shape}, this run feeds ({image_size}, {image_size}, 3): "
            f"train the teacher with --image-size {image_size}"
        )
    out = teacher.output_shape
    if len(out) != 2 or out[-1] != num_classes:
        raise DistillationError(
            f"teacher {path} outputs {out[-1]} logits per image, this dataset has {num_classes} classes"
        )
    return teacher
