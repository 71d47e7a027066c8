"""Lowering of the Larq Compute Engine ops (LceBconv2d, LceBMaxPool2d,
LceQuantize, LceDequantize): their parameters computed bit for bit as LCE
computes them at prepare time, and the precomputed tables of the optimized
binary convolution (bit-sliced lanes).
"""
from __future__ import annotations

import math

import numpy as np

from deploy.lower.calls import (ACT_NONE, ACT_RELU, ACT_RELU6, ACT_RELU_N1_TO_1, KernelCall, LANES_ACC_MAX, MAX_TAPS, OUT_BITS, OUT_FLOAT, OUT_INT8, SAME, THRESHOLD_MAX, THRESHOLD_MIN, const_input, fail, hwc, input_tensor, kernel_call, output_tensor, rows_cols, same_valid, words_for)
from larq_glt.flatbuffer import Model, Operator

def bconv_scratch_bytes(n_words: int, taps: int, lane_groups: int) -> int:
    """RAM glt_bconv2d_opt needs in `scratch` (see glt_bconv2d.h); lane_groups 0:
    no lane tables."""
    if lane_groups:
        # the window and its sentinel; from two lane groups on, the column list
        return 4 * (n_words + 1) + (2 * (16 * n_words + 16) if lane_groups > 1 else 0)
    return 4 * n_words if taps > 1 else 0


def shortcut_scratch_bytes(n_words: int, taps: int, lane_groups: int, groups: int, out_c: int) -> int:
    """RAM glt_shortcut_opt needs (glt_shortcut.h): glt_bconv2d_opt's, then one
    pixel's chosen thresholds (threshold planes of every lane group, or out_c
    words; no less than the out_c words glt_shortcut_ref uses from the start)."""
    chosen = 4 * LANE_THRESHOLD_WORDS * groups * lane_groups if lane_groups else 4 * out_c
    return bconv_scratch_bytes(n_words, taps, lane_groups) + chosen


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
    32 zero words, the columns that pad the column list to whole blocks of 16) and
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
    words = words_for(cols)
    padded = np.zeros(bits.shape[:-1] + (words * 32,), dtype=bool)
    padded[..., :cols] = bits
    weights = (np.uint64(1) << np.arange(32, dtype=np.uint64)).astype(np.uint64)
    grouped = padded.reshape(bits.shape[:-1] + (words, 32)).astype(np.uint64)
    return (grouped * weights).sum(axis=-1).astype(np.uint32)


def packed_input(model: Model, op: Operator, keys) -> tuple:
    """An LCE op's custom options (each of ``keys`` required), its bit-packed
    INT32 input tensor, and that input's height, width and words."""
    opts = op.custom_options or {}
    for key in keys:
        if key not in opts:
            fail(op, f"custom option {key!r} missing")
    inp = input_tensor(model, op, 0, "input")
    if inp.type_name != "INT32":
        fail(op, f"input must be bit-packed INT32, got {inp.type_name}")
    return (opts, inp, *hwc(op, inp, "input"))


