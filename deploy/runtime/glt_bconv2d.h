/*
 * Binary 2D convolution with the semantics of Larq Compute Engine's LceBconv2d
 * (reference kernel: larq_compute_engine/core/bconv2d/reference.h).
 *
 * For output pixel (oy, ox) and output channel oc of group g, the accumulator is
 *   acc = sum over filter taps (ky, kx) of
 *           - binary_zero_point                      if the tap is outside the input
 *                                                    and zero_padding is set,
 *           - popcount(in[iy][ix][g] ^ filter[oc][ky][kx])   otherwise, where an
 *             outside tap reads 0 words (one-padding: +1 values).
 * Output (LCE's OutputTransform):
 *   GLT_OUT_BITS : bit oc = acc > thresholds[oc]
 *   GLT_OUT_FLOAT: x = clamp(2*acc, clamp_min, clamp_max);
 *                  y = (float)x * multiplier[oc] + bias[oc]   (two roundings)
 *   GLT_OUT_INT8 : round-half-away(y) saturated to int8
 * multiplier/bias/clamps are LCE's fused values (back-transformation, batch norm,
 * activation, int8 scale) computed by deploy/lower/.
 *
 * The optimized kernel has two algorithms (see glt_bconv2d_opt.c): with bits output
 * and lane tables (lane_filter != NULL: no zero-padding correction), a bit-sliced
 * sum over output-channel lanes; otherwise a per-channel SWAR popcount.
 */
#ifndef GLT_BCONV2D_H
#define GLT_BCONV2D_H

#include <stdint.h>

#include "glt_common.h"

typedef struct {
    int32_t in_h, in_w;            /* input pixels */
    int32_t in_words;              /* packed words per input pixel (all groups) */
    int32_t out_h, out_w;          /* output pixels */
    int32_t out_c;                 /* output channels (unpacked count) */
    int32_t filter_h, filter_w;
    int32_t group_words;           /* packed input words per group = filter dim 3 */
    int32_t groups;
    int32_t stride_h, stride_w;
    int32_t dilation_h, dilation_w;
    int32_t pad_top, pad_left;     /* TF SAME padding before the input, 0 for VALID */
    int32_t zero_padding;          /* 1: SAME with pad value 0 (LCE zero-padding correction) */
    int32_t binary_zero_point;     /* (channels_in / groups) / 2 */
    int32_t output_type;           /* GLT_OUT_FLOAT, GLT_OUT_INT8 or GLT_OUT_BITS */
    int32_t clamp_min, clamp_max;  /* float/int8 output: clamp of 2*acc */
    int32_t lane_groups;           /* ceil(out_c / groups / 32), with lane tables */
    int32_t lane_planes;           /* with lane tables: counter planes (5..16), enough for
                                      the signed values +-(filter_h * filter_w * channels
                                      per group + 1) */
    const uint32_t *filter;        /* [out_c][filter_h][filter_w][group_words] */
    const float *multiplier;       /* [out_c], float/int8 output, else NULL */
    const float *bias;             /* [out_c], float/int8 output, else NULL */
    const int32_t *thresholds;     /* [out_c], bits output, else NULL; within [-1, 2^30]
                                      for the optimized kernel (lowering clamps) */
    const uint16_t *tap_popcount;  /* [out_c][filter_h*filter_w] popcount of each filter
                                      tap; optimized kernel with zero_padding, else NULL */
    const uint32_t *lane_filter;   /* optional, bits output without zero-padding:
                                      [groups][lane_groups][N * 32 + 32] with N = filter_h *
                                      filter_w * group_words; word i < N * 32 has bit j set
                                      when output channel 32*lane_group + j of the group
                                      has weight -1 at window bit i (word i / 32, bit i % 32);
                                      the last 32 words are 0 */
    const uint32_t *lane_thresholds; /* [groups][lane_groups][33]: bit planes (two's
                                      complement, 16 planes) of floor(T / 2), the plane of
                                      T mod 2, then the 16 planes of -floor((T + 2P) / 2),
                                      with T = threshold - P, P = popcount of the channel's
                                      filter */
    uint32_t *scratch;             /* optimized kernel RAM: N words for the window; with lane
                                      tables one more word, and from two lane groups on
                                      16 * N + 16 uint16 column indices after it */
} glt_bconv2d_params;

/* LCE's OutputTransform for float/int8 output: element `index` of `output` from acc. */
GLT_INLINE void glt_bconv_write_dense(int32_t output_type, int32_t clamp_min, int32_t clamp_max,
                                      float multiplier, float bias, int32_t acc, void *output,
                                      int32_t index)
{
    int32_t x = acc * 2;
    float y;
    if (x < clamp_min) {
        x = clamp_min;
    }
    if (x > clamp_max) {
        x = clamp_max;
    }
    y = (float)x * multiplier; /* two roundings, as LCE (no fused multiply-add) */
    y = y + bias;
    if (output_type == GLT_OUT_FLOAT) {
        ((float *)output)[index] = y;
    } else {
        ((int8_t *)output)[index] = glt_round_to_int8(y);
    }
}

/* Readable reference: a direct transcription of the semantics above. */
void glt_bconv2d_ref(const glt_bconv2d_params *p, const uint32_t *input, void *output);

/* Optimized: im2col window + carry-save SWAR popcount (no popcount instruction on
 * Cortex-M). Bit-identical to glt_bconv2d_ref. */
void glt_bconv2d_opt(const glt_bconv2d_params *p, const uint32_t *input, void *output);

/* The optimized kernel's path for float/int8 output whose window is the whole
 * input, in place (one output pixel, one group, no padding, filter = input size;
 * e.g. a classifier): nonzero when it applies to `p`. */
int glt_bconv2d_is_dense(const glt_bconv2d_params *p);

/* That path alone, for callers that know glt_bconv2d_is_dense(p) (the generated
 * schedule calls it directly); glt_bconv2d_opt dispatches to it. */
void glt_bconv2d_dense_opt(const glt_bconv2d_params *p, const uint32_t *input, void *output);

#endif /* GLT_BCONV2D_H */
