/*
 * A binary shortcut block (larq_glt.models.Block(shortcut=True)): LCE's
 * LceDequantize + LceBconv2d (float output) + ADD + LceQuantize, run as one
 * binary convolution with bits output whose threshold per channel is chosen by
 * the input bit of the same pixel and channel:
 *   bit oc = acc > (input bit oc set ? shortcut_thresholds[oc] : conv.thresholds[oc])
 * with acc the count of glt_bconv2d.h. The conv is stride 1 with SAME one-padding
 * and as many output channels as input channels, whole 32-channel words per group
 * (deploy/lower/lce_ops.py: lower_shortcut computes the thresholds).
 *
 * Both kernels run the plain convolution on a one-pixel view of the layer whose
 * thresholds are the pixel's chosen ones, so plain layers are untouched.
 */
#ifndef GLT_SHORTCUT_H
#define GLT_SHORTCUT_H

#include <stdint.h>

#include "glt_bconv2d.h"

typedef struct {
    glt_bconv2d_params conv;       /* bits output; thresholds (and lane_thresholds) for
                                      input bit 0; its scratch field is unused */
    const int32_t *shortcut_thresholds;       /* [out_c]: for input bit 1 */
    const uint32_t *lane_shortcut_thresholds; /* with conv.lane_filter: the same as
                                      lane planes (see glt_bconv2d.h) */
    uint32_t *scratch;             /* glt_bconv2d_opt's scratch for conv, then one pixel's
                                      chosen thresholds: with lane tables groups *
                                      lane_groups * 33 words, else out_c words (the
                                      reference uses the out_c words alone) */
} glt_shortcut_params;

/* Readable reference: glt_bconv2d_ref, pixel by pixel, on chosen thresholds. */
void glt_shortcut_ref(const glt_shortcut_params *p, const uint32_t *input, void *output);

/* Optimized: glt_bconv2d_opt pixel by pixel, on chosen thresholds (or lane planes,
 * chosen 32 lanes at a time by the input word). Bit-identical to glt_shortcut_ref. */
void glt_shortcut_opt(const glt_shortcut_params *p, const uint32_t *input, void *output);

#endif /* GLT_SHORTCUT_H */
