"""deploy/runtime C kernels on the host: optimized == reference == an independent
numpy model of LCE's semantics, on randomized shapes (odd channel counts, groups,
strides, dilation, SAME/VALID, zero- and one-padding, every output type).

On the host both kernels run their portable C; the Cortex-M paths (inline
assembly, RBIT/CLZ) are checked on QEMU Cortex-M7 and M4 in
test_optimized_kernels_on_cortex_m (marked qemu), which also prints measured
binary MACs per instruction.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from deploy import lower
from deploy.lower import (OUT_BITS, OUT_FLOAT, OUT_INT8, bconv_scratch_bytes, bitpack, lane_planes,
                          lane_tables)
from deploy.firmware import hostlib


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return hostlib.build(tmp_path_factory.mktemp("glt_runtime"))


def words(c: int) -> int:
    return (c + 31) // 32


def unpack(packed: np.ndarray, channels: int) -> np.ndarray:
    """bit-packed words [..., W] -> bool [..., channels] (True = bit 1 = -1)."""
    b = np.unpackbits(packed.astype("<u4").view(np.uint8), axis=-1, bitorder="little")
    return b[..., :channels].astype(bool)


def same_valid(size, filt, stride, dilation, same):
    eff = (filt - 1) * dilation + 1
    out = (size + stride - 1) // stride if same else (size - eff + stride) // stride
    return out, max((out - 1) * stride + eff - size, 0) // 2


def round_half_away(y: np.ndarray) -> np.ndarray:
    return np.sign(y) * np.floor(np.abs(y.astype(np.float64)) + 0.5)


# ------------------------------------------------------------------ binary conv


def bconv_case(rng, *, cin, cout, groups, fh, fw, sh, sw, dh, dw, same, pad_value, out_type,
               in_h, in_w, lanes=True, filter_p=0.5, input_p=0.5, shortcut=False):
    gw = words(cin // groups)
    in_words = words(cin)
    out_h, pad_top = same_valid(in_h, fh, sh, dh, same)
    out_w, pad_left = same_valid(in_w, fw, sw, dw, same)
    # activations and filters with LCE's zero padding bits
    x = rng.random((in_h, in_w, cin)) < input_p
    filt_bits = rng.random((cout, fh, fw, cin // groups)) < filter_p
    if groups == 1:
        x_packed = bitpack(x)
    else:
        x_packed = np.concatenate(
            [bitpack(x[..., g * (cin // groups):(g + 1) * (cin // groups)]) for g in range(groups)], axis=-1)
    filt = bitpack(filt_bits)  # [cout, fh, fw, gw]
    taps = fh * fw
    acc_max = taps * (cin // groups)
    params = dict(in_h=in_h, in_w=in_w, in_words=in_words, out_h=out_h, out_w=out_w, out_c=cout,
                  filter_h=fh, filter_w=fw, group_words=gw, groups=groups, stride_h=sh, stride_w=sw,
                  dilation_h=dh, dilation_w=dw, pad_top=pad_top, pad_left=pad_left,
                  zero_padding=int(same and pad_value == 0), binary_zero_point=(cin // groups) // 2,
                  output_type=out_type, clamp_min=0, clamp_max=0, lane_groups=0, lane_planes=0)
    arrays = {"filter": filt.reshape(-1)}
    if out_type == OUT_BITS:
        thr = rng.integers(-3, acc_max + 3, size=cout)
        thr[rng.random(cout) < 0.1] = -1  # LCE's -inf, clamped by lowering
        thr[rng.random(cout) < 0.1] = 1 << 30  # +inf
        arrays["thresholds"] = thr.astype(np.int32)
        if shortcut:  # a binary shortcut block: thresholds where the channel's input bit is set
            thr_set = np.where(rng.random(cout) < 0.7, thr - rng.integers(0, 5, size=cout),
                               rng.integers(-3, acc_max + 3, size=cout))
            thr_set = np.clip(thr_set, -1, 1 << 30)
            arrays["shortcut_thresholds"] = thr_set.astype(np.int32)
        if lanes and not params["zero_padding"]:  # the bit-sliced algorithm
            lane_filter, lane_thr = lane_tables(filt.reshape(cout, -1), thr, groups, acc_max)
            arrays["lane_filter"], arrays["lane_thresholds"] = lane_filter, lane_thr
            params["lane_groups"] = words(cout // groups)
            params["lane_planes"] = lane_planes(acc_max)
            if shortcut:
                arrays["lane_shortcut_thresholds"] = lane_tables(filt.reshape(cout, -1), thr_set, groups, acc_max)[1]
    else:
        lo = int(rng.integers(0, acc_max + 1))
        hi = int(rng.integers(lo, 2 * acc_max + 1))
        params["clamp_min"], params["clamp_max"] = (lo, hi) if rng.random() < 0.7 else (0, 2 * acc_max)
        arrays["multiplier"] = rng.normal(0, 0.3, cout).astype(np.float32)
        arrays["bias"] = rng.normal(0, 5, cout).astype(np.float32)
    if params["zero_padding"]:
        tap_bits = filt_bits.reshape(cout, taps, -1).sum(axis=-1)
        arrays["tap_popcount"] = tap_bits.reshape(-1).astype(np.uint16)
    scratch = bconv_scratch_bytes(taps * gw, taps, params["lane_groups"])
    if shortcut:
        scratch = lower.shortcut_scratch_bytes(taps * gw, taps, params["lane_groups"], groups, cout)
    return params, arrays, scratch, x, filt_bits


def bconv_numpy(params, arrays, x, filt_bits):
    """LCE BConv2DReference in numpy, from unpacked bits."""
    p = params
    cout, fh, fw, cg = filt_bits.shape
    groups = p["groups"]
    acc = np.zeros((p["out_h"], p["out_w"], cout), dtype=np.int64)
    for oy in range(p["out_h"]):
        for ox in range(p["out_w"]):
            for oc in range(cout):
                g = oc // (cout // groups)
                a = 0
                for ky in range(fh):
                    for kx in range(fw):
                        iy = oy * p["stride_h"] - p["pad_top"] + ky * p["dilation_h"]
                        ix = ox * p["stride_w"] - p["pad_left"] + kx * p["dilation_w"]
                        inside = 0 <= iy < p["in_h"] and 0 <= ix < p["in_w"]
                        if not inside and p["zero_padding"]:
                            a += p["binary_zero_point"]
                            continue
                        xin = x[iy, ix, g * cg:(g + 1) * cg] if inside else np.zeros(cg, bool)
                        a += int(np.count_nonzero(xin ^ filt_bits[oc, ky, kx]))
                acc[oy, ox, oc] = a
    if p["output_type"] == OUT_BITS:
        thr = np.broadcast_to(arrays["thresholds"].astype(np.int64), acc.shape)
        if "shortcut_thresholds" in arrays:  # the input bit of the same pixel and channel chooses
            thr = np.where(x, arrays["shortcut_thresholds"].astype(np.int64), thr)
        return bitpack(acc > thr).astype(np.uint32)
    v = np.clip(2 * acc, p["clamp_min"], p["clamp_max"]).astype(np.float32)
    y = (v * arrays["multiplier"]).astype(np.float32) + arrays["bias"]  # two float32 roundings
    if p["output_type"] == OUT_FLOAT:
        return y.astype(np.float32)
    return np.clip(round_half_away(y), -128, 127).astype(np.int8)


def conv_output(params):
    """An output buffer for a conv's params, pre-filled with a value no kernel writes."""
    if params["output_type"] == OUT_BITS:
        return np.full((params["out_h"], params["out_w"], words(params["out_c"])), 0xDEADBEEF, np.uint32)
    if params["output_type"] == OUT_FLOAT:
        return np.full((params["out_h"], params["out_w"], params["out_c"]), np.nan, np.float32)
    return np.full((params["out_h"], params["out_w"], params["out_c"]), 77, np.int8)


