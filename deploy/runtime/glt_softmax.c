/* Float softmax; a head op, reference only. */
#include "glt_softmax.h"

#include <string.h>

/* exp(x) for x <= 0 (inputs are shifted by the row maximum). */
static float exp_nonpositive(float x)
{
    const float ln2_hi = 0.693145751953125f, ln2_lo = 1.428606765330187e-06f;
    float r, poly, scale;
    int32_t k;
    uint32_t bits;
    if (x < -87.0f) {
        return 0.0f;
    }
    /* x = k*ln2 + r, |r| <= ln2/2 */
    k = (int32_t)(x * 1.44269504088896341f - 0.5f);
    r = (x - (float)k * ln2_hi) - (float)k * ln2_lo;
    /* exp(r): degree-6 Taylor/Horner, enough for float on |r| <= 0.35 */
    poly = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    bits = (uint32_t)(k + 127) << 23; /* 2^k, k >= -126 here */
    memcpy(&scale, &bits, sizeof scale);
    return poly * scale;
}

void glt_softmax_ref(const glt_softmax_params *p, const float *input, float *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const float *in = input + r * p->cols;
        float *out = output + r * p->cols;
        float max = in[0], sum = 0.0f;
        for (c = 1; c < p->cols; ++c) {
            if (in[c] > max) {
                max = in[c];
            }
        }
        for (c = 0; c < p->cols; ++c) {
            out[c] = exp_nonpositive((in[c] - max) * p->beta);
            sum = sum + out[c];
        }
        for (c = 0; c < p->cols; ++c) {
            out[c] = out[c] / sum;
        }
    }
}
