"""Teachers: models whose class probabilities label this run's images.

A teacher maps a batch of the run's raw ``uint8`` images (after augmentation,
so it sees exactly what the student sees) to per-class log-probabilities. It
can be a larq-glt run or ``.keras`` file (same uint8 input), another Keras
model (``.h5``/``.keras``, e.g. the MLPerf Tiny VWW reference) or a TFLite
flatbuffer (float or quantized, e.g. the Wake Vision zoo)::

    from larq_glt import teachers
    t = teachers.load("mlperf_tiny_vww_96.h5:input=unit,classes=non_person+person",
                      class_names=("non_person", "person"))
    log_p = t(images_uint8)                       # [B, 2] float32, log-probabilities

A spec is ``PATH`` or ``PATH:key=value,...`` with

- ``input``: what the model's (real-valued) input is, as a function of the
  pixel ``p`` in 0..255: ``raw`` (``p``), ``unit`` (``p / 255``) or
  ``symmetric`` (``p / 127.5 − 1``). A float model needs it (its weights
  alone do not say); a quantized TFLite input ``q = r / s + z`` gives it by
  its scale (``s = 1``: raw, ``1/255``: unit, ``2/255``: symmetric) and a uint8
  Keras input is raw. The side is the model's own: images are resized to it
  (bilinear) when it differs from the run's.
- ``output``: ``probabilities`` or ``logits``. Derived from the model when it
  can be: a Keras model whose last layer is a softmax, a TFLite graph whose
  output comes from ``SOFTMAX`` (through quantize/reshape ops) give
  probabilities; otherwise logits. Quantized outputs are dequantized.
- ``classes``: the model's class names in output order, joined by ``+``
  (``non_person+person``). Required for a model that is not a larq-glt run
  (a run's ``config.json`` names its classes); checked against the dataset's.

Several teachers form an :class:`Ensemble`: their probabilities are averaged.
"""
from __future__ import annotations

import json
import threading
from pathlib import Path

import larq_glt  # noqa: F401
import numpy as np
import tensorflow as tf

__all__ = ["TeacherError", "Teacher", "Ensemble", "parse_spec", "load", "load_all", "INPUTS", "OUTPUTS"]

#: Input conventions: pixel p (0..255) -> the model's real-valued input a*p + b.
INPUTS = {"raw": (1.0, 0.0), "unit": (1.0 / 255.0, 0.0), "symmetric": (2.0 / 255.0, -1.0)}
OUTPUTS = ("probabilities", "logits")
_KEYS = ("input", "output", "classes")
_TFLITE_PASS_THROUGH = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE"}


class TeacherError(ValueError):
    """A teacher that cannot label this run's images."""


def parse_spec(spec: str) -> tuple[str, dict]:
    """``"PATH:key=value,..."`` -> ``(PATH, {key: value})``; a plain path has no options."""
    path, options = spec, {}
    head, sep, tail = spec.rpartition(":")
    if sep and "=" in tail and "/" not in tail:
        path = head
        for item in tail.split(","):
            key, eq, value = item.partition("=")
            if not eq or key not in _KEYS or not value:
                raise TeacherError(
                    f"teacher {spec!r}: option {item!r} is not key=value with key one of {', '.join(_KEYS)}"
                )
            options[key] = value
    if options.get("input", "raw") not in INPUTS:
        raise TeacherError(f"teacher {spec!r}: input must be one of {', '.join(INPUTS)}, got {options['input']!r}")
    if options.get("output", "logits") not in OUTPUTS:
        raise TeacherError(f"teacher {spec!r}: output must be one of {', '.join(OUTPUTS)}, got {options['output']!r}")
    if "classes" in options:
        options["classes"] = tuple(options["classes"].split("+"))
    return path, options