def run_bconv(lib, function, params, arrays, scratch, x_packed):
    p = hostlib.Params("glt_bconv2d_params", params, arrays, scratch)
    out = conv_output(params)
    hostlib.call(lib, function, p, np.ascontiguousarray(x_packed, dtype=np.uint32), out)
    return out


def run_shortcut(lib, function, params, sparams, sarrays, scratch, x_packed):
    p = hostlib.Params("glt_shortcut_params", sparams, sarrays, scratch)
    out = conv_output(params)
    hostlib.call(lib, function, p, np.ascontiguousarray(x_packed, dtype=np.uint32), out)
    return out


def random_bconv_config(rng):
    """A random binary conv; bits output uses the bit-sliced algorithm 2 times in 3."""
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    if groups == 1:
        cin = int(rng.choice([1, 3, 31, 32, 33, 64, 65, 96, 130, 200]))
    else:
        cin = groups * 32 * int(rng.integers(1, 3))
    cout = groups * int(rng.choice([1, 5, 11, 16, 31, 33, 65])) if groups > 1 else int(
        rng.choice([1, 7, 31, 32, 33, 64, 65]))
    same = bool(rng.random() < 0.6)
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    dh, dw = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.3 else (1, 1)
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    in_h = int(rng.integers((fh - 1) * dh + 1, 9))
    in_w = int(rng.integers((fw - 1) * dw + 1, 9))
    return dict(cin=cin, cout=cout, groups=groups, fh=fh, fw=fw, sh=sh, sw=sw, dh=dh, dw=dw,
                same=same, pad_value=int(rng.integers(0, 2)),
                out_type=int(rng.choice([OUT_FLOAT, OUT_INT8, OUT_BITS, OUT_BITS])), in_h=in_h, in_w=in_w,
                lanes=bool(rng.random() < 0.67))


def packed_input(x, cin, groups):
    if groups == 1:
        return bitpack(x)
    cg = cin // groups
    return np.concatenate([bitpack(x[..., g * cg:(g + 1) * cg]) for g in range(groups)], axis=-1)


def test_bconv2d_opt_equals_ref_equals_numpy_random_shapes(lib):
    rng = np.random.default_rng(1234)
    for case in range(250):
        cfg = random_bconv_config(rng)
        params, arrays, scratch, x, filt_bits = bconv_case(rng, **cfg)
        xp = packed_input(x, cfg["cin"], cfg["groups"])
        ref = run_bconv(lib, "glt_bconv2d_ref", params, arrays, scratch, xp)
        opt = run_bconv(lib, "glt_bconv2d_opt", params, arrays, scratch, xp)
        assert ref.tobytes() == opt.tobytes(), f"case {case}: opt != ref for {cfg}"
        if case < 80:  # the numpy model is slow; fewer cases
            expected = bconv_numpy(params, arrays, x, filt_bits)
            assert ref.tobytes() == expected.tobytes(), f"case {case}: ref != numpy for {cfg}"


@pytest.mark.parametrize("n_words", [1, 2, 3, 4, 5, 6, 7, 9, 12, 29, 30, 31, 36, 37, 66, 67])
def test_bconv2d_reduction_lengths(lib, n_words):
    """Every split of the N-word reduction (head words, lone triple, hexad blocks,
    more than 5 hexads) on a 1x1 conv (window read in place) and a 3x1 conv (window
    gathered into scratch)."""
    rng = np.random.default_rng(n_words)
    for fh, lanes in ((1, False), (3, False), (1, True), (3, True)):
        cin = 32 * n_words
        cfg = dict(cin=cin, cout=40, groups=1, fh=fh, fw=1, sh=1, sw=1, dh=1, dw=1, same=True,
                   pad_value=1, out_type=OUT_BITS, in_h=4, in_w=3, lanes=lanes)
        params, arrays, scratch, x, filt_bits = bconv_case(rng, **cfg)
        # all-ones words: the largest counts (1024 per tap here) must not overflow
        x[0, 0, :] = True
        xp = bitpack(x)
        ref = run_bconv(lib, "glt_bconv2d_ref", params, arrays, scratch, xp)
        opt = run_bconv(lib, "glt_bconv2d_opt", params, arrays, scratch, xp)
        assert ref.tobytes() == opt.tobytes()
        assert ref.tobytes() == bconv_numpy(params, arrays, x, filt_bits).tobytes()
        params["output_type"] = OUT_FLOAT
        params["clamp_max"] = 2 * fh * cin
        arrays = dict(filter=arrays["filter"], multiplier=np.ones(40, np.float32),
                      bias=np.zeros(40, np.float32))
        ref = run_bconv(lib, "glt_bconv2d_ref", params, arrays, scratch, xp)
        opt = run_bconv(lib, "glt_bconv2d_opt", params, arrays, scratch, xp)
        assert ref.tobytes() == opt.tobytes()
        assert np.array_equal(ref, bconv_numpy(params, arrays, x, filt_bits))


@pytest.mark.parametrize("out_type", [OUT_FLOAT, OUT_INT8])
def test_bconv2d_whole_input_window(lib, out_type):
    """Float/int8 output whose window is the whole input (1x1 output, VALID, filter
    covering the input, e.g. the classifier: a dedicated path) on several out_c and
    window word counts (every n % 6), beside near misses that take the general path
    (SAME padding, a larger input, stride, groups)."""
    rng = np.random.default_rng(77 + out_type)
    shapes = [(3, 3, 256), (1, 1, 32), (1, 1, 64), (1, 1, 96), (2, 1, 64), (1, 3, 33), (2, 2, 40),
              (3, 3, 32), (1, 2, 160), (5, 1, 32), (2, 3, 224)]
    for i, (fh, fw, cin) in enumerate(shapes):
        for cout in (1, 2, 3, 31, 32, 33, 70):
            variants = [dict(in_h=fh, in_w=fw, same=False, sh=1, groups=1)]  # the dedicated path
            if fh == 1:  # a dilation along a size-1 dimension: still the whole input, in place
                variants.append(dict(in_h=fh, in_w=fw, same=False, sh=1, groups=1, dh=2))
            if i % 2 == 0:
                variants += [dict(in_h=fh, in_w=fw, same=True, sh=1, groups=1),   # padded when > 1x1
                             dict(in_h=fh + 1, in_w=fw, same=False, sh=2, groups=1),
                             dict(in_h=fh, in_w=fw, same=False, sh=1, groups=1 if cin % 64 else 2)]
            for v in variants:
                co = cout * v["groups"]
                params, arrays, scratch, x, filt_bits = bconv_case(
                    rng, cin=cin, cout=co, groups=v["groups"], fh=fh, fw=fw, sh=v["sh"], sw=1, dh=v.get("dh", 1), dw=1,
                    same=v["same"], pad_value=int(rng.integers(0, 2)), out_type=out_type,
                    in_h=v["in_h"], in_w=v["in_w"], input_p=rng.choice([0.5, 0.0, 1.0]))
                xp = packed_input(x, cin, v["groups"])
                ref = run_bconv(lib, "glt_bconv2d_ref", params, arrays, scratch, xp)
                opt = run_bconv(lib, "glt_bconv2d_opt", params, arrays, scratch, xp)
                assert ref.tobytes() == opt.tobytes(), (fh, fw, cin, cout, v)
                # lowering's choice (it calls the dense path directly) agrees with the kernel's
                hp = hostlib.Params("glt_bconv2d_params", params, arrays)
                c_dense = bool(lib.glt_bconv2d_is_dense(hp.ref))
                assert c_dense == lower.bconv_is_dense(params), (fh, fw, cin, cout, v)
                assert c_dense or v is not variants[0]
                if c_dense:  # as the generated schedule calls it: no scratch (lowering plans none)
                    dense = run_bconv(lib, "glt_bconv2d_dense_opt", params, arrays, 0, xp)
                    assert ref.tobytes() == dense.tobytes(), (fh, fw, cin, cout, v)
                assert ref.tobytes() == bconv_numpy(params, arrays, x, filt_bits).tobytes(), (fh, fw, cin, v)


