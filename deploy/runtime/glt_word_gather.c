#include "glt_word_gather.h"

void glt_word_gather_ref(const glt_word_gather_params *p, const uint32_t *input, uint32_t *output)
{
    for (int32_t px = 0; px < p->pixels; ++px) {
        const uint32_t *in = input + px * p->words;
        uint32_t *out = output + px * p->words;
        for (int32_t j = 0; j < p->words; ++j) {
            out[j] = in[p->order[j]];
        }
    }
}
