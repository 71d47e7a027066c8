/* Spatial mean; not a hot path (one call per inference), so reference only. */
#include "glt_mean.h"

void glt_mean_ref(const glt_mean_params *p, const float *input, float *output)
{
    int32_t px, c;
    for (c = 0; c < p->channels; ++c) {
        output[c] = 0.0f;
    }
    for (px = 0; px < p->pixels; ++px) {
        for (c = 0; c < p->channels; ++c) {
            output[c] = output[c] + input[px * p->channels + c];
        }
    }
    for (c = 0; c < p->channels; ++c) {
        output[c] = output[c] / (float)p->pixels;
    }
}