def test_int8_rounding_is_half_away_from_zero(lib):
    """y = x * m + b landing exactly on .5 must round like std::round."""
    params, arrays, scratch, x, filt_bits = bconv_case(
        np.random.default_rng(5), cin=32, cout=4, groups=1, fh=1, fw=1, sh=1, sw=1, dh=1, dw=1,
        same=False, pad_value=1, out_type=OUT_INT8, in_h=2, in_w=2)
    params["clamp_min"], params["clamp_max"] = 0, 64
    arrays["multiplier"] = np.array([0.25, -0.25, 4.0, -4.0], np.float32)
    arrays["bias"] = np.array([0.5, -0.5, -200.5, 200.5], np.float32)
    xp = bitpack(x)
    for fn in ("glt_bconv2d_ref", "glt_bconv2d_opt"):
        out = run_bconv(lib, fn, params, arrays, scratch, xp)
        assert out.tobytes() == bconv_numpy(params, arrays, x, filt_bits).tobytes()


@pytest.mark.parametrize("density", [0.0, 0.03, 0.2, 0.5, 0.8, 0.97, 1.0])
def test_bconv2d_lanes_at_every_input_density(lib, density):
    """The bit-sliced algorithm sums the set window bits, or the unset ones when
    most are set (complement mode); both parities of the set-bit count change its
    comparison. Windows from empty to full, with padding."""
    rng = np.random.default_rng(int(density * 100))
    for case in range(12):
        cfg = dict(cin=int(rng.choice([24, 32, 64, 96])), cout=int(rng.choice([7, 32, 64, 96])), groups=1,
                   fh=3, fw=int(rng.integers(1, 4)), sh=1, sw=int(rng.integers(1, 3)), dh=1, dw=1,
                   same=bool(case % 2), pad_value=1, out_type=OUT_BITS, in_h=5, in_w=6, lanes=True)
        params, arrays, scratch, x, filt_bits = bconv_case(rng, input_p=density, **cfg)
        assert "lane_filter" in arrays
        xp = bitpack(x)
        ref = run_bconv(lib, "glt_bconv2d_ref", params, arrays, scratch, xp)
        opt = run_bconv(lib, "glt_bconv2d_opt", params, arrays, scratch, xp)
        assert ref.tobytes() == opt.tobytes(), f"density {density} case {case}: {cfg}"
        if case < 3:
            assert ref.tobytes() == bconv_numpy(params, arrays, x, filt_bits).tobytes()


@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_bconv2d_shortcut_opt_equals_ref_equals_numpy(lib, density):
    """A binary shortcut block (stride 1, SAME one-padding, as many output as input
    channels, a multiple of 32 per group): the input bit of each pixel and channel
    chooses between two thresholds; glt_shortcut_opt runs glt_bconv2d_opt pixel
    by pixel, with the bit-sliced algorithm (one lane group, or the column list
    from two on) or the per-channel one, glt_shortcut_ref glt_bconv2d_ref."""
    rng = np.random.default_rng(500 + int(density * 10))
    for case in range(10):
        groups = int(rng.choice([1, 2, 4]))
        cin = groups * 32 * int(rng.integers(1, 4 if groups == 1 else 2))
        k = int(rng.choice([1, 3]))
        cfg = dict(cin=cin, cout=cin, groups=groups, fh=k, fw=k, sh=1, sw=1, dh=1, dw=1, same=True,
                   pad_value=1, out_type=OUT_BITS, in_h=int(rng.integers(1, 6)), in_w=int(rng.integers(1, 6)),
                   lanes=case % 3 != 2, shortcut=True)
        params, arrays, scratch, x, filt_bits = bconv_case(rng, input_p=density, **cfg)
        xp = packed_input(x, cin, groups)
        # glt_shortcut_params: the conv's fields under "conv."
        sparams = {f"conv.{k}": v for k, v in params.items()}
        sarrays = {(k if "shortcut" in k else f"conv.{k}"): v for k, v in arrays.items()}
        ref, opt = (run_shortcut(lib, f"glt_shortcut_{kind}", params, sparams, sarrays, scratch, xp)
                    for kind in ("ref", "opt"))
        assert ref.tobytes() == opt.tobytes(), f"density {density} case {case}: opt != ref for {cfg}"
        expected = bconv_numpy(params, arrays, x, filt_bits)
        assert ref.tobytes() == expected.tobytes(), f"density {density} case {case}: ref != numpy for {cfg}"
        plain = run_bconv(lib, "glt_bconv2d_ref", params, {k: v for k, v in arrays.items() if "shortcut" not in k},
                          scratch, xp)
        if 0.0 < density and case == 0:  # the second thresholds matter
            assert plain.tobytes() != ref.tobytes()


# ------------------------------------------------------------------ fused stem (front end + conv)


def stem_lut(rng, channels: int, planes: int, kind: str, channel_major: bool):
    """Front end tables [C, 256, words] of `planes` planes per channel (bit 1 = -1).
    kind: "thermo" (x < t_k, sorted thresholds: planes + 1 patterns per channel),
    "patterns" (a few arbitrary patterns per channel), "nbc" (the bits of x: 256)."""
    cin = channels * planes
    values = np.arange(256)
    bits = np.zeros((channels, 256, cin), dtype=bool)
    for c in range(channels):
        if kind == "thermo":
            t = np.sort(rng.integers(1, 256, size=planes))
            ch_bits = values[:, None] < t[None, :]
        elif kind == "patterns":
            pats = rng.random((int(rng.integers(1, 7)), planes)) < 0.5
            ch_bits = pats[np.sort(rng.integers(0, len(pats), size=256))]
        else:
            ch_bits = ((values[:, None] >> np.arange(planes)[None, :]) & 1).astype(bool)
        cols = [c * planes + k if channel_major else k * channels + c for k in range(planes)]
        bits[c][:, cols] = ch_bits
    return bitpack(bits), cin


