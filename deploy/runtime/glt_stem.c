/* Reference fused stem: the front end and LCE's BConv2DReference, one tap at a time. */
#include "glt_bconv2d.h"
#include "glt_stem.h"

/* Word w of the encoded pixel (front end semantics, glt_frontend.h). */
static uint32_t encoded_word(const glt_stem_params *p, const uint8_t *pixel, int32_t w)
{
    uint32_t word = 0;
    int32_t c;
    for (c = 0; c < p->channels; ++c) {
        word |= p->lut[(c * 256 + pixel[c]) * p->words + w];
    }
    return word;
}

void glt_stem_ref(const glt_stem_params *p, const uint8_t *frame, void *output)
{
    const int32_t out_words = (p->out_c + 31) / 32;
    int32_t oy, ox, oc, ky, kx, w;

    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t pixel = oy * p->out_w + ox;
            for (oc = 0; oc < p->out_c; ++oc) {
                int32_t acc = 0;
                for (ky = 0; ky < p->filter_h; ++ky) {
                    for (kx = 0; kx < p->filter_w; ++kx) {
                        const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        const int inside = iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w;
                        const uint32_t *f =
                            &p->filter[((oc * p->filter_h + ky) * p->filter_w + kx) * p->words];
                        if (!inside && p->zero_padding) {
                            acc += p->binary_zero_point;
                            continue;
                        }
                        for (w = 0; w < p->words; ++w) {
                            uint32_t in_word = 0; /* outside: one-padding, all +1 */
                            if (inside) {
                                in_word = encoded_word(p, frame + (iy * p->in_w + ix) * p->channels, w);
                            }
                            acc += glt_popcount32(in_word ^ f[w]);
                        }
                    }
                }
                if (p->output_type == GLT_OUT_BITS) {
                    uint32_t *word = (uint32_t *)output + pixel * out_words + oc / 32;
                    if (oc % 32 == 0) {
                        *word = 0;
                    }
                    if (acc > p->thresholds[oc]) {
                        *word |= (uint32_t)1 << (oc % 32);
                    }
                } else {
                    glt_bconv_write_dense(p->output_type, p->clamp_min, p->clamp_max,
                                          p->multiplier[oc], p->bias[oc], acc, output,
                                          pixel * p->out_c + oc);
                }
            }
        }
    }
}