def lower_bconv2d(model: Model, op: Operator) -> KernelCall:
    opts, inp, in_h, in_w, in_words = packed_input(
        model, op, ("channels_in", "stride_height", "stride_width", "dilation_height_factor",
                    "dilation_width_factor", "padding", "pad_values", "fused_activation_function"))
    filt = const_input(model, op, 1, "filter")
    if filt.ndim != 4 or filt.dtype != np.int32:
        fail(op, f"filter must be a bit-packed INT32 [O, H, W, I] tensor, got {filt.dtype} {list(filt.shape)}")
    out_c, fh, fw, gw = (int(d) for d in filt.shape)
    cin = int(opts["channels_in"])
    if in_words != words_for(cin):
        fail(op, f"input has {in_words} words per pixel, channels_in={cin} needs {words_for(cin)}")
    if gw == words_for(cin):
        groups = 1
    else:
        if gw == 0 or words_for(cin) % gw != 0:
            fail(op, f"filter depth {gw} words does not divide the {words_for(cin)} input words")
        groups = words_for(cin) // gw
        if (cin // groups) % 32 != 0 or out_c % groups != 0:
            fail(op, f"groups={groups} needs channels per group multiple of 32 and out channels divisible")
    if fh * fw > MAX_TAPS:
        fail(op, f"filter {fh}x{fw} has more than {MAX_TAPS} taps")
    padding, pad_value = int(opts["padding"]), int(opts["pad_values"])
    if pad_value not in (0, 1):
        fail(op, f"pad_values must be 0 or 1, got {pad_value}")
    sh, sw = int(opts["stride_height"]), int(opts["stride_width"])
    dh, dw = int(opts["dilation_height_factor"]), int(opts["dilation_width_factor"])
    out_h, pad_top = same_valid(op, padding, in_h, fh, sh, dh)
    out_w, pad_left = same_valid(op, padding, in_w, fw, sw, dw)
    out = output_tensor(model, op)
    o_h, o_w, o_c = hwc(op, out, "output")
    out_type = {"INT32": OUT_BITS, "FLOAT32": OUT_FLOAT, "INT8": OUT_INT8}.get(out.type_name)
    if out_type is None:
        fail(op, f"output type {out.type_name} is not supported")
    expected_c = words_for(out_c) if out_type == OUT_BITS else out_c
    if (o_h, o_w, o_c) != (out_h, out_w, expected_c):
        fail(op, f"output shape {list(out.shape)} differs from the computed [1, {out_h}, {out_w}, {expected_c}]")

    cin_group = cin // groups
    zero_padding = padding == SAME and pad_value == 0
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
        thr = const_input(model, op, 4, "thresholds").astype(np.int64).reshape(-1)
        if thr.size != out_c:
            fail(op, f"{thr.size} thresholds for {out_c} output channels")
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
        mul = const_input(model, op, 2, "post_activation_multiplier").astype(np.float32).reshape(-1)
        bias = const_input(model, op, 3, "post_activation_bias").astype(np.float32).reshape(-1)
        if mul.size != out_c or bias.size != out_c:
            fail(op, f"multiplier/bias sizes {mul.size}/{bias.size} for {out_c} output channels")
        scale, zp = 1.0, 0.0
        if out_type == OUT_INT8:
            if out.scale is None or out.zero_point is None:
                fail(op, "int8 output without quantization parameters")
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
            ACT_NONE: (-(2**31), 2**31 - 1),
            ACT_RELU: (0, 2**31 - 1),
            ACT_RELU_N1_TO_1: (-1, 1),
            ACT_RELU6: (0, 6),
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
    return kernel_call(
        op, model, "glt_bconv2d", "glt_bconv2d.h",
        # the whole input is the window: call that path of the optimized kernel directly
        **({"function": "glt_bconv2d_dense_opt"} if dense else {}),
        params=params, arrays=arrays, inputs=[inp.index], outputs=[out.index],
        scratch_bytes=0 if dense else bconv_scratch_bytes(taps * gw, taps, params["lane_groups"]),
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


def lower_bmaxpool(model: Model, op: Operator) -> KernelCall:
    opts, inp, in_h, in_w, words = packed_input(
        model, op, ("filter_height", "filter_width", "stride_height", "stride_width", "padding"))
    fh, fw = int(opts["filter_height"]), int(opts["filter_width"])
    sh, sw = int(opts["stride_height"]), int(opts["stride_width"])
    out_h, pad_top = same_valid(op, int(opts["padding"]), in_h, fh, sh, 1)
    out_w, pad_left = same_valid(op, int(opts["padding"]), in_w, fw, sw, 1)
    out = output_tensor(model, op)
    if hwc(op, out, "output") != (out_h, out_w, words):
        fail(op, f"output shape {list(out.shape)} differs from the computed [1, {out_h}, {out_w}, {words}]")
    params = dict(in_h=in_h, in_w=in_w, words=words, out_h=out_h, out_w=out_w, filter_h=fh,
                  filter_w=fw, stride_h=sh, stride_w=sw, pad_top=pad_top, pad_left=pad_left)
    return kernel_call(op, model, "glt_bmaxpool", "glt_bmaxpool.h", params=params, arrays={},
                 inputs=[inp.index], outputs=[out.index])



def lower_quantize(model: Model, op: Operator) -> KernelCall:
    inp, out = input_tensor(model, op, 0, "input"), output_tensor(model, op)
    rows, cols = rows_cols(inp)
    if out.type_name != "INT32" or out.shape[:-1] != inp.shape[:-1] or out.shape[-1] != words_for(cols):
        fail(op, f"output {out.type_name} {list(out.shape)} is not the bit-packed {list(inp.shape)}")
    kind = {"FLOAT32": "float", "INT8": "int8", "BOOL": "bool"}.get(inp.type_name)
    if kind is None:
        fail(op, f"input type {inp.type_name} is not supported")
    zp = 0
    if kind == "int8" and inp.zero_point is not None:
        zp = int(inp.zero_point[0])
    return kernel_call(op, model, f"glt_quantize_{kind}", "glt_quantize.h", params_type="glt_quantize_params",
                 params=dict(rows=rows, cols=cols, zero_point=zp), arrays={},
                 inputs=[inp.index], outputs=[out.index])


def _tflite_round(x: float) -> int:
    """std::round on a float value: half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def lower_dequantize(model: Model, op: Operator) -> KernelCall:
    inp, out = input_tensor(model, op, 0, "input"), output_tensor(model, op)
    rows, cols = rows_cols(out)
    if inp.type_name != "INT32" or inp.shape[:-1] != out.shape[:-1] or inp.shape[-1] != words_for(cols):
        fail(op, f"input {inp.type_name} {list(inp.shape)} is not the bit-packed {list(out.shape)}")
    kind = {"FLOAT32": "float", "INT8": "int8"}.get(out.type_name)
    if kind is None:
        fail(op, f"output type {out.type_name} is not supported")
    zero_bit, one_bit = 1, -1
    if kind == "int8":
        if out.scale is None:
            fail(op, "int8 output without quantization parameters")
        zp = int(out.zero_point[0]) if out.zero_point is not None else 0
        offset = _tflite_round(float(np.float32(1.0) / np.float32(out.scale[0])))
        zero_bit, one_bit = min(127, zp + offset), max(-128, zp - offset)
    return kernel_call(op, model, f"glt_dequantize_{kind}", "glt_quantize.h", params_type="glt_dequantize_params",
                 params=dict(rows=rows, cols=cols, zero_bit_value=zero_bit, one_bit_value=one_bit),
                 arrays={}, inputs=[inp.index], outputs=[out.index])


def sign_thresholds(multiplier: np.ndarray, bias: np.ndarray, clamp_min: int, clamp_max: int,
                    acc_max: int, offsets=(0.0,)) -> tuple[np.ndarray, list[np.ndarray]]:
    """Thresholds that give a bit-output conv the sign LCE computes in float.

    LCE's float-output conv computes, per channel, y = (float)clamp(2 * acc) *
    multiplier + bias (two float roundings); the bit is y + s < 0 (LceQuantize),
    for each offset s (0: a plain sign; +1 and -1: a shortcut's dequantized input
    bit added first). Evaluated here in float32 for every acc in [0, acc_max]: a
    step in acc, rising or falling with the multiplier's sign. Returns (flip
    [out_c] bool: count the channel's mismatches against its inverted filter,
    acc' = acc_max - acc, so that the bit rises; one threshold array per offset),
    with bit = acc' > threshold. Raises ValueError if a channel's bit is not a
    step (it always is: float rounding is monotone)."""
    acc = np.arange(acc_max + 1, dtype=np.int64)
    x = np.clip(2 * acc, clamp_min, clamp_max).astype(np.float32)
    y = (x[None, :] * multiplier.astype(np.float32)[:, None]).astype(np.float32) + \
        bias.astype(np.float32)[:, None]
    bits = [(y + np.float32(s)).astype(np.float32) < np.float32(0) for s in offsets]
    rising = np.all([np.all(b[:, 1:] >= b[:, :-1], axis=1) for b in bits], axis=0)
    falling = np.all([np.all(b[:, 1:] <= b[:, :-1], axis=1) for b in bits], axis=0)
    if not np.all(rising | falling):
        raise ValueError(f"channels {np.flatnonzero(~(rising | falling)).tolist()} are not a step in the count")
    flip = ~rising
    out = []
    for b in bits:
        b = np.where(flip[:, None], b[:, ::-1], b)
        # bit = acc > t: t = (number of clear bits) - 1; never set -> THRESHOLD_MAX
        clear = (~b).sum(axis=1)
        out.append(np.where(clear > acc_max, THRESHOLD_MAX, clear - 1).astype(np.int64))
    return flip, out


def shortcut_thresholds(multiplier: np.ndarray, bias: np.ndarray, clamp_min: int, clamp_max: int,
                        acc_max: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds of a binary shortcut block (larq_glt.opset.Shortcut): the sign of
    y + s, s = +1 for an input bit 0 and -1 for a bit 1 (LceDequantize, ADD; see
    :func:`sign_thresholds`). Returns (flip, thresholds for bit 0, for bit 1)."""
    flip, (thr, thr_set) = sign_thresholds(multiplier, bias, clamp_min, clamp_max, acc_max, (1.0, -1.0))
    return flip, thr, thr_set


def _bits_conv(model: Model, bconv: Operator, thresholds_for) -> tuple[dict, dict, KernelCall]:
    """A float-output LceBconv2d re-lowered to write bits: its params with
    output_type OUT_BITS, its filter rows inverted where the sign falls with the
    count, and the threshold arrays ``thresholds_for(call, acc_max)`` gives
    (flip, [thresholds, ...]). Returns (params, arrays: filter and the thresholds
    as ``thresholds``, ``thresholds_1``, ...; lane tables when the count fits)
    and the float call."""
    call = lower_bconv2d(model, bconv)
    p = call.params
    if p["output_type"] != OUT_FLOAT or p["zero_padding"]:
        fail(bconv, "a fused conv needs float output and one-padding (or VALID)")
    cin_group = p["group_words"] * 32
    acc_max = p["filter_h"] * p["filter_w"] * cin_group
    try:
        flip, thresholds = thresholds_for(call, acc_max)
    except ValueError as e:
        fail(bconv, str(e))
    out_c = p["out_c"]
    filter_words = call.arrays["filter"].reshape(out_c, -1).copy()
    filter_words[flip] = ~filter_words[flip]
    conv = dict(p, output_type=OUT_BITS, clamp_min=0, clamp_max=0, lane_groups=0, lane_planes=0)
    arrays = {"filter": filter_words.reshape(-1)}
    for k, thr in enumerate(thresholds):
        arrays["thresholds" if k == 0 else f"thresholds_{k}"] = thr
    if acc_max <= LANES_ACC_MAX:
        lanes = [lane_tables(filter_words, thr, p["groups"], acc_max) for thr in thresholds]
        arrays["lane_filter"] = lanes[0][0]
        for k, (_, lane_thr) in enumerate(lanes):
            arrays["lane_thresholds" if k == 0 else f"lane_thresholds_{k}"] = lane_thr
        conv["lane_groups"] = lanes[0][1].size // (p["groups"] * LANE_THRESHOLD_WORDS)
        conv["lane_planes"] = lane_planes(acc_max)
    return conv, arrays, call


def lower_word_shuffle(model: Model, shuffle) -> list[KernelCall]:
    """The calls of a shuffled block (larq_glt.opset.WordShuffle): the conv with
    bit-packed output (bit: its float output < 0, thresholds by
    :func:`sign_thresholds`), the max pool on bits (the max of floats is negative
    exactly when all are: the AND of their bits), and the word copy of the gather.
    The flatbuffer's float tensors between them hold bits here (their
    ``output_bytes`` say so)."""
    ops = model.operators
    bconv = ops[shuffle.bconv]

    def thresholds(call, acc_max):
        flip, (thr,) = sign_thresholds(call.arrays["multiplier"], call.arrays["bias"],
                                       call.params["clamp_min"], call.params["clamp_max"], acc_max)
        return flip, [thr]

    conv, arrays, call = _bits_conv(model, bconv, thresholds)
    arrays["thresholds"] = arrays["thresholds"].astype(np.int32)
    h, w, words = conv["out_h"], conv["out_w"], words_for(conv["out_c"])
    taps = conv["filter_h"] * conv["filter_w"]
    calls = [KernelCall(
        op_indices=(bconv.index,), op_name="LceBconv2d", function="glt_bconv2d_opt",
        reference_function="glt_bconv2d_ref", header="glt_bconv2d.h", params_type="glt_bconv2d_params",
        params=conv, arrays=arrays, inputs=call.inputs, outputs=call.outputs, input_bytes=call.input_bytes,
        output_bytes=(h * w * words * 4,),
        scratch_bytes=bconv_scratch_bytes(taps * conv["group_words"], taps, conv["lane_groups"]),
        binary_macs=call.binary_macs,
        notes=call.notes + ["shuffled block: float output and its sign fused (bit-packed output)"],
        reference_arrays=("filter", "thresholds") if "lane_filter" in arrays else (),
    )]
    if shuffle.pool is not None:
        pool = ops[shuffle.pool]
        o = pool.builtin_options
        fh, fw, sh, sw = o["filter_height"], o["filter_width"], o["stride_h"], o["stride_w"]
        out_h, pad_top = same_valid(pool, o["padding"], h, fh, sh, 1)
        out_w, pad_left = same_valid(pool, o["padding"], w, fw, sw, 1)
        if hwc(pool, output_tensor(model, pool), "output")[:2] != (out_h, out_w):
            fail(pool, "output shape differs from the computed pool")
        calls.append(KernelCall(
            op_indices=(pool.index,), op_name="MAX_POOL_2D", function="glt_bmaxpool_opt",
            reference_function="glt_bmaxpool_ref", header="glt_bmaxpool.h", params_type="glt_bmaxpool_params",
            params=dict(in_h=h, in_w=w, words=words, out_h=out_h, out_w=out_w, filter_h=fh, filter_w=fw,
                        stride_h=sh, stride_w=sw, pad_top=pad_top, pad_left=pad_left),
            arrays={}, inputs=calls[-1].outputs, outputs=tuple(pool.outputs),
            input_bytes=calls[-1].output_bytes, output_bytes=(out_h * out_w * words * 4,),
            notes=["on bits: the max of floats is negative exactly when all are"]))
        h, w = out_h, out_w
    gather, quantize = ops[shuffle.gather], ops[shuffle.quantize]
    out = output_tensor(model, quantize)
    if hwc(quantize, out, "output") != (h, w, words) or len(shuffle.order) != words:
        fail(gather, f"shuffle of {len(shuffle.order)} words on a [{h}, {w}, {words}-word] map")
    calls.append(KernelCall(
        op_indices=(gather.index, quantize.index), op_name="GATHER+LceQuantize", function="glt_word_gather_ref",
        reference_function="glt_word_gather_ref", header="glt_word_gather.h",
        params_type="glt_word_gather_params", params=dict(pixels=h * w, words=words),
        arrays={"order": np.asarray(shuffle.order, dtype=np.uint16)}, inputs=calls[-1].outputs,
        outputs=(out.index,), input_bytes=calls[-1].output_bytes, output_bytes=(out.nbytes,),
        notes=["channel shuffle of whole words (a copy), then the sign already taken"]))
    return calls


def lower_shortcut(model: Model, shortcut) -> KernelCall:
    """One glt_shortcut call for the four ops of a binary shortcut block
    (larq_glt.opset.Shortcut): a binary conv with bit-packed output whose threshold
    per channel is chosen by the input bit of the same pixel and channel. Its
    params are glt_shortcut_params: the conv's fields under ``conv.``."""
    ops = model.operators
    bconv = ops[shortcut.bconv]

    def thresholds(call, acc_max):
        p = call.params
        if not (p["out_c"] == p["in_words"] * 32 == p["groups"] * p["group_words"] * 32 and
                (p["out_h"], p["out_w"]) == (p["in_h"], p["in_w"]) and p["stride_h"] == p["stride_w"] == 1):
            fail(bconv, "a shortcut needs a one-padded stride-1 conv with as many output channels as input "
                        "channels, a multiple of 32 per group")
        flip, thr, thr_set = shortcut_thresholds(call.arrays["multiplier"], call.arrays["bias"],
                                                 p["clamp_min"], p["clamp_max"], acc_max)
        return flip, [thr, thr_set]

    conv, bits, call = _bits_conv(model, bconv, thresholds)
    arrays = {"conv.filter": bits["filter"], "conv.thresholds": bits["thresholds"].astype(np.int32),
              "shortcut_thresholds": bits["thresholds_1"].astype(np.int32)}
    reference = ()
    if "lane_filter" in bits:
        arrays.update({"conv.lane_filter": bits["lane_filter"], "conv.lane_thresholds": bits["lane_thresholds"],
                       "lane_shortcut_thresholds": bits["lane_thresholds_1"]})
        reference = ("conv.filter", "conv.thresholds", "shortcut_thresholds")
    out = output_tensor(model, ops[shortcut.quantize])
    taps = conv["filter_h"] * conv["filter_w"]
    return KernelCall(
        op_indices=(shortcut.bconv, shortcut.dequantize, shortcut.add, shortcut.quantize),
        op_name="LceBconv2d+shortcut", function="glt_shortcut_opt", reference_function="glt_shortcut_ref",
        header="glt_shortcut.h", params_type="glt_shortcut_params",
        params={f"conv.{k}": v for k, v in conv.items()}, arrays=arrays, inputs=call.inputs,
        outputs=(out.index,), input_bytes=call.input_bytes, output_bytes=(out.nbytes,),
        scratch_bytes=shortcut_scratch_bytes(taps * conv["group_words"], taps, conv["lane_groups"],
                                             conv["groups"], conv["out_c"]),
        binary_macs=call.binary_macs,
        notes=call.notes + ["binary shortcut: LceDequantize + ADD + LceQuantize fused (two thresholds per channel)"],
        reference_arrays=reference,
    )