def stem_encode(frame: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] -> packed words [H, W, words] (the front end semantics)."""
    out = np.zeros(frame.shape[:2] + (lut.shape[-1],), np.uint32)
    for c in range(lut.shape[0]):
        out |= lut[c][frame[..., c]]
    return out


def stem_case(rng, *, channels, planes, kind, out_type, filter_p=0.5, channel_major=True, extreme=False,
              **geometry):
    """A fused stem: random frame, front end tables, conv; params/arrays from lower.
    extreme: regions of 0 and 255 in the frame (a thermometer's largest and
    smallest counts: the sums reach their bounds)."""
    lut, cin = stem_lut(rng, channels, planes, kind, channel_major)
    params, arrays, scratch, _, filt_bits = bconv_case(rng, cin=cin, groups=1, out_type=out_type,
                                                       filter_p=filter_p, **geometry)
    frame = rng.integers(0, 256, size=(params["in_h"], params["in_w"], channels), dtype=np.uint8)
    if rng.random() < 0.3:
        frame = np.clip(frame // 32 * 32 + 16, 0, 255).astype(np.uint8)  # few distinct values
    if extreme:
        h, w = frame.shape[:2]
        frame[:h // 2, :w // 2] = 0
        frame[h // 2:, w // 2:] = 255
    x = unpack(stem_encode(frame, lut), cin)
    expected = bconv_numpy(params, arrays, x, filt_bits)
    stem = lower.stem_params(channels, lut, params, arrays, scratch)
    return stem, frame, expected


def run_stem(lib, function, stem, frame):
    params, arrays, scratch, _ = stem
    out = conv_output(params)
    hostlib.call(lib, function, hostlib.Params("glt_stem_params", params, arrays, scratch),
                 np.ascontiguousarray(frame), out)
    return out


def random_stem_config(rng):
    channels = int(rng.choice([1, 2, 3, 3, 3, 4]))
    kind = str(rng.choice(["thermo", "thermo", "patterns", "nbc"]))
    planes = 8 if kind == "nbc" else int(rng.integers(1, 16))
    planes = min(planes, 64 // channels)  # at most 2 words
    same = bool(rng.random() < 0.6)
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    dh, dw = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.25 else (1, 1)
    return dict(channels=channels, planes=planes, kind=kind, channel_major=bool(rng.random() < 0.7),
                out_type=int(rng.choice([OUT_BITS, OUT_BITS, OUT_BITS, OUT_FLOAT, OUT_INT8])),
                filter_p=float(rng.choice([0.5, 0.5, 0.1, 0.0, 0.0])),
                cout=int(rng.choice([1, 7, 32, 33, 64])), fh=fh, fw=fw, dh=dh, dw=dw,
                sh=int(rng.integers(1, 5)), sw=int(rng.integers(1, 5)), same=same,
                pad_value=int(rng.integers(0, 2)), in_h=int(rng.integers((fh - 1) * dh + 1, 13)),
                in_w=int(rng.integers((fw - 1) * dw + 1, 13)), lanes=bool(rng.random() < 0.7))


def test_stem_opt_equals_ref_equals_numpy_random_shapes(lib):
    """Both algorithms of glt_stem_opt (level tables; front end strips + glt_bconv2d)
    and the reference against a numpy model of front end + LCE conv, on random
    encoders (thermometers, arbitrary few-pattern codes, natural binary code),
    channel counts, geometry, padding kinds and output types."""
    rng = np.random.default_rng(2024)
    seen = {"levels": 0, "words": 0, "segments": 0, "levels_rgb": 0}
    for case in range(160):
        cfg = random_stem_config(rng)
        stem, frame, expected = stem_case(rng, **cfg)
        params = stem[0]
        ref = run_stem(lib, "glt_stem_ref", stem, frame)
        opt = run_stem(lib, "glt_stem_opt", stem, frame)
        assert ref.tobytes() == expected.tobytes(), f"case {case}: ref != numpy for {cfg}"
        assert opt.tobytes() == expected.tobytes(), f"case {case}: opt != numpy for {cfg} {stem[3]}"
        if params["lv_groups"]:
            seen["levels"] += 1
            taps = params["filter_h"] * params["filter_w"]
            seen["segments"] += params["lv_segment_taps"] < taps
            seen["levels_rgb"] += params["channels"] == 3 and params["lv_segment_taps"] >= taps
        else:
            seen["words"] += 1
    assert min(seen.values()) >= 5, seen


def test_stem_level_tables_choice_and_segments():
    """Thermometers get level tables (K + 1 patterns per channel); a natural binary
    code (256 patterns) is too big and uses the words algorithm; sums that can
    exceed a byte are split into segments of taps."""
    rng = np.random.default_rng(5)
    geometry = dict(cout=32, fh=4, fw=4, sh=4, sw=4, dh=1, dw=1, same=True, pad_value=1, in_h=16,
                    in_w=16, lanes=True)
    (params, arrays, scratch, notes), _, _ = stem_case(rng, channels=3, planes=8, kind="thermo",
                                                       out_type=OUT_BITS, **geometry)
    assert params["lv_rows"] == 3 * 9 + 1 and scratch == 0 and "lane_filter" not in arrays
    assert arrays["lv_table"].nbytes == params["lv_rows"] * 16 * 32
    (params, arrays, scratch, notes), _, _ = stem_case(rng, channels=3, planes=8, kind="nbc",
                                                       out_type=OUT_BITS, **geometry)
    assert params["lv_groups"] == 0 and "lv_table" not in arrays and "lane_filter" in arrays
    assert scratch == 4 * 16 * 4 + bconv_scratch_bytes(16, 16, 1)  # 4 rows of 16 pixels + conv
    # all-zero filters: each (tap, channel) sum spans 0..8, 48 of them exceed 255
    (params, arrays, scratch, notes), _, _ = stem_case(rng, channels=3, planes=8, kind="thermo",
                                                       out_type=OUT_BITS, filter_p=0.0, **geometry)
    assert 1 <= params["lv_segment_taps"] < 16, notes


def test_stem_table_cap_chooses_the_algorithm_and_both_are_exact(lib):
    """A 128-filter 4x4 stem on a 3-channel 8-level thermometer needs 4 lane
    groups x 28 rows x 16 taps x 32 bytes = 56 KiB of level tables: within the
    default cap it runs the levels algorithm, under a 32 KiB cap the words
    algorithm; both give the numpy model's bits."""
    rng = np.random.default_rng(11)
    lut, cin = stem_lut(rng, 3, 8, "thermo", True)
    params, arrays, scratch, _, filt_bits = bconv_case(
        rng, cin=cin, groups=1, out_type=OUT_BITS, cout=128, fh=4, fw=4, sh=4, sw=4, dh=1, dw=1, same=True,
        pad_value=1, in_h=16, in_w=16)
    frame = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    expected = bconv_numpy(params, arrays, unpack(stem_encode(frame, lut), cin), filt_bits)
    assert lower.STEM_TABLE_MAX_BYTES == 64 * 1024
    levels = lower.stem_params(3, lut, params, arrays, scratch)
    assert levels[0]["lv_groups"] == 4 and levels[1]["lv_table"].nbytes == 4 * 28 * 16 * 32
    capped = lower.stem_params(3, lut, params, arrays, scratch, 32 * 1024)
    assert capped[0]["lv_groups"] == 0 and "lv_table" not in capped[1]
    assert "level tables over 32,768 bytes" in capped[3][0]
    for stem in (levels, capped):
        assert run_stem(lib, "glt_stem_opt", stem, frame).tobytes() == expected.tobytes()
        assert run_stem(lib, "glt_stem_ref", stem, frame).tobytes() == expected.tobytes()


