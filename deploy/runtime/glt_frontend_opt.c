/* Optimized front end: RGB with one output word per pixel (the usual case: up to
 * 32 planes) costs 3 byte loads, 3 table loads, 2 ORs and a store per pixel;
 * other shapes use the general loop. */
#include "glt_frontend.h"

void glt_frontend_opt(const glt_frontend_params *p, const uint8_t *frame, uint32_t *output)
{
    int32_t px, w, c;
    if (p->channels == 3 && p->words == 1) {
        const uint32_t *l0 = p->lut, *l1 = p->lut + 256, *l2 = p->lut + 512;
        for (px = 0; px < p->pixels; ++px, frame += 3) {
            output[px] = l0[frame[0]] | l1[frame[1]] | l2[frame[2]];
        }
        return;
    }
    for (px = 0; px < p->pixels; ++px, frame += p->channels, output += p->words) {
        for (w = 0; w < p->words; ++w) {
            output[w] = 0;
        }
        for (c = 0; c < p->channels; ++c) {
            const uint32_t *entry = p->lut + (c * 256 + frame[c]) * p->words;
            for (w = 0; w < p->words; ++w) {
                output[w] |= entry[w];
            }
        }
    }
}
