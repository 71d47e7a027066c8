"""The result of lowering, :class:`KernelCall` (plain data: which C function of
``deploy/runtime``, its parameter struct, which tensors), and the operand
helpers every op's lowering uses (inputs, outputs, padding, activations).
The enums and limits mirror ``deploy/runtime/glt_common.h`` and the kernels'
headers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from larq_glt.flatbuffer import Model, Operator, Tensor
from larq_glt.opset import MAX_TAPS  # GLT_MAX_TAPS in glt_bconv2d_opt.c

OUT_FLOAT, OUT_INT8, OUT_BITS = 0, 1, 2  # GLT_OUT_* in glt_common.h
FLT_MAX = float(np.finfo(np.float32).max)
THRESHOLD_MIN, THRESHOLD_MAX = -1, 1 << 30  # range glt_bconv2d_opt needs (see header)
LANES_ACC_MAX = 32000  # bit-sliced counters have at most 16 planes: acc_max + 1 < 2^15

# numpy dtype -> C element type of a const array
C_TYPES = {
    np.dtype(np.uint32): "uint32_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.uint16): "uint16_t",
    np.dtype(np.float32): "float",
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint8): "uint8_t",
}

# Padding and activation enums (flatbuffer schema; LCE custom options use the same).
SAME, VALID = 0, 1
ACT_NONE, ACT_RELU, ACT_RELU_N1_TO_1, ACT_RELU6 = 0, 1, 2, 3


class UnsupportedOpError(Exception):
    """An operator (or a use of one) that the firmware runtime cannot execute."""


@dataclass
class KernelCall:
    op_indices: tuple[int, ...]  # flatbuffer operators this call implements
    op_name: str  # opcode, or "FRONTEND" for the fused input encoder
    function: str  # optimized C function
    reference_function: str  # readable C twin, same signature and results
    header: str
    params_type: str
    params: dict[str, int | float]  # scalar fields of the params struct
    arrays: dict[str, np.ndarray]  # const array fields (element type: C_TYPES[a.dtype])
    inputs: tuple[int, ...]  # activation tensors read
    outputs: tuple[int, ...]  # activation tensors written
    input_bytes: tuple[int, ...]
    output_bytes: tuple[int, ...]
    scratch_bytes: int = 0  # RAM for the `scratch` field, 0: none
    binary_macs: int = 0  # for cost reports
    notes: list[str] = field(default_factory=list)
    # arrays only reference_function reads (the optimized one gets the same data in
    # another layout); an optimized-only build may leave them NULL
    reference_arrays: tuple[str, ...] = ()


def fail(op: Operator, what: str) -> None:
    raise UnsupportedOpError(f"operator {op.index} ({op.opcode}): {what}")


def input_tensor(model: Model, op: Operator, k: int, role: str) -> Tensor:
    if k >= len(op.inputs) or op.inputs[k] < 0:
        fail(op, f"missing {role} input")
    return model.tensors[op.inputs[k]]


def const_input(model: Model, op: Operator, k: int, role: str) -> np.ndarray:
    t = input_tensor(model, op, k, role)
    if t.data is None:
        fail(op, f"{role} (tensor {t.index}) must be a constant")
    return t.data


def optional_const(model: Model, op: Operator, k: int) -> np.ndarray | None:
    if k >= len(op.inputs) or op.inputs[k] < 0:
        return None
    return model.tensors[op.inputs[k]].data


def output_tensor(model: Model, op: Operator) -> Tensor:
    if len(op.outputs) != 1:
        fail(op, f"expected one output, got {len(op.outputs)}")
    return model.tensors[op.outputs[0]]


def hwc(op: Operator, t: Tensor, role: str) -> tuple[int, int, int]:
    if len(t.shape) != 4 or t.shape[0] != 1:
        fail(op, f"{role} shape {list(t.shape)} is not [1, H, W, C] (batch 1 only)")
    return t.shape[1], t.shape[2], t.shape[3]


def words_for(channels: int) -> int:
    return (channels + 31) // 32


def same_valid(
    op: Operator, padding: int, size: int, filt: int, stride: int, dilation: int
) -> tuple[int, int]:
    """Output size and padding before the input (TFLite ComputePaddingHeightWidth)."""
    if stride < 1 or dilation < 1 or filt < 1:
        fail(op, f"invalid filter {filt} / stride {stride} / dilation {dilation}")
    eff = (filt - 1) * dilation + 1
    if padding == SAME:
        out = (size + stride - 1) // stride
    elif padding == VALID:
        out = (size - eff + stride) // stride
    else:
        fail(op, f"unknown padding {padding}")
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2


def activation_range(op: Operator, act: int) -> tuple[float, float]:
    ranges = {
        ACT_NONE: (-FLT_MAX, FLT_MAX),
        ACT_RELU: (0.0, FLT_MAX),
        ACT_RELU_N1_TO_1: (-1.0, 1.0),
        ACT_RELU6: (0.0, 6.0),
    }
    if act not in ranges:
        fail(op, f"fused activation {act} is not supported")
    return ranges[act]


def kernel_call(op: Operator, model: Model, name: str, header: str, **kw) -> KernelCall:
    inputs = kw.pop("inputs")
    outputs = kw.pop("outputs")
    return KernelCall(
        op_indices=(op.index,),
        op_name=op.opcode,
        function=kw.pop("function", f"{name}_opt"),
        reference_function=kw.pop("reference_function", f"{name}_ref"),
        header=header,
        params_type=kw.pop("params_type", f"{name}_params"),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        input_bytes=tuple(model.tensors[i].nbytes for i in inputs),
        output_bytes=tuple(model.tensors[i].nbytes for i in outputs),
        **kw,
    )

def rows_cols(t: Tensor) -> tuple[int, int]:
    cols = t.shape[-1] if t.shape else 1
    return (t.size // cols if cols else 0), cols