def saturated_levels_numpy(stem, frame):
    """glt_stem_opt's levels algorithm on a DSP core, in numpy: per output pixel,
    the table rows of every tap added in saturating byte lanes (UQADD8), compared
    with the thresholds by the carry-out of adding the bytes 256 - u (UADD8 + SEL),
    masked by keep and xored with the invert mask (complemented lanes, constant-1
    lanes)."""
    p, a = stem[0], stem[1]
    taps, groups = p["filter_h"] * p["filter_w"], p["lv_groups"]
    table = a["lv_table"].view(np.uint8).reshape(groups, -1)
    cmp = a["lv_compare"].reshape(groups, lower.STEM_COMPARE_WORDS)
    offset = a["lv_offset"].astype(np.int64).reshape(p["channels"], 256)
    outside = (p["lv_rows"] - 1) * taps * 32
    lane = np.arange(32)
    byte_of_lane = 4 * (lane % 8) + lane // 8
    thr8 = cmp[:, :8].view(np.uint8).reshape(groups, 32)[:, byte_of_lane].astype(np.int64)
    out = np.zeros((p["out_h"], p["out_w"], groups), np.uint32)
    for oy in range(p["out_h"]):
        for ox in range(p["out_w"]):
            total = np.zeros((groups, 32), np.int64)
            for t in range(taps):
                iy = oy * p["stride_h"] - p["pad_top"] + (t // p["filter_w"]) * p["dilation_h"]
                ix = ox * p["stride_w"] - p["pad_left"] + (t % p["filter_w"]) * p["dilation_w"]
                if 0 <= iy < p["in_h"] and 0 <= ix < p["in_w"]:
                    starts = [offset[c, frame[iy, ix, c]] + 32 * t for c in range(p["channels"])]
                else:
                    starts = [outside + 32 * t]
                for st in starts:
                    total += table[:, st:st + 32][:, byte_of_lane]
            ge = np.minimum(total, 255) + thr8 >= 256  # saturation keeps sum >= u for u <= 255
            bits = (ge.astype(np.uint64) << lane.astype(np.uint64)).sum(axis=1).astype(np.uint32)
            out[oy, ox] = (bits & cmp[:, 8]) ^ cmp[:, 25]
    return out


def test_stem_sums_beyond_a_byte_saturate_exactly():
    """Sums up to 2 x 255 (all-zero filters: each tap spans 0..24, 16 to 20 taps):
    lowering complements the lanes whose threshold exceeds a byte so that
    saturating byte sums decide every lane (the single pass of the DSP cores);
    numpy's model of that pass equals LCE's bits. Beyond 510 some lanes cannot be
    decided that way and the kernel keeps widening segments."""
    rng = np.random.default_rng(77)
    inverted = 0
    for case, (fh, fw, same, pad_value) in enumerate([(4, 4, True, 1), (4, 5, True, 0), (4, 4, False, 1),
                                                      (3, 5, True, 1)] * 3):
        cout = int(rng.choice([32, 40])) if fh * fw < 20 else 32  # 2 groups of 20 taps: > 32 KB
        stem, frame, expected = stem_case(rng, channels=3, planes=8, kind="thermo", out_type=OUT_BITS,
                                          filter_p=float(rng.choice([0.0, 0.05])), cout=cout,
                                          fh=fh, fw=fw, sh=2, sw=3, dh=1, dw=1, same=same, pad_value=pad_value,
                                          in_h=9, in_w=11, extreme=case % 2 == 0)
        params, arrays = stem[0], stem[1]
        assert params["lv_groups"] and params["lv_segment_taps"] < fh * fw, stem[3]  # sums beyond a byte
        cmp = arrays["lv_compare"].reshape(params["lv_groups"], lower.STEM_COMPARE_WORDS)
        assert (cmp[:, 26] == 1).all(), (case, stem[3])
        inverted += int(sum(bin(int(w)).count("1") for w in cmp[:, 25]))
        got = saturated_levels_numpy(stem, frame)
        assert got.tobytes() == expected.tobytes(), (case, stem[3])
    assert inverted > 0  # complemented lanes were exercised
    # 5x5 taps of range 24: sums up to 600, thresholds in the middle cannot be decided in a byte
    stem, frame, expected = stem_case(rng, channels=3, planes=8, kind="thermo", out_type=OUT_BITS, filter_p=0.0,
                                      cout=32, fh=5, fw=5, sh=2, sw=2, dh=1, dw=1, same=True, pad_value=1,
                                      in_h=9, in_w=9)
    assert stem[1]["lv_compare"][26] == 0 and "sums up to 600" in stem[3][0]


def test_stem_thresholds_at_the_extremes(lib):
    """Thresholds at and beyond the accumulator range (LCE's +-inf, clamped by
    lowering): bits that are constant 0 or 1 in every lane of the comparison."""
    rng = np.random.default_rng(9)
    for out_c in (5, 32, 40):
        for t in (-1, 0, 1, 180, 383, 384, 385, 1 << 30):
            geometry = dict(cout=out_c, fh=4, fw=4, sh=4, sw=4, dh=1, dw=1, same=False, pad_value=1,
                            in_h=8, in_w=12, lanes=False)
            lut, cin = stem_lut(rng, 3, 8, "thermo", True)
            params, arrays, scratch, _, filt_bits = bconv_case(rng, cin=cin, groups=1, out_type=OUT_BITS,
                                                               **geometry)
            arrays["thresholds"] = np.full(out_c, t, np.int32)
            arrays["thresholds"][::3] = rng.integers(150, 230, size=len(arrays["thresholds"][::3]))
            frame = rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
            stem = lower.stem_params(3, lut, params, arrays, scratch)
            expected = bconv_numpy(params, arrays, unpack(stem_encode(frame, lut), cin), filt_bits)
            for fn in ("glt_stem_ref", "glt_stem_opt"):
                assert run_stem(lib, fn, stem, frame).tobytes() == expected.tobytes(), (fn, out_c, t)


def test_optimized_kernels_need_no_reference_arrays(lib):
    """KernelCall.reference_arrays (read only by the reference twin) may be NULL in
    an optimized build: the bit-sliced bconv and the levels stem run without them."""
    from deploy.lower import KernelCall  # noqa: F401  (documents where the field lives)

    rng = np.random.default_rng(41)
    for case in range(30):
        cfg = random_bconv_config(rng)
        cfg.update(out_type=OUT_BITS, pad_value=1, lanes=True)
        params, arrays, scratch, x, filt_bits = bconv_case(rng, **cfg)
        xp = packed_input(x, cfg["cin"], cfg["groups"])
        ref = run_bconv(lib, "glt_bconv2d_ref", params, arrays, scratch, xp)
        slim = {k: v for k, v in arrays.items() if k not in ("filter", "thresholds")}
        assert run_bconv(lib, "glt_bconv2d_opt", params, slim, scratch, xp).tobytes() == ref.tobytes()
    for case in range(20):
        cfg = random_stem_config(rng)
        cfg.update(out_type=OUT_BITS, kind="thermo")
        stem, frame, expected = stem_case(rng, **cfg)
        params, arrays, scratch, notes = stem
        assert params["lv_groups"] >= 1
        slim = {k: v for k, v in arrays.items() if k not in ("lut", "filter", "thresholds")}
        assert run_stem(lib, "glt_stem_opt", (params, slim, scratch, notes), frame).tobytes() == expected.tobytes()


# ------------------------------------------------------------------ binary max pool


def test_bmaxpool_opt_equals_ref_equals_numpy(lib):
    rng = np.random.default_rng(7)
    for case in range(150):
        in_h, in_w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        nw = int(rng.integers(1, 5))
        fh, fw = int(rng.integers(1, min(in_h, 4) + 1)), int(rng.integers(1, min(in_w, 4) + 1))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        same = bool(rng.random() < 0.5)
        out_h, pt = same_valid(in_h, fh, sh, 1, same)
        out_w, pl = same_valid(in_w, fw, sw, 1, same)
        x = rng.integers(0, 2**32, size=(in_h, in_w, nw), dtype=np.uint32)
        params = dict(in_h=in_h, in_w=in_w, words=nw, out_h=out_h, out_w=out_w, filter_h=fh,
                      filter_w=fw, stride_h=sh, stride_w=sw, pad_top=pt, pad_left=pl)
        expected = np.zeros((out_h, out_w, nw), np.uint32)
        for oy in range(out_h):
            for ox in range(out_w):
                y0, x0 = oy * sh - pt, ox * sw - pl
                win = x[max(y0, 0):y0 + fh, max(x0, 0):x0 + fw].reshape(-1, nw)
                expected[oy, ox] = np.bitwise_and.reduce(win, axis=0)
        for fn in ("glt_bmaxpool_ref", "glt_bmaxpool_opt"):
            out = np.zeros_like(expected)
            hostlib.call(lib, fn, hostlib.Params("glt_bmaxpool_params", params, {}), x, out)
            assert np.array_equal(out, expected), f"{fn} case {case}"


# ------------------------------------------------------------------ word gather (shuffled blocks)


@pytest.mark.parametrize("pixels, words", [(1, 2), (9, 16), (36, 8), (5, 9)])
def test_word_gather_equals_numpy(lib, pixels, words):
    rng = np.random.default_rng(pixels * words)
    x = rng.integers(0, 2**32, size=(pixels, words), dtype=np.uint32)
    order = rng.permutation(words).astype(np.uint16)
    out = np.zeros_like(x)
    params = hostlib.Params("glt_word_gather_params", dict(pixels=pixels, words=words), {"order": order})
    hostlib.call(lib, "glt_word_gather_ref", params, x, out)
    np.testing.assert_array_equal(out, x[:, order])


# ------------------------------------------------------------------ quantize / dequantize


@pytest.mark.parametrize("cols", [1, 5, 31, 32, 33, 64, 65, 100])
def test_quantize_dequantize(lib, cols):
    rng = np.random.default_rng(cols)
    rows = 3
    xf = rng.normal(size=(rows, cols)).astype(np.float32)
    specials = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45], np.float32)
    xf.reshape(-1)[: min(len(specials), xf.size)] = specials[: xf.size]
    xi = rng.integers(-128, 128, size=(rows, cols)).astype(np.int8)
    xb = (rng.random((rows, cols)) < 0.5).astype(np.uint8) * rng.integers(1, 256, size=(rows, cols)).astype(np.uint8)
    zp = int(rng.integers(-128, 128))
    cases = [
        ("float", xf, 0, bitpack(xf < 0)),
        ("int8", xi, zp, bitpack(xi.astype(np.int32) < zp)),
        ("bool", xb, 0, bitpack(xb == 0)),
    ]
    for kind, x, z, expected in cases:
        for variant in ("ref", "opt"):
            out = np.full((rows, words(cols)), 0xFFFFFFFF, np.uint32)
            p = hostlib.Params("glt_quantize_params", dict(rows=rows, cols=cols, zero_point=z), {})
            hostlib.call(lib, f"glt_quantize_{kind}_{variant}", p, x, out)
            assert np.array_equal(out, expected), f"quantize {kind} {variant}"
    packed = rng.integers(0, 2**32, size=(rows, words(cols)), dtype=np.uint32)
    packed = bitpack(unpack(packed, cols))  # unused bits 0
    bits = unpack(packed, cols)
    for variant in ("ref", "opt"):
        p = hostlib.Params("glt_dequantize_params",
                           dict(rows=rows, cols=cols, zero_bit_value=1, one_bit_value=-1), {})
        out = np.zeros((rows, cols), np.float32)
        hostlib.call(lib, f"glt_dequantize_float_{variant}", p, packed, out)
        assert np.array_equal(out, np.where(bits, -1.0, 1.0).astype(np.float32))
        p = hostlib.Params("glt_dequantize_params",
                           dict(rows=rows, cols=cols, zero_bit_value=100, one_bit_value=-90), {})
        out8 = np.zeros((rows, cols), np.int8)
        hostlib.call(lib, f"glt_dequantize_int8_{variant}", p, packed, out8)
        assert np.array_equal(out8, np.where(bits, -90, 100).astype(np.int8))


