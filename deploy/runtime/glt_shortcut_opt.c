/* Optimized binary shortcut block: glt_bconv2d_opt at each output pixel, with
 * the thresholds (or lane planes) that pixel's input bits choose. */
#include "glt_shortcut.h"

#define LANE_THRESHOLD_WORDS 33 /* see glt_bconv2d.h */

void glt_shortcut_opt(const glt_shortcut_params *p, const uint32_t *input, void *output)
{
    const glt_bconv2d_params *c = &p->conv;
    const int32_t n = c->filter_h * c->filter_w * c->group_words;
    const int lanes = c->lane_filter != 0 && p->lane_shortcut_thresholds != 0 && !c->zero_padding;
    /* glt_bconv2d_opt's scratch first (glt_bconv2d.h), the chosen thresholds after it */
    const int32_t base = lanes ? n + 1 + (c->lane_groups > 1 ? 8 * n + 8 : 0)
                               : (c->filter_h * c->filter_w > 1 ? n : 0);
    uint32_t *const chosen = p->scratch + base;
    const int32_t out_words = (c->out_c + 31) / 32;
    const int32_t tables = c->groups * c->lane_groups;
    glt_bconv2d_params q = *c;
    int32_t oy, ox, i, w;

    q.out_h = 1;
    q.out_w = 1;
    q.scratch = p->scratch;
    if (lanes) {
        q.lane_thresholds = chosen;
    } else {
        q.thresholds = (const int32_t *)chosen;
        q.lane_filter = 0; /* lanes without their shortcut planes: per channel */
    }
    for (oy = 0; oy < c->out_h; ++oy) {
        for (ox = 0; ox < c->out_w; ++ox) {
            const uint32_t *own = input + (oy * c->in_w + ox) * c->in_words; /* the input pixel */
            const uint32_t *view = input;
            if (n == c->group_words) { /* 1x1: the pixel alone (the kernel reads it unpadded) */
                q.in_h = 1;
                q.in_w = 1;
                q.pad_top = 0;
                q.pad_left = 0;
                view = own;
            } else { /* stride 1: shifting the padding places the window */
                q.pad_top = c->pad_top - oy;
                q.pad_left = c->pad_left - ox;
            }
            if (lanes) {
                /* table i holds the lanes of output word i (whole lane groups per
                   group): bit j of input word i chooses lane j's planes */
                for (i = 0; i < tables; ++i) {
                    const uint32_t *a = c->lane_thresholds + i * LANE_THRESHOLD_WORDS;
                    const uint32_t *b = p->lane_shortcut_thresholds + i * LANE_THRESHOLD_WORDS;
                    const uint32_t m = own[i];
                    uint32_t *dst = chosen + i * LANE_THRESHOLD_WORDS;
                    for (w = 0; w < LANE_THRESHOLD_WORDS; ++w) {
                        dst[w] = a[w] ^ ((a[w] ^ b[w]) & m);
                    }
                }
            } else {
                int32_t *thr = (int32_t *)chosen;
                for (i = 0; i < c->out_c; ++i) {
                    thr[i] = ((own[i >> 5] >> (i & 31)) & 1u) ? p->shortcut_thresholds[i] : c->thresholds[i];
                }
            }
            glt_bconv2d_opt(&q, view, (uint32_t *)output + (oy * c->out_w + ox) * out_words);
        }
    }
}
