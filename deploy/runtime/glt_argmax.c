/* Argmax; a head op, reference only. */
#include "glt_argmax.h"

void glt_argmax_ref(const glt_argmax_params *p, const float *input, void *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const float *in = input + r * p->cols;
        int32_t best = 0;
        for (c = 1; c < p->cols; ++c) {
            if (in[c] > in[best]) {
                best = c;
            }
        }
        if (p->output_int64) {
            ((int64_t *)output)[r] = best;
        } else {
            ((int32_t *)output)[r] = best;
        }
    }
}