# ------------------------------------------------------------------ front end


@pytest.mark.parametrize("channels,n_words", [(3, 1), (3, 2), (1, 1), (4, 3), (2, 1)])
def test_frontend_opt_equals_ref_equals_numpy(lib, channels, n_words):
    rng = np.random.default_rng(channels * 10 + n_words)
    pixels = 37
    lut = rng.integers(0, 2**32, size=(channels, 256, n_words), dtype=np.uint32)
    frame = rng.integers(0, 256, size=(pixels, channels), dtype=np.uint8)
    expected = np.zeros((pixels, n_words), np.uint32)
    for c in range(channels):
        expected |= lut[c][frame[:, c]]
    p = hostlib.Params("glt_frontend_params", dict(pixels=pixels, channels=channels, words=n_words),
                       {"lut": lut.reshape(-1)})
    for fn in ("glt_frontend_ref", "glt_frontend_opt"):
        out = np.zeros_like(expected)
        hostlib.call(lib, fn, p, frame, out)
        assert np.array_equal(out, expected), fn


# ------------------------------------------------------------------ float head ops


def test_mean_matches_sequential_float_sum(lib):
    rng = np.random.default_rng(3)
    h, w, c = 5, 7, 9
    x = rng.normal(0, 100, size=(h * w, c)).astype(np.float32)
    expected = np.zeros(c, np.float32)
    for px in range(h * w):
        expected = (expected + x[px]).astype(np.float32)
    expected = (expected / np.float32(h * w)).astype(np.float32)
    out = np.zeros(c, np.float32)
    hostlib.call(lib, "glt_mean_ref", hostlib.Params("glt_mean_params", dict(pixels=h * w, channels=c), {}), x, out)
    assert out.tobytes() == expected.tobytes()


def test_avgpool_clipped_windows_and_clamp(lib):
    rng = np.random.default_rng(4)
    in_h, in_w, c, fh, fw, s = 5, 6, 3, 3, 2, 2
    out_h, pt = same_valid(in_h, fh, s, 1, True)
    out_w, pl = same_valid(in_w, fw, s, 1, True)
    x = rng.normal(0, 5, size=(in_h, in_w, c)).astype(np.float32)
    expected = np.zeros((out_h, out_w, c), np.float32)
    for oy in range(out_h):
        for ox in range(out_w):
            y0, x0 = oy * s - pt, ox * s - pl
            win = x[max(y0, 0):y0 + fh, max(x0, 0):x0 + fw].reshape(-1, c)
            total = np.zeros(c, np.float32)
            for v in win:
                total = (total + v).astype(np.float32)
            expected[oy, ox] = np.clip(total / np.float32(len(win)), 0.0, 6.0)
    params = dict(in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w, filter_h=fh, filter_w=fw,
                  stride_h=s, stride_w=s, pad_top=pt, pad_left=pl, act_min=0.0, act_max=6.0)
    out = np.zeros_like(expected)
    hostlib.call(lib, "glt_avgpool_ref", hostlib.Params("glt_avgpool_params", params, {}), x, out)
    assert out.tobytes() == expected.tobytes()


