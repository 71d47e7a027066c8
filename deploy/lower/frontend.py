"""The uint8 input front end: the encoder ops between the raw uint8 image and
its LceQuantize (CAST, SUB, GREATER_EQUAL, ...) become one look-up-table call.
The tables are found by evaluating those ops with numpy twins of TFLite's
float32 arithmetic on probe frames (:func:`frontend_lut`).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from deploy.lower.calls import (ACT_RELU, ACT_RELU6, ACT_RELU_N1_TO_1, KernelCall, UnsupportedOpError, fail, hwc)
from deploy.lower.lce_ops import bitpack
from larq_glt.flatbuffer import Model, Operator, Tensor

def _apply_activation(x: np.ndarray, act: int) -> np.ndarray:
    if act == ACT_RELU:
        return np.maximum(x, np.float32(0))
    if act == ACT_RELU6:
        return np.clip(x, np.float32(0), np.float32(6))
    if act == ACT_RELU_N1_TO_1:
        return np.clip(x, np.float32(-1), np.float32(1))
    return x


def _binary(fn):
    def run(op, args):
        a, b = args[0], args[1]
        if a.dtype == np.float32 or b.dtype == np.float32:
            a, b = a.astype(np.float32), b.astype(np.float32)
        return _apply_activation(fn(a, b), op.builtin_options.get("fused_activation_function", 0))
    return run


_CAST_TYPES = {"FLOAT32": np.float32, "INT32": np.int32, "UINT8": np.uint8, "INT8": np.int8,
               "BOOL": np.bool_, "INT16": np.int16, "INT64": np.int64}


def _eval_gather(op, args):
    axis = op.builtin_options.get("axis", 0)
    return np.take(args[0], args[1].astype(np.int64), axis=axis)


# numpy twins of the elementwise/layout builtins an input encoder may use; each
# reproduces TFLite's float32 arithmetic exactly (IEEE single, same broadcasting).
ENCODER_EVALUATORS: dict[str, Callable] = {
    "CAST": None,  # needs the output type: handled in _eval_op
    "TILE": lambda op, a: np.tile(a[0], tuple(int(m) for m in a[1].reshape(-1))),
    "SUB": _binary(np.subtract),
    "ADD": _binary(np.add),
    "MUL": _binary(np.multiply),
    "DIV": _binary(np.divide),
    "MAXIMUM": _binary(np.maximum),
    "MINIMUM": _binary(np.minimum),
    "GREATER_EQUAL": lambda op, a: a[0] >= a[1],
    "GREATER": lambda op, a: a[0] > a[1],
    "LESS": lambda op, a: a[0] < a[1],
    "LESS_EQUAL": lambda op, a: a[0] <= a[1],
    "EQUAL": lambda op, a: a[0] == a[1],
    "NOT_EQUAL": lambda op, a: a[0] != a[1],
    "LOGICAL_NOT": lambda op, a: np.logical_not(a[0]),
    "LOGICAL_AND": lambda op, a: np.logical_and(a[0], a[1]),
    "LOGICAL_OR": lambda op, a: np.logical_or(a[0], a[1]),
    "SELECT": lambda op, a: np.where(a[0], a[1], a[2]),
    "SELECT_V2": lambda op, a: np.where(a[0], a[1], a[2]),
    "FLOOR": lambda op, a: np.floor(a[0]),
    "NEG": lambda op, a: -a[0],
    "CONCATENATION": lambda op, a: _apply_activation(
        np.concatenate(a, axis=op.builtin_options.get("axis", -1)),
        op.builtin_options.get("fused_activation_function", 0)),
    "GATHER": _eval_gather,
    "BROADCAST_TO": lambda op, a: np.broadcast_to(a[0], tuple(int(d) for d in a[1].reshape(-1))),
    # Layout only: the per-channel LUT probing below verifies the result is still
    # a per-pixel, per-channel function (the GLT encoder reshapes to channel-major planes).
    "RESHAPE": lambda op, a: a[0].reshape(_new_shape(op, a)),
    "EXPAND_DIMS": lambda op, a: np.expand_dims(a[0], int(np.asarray(a[1]).reshape(-1)[0])),
}


def _new_shape(op: Operator, args) -> tuple[int, ...]:
    if len(args) > 1 and args[1] is not None:
        return tuple(int(d) for d in np.asarray(args[1]).reshape(-1))
    return tuple(int(d) for d in op.builtin_options.get("new_shape", ()))


def find_frontend(model: Model) -> KernelCall | None:
    """Fuses uint8 input -> encoder ops -> LceQuantize into one front-end call."""
    if len(model.inputs) != 1:
        return None
    src = model.tensors[model.inputs[0]]
    if src.type_name != "UINT8":
        return None
    derived = {src.index}
    chain: list[Operator] = []
    quantize: Operator | None = None
    for op in model.operators:
        activations = [i for i in op.inputs if i >= 0 and model.tensors[i].data is None]
        if not activations or not all(i in derived for i in activations):
            if any(i in derived for i in activations):
                fail(op, "mixes the uint8 input encoder with other activations; "
                          "the encoder must end in LceQuantize")
            continue
        if op.opcode == "LceQuantize":
            if quantize is not None:
                fail(op, "the input encoder feeds more than one LceQuantize")
            quantize = op
            chain.append(op)
            continue
        if op.opcode not in ENCODER_EVALUATORS:
            raise UnsupportedOpError(
                f"operator {op.index} ({op.opcode}) is not supported in the uint8 input encoder "
                "(it must be elementwise ops ending in LceQuantize; supported there: "
                f"{', '.join(sorted(ENCODER_EVALUATORS))})")
        chain.append(op)
        derived.update(op.outputs)
    if quantize is None:
        raise UnsupportedOpError(
            f"the uint8 model input (tensor {src.index}) never reaches an LceQuantize: "
            "the firmware needs a binary input encoder")
    for t in derived:
        for consumer in model.consumers(t):
            if consumer not in chain:
                fail(consumer, f"reads encoder tensor {t}; only LceQuantize may consume the encoder")
    if src.index in model.outputs or any(t in model.outputs for t in derived):
        raise UnsupportedOpError("an input encoder tensor is a model output")
    out = model.tensors[quantize.outputs[0]]
    h, w, c = hwc(chain[0], src, "model input")
    lut = frontend_lut(model, chain, src, out)
    words = lut.shape[2]
    return KernelCall(
        op_indices=tuple(op.index for op in chain),
        op_name="FRONTEND",
        function="glt_frontend_opt",
        reference_function="glt_frontend_ref",
        header="glt_frontend.h",
        params_type="glt_frontend_params",
        params=dict(pixels=h * w, channels=c, words=words),
        arrays={"lut": lut.reshape(-1)},
        inputs=(src.index,),
        outputs=(out.index,),
        input_bytes=(src.nbytes,),
        output_bytes=(out.nbytes,),
        notes=[f"fuses {' -> '.join(op.opcode for op in chain)}"],
    )


def _eval_op(model: Model, op: Operator, values: dict[int, np.ndarray]) -> np.ndarray:
    args = []
    for i in op.inputs:
        t = model.tensors[i]
        args.append(values[i] if i in values else np.asarray(t.data))
    if op.opcode == "LceQuantize":
        x = args[0]
        t = model.tensors[op.inputs[0]]
        if x.dtype == np.bool_:
            bits = ~x
        elif x.dtype == np.int8:
            bits = x.astype(np.int32) < (int(t.zero_point[0]) if t.zero_point is not None else 0)
        else:
            bits = x.astype(np.float32) < np.float32(0)
        return bitpack(bits)
    if op.opcode == "CAST":
        out_t = model.tensors[op.outputs[0]]
        dtype = _CAST_TYPES.get(out_t.type_name)
        if dtype is None:
            fail(op, f"cast to {out_t.type_name} is not supported")
        return args[0] != 0 if dtype is np.bool_ else args[0].astype(dtype)
    result = ENCODER_EVALUATORS[op.opcode](op, args)
    out_t = model.tensors[op.outputs[0]]
    if out_t.dtype is not None and result.dtype != out_t.dtype:
        result = result.astype(out_t.dtype)
    return np.asarray(result)


def _run_chain(model: Model, chain: list[Operator], src: Tensor, frame: np.ndarray) -> np.ndarray:
    values = {src.index: frame}
    for op in chain:
        values[op.outputs[0]] = _eval_op(model, op, values)
    out = values[chain[-1].outputs[0]]
    return out.reshape(-1, out.shape[-1])  # [pixels, words]


def frontend_lut(model: Model, chain: list[Operator], src: Tensor, out: Tensor) -> np.ndarray:
    """Per-channel tables [C, 256, words] (uint32) such that OR-ing the entries of a
    pixel's channel values gives the encoder's bit-packed output for that pixel.

    Obtained by evaluating the encoder ops on probe frames (each channel in turn
    takes every value 0..255), then verified on random and extreme frames; an
    encoder that is not a per-pixel, per-channel function raises UnsupportedOpError.
    """
    shape = src.shape
    _, h, w, c = shape
    pixels = h * w
    expected_words = out.shape[-1]
    zero = np.zeros(shape, dtype=np.uint8)
    base = _run_chain(model, chain, src, zero)
    if base.shape != (pixels, expected_words):
        fail(chain[-1], f"encoder output {list(base.shape)} is not one row of words per pixel")
    if not np.all(base == base[0]):
        fail(chain[-1], "encoder output depends on the pixel position")
    per_channel = np.zeros((c, 256, expected_words), dtype=np.uint32)
    rounds = -(-256 // pixels)
    for ch in range(c):
        seen = np.zeros(256, dtype=bool)
        for r in range(rounds + 1):  # one extra, shifted round checks position independence
            if r < rounds:
                values = (np.arange(pixels) + r * pixels) % 256
            else:  # values move to other pixels
                values = (np.arange(pixels) * 7 + 100) % 256
            frame = zero.copy()
            frame[0, :, :, ch] = values.reshape(h, w).astype(np.uint8)
            got = _run_chain(model, chain, src, frame)
            for v in np.unique(values):
                rows = got[values == v]
                if not np.all(rows == rows[0]):
                    fail(chain[-1], "encoder output depends on the pixel position")
                if seen[v] and not np.array_equal(per_channel[ch, v], rows[0]):
                    fail(chain[-1], "encoder output depends on the pixel position")
                per_channel[ch, v] = rows[0]
                seen[v] = True
        if not seen.all():
            fail(chain[-1], "probe frames did not cover every input value")
    depends = [np.bitwise_or.reduce(per_channel[ch] ^ base[0], axis=0) for ch in range(c)]
    for a in range(c):
        for b in range(a + 1, c):
            if np.any(depends[a] & depends[b]):
                fail(chain[-1], f"an encoder bit depends on both input channels {a} and {b}; "
                                 "it cannot be a per-channel lookup table")
    lut = np.zeros_like(per_channel)
    for ch in range(c):
        lut[ch] = per_channel[ch] & depends[ch]
    lut[0] |= base[0] & ~np.bitwise_or.reduce(np.stack(depends), axis=0)  # constant bits
    rng = np.random.default_rng(0)
    checks = [rng.integers(0, 256, size=shape, dtype=np.uint8) for _ in range(3)]
    checks.append(np.full(shape, 255, dtype=np.uint8))
    for frame in checks:
        direct = _run_chain(model, chain, src, frame)
        pix = frame.reshape(pixels, c)
        combined = np.zeros_like(direct)
        for ch in range(c):
            combined |= lut[ch][pix[:, ch]]
        if not np.array_equal(direct, combined):
            fail(chain[-1], "the input encoder is not separable per channel (lookup tables disagree "
                             "with the encoder ops on a test frame)")
    return lut