class Teacher:
    """One model as a teacher; calling it gives log-probabilities ``[B, C]``.

    ``side``: the model's input side; ``input``: its input convention (a key of
    :data:`INPUTS`); ``output``: ``probabilities`` or ``logits``;
    ``class_names``: its classes in output order (``None`` when unknown).
    """

    def __init__(self, path, side: int, input: str, output: str, class_names, num_classes: int, kind: str):
        self.path, self.side, self.input, self.output = str(path), int(side), input, output
        self.class_names = tuple(class_names) if class_names else None
        self.num_classes, self.kind = int(num_classes), kind

    def describe(self) -> dict:
        return {"path": self.path, "kind": self.kind, "side": self.side, "input": self.input,
                "output": self.output, "classes": list(self.class_names or ())}

    def _real_input(self, images: tf.Tensor) -> tf.Tensor:
        x = tf.cast(images, tf.float32)
        if x.shape[1] != self.side or x.shape[2] != self.side:
            x = tf.image.resize(x, (self.side, self.side), method="bilinear")
        a, b = INPUTS[self.input]
        return x * a + b

    def _log_probs(self, out: tf.Tensor) -> tf.Tensor:
        out = tf.cast(out, tf.float32)
        if self.output == "probabilities":
            # Renormalised: quantized probabilities do not sum to exactly 1.
            p = tf.maximum(out, 1e-6)
            return tf.math.log(p / tf.reduce_sum(p, axis=-1, keepdims=True))
        return tf.nn.log_softmax(out, axis=-1)

    def __call__(self, images: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


class KerasTeacher(Teacher):
    def __init__(self, model, path, input: str, output: str, class_names):
        shape = model.input_shape
        super().__init__(path, shape[1], input, output, class_names, model.output_shape[-1], "keras")
        self.model = model
        self.model.trainable = False
        self._uint8 = model.input.dtype == tf.uint8

    def _model_input(self, images):
        if self._uint8 and images.shape[1] == self.side:
            return images
        x = self._real_input(images)
        if self._uint8:
            x = tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)
        return x

    def __call__(self, images):
        return self._log_probs(self.model(self._model_input(images), training=False))

    def with_layer(self, name: str):
        """``images -> (log-probabilities, output of layer name)`` in one pass
        (for :mod:`larq_glt.hints`)."""
        import tf_keras as keras

        both = keras.Model(self.model.inputs, [self.model.output, self.model.get_layer(name).output])
        both.trainable = False

        def outputs(images):
            out, features = both(self._model_input(images), training=False)
            return self._log_probs(out), tf.stop_gradient(tf.cast(features, tf.float32))

        return outputs


class TFLiteTeacher(Teacher):
    """A flatbuffer run by ``tf.lite.Interpreter`` inside the graph (``tf.numpy_function``)."""

    def __init__(self, path, input: str | None, output: str | None, class_names):
        self.interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=1)
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        self._in, self._out = inp, out
        self._dtype = inp["dtype"]
        scale = inp["quantization"][0]
        if input is None:
            input = _input_from_scale(scale) if self._dtype != np.float32 else None
            if input is None:
                raise TeacherError(
                    f"teacher {path}: its {np.dtype(self._dtype).name} input does not say how pixels map to it; "
                    f"add :input=raw|unit|symmetric (pixel, pixel/255, pixel/127.5-1)"
                )
        if output is None:
            output = "probabilities" if _tflite_ends_in_softmax(self.interpreter, out["index"]) else "logits"
        super().__init__(path, inp["shape"][1], input, output, class_names, out["shape"][-1], "tflite")
        self._batch = None
        self._lock = threading.Lock()

    def _run(self, x: np.ndarray) -> np.ndarray:
        inp, out = self._in, self._out
        scale, zero = inp["quantization"]
        if self._dtype != np.float32:
            info = np.iinfo(self._dtype)
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        x = x.astype(self._dtype)
        with self._lock:
            if self._batch != len(x):
                self.interpreter.resize_tensor_input(inp["index"], [len(x), *inp["shape"][1:]])
                self.interpreter.allocate_tensors()
                self._batch = len(x)
                self._out = out = self.interpreter.get_output_details()[0]
            self.interpreter.set_tensor(inp["index"], x)
            self.interpreter.invoke()
            y = self.interpreter.get_tensor(out["index"]).astype(np.float32)
        o_scale, o_zero = out["quantization"]
        if out["dtype"] != np.float32 and o_scale:
            y = (y - o_zero) * o_scale
        return y.reshape(len(x), -1)

    def __call__(self, images):
        y = tf.numpy_function(self._run, [self._real_input(images)], tf.float32, stateful=False)
        y.set_shape([images.shape[0], self.num_classes])
        return self._log_probs(y)


def _input_from_scale(scale: float) -> str | None:
    for name, (a, _) in INPUTS.items():
        if scale and abs(scale / a - 1) < 1e-3:
            return name
    return None