def test_fully_connected_binary_weights_exact(lib):
    rng = np.random.default_rng(5)
    b, n_in, n_out = 2, 70, 9
    x = rng.choice([-1.0, 1.0], size=(b, n_in)).astype(np.float32)
    wts = rng.choice([-1.0, 1.0], size=(n_out, n_in)).astype(np.float32)
    bias = rng.normal(size=n_out).astype(np.float32)
    expected = (x @ wts.T).astype(np.float32) + bias  # integer sums are exact
    params = dict(batches=b, in_features=n_in, out_features=n_out, act_min=-3e38, act_max=3e38)
    out = np.zeros((b, n_out), np.float32)
    hostlib.call(lib, "glt_fully_connected_ref",
                 hostlib.Params("glt_fully_connected_params", params, {"weights": wts.reshape(-1), "bias": bias}),
                 x, out)
    assert out.tobytes() == expected.astype(np.float32).tobytes()


def test_softmax_and_argmax(lib):
    rng = np.random.default_rng(6)
    rows, cols = 4, 11
    x = rng.normal(0, 8, size=(rows, cols)).astype(np.float32)
    x[1, 3] = x[1, 7] = x[1].max() + 1  # tie: the first maximum wins
    e = np.exp((x - x.max(axis=1, keepdims=True)).astype(np.float64))
    expected = e / e.sum(axis=1, keepdims=True)
    out = np.zeros_like(x)
    hostlib.call(lib, "glt_softmax_ref",
                 hostlib.Params("glt_softmax_params", dict(rows=rows, cols=cols, beta=1.0), {}), x, out)
    np.testing.assert_allclose(out, expected, rtol=2e-6, atol=1e-30)
    for int64 in (0, 1):
        idx = np.zeros(rows, np.int64 if int64 else np.int32)
        hostlib.call(lib, "glt_argmax_ref",
                     hostlib.Params("glt_argmax_params", dict(rows=rows, cols=cols, output_int64=int64), {}),
                     x, idx)
        assert list(idx) == list(np.argmax(x, axis=1))
        assert idx[1] == 3


# ------------------------------------------------------------------ compilers


ARM_TARGETS = [
    ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"],
    ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
    ["-mcpu=cortex-m33", "-mthumb"],
    ["-mcpu=cortex-m0plus", "-mthumb"],
]


@pytest.mark.parametrize("target", ARM_TARGETS, ids=lambda t: t[0][6:] + ("-" + t[-1][7:] if "fpu" in t[-1] else ""))
@pytest.mark.parametrize("opt", ["-O2", "-Os"])
def test_runtime_compiles_warning_free_for_cortex_m(tmp_path, target, opt):
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed (Debian package gcc-arm-none-eabi)")
    for src in sorted(hostlib.RUNTIME.glob("*.c")):
        subprocess.run(
            ["arm-none-eabi-gcc", *target, opt, "-std=c99", "-Wall", "-Wextra", "-Werror", "-c", str(src),
             "-o", str(tmp_path / (src.stem + ".o"))],
            check=True, capture_output=True, text=True)


def test_runtime_uses_no_libc_beyond_string_h():
    allowed = {"stdint.h", "string.h", "arm_acle.h", "stddef.h"}
    for src in list(hostlib.RUNTIME.glob("*.c")) + list(hostlib.RUNTIME.glob("*.h")):
        for line in src.read_text().splitlines():
            if line.startswith("#include <"):
                header = line.split("<")[1].split(">")[0]
                assert header in allowed, f"{src.name} includes <{header}>"


# ------------------------------------------------------------------ Cortex-M7 (QEMU)

QEMU_BOARDS = {
    "mps2-an500": ["-mcpu=cortex-m7", "-mfpu=fpv5-d16"],
    "mps2-an386": ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16"],
}
M_FLAGS = ["-mthumb", "-mfloat-abi=hard", "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
           "-ffunction-sections"]
MCU_SOURCES = ["glt_bconv2d.c", "glt_bconv2d_opt.c", "glt_bmaxpool.c", "glt_bmaxpool_opt.c",
              "glt_frontend.c", "glt_frontend_opt.c", "glt_quantize.c", "glt_quantize_opt.c",
              "glt_shortcut.c", "glt_shortcut_opt.c", "glt_stem.c", "glt_stem_opt.c"]


def _c_array(name: str, a: np.ndarray) -> str:
    a = np.asarray(a).reshape(-1)
    if a.dtype == np.float32:
        items = [f"{float(v).hex()}f" for v in a]
    else:
        items = [str(int(v)) + ("u" if a.dtype.kind == "u" else "") for v in a]
    body = ",\n".join(", ".join(items[i:i + 16]) for i in range(0, len(items), 16))
    return f"static const {lower.C_TYPES[a.dtype]} {name}[{max(len(items), 1)}] = {{\n{body or '0'}\n}};\n"


def stem_cases_header(cases) -> str:
    """C source of fused stem cases for mcu_selftest.c: params (tables from
    lowering), frames and the expected outputs (numpy model of LCE)."""
    out = ['/* Generated by tests/test_kernels.py: fused stem cases. */\n']
    scratch = max(max(stem[2] for stem, _, _ in cases), 4)
    out.append(f"static uint32_t stem_scratch[{(scratch + 3) // 4}];\n")
    inits = []
    for i, ((params, arrays, _, _), frame, expected) in enumerate(cases):
        for name, a in arrays.items():
            out.append(_c_array(f"stem{i}_{name}", a))
        out.append(_c_array(f"stem{i}_frame", frame))
        out.append(_c_array(f"stem{i}_expected", np.frombuffer(expected.tobytes(), np.uint8)))
        fields = [f".{k} = {int(v)}" for k, v in params.items()]
        fields += [f".{name} = stem{i}_{name}" for name in arrays] + [".scratch = stem_scratch"]
        inits.append("    {" + ", ".join(fields) + "},\n")
    n = len(cases)
    out.append(f"#define STEM_CASES {n}\n")
    out.append("static const glt_stem_params stem_params_list[STEM_CASES] = {\n" + "".join(inits) + "};\n")
    out.append("static const uint8_t *const stem_frames[STEM_CASES] = {"
               + ", ".join(f"stem{i}_frame" for i in range(n)) + "};\n")
    out.append("static const uint8_t *const stem_expected[STEM_CASES] = {"
               + ", ".join(f"stem{i}_expected" for i in range(n)) + "};\n")
    out.append("static const uint32_t stem_expected_bytes[STEM_CASES] = {"
               + ", ".join(f"{e.nbytes}u" for _, _, e in cases) + "};\n")
    p0 = cases[0][0][0]
    macs = p0["out_h"] * p0["out_w"] * p0["out_c"] * p0["filter_h"] * p0["filter_w"] * 24
    out.append(f"#define STEM_CASE0_MACS {macs}u\n")
    return "".join(out)


