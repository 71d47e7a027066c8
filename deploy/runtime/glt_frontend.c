/* Reference front end: one output word at a time. */
#include "glt_frontend.h"

void glt_frontend_ref(const glt_frontend_params *p, const uint8_t *frame, uint32_t *output)
{
    int32_t px, w, c;
    for (px = 0; px < p->pixels; ++px) {
        for (w = 0; w < p->words; ++w) {
            uint32_t word = 0;
            for (c = 0; c < p->channels; ++c) {
                const uint8_t v = frame[px * p->channels + c];
                word |= p->lut[(c * 256 + v) * p->words + w];
            }
            output[px * p->words + w] = word;
        }
    }
}
