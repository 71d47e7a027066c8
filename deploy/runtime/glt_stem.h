/*
 * The first binary convolution fused with the input front end: the raw uint8 HWC
 * frame goes in, the convolution's output comes out, and the encoded frame (the
 * front end's bit-packed planes, 36 KB for 96x96 pixels) never exists in RAM.
 *
 * Semantics = glt_frontend followed by glt_bconv2d (LceBconv2d, groups 1):
 *   word(pixel)[w] = OR over raw channels c of lut[c][frame[pixel][c]][w]
 *   acc(oy, ox, oc) = sum over taps of popcount(word ^ filter[oc][tap]) (or
 *                     binary_zero_point for an outside tap with zero_padding; an
 *                     outside tap reads 0 words otherwise), then LCE's output
 *                     transform (see glt_bconv2d.h).
 *
 * The optimized kernel has two algorithms:
 *
 * 1. Levels (bits output, lv_table != NULL). When each raw channel's planes take
 *    few distinct patterns (a thermometer code: K + 1 of them), the popcount of a
 *    tap restricted to the planes of channel c is a function of (tap, c, pattern,
 *    oc), tabulated by deploy/lower/. lv_offset[c][v] locates the row of value
 *    v's pattern; a row holds that count for 32 output channels as 8-bit lanes
 *    (lane byte i of word w = output channel 32 * group + 8 * i + w), minus the
 *    row's per-lane minimum over patterns, so a lane's sum stays small. An output
 *    pixel costs one row addition (8 words) per (tap, channel) for 32 channels, and
 *    a SIMD comparison with per-lane thresholds yields the packed output word.
 *    When a lane's sum could exceed 255 (lowering computes the bound from the
 *    table): with the DSP extension, saturating byte additions keep the
 *    comparison exact if its threshold is at most 255 (lanes whose threshold is
 *    larger are complemented: they sum bound - sum, and their bit is inverted);
 *    otherwise the 8-bit lanes are widened to 16 bits every lv_segment_taps taps.
 *
 * 2. Words (otherwise, e.g. a natural binary code with 256 patterns per channel):
 *    per output row, the front end encodes only the filter_h input rows the row
 *    reads into scratch, and glt_bconv2d_opt convolves that strip.
 */
#ifndef GLT_STEM_H
#define GLT_STEM_H

#include <stdint.h>

#include "glt_common.h"

#define GLT_STEM_LANES 32          /* output channels per level row (8 words of 4 bytes) */
#define GLT_STEM_COMPARE_WORDS 27  /* per group: 8 byte thresholds, keep mask, 16 halfword
                                      constants, invert mask, saturate flag */

typedef struct {
    int32_t in_h, in_w, channels;  /* raw uint8 frame */
    int32_t words;                 /* packed words per encoded pixel */
    int32_t out_h, out_w, out_c;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w, dilation_h, dilation_w;
    int32_t pad_top, pad_left;     /* TF SAME padding before the input, 0 for VALID */
    int32_t zero_padding;          /* 1: SAME with pad value 0 (LCE zero-padding correction) */
    int32_t binary_zero_point;     /* channels_in / 2 */
    int32_t output_type;           /* GLT_OUT_FLOAT, GLT_OUT_INT8 or GLT_OUT_BITS */
    int32_t clamp_min, clamp_max;  /* float/int8 output: clamp of 2*acc */
    int32_t lane_groups;           /* words path: glt_bconv2d's lane tables (0: none) */
    int32_t lane_planes;
    int32_t lv_groups;             /* levels path: ceil(out_c / 32) */
    int32_t lv_rows;               /* level rows per tap: patterns of every channel + 1 (outside) */
    int32_t lv_segment_taps;       /* taps summed in 8-bit lanes before widening (>= taps: never) */
    const uint32_t *lut;           /* front end tables [channels][256][words] */
    const uint32_t *filter;        /* [out_c][filter_h][filter_w][words] */
    const float *multiplier;       /* [out_c], float/int8 output, else NULL */
    const float *bias;             /* [out_c], float/int8 output, else NULL */
    const int32_t *thresholds;     /* [out_c], bits output: within [-1, 2^30] */
    const uint16_t *tap_popcount;  /* words path with zero_padding (see glt_bconv2d.h) */
    const uint32_t *lane_filter;   /* words path, optional (see glt_bconv2d.h) */
    const uint32_t *lane_thresholds;
    const uint16_t *lv_offset;     /* [channels][256]: byte offset in a group's table of the
                                      row of value v's pattern (tap 0) */
    const uint32_t *lv_table;      /* [lv_groups][lv_rows][taps][8] (tap-minor: the next tap
                                      of a row is 32 bytes further); the last row holds the
                                      outside value of each tap (padding), read with channel 0
                                      only */
    const uint32_t *lv_compare;    /* [lv_groups][GLT_STEM_COMPARE_WORDS]: words 0..7: per lane
                                      byte, 256 - u mod 256 (bit = 8-bit sum >= u, which for
                                      1 <= u <= 255 is the byte addition's carry-out); word 8:
                                      lanes whose bit is not constant (others are 0, or 1 when
                                      inverted); words 9..24: halfword lanes 0x8000 - u (u =
                                      least 16-bit sum whose bit is 1), in the order (w, bytes
                                      0 and 2), (w, bytes 1 and 3) for w = 0..7; word 25: lanes
                                      whose bit is inverted after the comparison (complemented
                                      sums; constant-1 lanes); word 26: 1 when saturated byte
                                      sums decide every lane (words 0..7) */
    uint32_t *scratch;             /* words path: filter_h * in_w * words words of strip, then
                                      glt_bconv2d_opt's scratch */
} glt_stem_params;

/* Readable reference: encode each tap's pixel with the front end tables, then
 * LCE's binary convolution, transcribed directly. */
void glt_stem_ref(const glt_stem_params *p, const uint8_t *frame, void *output);

/* Optimized: level tables when present, else front end strips + glt_bconv2d_opt. */
void glt_stem_opt(const glt_stem_params *p, const uint8_t *frame, void *output);

/* Boot-time check of the SIMD instructions glt_stem_opt's levels algorithm uses
 * (DSP cores: UQADD8, UADD8 + SEL) on known vectors. NULL when they answer right;
 * otherwise what failed, and glt_stem_opt uses a portable path from then on
 * (no DSP instruction; slower, still bit-exact). Call it before glt_stem_opt. */
const char *glt_stem_selfcheck(void);

#endif /* GLT_STEM_H */
