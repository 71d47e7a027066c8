/* Float average pool; a head op, reference only. */
#include "glt_avgpool.h"

void glt_avgpool_ref(const glt_avgpool_params *p, const float *input, float *output)
{
    int32_t oy, ox, c, y, x;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t y0 = iy0 < 0 ? 0 : iy0;
            const int32_t x0 = ix0 < 0 ? 0 : ix0;
            const int32_t y1 = iy0 + p->filter_h > p->in_h ? p->in_h : iy0 + p->filter_h;
            const int32_t x1 = ix0 + p->filter_w > p->in_w ? p->in_w : ix0 + p->filter_w;
            for (c = 0; c < p->channels; ++c) {
                float total = 0.0f, avg;
                int32_t count = 0;
                for (y = y0; y < y1; ++y) {
                    for (x = x0; x < x1; ++x) {
                        total = total + input[(y * p->in_w + x) * p->channels + c];
                        ++count;
                    }
                }
                avg = total / (float)count;
                if (avg < p->act_min) {
                    avg = p->act_min;
                }
                if (avg > p->act_max) {
                    avg = p->act_max;
                }
                output[(oy * p->out_w + ox) * p->channels + c] = avg;
            }
        }
    }
}
