"""Lower a flatbuffer model (larq_glt.flatbuffer.Model) to plain-data kernel calls.

Each :class:`KernelCall` says which C function of ``deploy/runtime`` to call, with
which parameter struct (scalar fields in ``params``, const array fields in
``arrays``), on which activation tensors. Everything LCE computes at prepare time
(padding, fused output multipliers/biases, clamps, zero-padding data, thresholds)
is computed here, bit for bit as LCE does, so the C hot paths only compute.

Every kernel has the C signature ``void fn(const <params_type> *p, const void *in,
void *out)``. A params field named ``scratch`` (see ``scratch_bytes``) points to
RAM the optimized kernel may use; absent array fields are NULL.

The uint8 input encoder (CAST/TILE/SUB/... ending in LceQuantize) is fused into
one front-end call whose per-channel tables are obtained by evaluating those ops
on probe frames (:func:`frontend_lut`). When its only reader is a binary conv,
both become one ``glt_stem`` call that reads the raw frame (:func:`fuse_stem_calls`):
the encoded frame is never stored, and a code with few patterns per channel (a
thermometer: K + 1) turns the conv into sums of precomputed per-level rows
(:func:`stem_level_tables`).

Example (a 3x3 binary conv writing bit-packed output)::

    KernelCall(op_indices=(4,), op_name='LceBconv2d', function='glt_bconv2d_opt',
               reference_function='glt_bconv2d_ref', header='glt_bconv2d.h',
               params_type='glt_bconv2d_params',
               params={'in_h': 9, 'in_w': 7, 'in_words': 2, 'out_h': 9, 'out_w': 7,
                       'out_c': 32, 'filter_h': 3, 'filter_w': 3, 'group_words': 2,
                       'groups': 1, 'stride_h': 1, 'stride_w': 1, 'dilation_h': 1,
                       'dilation_w': 1, 'pad_top': 1, 'pad_left': 1, 'zero_padding': 0,
                       'binary_zero_point': 16, 'output_type': 2, 'clamp_min': 0,
                       'clamp_max': 0, 'lane_groups': 1, 'lane_planes': 10},
               arrays={'filter': uint32[576], 'thresholds': int32[32],
                       'lane_filter': uint32[608], 'lane_thresholds': uint32[33]},
               inputs=(18,), outputs=(19,), input_bytes=(504,), output_bytes=(252,),
               scratch_bytes=76, binary_macs=598752, reference_arrays=('filter', 'thresholds'))

The C side is then: ``static const glt_bconv2d_params p4 = {.in_h = 9, ...,
.filter = p4_filter, .lane_filter = p4_lane_filter, ..., .scratch = scratch};``
and ``glt_bconv2d_opt(&p4, arena + off_in, arena + off_out);``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from larq_glt.flatbuffer import Model, Operator, Tensor

__all__ = [
    "UnsupportedOpError",
    "KernelCall",
    "lower_model",
    "lower_operator",
    "frontend_lut",
    "bitpack",
    "lane_tables",
    "lane_planes",
    "bconv_scratch_bytes",
    "fuse_stem_calls",
    "stem_params",
    "stem_level_tables",
    "C_TYPES",
    "OUT_FLOAT",
    "OUT_INT8",
    "OUT_BITS",
]

OUT_FLOAT, OUT_INT8, OUT_BITS = 0, 1, 2  # GLT_OUT_* in glt_common.h
FLT_MAX = float(np.finfo(np.float32).max)
THRESHOLD_MIN, THRESHOLD_MAX = -1, 1 << 30  # range glt_bconv2d_opt needs (see header)
MAX_TAPS = 64  # GLT_MAX_TAPS in glt_bconv2d_opt.c
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
_SAME, _VALID = 0, 1
_ACT_NONE, _ACT_RELU, _ACT_RELU_N1_TO_1, _ACT_RELU6 = 0, 1, 2, 3


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


def lower_model(model: Model, fuse_stem: bool = True) -> list[KernelCall]:
    """Kernel calls for the whole model, in execution order.

    fuse_stem: fuse the front end with the binary convolution that reads it (see
    :func:`fuse_stem`); False keeps them as two calls (tests compare both)."""
    calls: list[KernelCall] = []
    fused: set[int] = set()
    front = _find_frontend(model)
    if front is not None:
        calls.append(front)
        fused.update(front.op_indices)
    for op in model.operators:
        if op.index not in fused:
            calls.append(lower_operator(model, op))
    return fuse_stem_calls(model, calls) if fuse_stem else calls


def lower_operator(model: Model, op: Operator) -> KernelCall:
    """The kernel call for one operator; UnsupportedOpError if there is none."""
    lower = _LOWERINGS.get(op.opcode)
    if lower is None:
        hint = ""
        if op.opcode in _ENCODER_OPS:
            hint = " (allowed only inside the uint8 input encoder that ends in LceQuantize)"
        raise UnsupportedOpError(
            f"operator {op.index} ({op.opcode}) is not supported by the firmware runtime{hint}; "
            f"supported: {', '.join(sorted(_LOWERINGS))}"
        )
    return lower(model, op)


# --------------------------------------------------------------------------- helpers


def _fail(op: Operator, what: str) -> None:
    raise UnsupportedOpError(f"operator {op.index} ({op.opcode}): {what}")


def _tensor(model: Model, op: Operator, k: int, role: str) -> Tensor:
    if k >= len(op.inputs) or op.inputs[k] < 0:
        _fail(op, f"missing {role} input")
    return model.tensors[op.inputs[k]]


def _const(model: Model, op: Operator, k: int, role: str) -> np.ndarray:
    t = _tensor(model, op, k, role)
    if t.data is None:
        _fail(op, f"{role} (tensor {t.index}) must be a constant")
    return t.data


def _optional_const(model: Model, op: Operator, k: int) -> np.ndarray | None:
    if k >= len(op.inputs) or op.inputs[k] < 0:
        return None
    return model.tensors[op.inputs[k]].data


def _out(model: Model, op: Operator) -> Tensor:
    if len(op.outputs) != 1:
        _fail(op, f"expected one output, got {len(op.outputs)}")
    return model.tensors[op.outputs[0]]


def _hwc(op: Operator, t: Tensor, role: str) -> tuple[int, int, int]:
    if len(t.shape) != 4 or t.shape[0] != 1:
        _fail(op, f"{role} shape {list(t.shape)} is not [1, H, W, C] (batch 1 only)")
    return t.shape[1], t.shape[2], t.shape[3]


def _words(channels: int) -> int:
    return (channels + 31) // 32


def _same_valid(
    op: Operator, padding: int, size: int, filt: int, stride: int, dilation: int
) -> tuple[int, int]:
    """Output size and padding before the input (TFLite ComputePaddingHeightWidth)."""
    if stride < 1 or dilation < 1 or filt < 1:
        _fail(op, f"invalid filter {filt} / stride {stride} / dilation {dilation}")
    eff = (filt - 1) * dilation + 1
    if padding == _SAME:
        out = (size + stride - 1) // stride
    elif padding == _VALID:
        out = (size - eff + stride) // stride
    else:
        _fail(op, f"unknown padding {padding}")
    total = max((out - 1) * stride + eff - size, 0)
    return out, total // 2


def _activation_float(op: Operator, act: int) -> tuple[float, float]:
    ranges = {
        _ACT_NONE: (-FLT_MAX, FLT_MAX),
        _ACT_RELU: (0.0, FLT_MAX),
        _ACT_RELU_N1_TO_1: (-1.0, 1.0),
        _ACT_RELU6: (0.0, 6.0),
    }
    if act not in ranges:
        _fail(op, f"fused activation {act} is not supported")
    return ranges[act]


def _call(op: Operator, model: Model, name: str, header: str, **kw) -> KernelCall:
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


def bconv_scratch_bytes(n_words: int, taps: int, lanes: bool) -> int:
    """RAM glt_bconv2d_opt needs in `scratch` (see glt_bconv2d.h)."""
    if lanes:
        return 4 * (n_words + 1)  # the window and its sentinel word
    return 4 * n_words if taps > 1 else 0


LANE_THRESHOLD_WORDS = 33  # per lane group, see glt_bconv2d.h


def lane_planes(acc_max: int) -> int:
    """Counter planes of glt_bconv2d_opt's bit-sliced algorithm: its values lie in
    [-(acc_max + 1), acc_max + 1] (two's complement), and at least 5 planes."""
    return max(5, (acc_max + 1).bit_length() + 1)


def lane_tables(filter_words: np.ndarray, thresholds: np.ndarray, groups: int,
                acc_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Tables of glt_bconv2d_opt's bit-sliced algorithm (see glt_bconv2d.h).

    filter_words: [out_c, N] packed filter rows; thresholds: LCE's (any int range).
    Returns lane_filter [groups * lane_groups * (N * 32 + 32)] (each table ends with
    32 zero words, the columns of the sentinel word after the window) and
    lane_thresholds [groups * lane_groups * 33], both uint32.
    """
    out_c, n = filter_words.shape
    ocg = out_c // groups
    lane_groups = (ocg + 31) // 32
    bits = np.unpackbits(
        np.ascontiguousarray(filter_words, dtype="<u4").view(np.uint8), axis=1, bitorder="little"
    ).astype(np.uint64)  # [out_c, N * 32]
    popcount = bits.sum(axis=1).astype(np.int64)
    # count lies in [0, acc_max]: this clamp keeps `count > threshold` unchanged
    thr = np.clip(np.asarray(thresholds, dtype=np.int64).reshape(-1), -1, acc_max)
    t = thr - popcount
    half, odd = t >> 1, t & 1  # floor division; odd in {0, 1}
    half_complement = -((thr + popcount) >> 1)
    lane_filter = np.zeros((groups, lane_groups, n * 32 + 32), dtype=np.uint64)
    lane_thr = np.zeros((groups, lane_groups, LANE_THRESHOLD_WORDS), dtype=np.uint64)
    planes = np.arange(16, dtype=np.int64)
    for g in range(groups):
        for lane_group in range(lane_groups):
            for j in range(min(32, ocg - 32 * lane_group)):
                oc = g * ocg + 32 * lane_group + j
                lane_filter[g, lane_group, : n * 32] |= bits[oc] << np.uint64(j)
                plane_bits = ((half[oc] & 0xFFFF) >> planes) & 1
                lane_thr[g, lane_group, :16] |= plane_bits.astype(np.uint64) << np.uint64(j)
                lane_thr[g, lane_group, 16] |= np.uint64(int(odd[oc])) << np.uint64(j)
                plane_bits = ((half_complement[oc] & 0xFFFF) >> planes) & 1
                lane_thr[g, lane_group, 17:] |= plane_bits.astype(np.uint64) << np.uint64(j)
    return lane_filter.astype(np.uint32).reshape(-1), lane_thr.astype(np.uint32).reshape(-1)


def bitpack(bits: np.ndarray) -> np.ndarray:
    """LCE bit-packing of a boolean array along its last axis (True = bit 1 = -1)."""
    bits = np.asarray(bits, dtype=bool)
    cols = bits.shape[-1]
    words = _words(cols)
    padded = np.zeros(bits.shape[:-1] + (words * 32,), dtype=bool)
    padded[..., :cols] = bits
    weights = (np.uint64(1) << np.arange(32, dtype=np.uint64)).astype(np.uint64)
    grouped = padded.reshape(bits.shape[:-1] + (words, 32)).astype(np.uint64)
    return (grouped * weights).sum(axis=-1).astype(np.uint32)


# --------------------------------------------------------------------------- LCE ops


def _lower_bconv2d(model: Model, op: Operator) -> KernelCall:
    opts = op.custom_options or {}
    for key in ("channels_in", "stride_height", "stride_width", "dilation_height_factor",
                "dilation_width_factor", "padding", "pad_values", "fused_activation_function"):
        if key not in opts:
            _fail(op, f"custom option {key!r} missing")
    inp = _tensor(model, op, 0, "input")
    if inp.type_name != "INT32":
        _fail(op, f"input must be bit-packed INT32, got {inp.type_name}")
    in_h, in_w, in_words = _hwc(op, inp, "input")
    filt = _const(model, op, 1, "filter")
    if filt.ndim != 4 or filt.dtype != np.int32:
        _fail(op, f"filter must be a bit-packed INT32 [O, H, W, I] tensor, got {filt.dtype} {list(filt.shape)}")
    out_c, fh, fw, gw = (int(d) for d in filt.shape)
    cin = int(opts["channels_in"])
    if in_words != _words(cin):
        _fail(op, f"input has {in_words} words per pixel, channels_in={cin} needs {_words(cin)}")
    if gw == _words(cin):
        groups = 1
    else:
        if gw == 0 or _words(cin) % gw != 0:
            _fail(op, f"filter depth {gw} words does not divide the {_words(cin)} input words")
        groups = _words(cin) // gw
        if (cin // groups) % 32 != 0 or out_c % groups != 0:
            _fail(op, f"groups={groups} needs channels per group multiple of 32 and out channels divisible")
    if fh * fw > MAX_TAPS:
        _fail(op, f"filter {fh}x{fw} has more than {MAX_TAPS} taps")
    padding, pad_value = int(opts["padding"]), int(opts["pad_values"])
    if pad_value not in (0, 1):
        _fail(op, f"pad_values must be 0 or 1, got {pad_value}")
    sh, sw = int(opts["stride_height"]), int(opts["stride_width"])
    dh, dw = int(opts["dilation_height_factor"]), int(opts["dilation_width_factor"])
    out_h, pad_top = _same_valid(op, padding, in_h, fh, sh, dh)
    out_w, pad_left = _same_valid(op, padding, in_w, fw, sw, dw)
    out = _out(model, op)
    o_h, o_w, o_c = _hwc(op, out, "output")
    out_type = {"INT32": OUT_BITS, "FLOAT32": OUT_FLOAT, "INT8": OUT_INT8}.get(out.type_name)
    if out_type is None:
        _fail(op, f"output type {out.type_name} is not supported")
    expected_c = _words(out_c) if out_type == OUT_BITS else out_c
    if (o_h, o_w, o_c) != (out_h, out_w, expected_c):
        _fail(op, f"output shape {list(out.shape)} differs from the computed [1, {out_h}, {out_w}, {expected_c}]")

    cin_group = cin // groups
    zero_padding = padding == _SAME and pad_value == 0
    backtransform_add = fh * fw * cin_group  # LCE: filter H * W * channels in per group
    filter_words = np.ascontiguousarray(filt).view(np.uint32).reshape(-1).copy()
    params: dict[str, int | float] = dict(
        in_h=in_h, in_w=in_w, in_words=in_words, out_h=out_h, out_w=out_w, out_c=out_c,
        filter_h=fh, filter_w=fw, group_words=gw, groups=groups, stride_h=sh, stride_w=sw,
        dilation_h=dh, dilation_w=dw, pad_top=pad_top, pad_left=pad_left,
        zero_padding=int(zero_padding), binary_zero_point=cin_group // 2,
        output_type=out_type, clamp_min=0, clamp_max=0, lane_groups=0, lane_planes=0,
    )
    arrays: dict[str, np.ndarray] = {"filter": filter_words}
    notes: list[str] = []
    if out_type == OUT_BITS:
        thr = _const(model, op, 4, "thresholds").astype(np.int64).reshape(-1)
        if thr.size != out_c:
            _fail(op, f"{thr.size} thresholds for {out_c} output channels")
        # acc lies in [0, 2^30): clamping LCE's +-inf thresholds keeps `acc > t`
        arrays["thresholds"] = np.clip(thr, THRESHOLD_MIN, THRESHOLD_MAX).astype(np.int32)
        acc_max = fh * fw * cin_group
        if not zero_padding and acc_max <= LANES_ACC_MAX:
            lane_filter, lane_thr = lane_tables(filter_words.reshape(out_c, -1), thr, groups, acc_max)
            arrays["lane_filter"] = lane_filter
            arrays["lane_thresholds"] = lane_thr
            params["lane_groups"] = lane_thr.size // (groups * LANE_THRESHOLD_WORDS)
            params["lane_planes"] = lane_planes(acc_max)
    else:
        mul = _const(model, op, 2, "post_activation_multiplier").astype(np.float32).reshape(-1)
        bias = _const(model, op, 3, "post_activation_bias").astype(np.float32).reshape(-1)
        if mul.size != out_c or bias.size != out_c:
            _fail(op, f"multiplier/bias sizes {mul.size}/{bias.size} for {out_c} output channels")
        scale, zp = 1.0, 0.0
        if out_type == OUT_INT8:
            if out.scale is None or out.zero_point is None:
                _fail(op, "int8 output without quantization parameters")
            scale, zp = float(out.scale[0]), float(out.zero_point[0])
        # LCE OneTimeSetup: fused in double, stored as float
        fused_mul = np.array([-1 * float(m) / scale for m in mul], dtype=np.float32)
        fused_bias = np.array(
            [(float(b) + float(backtransform_add) * float(m)) / scale + zp for m, b in zip(mul, bias)],
            dtype=np.float32,
        )
        arrays["multiplier"] = fused_mul
        arrays["bias"] = fused_bias
        act = int(opts["fused_activation_function"])
        nominal = {
            _ACT_NONE: (-(2**31), 2**31 - 1),
            _ACT_RELU: (0, 2**31 - 1),
            _ACT_RELU_N1_TO_1: (-1, 1),
            _ACT_RELU6: (0, 6),
        }.get(act, (-(2**31), 2**31 - 1))  # LCE treats other activations as none
        nmin = max(nominal[0], -backtransform_add)
        nmax = min(nominal[1], backtransform_add)
        params["clamp_min"] = -nmax + backtransform_add
        params["clamp_max"] = -nmin + backtransform_add
    taps = fh * fw
    if zero_padding:
        per_tap = np.unpackbits(
            filter_words.reshape(out_c, taps, gw).view(np.uint8), axis=-1
        ).sum(axis=-1)
        arrays["tap_popcount"] = per_tap.reshape(-1).astype(np.uint16)
    if zero_padding and cin_group % 2:
        notes.append("zero-padding with an odd number of channels per group (LCE's reference kernel refuses it)")
    dense = bconv_is_dense(params)
    return _call(
        op, model, "glt_bconv2d", "glt_bconv2d.h",
        # the whole input is the window: call that path of the optimized kernel directly
        **({"function": "glt_bconv2d_dense_opt"} if dense else {}),
        params=params, arrays=arrays, inputs=[inp.index], outputs=[out.index],
        scratch_bytes=0 if dense else bconv_scratch_bytes(taps * gw, taps, "lane_filter" in arrays),
        binary_macs=out_h * out_w * out_c * taps * cin_group, notes=notes,
        reference_arrays=("filter", "thresholds") if "lane_filter" in arrays else (),
    )


def bconv_is_dense(p: dict) -> bool:
    """glt_bconv2d_is_dense (glt_bconv2d_opt.c): float/int8 output whose window
    is the whole input, in place."""
    return (p["output_type"] != OUT_BITS and p["out_h"] == 1 and p["out_w"] == 1 and p["groups"] == 1
            and p["pad_top"] == 0 and p["pad_left"] == 0 and p["filter_h"] == p["in_h"]
            and p["filter_w"] == p["in_w"] and (p["dilation_h"] == 1 or p["in_h"] == 1)
            and (p["dilation_w"] == 1 or p["in_w"] == 1))


def _lower_bmaxpool(model: Model, op: Operator) -> KernelCall:
    opts = op.custom_options or {}
    for key in ("filter_height", "filter_width", "stride_height", "stride_width", "padding"):
        if key not in opts:
            _fail(op, f"custom option {key!r} missing")
    inp = _tensor(model, op, 0, "input")
    if inp.type_name != "INT32":
        _fail(op, f"input must be bit-packed INT32, got {inp.type_name}")
    in_h, in_w, words = _hwc(op, inp, "input")
    fh, fw = int(opts["filter_height"]), int(opts["filter_width"])
    sh, sw = int(opts["stride_height"]), int(opts["stride_width"])
    out_h, pad_top = _same_valid(op, int(opts["padding"]), in_h, fh, sh, 1)
    out_w, pad_left = _same_valid(op, int(opts["padding"]), in_w, fw, sw, 1)
    out = _out(model, op)
    if _hwc(op, out, "output") != (out_h, out_w, words):
        _fail(op, f"output shape {list(out.shape)} differs from the computed [1, {out_h}, {out_w}, {words}]")
    params = dict(in_h=in_h, in_w=in_w, words=words, out_h=out_h, out_w=out_w, filter_h=fh,
                  filter_w=fw, stride_h=sh, stride_w=sw, pad_top=pad_top, pad_left=pad_left)
    return _call(op, model, "glt_bmaxpool", "glt_bmaxpool.h", params=params, arrays={},
                 inputs=[inp.index], outputs=[out.index])


def _rows_cols(t: Tensor) -> tuple[int, int]:
    cols = t.shape[-1] if t.shape else 1
    return (t.size // cols if cols else 0), cols


def _lower_quantize(model: Model, op: Operator) -> KernelCall:
    inp, out = _tensor(model, op, 0, "input"), _out(model, op)
    rows, cols = _rows_cols(inp)
    if out.type_name != "INT32" or out.shape[:-1] != inp.shape[:-1] or out.shape[-1] != _words(cols):
        _fail(op, f"output {out.type_name} {list(out.shape)} is not the bit-packed {list(inp.shape)}")
    kind = {"FLOAT32": "float", "INT8": "int8", "BOOL": "bool"}.get(inp.type_name)
    if kind is None:
        _fail(op, f"input type {inp.type_name} is not supported")
    zp = 0
    if kind == "int8" and inp.zero_point is not None:
        zp = int(inp.zero_point[0])
    return _call(op, model, f"glt_quantize_{kind}", "glt_quantize.h", params_type="glt_quantize_params",
                 params=dict(rows=rows, cols=cols, zero_point=zp), arrays={},
                 inputs=[inp.index], outputs=[out.index])


def _tflite_round(x: float) -> int:
    """std::round on a float value: half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def _lower_dequantize(model: Model, op: Operator) -> KernelCall:
    inp, out = _tensor(model, op, 0, "input"), _out(model, op)
    rows, cols = _rows_cols(out)
    if inp.type_name != "INT32" or inp.shape[:-1] != out.shape[:-1] or inp.shape[-1] != _words(cols):
        _fail(op, f"input {inp.type_name} {list(inp.shape)} is not the bit-packed {list(out.shape)}")
    kind = {"FLOAT32": "float", "INT8": "int8"}.get(out.type_name)
    if kind is None:
        _fail(op, f"output type {out.type_name} is not supported")
    zero_bit, one_bit = 1, -1
    if kind == "int8":
        if out.scale is None:
            _fail(op, "int8 output without quantization parameters")
        zp = int(out.zero_point[0]) if out.zero_point is not None else 0
        offset = _tflite_round(float(np.float32(1.0) / np.float32(out.scale[0])))
        zero_bit, one_bit = min(127, zp + offset), max(-128, zp - offset)
    return _call(op, model, f"glt_dequantize_{kind}", "glt_quantize.h", params_type="glt_dequantize_params",
                 params=dict(rows=rows, cols=cols, zero_bit_value=zero_bit, one_bit_value=one_bit),
                 arrays={}, inputs=[inp.index], outputs=[out.index])


# --------------------------------------------------------------------------- builtins


def _lower_copy(model: Model, op: Operator) -> KernelCall:
    inp, out = _tensor(model, op, 0, "input"), _out(model, op)
    if inp.nbytes != out.nbytes or inp.dtype != out.dtype:
        _fail(op, f"{inp.type_name} {list(inp.shape)} -> {out.type_name} {list(out.shape)} is not a pure reshape")
    return _call(op, model, "glt_copy", "glt_copy.h", function="glt_copy_ref",
                 params=dict(bytes=inp.nbytes), arrays={}, inputs=[inp.index], outputs=[out.index],
                 notes=["no data movement: the planner may alias input and output"])


def _lower_mean(model: Model, op: Operator) -> KernelCall:
    inp, out = _tensor(model, op, 0, "input"), _out(model, op)
    axes = sorted(int(a) % 4 for a in np.asarray(_const(model, op, 1, "axis")).reshape(-1)) if len(inp.shape) == 4 else []
    if inp.type_name != "FLOAT32" or len(inp.shape) != 4 or inp.shape[0] != 1 or axes != [1, 2]:
        _fail(op, f"only float spatial mean of [1, H, W, C] is supported (got {inp.type_name} {list(inp.shape)}, axes {axes})")
    _, h, w, c = inp.shape
    return _call(op, model, "glt_mean", "glt_mean.h", function="glt_mean_ref",
                 params=dict(pixels=h * w, channels=c), arrays={},
                 inputs=[inp.index], outputs=[out.index])


def _lower_avgpool(model: Model, op: Operator) -> KernelCall:
    inp, out = _tensor(model, op, 0, "input"), _out(model, op)
    if inp.type_name != "FLOAT32":
        _fail(op, f"only float input is supported, got {inp.type_name}")
    in_h, in_w, c = _hwc(op, inp, "input")
    o = op.builtin_options
    fh, fw, sh, sw = o["filter_height"], o["filter_width"], o["stride_h"], o["stride_w"]
    out_h, pad_top = _same_valid(op, o["padding"], in_h, fh, sh, 1)
    out_w, pad_left = _same_valid(op, o["padding"], in_w, fw, sw, 1)
    if _hwc(op, out, "output") != (out_h, out_w, c):
        _fail(op, f"output shape {list(out.shape)} differs from the computed [1, {out_h}, {out_w}, {c}]")
    lo, hi = _activation_float(op, o.get("fused_activation_function", 0))
    params = dict(in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w, filter_h=fh, filter_w=fw,
                  stride_h=sh, stride_w=sw, pad_top=pad_top, pad_left=pad_left, act_min=lo, act_max=hi)
    return _call(op, model, "glt_avgpool", "glt_avgpool.h", function="glt_avgpool_ref",
                 params=params, arrays={}, inputs=[inp.index], outputs=[out.index])


def _lower_fully_connected(model: Model, op: Operator) -> KernelCall:
    inp, out = _tensor(model, op, 0, "input"), _out(model, op)
    weights = _const(model, op, 1, "weights")
    if inp.type_name != "FLOAT32" or weights.dtype != np.float32 or weights.ndim != 2:
        _fail(op, f"only float input and float [O, I] weights are supported ({inp.type_name}, {weights.dtype})")
    n_out, n_in = weights.shape
    if inp.size % n_in:
        _fail(op, f"input of {inp.size} values is not a multiple of {n_in} features")
    bias = _optional_const(model, op, 2)
    lo, hi = _activation_float(op, op.builtin_options.get("fused_activation_function", 0))
    arrays = {"weights": np.ascontiguousarray(weights).reshape(-1).copy()}
    if bias is not None:
        arrays["bias"] = bias.astype(np.float32).reshape(-1).copy()
    notes = []
    if not np.all(np.abs(weights) == 1.0):
        notes.append("float weights: sums may differ from TFLite's GEMM in the last bits")
    return _call(op, model, "glt_fully_connected", "glt_fully_connected.h",
                 function="glt_fully_connected_ref",
                 params=dict(batches=inp.size // n_in, in_features=n_in, out_features=n_out,
                             act_min=lo, act_max=hi),
                 arrays=arrays, inputs=[inp.index], outputs=[out.index], notes=notes)


def _lower_softmax(model: Model, op: Operator) -> KernelCall:
    inp, out = _tensor(model, op, 0, "input"), _out(model, op)
    if inp.type_name != "FLOAT32":
        _fail(op, f"only float softmax is supported, got {inp.type_name}")
    rows, cols = _rows_cols(inp)
    return _call(op, model, "glt_softmax", "glt_softmax.h", function="glt_softmax_ref",
                 params=dict(rows=rows, cols=cols, beta=float(op.builtin_options.get("beta", 1.0))),
                 arrays={}, inputs=[inp.index], outputs=[out.index],
                 notes=["exp without libm: last-bit differences from TFLite are possible"])


def _lower_argmax(model: Model, op: Operator) -> KernelCall:
    inp, out = _tensor(model, op, 0, "input"), _out(model, op)
    axis = int(np.asarray(_const(model, op, 1, "axis")).reshape(-1)[0])
    if inp.type_name != "FLOAT32" or axis % len(inp.shape) != len(inp.shape) - 1:
        _fail(op, f"only float argmax over the last axis is supported ({inp.type_name}, axis {axis})")
    if out.type_name not in ("INT32", "INT64"):
        _fail(op, f"output type {out.type_name} is not supported")
    rows, cols = _rows_cols(inp)
    return _call(op, model, "glt_argmax", "glt_argmax.h", function="glt_argmax_ref",
                 params=dict(rows=rows, cols=cols, output_int64=int(out.type_name == "INT64")),
                 arrays={}, inputs=[inp.index], outputs=[out.index])


_LOWERINGS: dict[str, Callable[[Model, Operator], KernelCall]] = {
    "LceBconv2d": _lower_bconv2d,
    "LceBMaxPool2d": _lower_bmaxpool,
    "LceQuantize": _lower_quantize,
    "LceDequantize": _lower_dequantize,
    "RESHAPE": _lower_copy,
    "SQUEEZE": _lower_copy,
    "EXPAND_DIMS": _lower_copy,
    "MEAN": _lower_mean,
    "AVERAGE_POOL_2D": _lower_avgpool,
    "FULLY_CONNECTED": _lower_fully_connected,
    "SOFTMAX": _lower_softmax,
    "ARG_MAX": _lower_argmax,
}


# --------------------------------------------------------------------------- input front end


def _apply_activation(x: np.ndarray, act: int) -> np.ndarray:
    if act == _ACT_RELU:
        return np.maximum(x, np.float32(0))
    if act == _ACT_RELU6:
        return np.clip(x, np.float32(0), np.float32(6))
    if act == _ACT_RELU_N1_TO_1:
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
_ENCODER_OPS: dict[str, Callable] = {
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


def _find_frontend(model: Model) -> KernelCall | None:
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
                _fail(op, "mixes the uint8 input encoder with other activations; "
                          "the encoder must end in LceQuantize")
            continue
        if op.opcode == "LceQuantize":
            if quantize is not None:
                _fail(op, "the input encoder feeds more than one LceQuantize")
            quantize = op
            chain.append(op)
            continue
        if op.opcode not in _ENCODER_OPS:
            raise UnsupportedOpError(
                f"operator {op.index} ({op.opcode}) is not supported in the uint8 input encoder "
                "(it must be elementwise ops ending in LceQuantize; supported there: "
                f"{', '.join(sorted(_ENCODER_OPS))})")
        chain.append(op)
        derived.update(op.outputs)
    if quantize is None:
        raise UnsupportedOpError(
            f"the uint8 model input (tensor {src.index}) never reaches an LceQuantize: "
            "the firmware needs a binary input encoder")
    for t in derived:
        for consumer in model.consumers(t):
            if consumer not in chain:
                _fail(consumer, f"reads encoder tensor {t}; only LceQuantize may consume the encoder")
    if src.index in model.outputs or any(t in model.outputs for t in derived):
        raise UnsupportedOpError("an input encoder tensor is a model output")
    out = model.tensors[quantize.outputs[0]]
    h, w, c = _hwc(chain[0], src, "model input")
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
            _fail(op, f"cast to {out_t.type_name} is not supported")
        return args[0] != 0 if dtype is np.bool_ else args[0].astype(dtype)
    result = _ENCODER_OPS[op.opcode](op, args)
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
        _fail(chain[-1], f"encoder output {list(base.shape)} is not one row of words per pixel")
    if not np.all(base == base[0]):
        _fail(chain[-1], "encoder output depends on the pixel position")
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
                    _fail(chain[-1], "encoder output depends on the pixel position")
                if seen[v] and not np.array_equal(per_channel[ch, v], rows[0]):
                    _fail(chain[-1], "encoder output depends on the pixel position")
                per_channel[ch, v] = rows[0]
                seen[v] = True
        if not seen.all():
            _fail(chain[-1], "probe frames did not cover every input value")
    depends = [np.bitwise_or.reduce(per_channel[ch] ^ base[0], axis=0) for ch in range(c)]
    for a in range(c):
        for b in range(a + 1, c):
            if np.any(depends[a] & depends[b]):
                _fail(chain[-1], f"an encoder bit depends on both input channels {a} and {b}; "
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
            _fail(chain[-1], "the input encoder is not separable per channel (lookup tables disagree "
                             "with the encoder ops on a test frame)")
    return lut


# --------------------------------------------------------------------------- fused stem

STEM_LANES = 32  # GLT_STEM_LANES: output channels per level row
STEM_COMPARE_WORDS = 27  # GLT_STEM_COMPARE_WORDS
STEM_TABLE_MAX_BYTES = 32 * 1024  # larger level tables: the words algorithm instead
_STEM_SUM_MAX = 32767  # 16-bit lanes biased by 0x8000 (glt_stem_opt.c compare16)


def fuse_stem_calls(model: Model, calls: list[KernelCall]) -> list[KernelCall]:
    """Replaces FRONTEND + the LceBconv2d that is its only reader by one
    glt_stem call reading the raw frame (the encoded frame is never stored)."""
    if not calls or calls[0].op_name != "FRONTEND":
        return calls
    front = calls[0]
    encoded = front.outputs[0]
    readers = [c for c in calls[1:] if encoded in c.inputs]
    if encoded in model.outputs or len(readers) != 1:
        return calls
    conv = readers[0]
    if conv.op_name != "LceBconv2d" or conv.params["groups"] != 1:
        return calls
    return [_stem_call(model, front, conv)] + [c for c in calls[1:] if c is not conv]


def _stem_call(model: Model, front: KernelCall, conv: KernelCall) -> KernelCall:
    cp = conv.params
    if cp["in_words"] != front.params["words"] or cp["in_h"] * cp["in_w"] != front.params["pixels"]:
        raise UnsupportedOpError(
            f"operator {conv.op_indices[0]} (LceBconv2d) reads {cp['in_words']} words per pixel of a "
            f"{cp['in_h']}x{cp['in_w']} map, the front end makes {front.params['words']} words for "
            f"{front.params['pixels']} pixels")
    params, arrays, scratch, notes = stem_params(front.params["channels"], front.arrays["lut"], cp,
                                                 conv.arrays, conv.scratch_bytes)
    src = model.tensors[front.inputs[0]]
    return KernelCall(
        op_indices=conv.op_indices + front.op_indices,  # the conv first: it names the call
        op_name="FRONTEND+LceBconv2d",
        function="glt_stem_opt",
        reference_function="glt_stem_ref",
        header="glt_stem.h",
        params_type="glt_stem_params",
        params=params,
        arrays=arrays,
        inputs=(src.index,),
        outputs=conv.outputs,
        input_bytes=(src.nbytes,),
        output_bytes=conv.output_bytes,
        scratch_bytes=scratch,
        binary_macs=conv.binary_macs,
        reference_arrays=("lut", "filter", "thresholds") if params["lv_groups"] else conv.reference_arrays,
        notes=[f"fuses the front end ({front.notes[0][len('fuses '):]}) with the stem LceBconv2d"]
              + notes + conv.notes,
    )


def stem_params(channels: int, lut: np.ndarray, conv_params: dict, conv_arrays: dict,
                conv_scratch_bytes: int) -> tuple[dict, dict, int, list[str]]:
    """glt_stem_params fields of a fused stem: the front end's tables `lut`
    [channels * 256 * words] with a groups-1 glt_bconv2d call's params/arrays.
    Returns (params, arrays, scratch_bytes, notes)."""
    cp = conv_params
    words = cp["in_words"]
    taps = cp["filter_h"] * cp["filter_w"]
    params: dict[str, int | float] = dict(
        in_h=cp["in_h"], in_w=cp["in_w"], channels=channels, words=words,
        out_h=cp["out_h"], out_w=cp["out_w"], out_c=cp["out_c"],
        filter_h=cp["filter_h"], filter_w=cp["filter_w"], stride_h=cp["stride_h"], stride_w=cp["stride_w"],
        dilation_h=cp["dilation_h"], dilation_w=cp["dilation_w"],
        pad_top=cp["pad_top"], pad_left=cp["pad_left"], zero_padding=cp["zero_padding"],
        binary_zero_point=cp["binary_zero_point"], output_type=cp["output_type"],
        clamp_min=cp["clamp_min"], clamp_max=cp["clamp_max"], lane_groups=cp["lane_groups"],
        lane_planes=cp["lane_planes"],
        lv_groups=0, lv_rows=0, lv_segment_taps=0,
    )
    arrays = {"lut": np.asarray(lut, dtype=np.uint32).reshape(-1), **conv_arrays}
    levels = None
    if cp["output_type"] == OUT_BITS:
        levels = stem_level_tables(
            arrays["lut"].reshape(channels, 256, words),
            conv_arrays["filter"].reshape(cp["out_c"], taps, words),
            conv_arrays["thresholds"], bool(cp["zero_padding"]), cp["binary_zero_point"])
    if levels is not None:
        for unused in ("lane_filter", "lane_thresholds", "tap_popcount"):  # words algorithm only
            arrays.pop(unused, None)
        params["lane_groups"] = params["lane_planes"] = 0
        params.update(lv_groups=levels["groups"], lv_rows=levels["rows"],
                      lv_segment_taps=levels["segment_taps"])
        arrays.update(lv_offset=levels["offset"], lv_table=levels["table"], lv_compare=levels["compare"])
        return params, arrays, 0, [
            f"levels algorithm: {levels['patterns']} patterns per channel, {levels['table'].nbytes} "
            f"table bytes, sums up to {levels['max_sum']}, {levels['segment_taps']} taps per 8-bit segment"
            + (f" (DSP cores: one saturating pass, {levels['inverted']} complemented lanes)"
               if levels["saturate"] and levels["segment_taps"] < taps else "")]
    strip = cp["filter_h"] * cp["in_w"] * words * 4
    return params, arrays, strip + conv_scratch_bytes, [
        "words algorithm: front end row strips + glt_bconv2d_opt"]


def _popcount_words(x: np.ndarray) -> np.ndarray:
    """Set bits of uint32 words, summed over the last axis."""
    b = np.ascontiguousarray(x, dtype="<u4").view(np.uint8)
    return np.unpackbits(b, axis=-1).sum(axis=-1).astype(np.int64)


def stem_level_tables(lut: np.ndarray, filt: np.ndarray, thresholds: np.ndarray,
                      zero_padding: bool, binary_zero_point: int,
                      max_bytes: int = STEM_TABLE_MAX_BYTES) -> dict | None:
    """Tables of glt_stem_opt's levels algorithm (see glt_stem.h), or None when
    they would exceed max_bytes or their sums 16 bits.

    lut: front end tables [C, 256, W]; filt: packed filter [out_c, taps, W];
    thresholds: LCE's (bit = acc > threshold).
    """
    lut = np.asarray(lut, dtype=np.uint32)
    filt = np.asarray(filt, dtype=np.uint32)
    n_ch, _, n_words = lut.shape
    out_c, taps, _ = filt.shape
    groups = -(-out_c // STEM_LANES)
    # Planes (bits) of the encoded word owned by each channel: channel c >= 1 owns
    # what its table can set; channel 0 owns the rest (its bits, constant bits,
    # padding bits). A word ANDed with its channel's bits is that channel's entry.
    owned = [np.bitwise_or.reduce(lut[c], axis=0) for c in range(n_ch)]
    others = np.bitwise_or.reduce(np.stack(owned[1:]), axis=0) if n_ch > 1 else np.zeros(n_words, np.uint32)
    owned[0] = ~others
    patterns, levels = [], []
    for c in range(n_ch):
        u, inverse = np.unique(lut[c], axis=0, return_inverse=True)
        patterns.append(u)
        levels.append(inverse.reshape(-1))
    rows = sum(len(u) for u in patterns) + 1
    if groups * taps * rows * 32 > max_bytes or rows * taps * 32 > 0xFFFF:
        return None
    # counts[c]: [out_c, taps, patterns_c] = popcount over the channel's bits
    counts = [_popcount_words((u[None, None, :, :] ^ filt[:, :, None, :]) & owned[c]) for c, u in enumerate(patterns)]
    outside = (np.full((out_c, taps), binary_zero_point, np.int64) if zero_padding
               else _popcount_words(filt))  # an outside tap reads 0 words (one-padding)
    mins = [cnt.min(axis=2) for cnt in counts]  # [out_c, taps]
    v_out = outside - sum(mins[1:], np.zeros((out_c, taps), np.int64))  # channel 0 carries it
    mins[0] = np.minimum(mins[0], v_out)
    entries = [cnt - m[:, :, None] for cnt, m in zip(counts, mins)]
    out_entry = v_out - mins[0]
    base = sum(m.sum(axis=1) for m in mins)  # [out_c]: the sum of every row's minimum
    inside = sum(e.max(axis=2) for e in entries)  # [out_c, taps]: range of an inside tap
    spread = np.maximum(inside, out_entry)  # a tap adds 0..spread
    max_sum = spread.sum(axis=1)  # [out_c]
    if spread.max(initial=0) > 255 or max_sum.max(initial=0) > _STEM_SUM_MAX:
        return None
    segment = taps
    while segment > 1 and any(spread[:, t:t + segment].sum(axis=1).max() > 255 for t in range(0, taps, segment)):
        segment -= 1
    # comparison: bit = base + S > threshold <=> S >= u
    thr = np.asarray(thresholds, dtype=np.int64).reshape(-1)
    u = thr - base + 1
    # Saturating byte sums (UQADD8) decide S >= u exactly when u <= 255. A lane
    # with 255 < u <= max_sum is complemented instead: its entries become
    # spread - entry per tap (channel 0 takes the slack between an inside tap's
    # range and spread), so it sums S' = max_sum - S and its bit is
    # NOT(S' >= max_sum - u + 1), exact in saturated bytes when that is <= 255.
    flip = (u > 255) & (u <= max_sum)
    f3 = flip[:, None, None]
    entries[0] = np.where(f3, (spread - inside + entries[0].max(axis=2))[:, :, None] - entries[0], entries[0])
    for c in range(1, n_ch):
        entries[c] = np.where(f3, entries[c].max(axis=2)[:, :, None] - entries[c], entries[c])
    out_entry = np.where(flip[:, None], spread - out_entry, out_entry)
    u = np.where(flip, max_sum - u + 1, u)
    # rows: channel 0's patterns, channel 1's, ..., the outside row; each row
    # holds every tap (tap-minor: the next tap is 32 bytes further)
    row_vals = np.concatenate(entries + [out_entry[:, :, None]], axis=2)  # [out_c, taps, rows]
    assert row_vals.min(initial=0) >= 0 and row_vals.max(initial=0) <= 255
    lanes = np.zeros((groups * STEM_LANES, taps, rows), np.int64)
    lanes[:out_c] = row_vals
    lanes = lanes.reshape(groups, STEM_LANES, taps, rows).transpose(0, 3, 2, 1)  # [g, rows, taps, lane]
    j = np.arange(STEM_LANES)
    byte_of_lane = 4 * (j % 8) + j // 8  # lane j: byte j // 8 of word j % 8
    row_bytes = np.zeros(lanes.shape[:3] + (32,), np.uint8)
    row_bytes[..., byte_of_lane] = lanes.astype(np.uint8)
    table = row_bytes.reshape(-1).view("<u4").astype(np.uint32)
    row_base = np.cumsum([0] + [len(u) for u in patterns])[:-1]
    offset = np.stack([(row_base[c] + levels[c]) * taps * 32 for c in range(n_ch)]).astype(np.uint16)
    uu = np.ones(groups * STEM_LANES, np.int64)  # unused lanes: never set
    r = np.zeros(groups * STEM_LANES, np.int64)
    inv = np.zeros(groups * STEM_LANES, bool)
    uu[:out_c], r[:out_c], inv[:out_c] = u, max_sum, flip
    u = uu
    compare = np.zeros((groups, STEM_COMPARE_WORDS), np.uint32)
    # byte comparison by carry-out (UADD8): sum + (256 - u) > 255 <=> sum >= u, for
    # 1 <= u <= 255; lanes with u <= 0 are constant 1 (not kept, inverted), lanes
    # with u > r constant 0 (not kept)
    u8 = ((256 - np.clip(u, 1, 255)) & 0xFF).reshape(groups, STEM_LANES)
    keep = ((u >= 1) & (u <= r)).reshape(groups, STEM_LANES)
    u16 = np.clip(u, 0, r + 1).reshape(groups, STEM_LANES)
    c16 = (0x8000 - u16).astype(np.uint32)
    always = ((u <= 0) & (r >= 0)).reshape(groups, STEM_LANES)
    inv_or_one = inv.reshape(groups, STEM_LANES) | always
    inv = inv.reshape(groups, STEM_LANES)
    saturate = ((u <= 255) | (u > r)).reshape(groups, STEM_LANES).all(axis=1)
    for g in range(groups):
        for lane in range(STEM_LANES):
            compare[g, lane % 8] |= np.uint32(int(u8[g, lane]) << (8 * (lane // 8)))
            if keep[g, lane]:
                compare[g, 8] |= np.uint32(1 << lane)
            if inv_or_one[g, lane]:
                compare[g, 25] |= np.uint32(1 << lane)
        for w in range(8):
            compare[g, 9 + 2 * w] = c16[g, w] | (c16[g, 16 + w] << 16)
            compare[g, 10 + 2 * w] = c16[g, 8 + w] | (c16[g, 24 + w] << 16)
        compare[g, 26] = int(saturate[g])
    return {
        "groups": groups, "rows": rows, "segment_taps": int(segment), "offset": offset.reshape(-1),
        "table": table, "compare": compare.reshape(-1),
        "patterns": [len(u) for u in patterns], "max_sum": int(max_sum.max(initial=0)),
        "saturate": bool(saturate.all()), "inverted": int(inv.sum()),
    }