def mcu_stem_cases():
    """The default model's stem (96x96 RGB, 8-level thermometer, 4x4 stride 4, 32
    outputs) first, then shapes for every path of glt_stem_opt."""
    rng = np.random.default_rng(31)
    fixed = [
        dict(channels=3, planes=8, kind="thermo", out_type=OUT_BITS, cout=32, fh=4, fw=4, sh=4, sw=4,
             dh=1, dw=1, same=True, pad_value=1, in_h=96, in_w=96),  # levels, 2 taps per step
        dict(channels=3, planes=8, kind="thermo", out_type=OUT_BITS, cout=32, fh=3, fw=3, sh=1, sw=1,
             dh=1, dw=1, same=True, pad_value=1, in_h=9, in_w=7),  # 1 tap per step, padded borders
        dict(channels=3, planes=10, kind="thermo", out_type=OUT_BITS, cout=40, fh=2, fw=2, sh=2, sw=2,
             dh=1, dw=1, same=True, pad_value=0, in_h=9, in_w=9, channel_major=False),  # 2 groups
        dict(channels=3, planes=8, kind="thermo", out_type=OUT_BITS, filter_p=0.0, cout=32, fh=4, fw=4,
             sh=4, sw=4, dh=1, dw=1, same=True, pad_value=1, in_h=16, in_w=16, extreme=True),  # saturation
        dict(channels=3, planes=8, kind="thermo", out_type=OUT_BITS, filter_p=0.0, cout=32, fh=5, fw=5,
             sh=2, sw=2, dh=1, dw=1, same=True, pad_value=1, in_h=9, in_w=9, extreme=True),  # segments
        dict(channels=4, planes=5, kind="patterns", out_type=OUT_BITS, cout=33, fh=3, fw=2, sh=2, sw=1,
             dh=1, dw=2, same=True, pad_value=1, in_h=8, in_w=9),
        dict(channels=3, planes=8, kind="nbc", out_type=OUT_BITS, cout=32, fh=4, fw=4, sh=4, sw=4,
             dh=1, dw=1, same=True, pad_value=1, in_h=16, in_w=16, lanes=True),  # words, lanes
        dict(channels=3, planes=8, kind="thermo", out_type=OUT_FLOAT, cout=9, fh=3, fw=3, sh=2, sw=2,
             dh=1, dw=1, same=True, pad_value=0, in_h=8, in_w=8),  # words, SWAR
    ]
    cases = [stem_case(rng, **cfg) for cfg in fixed]
    while len(cases) < 24:
        cfg = random_stem_config(rng)
        cfg["in_h"], cfg["in_w"] = min(cfg["in_h"], 9), min(cfg["in_w"], 9)
        cases.append(stem_case(rng, **cfg))
    assert cases[0][0][0]["lv_groups"] == 1 and cases[6][0][0]["lv_groups"] == 0
    # case 3: sums beyond a byte, one saturating pass on DSP cores (complemented lanes)
    assert cases[3][0][0]["lv_segment_taps"] < 16 and cases[3][0][1]["lv_compare"][26] == 1
    assert cases[3][0][1]["lv_compare"][25] != 0
    # case 4: sums up to 600, widened segments on every core
    assert cases[4][0][0]["lv_segment_taps"] < 25 and cases[4][0][1]["lv_compare"][26] == 0
    return cases


def build_and_run_mcu_selftest(tmp_path, machine, *defines):
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian: gcc-arm-none-eabi, qemu-system-arm)")
    kernels = Path(__file__).resolve().parent / "kernels"  # the MCU self-test sources
    elf = tmp_path / "selftest.elf"
    (tmp_path / "stem_cases.h").write_text(stem_cases_header(mcu_stem_cases()))
    subprocess.run(
        ["arm-none-eabi-gcc", *QEMU_BOARDS[machine], *M_FLAGS, f"-I{hostlib.RUNTIME}", f"-I{tmp_path}",
         "-DGLT_STEM_CASES", *defines, str(kernels / "mcu_selftest.c"),
         str(kernels / "mcu_startup.c"), *(str(hostlib.RUNTIME / s) for s in MCU_SOURCES),
         "--specs=nano.specs", "-nostartfiles", "-T", str(kernels / "mps2.ld"), "-Wl,--gc-sections",
         "-lc", "-lgcc", "-o", str(elf)],
        check=True, capture_output=True, text=True)
    run = subprocess.run(
        ["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
         "-icount", "shift=0", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
        capture_output=True, text=True, timeout=300)
    return run, (run.stdout + run.stderr).splitlines()  # semihosting writes to QEMU's stderr


@pytest.mark.qemu
def test_forced_simd_failure_is_caught_and_stems_stay_exact(tmp_path):
    """-DGLT_SIMULATE_BROKEN_SIMD=1 makes the stem's SIMD comparison answer as if
    its GE flags were inverted (Renode 1.15.3's USUB8): the stems are then wrong
    until glt_stem_selfcheck names the failure, and exact after it (portable path)."""
    run, lines = build_and_run_mcu_selftest(tmp_path, "mps2-an500", "-DGLT_SIMULATE_BROKEN_SIMD=1")
    assert run.returncode == 0 and "RESULT PASS" in lines, run.stdout + run.stderr
    unchecked = next(int(l.split()[1]) for l in lines if l.startswith("stem_unchecked "))
    assert unchecked > 0, lines                      # the simulated breakage does break the stem
    assert "stem_selfcheck stem SIMD: UADD8+SEL comparison (GE flags)" in lines
    stem = next(l.split() for l in lines if l.startswith("check stem "))
    assert stem[3] == "ok" and stem[4] == "0", stem


@pytest.mark.qemu
@pytest.mark.parametrize("machine", sorted(QEMU_BOARDS))
def test_optimized_kernels_on_cortex_m(tmp_path, machine):
    """tests/kernels/mcu_selftest.c on QEMU mps2-an500 (Cortex-M7) and mps2-an386
    (Cortex-M4), with the firmware's build flags: the inline-assembly paths of
    the optimized kernels equal the references on randomized shapes, and the
    instruction counts of representative binary convolutions (SysTick under
    -icount shift=0, calibrated) are printed as binary MACs per instruction."""
    run, lines = build_and_run_mcu_selftest(tmp_path, machine)
    assert run.returncode == 0 and "RESULT PASS" in lines, run.stdout + run.stderr
    assert "stem_unchecked 0" in lines and "stem_selfcheck ok" in lines
    checks = [l.split() for l in lines if l.startswith("check ")]
    assert len(checks) == 6 and all(c[3] == "ok" and c[4] == "0" for c in checks), checks
    assert checks[1][1:3] == ["bconv2d_whole", "120"] and checks[4][1:3] == ["stem", "24"]
    assert checks[5][1:3] == ["bconv2d_shortcut", "150"]
    (calib,) = [l.split() for l in lines if l.startswith("calib ")]
    instructions_per_tick = int(calib[2]) / int(calib[1])
    assert 39 <= instructions_per_tick <= 41  # SysTick at 25 MHz, 1 instruction per ns
    print(f"\nbinary MACs per instruction on QEMU {machine}:")
    for _, name, macs, t_opt, t_ref, same in (l.split() for l in lines if l.startswith("bench ")):
        assert same == "same", name
        print(f"  {name:28s} optimized {int(macs) / (int(t_opt) * instructions_per_tick):5.2f}"
              f"   reference {int(macs) / (int(t_ref) * instructions_per_tick):5.2f}")