def _tflite_ends_in_softmax(interpreter, tensor: int) -> bool:
    producers = {t: op for op in interpreter._get_ops_details() for t in op["outputs"]}
    op = producers.get(tensor)
    while op is not None and op["op_name"] in _TFLITE_PASS_THROUGH:
        op = producers.get(op["inputs"][0])
    return op is not None and op["op_name"] == "SOFTMAX"


def _keras_ends_in_softmax(model) -> bool:
    import tf_keras as keras

    last = model.layers[-1]
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def _run_class_names(path: Path):
    config = (path if path.is_dir() else path.parent) / "config.json"
    if config.exists():
        try:
            return tuple(json.loads(config.read_text()).get("class_names") or ()) or None
        except (OSError, json.JSONDecodeError):
            return None
    return None


def load(spec: str, class_names) -> Teacher:
    """Load one teacher and check it can label this dataset's images."""
    path_str, options = parse_spec(spec)
    path = Path(path_str).expanduser()
    if not path.exists():
        raise TeacherError(f"teacher {path}: no such file or run directory")
    class_names = tuple(class_names)
    if path.suffix == ".tflite":
        try:
            teacher = TFLiteTeacher(path, options.get("input"), options.get("output"), options.get("classes"))
        except ValueError as e:
            if isinstance(e, TeacherError):
                raise
            raise TeacherError(f"teacher {path}: not a readable TFLite model ({e})") from None
    else:
        teacher = _load_keras(path, options)
    if teacher.num_classes != len(class_names):
        raise TeacherError(
            f"teacher {path} outputs {teacher.num_classes} classes, this dataset has {len(class_names)} "
            f"({', '.join(class_names)})"
        )
    if teacher.class_names is None:
        if teacher.kind != "run":
            raise TeacherError(
                f"teacher {path}: its class order is unknown; add :classes=" + "+".join(class_names)
                + " (the model's output order) after checking it"
            )
    elif teacher.class_names != class_names:
        raise TeacherError(
            f"teacher {path} predicts classes ({', '.join(teacher.class_names)}) in that order, "
            f"this dataset has ({', '.join(class_names)})"
        )
    return teacher


def _load_keras(path: Path, options: dict) -> Teacher:
    from larq_glt import runs

    if path.is_dir() or path.suffix == ".keras":
        try:
            model = runs.load_model(path)
        except runs.RunError as e:
            raise TeacherError(str(e)) from None
    elif path.suffix in (".h5", ".hdf5"):
        import tf_keras as keras

        try:
            model = keras.models.load_model(path, compile=False)
        except (OSError, ValueError) as e:
            raise TeacherError(f"teacher {path}: cannot load the Keras model ({e})") from None
    else:
        raise TeacherError(f"teacher {path}: expected a run directory, .keras, .h5 or .tflite file")
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[2] != 3 or shape[0] is None or shape[0] != shape[1]:
        raise TeacherError(f"teacher {path} takes inputs of shape {shape}; a square RGB image is needed")
    uint8 = model.input.dtype == tf.uint8
    if "input" in options:
        input = options["input"]
    elif uint8:
        input = "raw"
    else:
        raise TeacherError(
            f"teacher {path}: its float input does not say how pixels map to it; "
            f"add :input=raw|unit|symmetric (pixel, pixel/255, pixel/127.5-1)"
        )
    output = options.get("output") or ("probabilities" if _keras_ends_in_softmax(model) else "logits")
    names = options.get("classes") or _run_class_names(path)
    teacher = KerasTeacher(model, path, input, output, names)
    if uint8 and "classes" not in options:
        teacher.kind = "run"  # a larq-glt model: class names from its run when it has one
    return teacher


class Ensemble:
    """Several teachers: the log of their averaged probabilities."""

    def __init__(self, teachers):
        self.teachers = list(teachers)
        if not self.teachers:
            raise TeacherError("an ensemble needs at least one teacher")

    def __call__(self, images):
        if len(self.teachers) == 1:
            return self.teachers[0](images)
        log_p = tf.stack([t(images) for t in self.teachers])
        return tf.reduce_logsumexp(log_p, axis=0) - np.log(len(self.teachers)).astype(np.float32)

    def describe(self) -> list[dict]:
        return [t.describe() for t in self.teachers]


def load_all(specs, class_names) -> Ensemble:
    return Ensemble(load(s, class_names) for s in specs)
