/* Optimized binary max pool: the window is clipped once per output pixel and
 * whole pixels (all words) are ANDed into the output, two words at a time. */
#include "glt_bmaxpool.h"

void glt_bmaxpool_opt(const glt_bmaxpool_params *p, const uint32_t *input, uint32_t *output)
{
    const int32_t words = p->words;
    const int32_t row_words = p->in_w * words;
    int32_t oy, ox, y, x, c;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t y0 = iy0 < 0 ? 0 : iy0;
        const int32_t y1 = iy0 + p->filter_h > p->in_h ? p->in_h : iy0 + p->filter_h;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t x0 = ix0 < 0 ? 0 : ix0;
            const int32_t x1 = ix0 + p->filter_w > p->in_w ? p->in_w : ix0 + p->filter_w;
            uint32_t *out = output + (oy * p->out_w + ox) * words;
            for (c = 0; c < words; ++c) {
                out[c] = 0xFFFFFFFFu;
            }
            for (y = y0; y < y1; ++y) {
                const uint32_t *row = input + y * row_words;
                for (x = x0; x < x1; ++x) {
                    const uint32_t *in = row + x * words;
                    for (c = 0; c + 1 < words; c += 2) {
                        out[c] &= in[c];
                        out[c + 1] &= in[c + 1];
                    }
                    if (c < words) {
                        out[c] &= in[c];
                    }
                }
            }
        }
    }
}
