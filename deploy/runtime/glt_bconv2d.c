/* Reference binary convolution: loops in the order of LCE's BConv2DReference. */
#include "glt_bconv2d.h"

static void write_output(const glt_bconv2d_params *p, void *output, int32_t pixel,
                         int32_t oc, int32_t acc)
{
    if (p->output_type == GLT_OUT_BITS) {
        uint32_t *out = (uint32_t *)output;
        int32_t out_words = (p->out_c + 31) / 32;
        uint32_t *word = &out[pixel * out_words + oc / 32];
        uint32_t bit = (uint32_t)1 << (oc % 32);
        if (oc % 32 == 0) {
            *word = 0;
        }
        if (acc > p->thresholds[oc]) {
            *word |= bit;
        }
    } else {
        glt_bconv_write_dense(p->output_type, p->clamp_min, p->clamp_max, p->multiplier[oc],
                              p->bias[oc], acc, output, pixel * p->out_c + oc);
    }
}

void glt_bconv2d_ref(const glt_bconv2d_params *p, const uint32_t *input, void *output)
{
    const int32_t out_c_per_group = p->out_c / p->groups;
    int32_t oy, ox, oc, ky, kx, w;

    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            for (oc = 0; oc < p->out_c; ++oc) {
                const int32_t group = oc / out_c_per_group;
                const int32_t iy0 = oy * p->stride_h - p->pad_top;
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                int32_t acc = 0;
                for (ky = 0; ky < p->filter_h; ++ky) {
                    for (kx = 0; kx < p->filter_w; ++kx) {
                        const int32_t iy = iy0 + ky * p->dilation_h;
                        const int32_t ix = ix0 + kx * p->dilation_w;
                        const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
                        const uint32_t *f =
                            &p->filter[((oc * p->filter_h + ky) * p->filter_w + kx) * p->group_words];
                        if (!inside && p->zero_padding) {
                            acc += p->binary_zero_point;
                            continue;
                        }
                        for (w = 0; w < p->group_words; ++w) {
                            uint32_t in_word = 0; /* outside: one-padding, all +1 */
                            if (inside) {
                                in_word = input[(iy * p->in_w + ix) * p->in_words +
                                                group * p->group_words + w];
                            }
                            acc += glt_popcount32(in_word ^ f[w]);
                        }
                    }
                }
                write_output(p, output, oy * p->out_w + ox, oc, acc);
            }
        }
    }
}
