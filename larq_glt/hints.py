"""Hints: the student also learns a teacher layer's feature map (FitNets).

A teacher's two class probabilities carry about one bit per image. With a
pool of 12 k images that is little to learn a function from; a feature map
of the teacher carries its evidence for it, position by position (where the
person is, and what else is there). A hint adds a second term to the
distillation loss::

    L = L_kd + w · mean over positions of (1 − cos(h(s), t))

with ``s`` a student layer's output (float, before its sign), ``h`` a 1×1
convolution (the *head*, trained with the student, used only in training:
the exported student has no trace of it), ``t`` the teacher layer's output
on the same augmented image, and the cosine taken over channels at each
position, so the feature maps' scales need not agree. Both layers must have
the same spatial size.

```python
hint = hints.Hint(student, ensemble, "block4_bn:activation_26", weight=0.25)
distiller = distillation.Distiller(student, ensemble, hint=hint)
```

Only one Keras teacher (a ``.h5``/``.keras`` model or a larq-glt run) can give
hints: a TFLite interpreter exposes no intermediate tensor to train against,
and averaging the feature maps of different models means nothing.

# References
- Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.
"""
from __future__ import annotations

import larq_glt  # noqa: F401
import tensorflow as tf
import tf_keras as keras

from larq_glt import teachers

__all__ = ["HintError", "Hint", "DEFAULT_WEIGHT", "parse", "cosine_loss"]

#: Weight ``w`` of the hint term. The KD term of a distilled person detector
#: starts near 0.2 and the hint term near 1, so the hint does not drown it.
DEFAULT_WEIGHT = 0.25


class HintError(ValueError):
    """A hint that cannot be trained."""


def parse(spec: str) -> tuple[str, str]:
    """``"STUDENT_LAYER:TEACHER_LAYER"`` -> the two layer names."""
    student, sep, teacher = str(spec).partition(":")
    if not sep or not student or not teacher or ":" in teacher:
        raise HintError(f"--kd-hint takes STUDENT_LAYER:TEACHER_LAYER (e.g. block4_bn:activation_26), got {spec!r}")
    return student, teacher


def check_weight(weight: float) -> None:
    if not 0.0 < weight < float("inf"):  # also refuses nan
        raise HintError(f"--kd-hint-weight must be a finite number > 0, got {weight}")


def cosine_loss(student_features, teacher_features):
    """Mean over batch and positions of ``1 − cos`` over the channel axis (an
    all-zero feature vector, e.g. a dead ReLU position, has cosine 0)."""
    s = tf.math.l2_normalize(tf.cast(student_features, tf.float32), axis=-1, epsilon=1e-12)
    t = tf.math.l2_normalize(tf.cast(teacher_features, tf.float32), axis=-1, epsilon=1e-12)
    return tf.reduce_mean(1.0 - tf.reduce_sum(s * t, axis=-1))


def _layer(model, name: str, whose: str):
    try:
        layer = model.get_layer(name)
        layer.output_shape  # noqa: B018  (a layer used twice has no single output: AttributeError)
        return layer
    except AttributeError:
        raise HintError(f"the {whose}'s layer {name!r} is used more than once; it has no single feature map "
                        f"to learn") from None
    except ValueError:
        last = ", ".join(layer.name for layer in model.layers[-6:])
        raise HintError(f"the {whose} has no layer {name!r} (its last layers: {last})") from None


def _spatial_map(layer, whose: str) -> tuple:
    shape = tuple(layer.output_shape)
    if len(shape) != 4:
        raise HintError(f"the {whose}'s layer {layer.name!r} outputs {shape}; a hint needs a feature map "
                        f"(batch, height, width, channels)")
    return shape


class Hint:
    """The student layer, the teacher layer and the head between them.

    ``student_outputs(x, training)`` gives the student's logits and its
    features in one pass; ``teacher_outputs(x)`` the teacher's
    log-probabilities and its features in one pass; ``loss(s, t)`` the
    weighted hint term (the head applied to ``s``).
    """

    def __init__(self, student: keras.Model, ensemble, spec: str, weight: float = DEFAULT_WEIGHT, seed: int = 0):
        check_weight(weight)
        self.spec, self.weight = str(spec), float(weight)
        s_name, t_name = parse(spec)
        members = list(getattr(ensemble, "teachers", [ensemble]))
        if len(members) != 1:
            raise HintError(f"--kd-hint needs exactly one teacher, got {len(members)}: the feature maps of "
                            f"different models cannot be averaged")
        teacher = members[0]
        if not isinstance(teacher, teachers.KerasTeacher):
            what = getattr(teacher, "path", type(teacher).__name__)
            raise HintError(f"--kd-hint needs a Keras teacher (.h5, .keras or a larq-glt run); {what} is not one: "
                            f"its intermediate tensors cannot be trained against")
        s_layer = _layer(student, s_name, "student")
        t_layer = _layer(teacher.model, t_name, f"teacher {teacher.path}")
        s_shape = _spatial_map(s_layer, "student")
        t_shape = _spatial_map(t_layer, f"teacher {teacher.path}")
        if s_shape[1:3] != t_shape[1:3]:
            raise HintError(f"the student's {s_name!r} is {s_shape[1]}x{s_shape[2]} and the teacher's {t_name!r} "
                            f"{t_shape[1]}x{t_shape[2]}: a hint pairs layers of the same spatial size")
        self.student_model = keras.Model(student.inputs, [student.output, s_layer.output])
        self.teacher_outputs = teacher.with_layer(t_name)
        # Seeded: a resumed run rebuilds the same head whatever else the process built first.
        self.head = keras.layers.Conv2D(t_shape[3], 1, name="hint_head",
                                        kernel_initializer=keras.initializers.GlorotUniform(seed=seed))
        self.head.build(s_shape)

    def student_outputs(self, x, training: bool):
        return self.student_model(x, training=training)

    def loss(self, student_features, teacher_features):
        return self.weight * cosine_loss(self.head(student_features), teacher_features)
