/* Float fully connected; a head op, reference only. */
#include "glt_fully_connected.h"

void glt_fully_connected_ref(const glt_fully_connected_params *p, const float *input, float *output)
{
    int32_t b, o, i;
    for (b = 0; b < p->batches; ++b) {
        const float *in = input + b * p->in_features;
        for (o = 0; o < p->out_features; ++o) {
            const float *w = p->weights + o * p->in_features;
            float acc = 0.0f;
            for (i = 0; i < p->in_features; ++i) {
                const float prod = in[i] * w[i];
                acc = acc + prod;
            }
            if (p->bias != 0) {
                acc = acc + p->bias[o];
            }
            if (acc < p->act_min) {
                acc = p->act_min;
            }
            if (acc > p->act_max) {
                acc = p->act_max;
            }
            output[b * p->out_features + o] = acc;
        }
    }
}
