"""The fused stem: the front end and the binary convolution that reads it become
one ``glt_stem`` call reading the raw frame; for a code with few patterns per
channel (a thermometer: K + 1) the convolution turns into sums of precomputed
per-level rows (:func:`stem_level_tables`).
"""
from __future__ import annotations

import numpy as np

from deploy.lower.calls import (KernelCall, OUT_BITS, UnsupportedOpError)
from deploy.lower.lce_ops import lane_planes
from larq_glt.flatbuffer import Model

STEM_LANES = 32  # GLT_STEM_LANES: output channels per level row
STEM_COMPARE_WORDS = 27  # GLT_STEM_COMPARE_WORDS
# Level tables are flash constants; past this the words algorithm (no tables,
# about twice the instructions, row strips in the arena) runs instead. 64 KiB
# holds the tables of a 128-filter 4x4 stem on an 8-level GLT (56 KiB), a
# sixteenth of the smallest board's flash; a build can set another
# (deploy/build.py --stem-table-kib).
STEM_TABLE_MAX_BYTES = 64 * 1024
_STEM_SUM_MAX = 32767  # 16-bit lanes biased by 0x8000 (glt_stem_opt.c compare16)


def fuse_stem_calls(model: Model, calls: list[KernelCall],
                    table_max_bytes: int | None = None) -> list[KernelCall]:
    """Replaces FRONTEND + the LceBconv2d that is its only reader by one
    glt_stem call reading the raw frame (the encoded frame is never stored);
    its level tables take at most ``table_max_bytes`` (:func:`stem_level_tables`;
    None: :data:`STEM_TABLE_MAX_BYTES`)."""
    if table_max_bytes is None:
        table_max_bytes = STEM_TABLE_MAX_BYTES
    if not calls or calls[0].op_name != "FRONTEND":
        return calls
    front = calls[0]
    encoded = front.outputs[0]
    readers = [c for c in calls[1:] if encoded in c.inputs]
    if encoded in model.outputs or len(readers) != 1:
        return calls
    conv = readers[0]
    if conv.op_name != "LceBconv2d" or conv.params["groups"] != 1:
        return calls  # (a shortcut block, "LceBconv2d+shortcut", reads the encoded frame twice)
    return [_stem_call(model, front, conv, table_max_bytes)] + [c for c in calls[1:] if c is not conv]


def _stem_call(model: Model, front: KernelCall, conv: KernelCall, table_max_bytes: int) -> KernelCall:
    cp = conv.params
    if cp["in_words"] != front.params["words"] or cp["in_h"] * cp["in_w"] != front.params["pixels"]:
        raise UnsupportedOpError(
            f"operator {conv.op_indices[0]} (LceBconv2d) reads {cp['in_words']} words per pixel of a "
            f"{cp['in_h']}x{cp['in_w']} map, the front end makes {front.params['words']} words for "
            f"{front.params['pixels']} pixels")
    params, arrays, scratch, notes = stem_params(front.params["channels"], front.arrays["lut"], cp,
                                                 conv.arrays, conv.scratch_bytes, table_max_bytes)
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
                conv_scratch_bytes: int, table_max_bytes: int = STEM_TABLE_MAX_BYTES
                ) -> tuple[dict, dict, int, list[str]]:
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
            conv_arrays["thresholds"], bool(cp["zero_padding"]), cp["binary_zero_point"], table_max_bytes)
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
        "words algorithm: front end row strips + glt_bconv2d_opt"
        + _no_tables_reason(cp["output_type"] == OUT_BITS, table_max_bytes)]


def _no_tables_reason(bits_out: bool, table_max_bytes: int) -> str:
    if not bits_out:
        return ""  # the levels algorithm writes bits only
    if table_max_bytes == 0:
        return " (level tables disabled)"
    return (f" (level tables over {table_max_bytes:,} bytes, or sums past their lanes: "
            "more patterns, filters or taps than tables hold)")


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
