"""The model's kernel calls in execution order: one call per operator (the
table :data:`LOWERINGS`), the input encoder fused into a front end, each binary
shortcut block (:func:`larq_glt.opset.shortcuts`) fused into one binary
convolution, each shuffled block (:func:`larq_glt.opset.word_shuffles`) run on
bits (conv, pool, word copy), and the front end fused with the first binary convolution where it
can be.
"""
from __future__ import annotations

from typing import Callable

from deploy.lower.builtin_ops import (lower_argmax, lower_avgpool, lower_copy, lower_fully_connected,
                                      lower_mean, lower_softmax)
from deploy.lower.calls import KernelCall, UnsupportedOpError
from deploy.lower.frontend import find_frontend
from deploy.lower.lce_ops import (lower_bconv2d, lower_bmaxpool, lower_dequantize, lower_quantize, lower_shortcut,
                                  lower_word_shuffle)
from deploy.lower.stem import fuse_stem_calls
from larq_glt.flatbuffer import Model, Operator
from larq_glt.opset import ENCODER_OPS, parameter_problem, shortcuts, word_shuffles

def lower_model(model: Model, fuse_stem: bool = True,
                stem_table_max_bytes: int | None = None) -> list[KernelCall]:
    """Kernel calls for the whole model, in execution order.

    fuse_stem: fuse the front end with the binary convolution that reads it (see
    :func:`fuse_stem`); False keeps them as two calls (tests compare both).
    stem_table_max_bytes: flash the fused stem's level tables may take (None:
    :data:`deploy.lower.stem.STEM_TABLE_MAX_BYTES`)."""
    calls: list[KernelCall] = []
    fused: set[int] = set()
    front = find_frontend(model)
    if front is not None:
        calls.append(front)
        fused.update(front.op_indices)
    blocks = {s.bconv: s for s in shortcuts(model)}
    for s in blocks.values():
        fused.update((s.dequantize, s.add, s.quantize))
    shuffled = {s.bconv: s for s in word_shuffles(model)}
    for s in shuffled.values():
        fused.update(i for i in (s.pool, s.gather, s.quantize) if i is not None)
    for op in model.operators:
        if op.index in blocks:
            calls.append(lower_shortcut(model, blocks[op.index]))
        elif op.index in shuffled:
            calls.extend(lower_word_shuffle(model, shuffled[op.index]))
        elif op.index not in fused:
            calls.append(lower_operator(model, op))
    return fuse_stem_calls(model, calls, stem_table_max_bytes) if fuse_stem else calls


def lower_operator(model: Model, op: Operator) -> KernelCall:
    """The kernel call for one operator; UnsupportedOpError if there is none."""
    lower = LOWERINGS.get(op.opcode)
    if lower is None:
        hint = ""
        if op.opcode in ENCODER_OPS:
            hint = " (allowed only inside the uint8 input encoder that ends in LceQuantize)"
        raise UnsupportedOpError(
            f"operator {op.index} ({op.opcode}) is not supported by the firmware runtime{hint}; "
            f"supported: {', '.join(sorted(LOWERINGS))}"
        )
    problem = parameter_problem(model, op)  # what the exporter refuses too, in the same words
    if problem:
        raise UnsupportedOpError(f"operator {op.index} ({op.opcode}): {problem}")
    return lower(model, op)


LOWERINGS: dict[str, Callable[[Model, Operator], KernelCall]] = {
    "LceBconv2d": lower_bconv2d,
    "LceBMaxPool2d": lower_bmaxpool,
    "LceQuantize": lower_quantize,
    "LceDequantize": lower_dequantize,
    "RESHAPE": lower_copy,
    "SQUEEZE": lower_copy,
    "EXPAND_DIMS": lower_copy,
    "MEAN": lower_mean,
    "AVERAGE_POOL_2D": lower_avgpool,
    "FULLY_CONNECTED": lower_fully_connected,
    "SOFTMAX": lower_softmax,
    "ARG_MAX": lower_argmax,
}
