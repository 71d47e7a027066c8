/* Reference binary max pool: per output word, AND over the clipped window. */
#include "glt_bmaxpool.h"

void glt_bmaxpool_ref(const glt_bmaxpool_params *p, const uint32_t *input, uint32_t *output)
{
    int32_t oy, ox, c, fy, fx;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            for (c = 0; c < p->words; ++c) {
                uint32_t m = 0xFFFFFFFFu; /* all -1 until a +1 is seen */
                for (fy = 0; fy < p->filter_h; ++fy) {
                    for (fx = 0; fx < p->filter_w; ++fx) {
                        const int32_t iy = iy0 + fy, ix = ix0 + fx;
                        if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
                            m &= input[(iy * p->in_w + ix) * p->words + c];
                        }
                    }
                }
                output[(oy * p->out_w + ox) * p->words + c] = m;
            }
        }
    }
}
