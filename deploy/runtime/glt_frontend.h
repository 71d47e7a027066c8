/*
 * Input front end fused with bit-packing: raw uint8 HWC frame -> LCE bit-packed
 * activations, without float. Each raw channel value indexes a per-channel table
 * of packed words holding that channel's binary planes (e.g. the GLT thermometer
 * bits x >= t_k, placed at the channel positions the converter gave them);
 * the tables of a pixel's channels are ORed:
 *   out[pixel][w] = OR over c of lut[c][frame[pixel][c]][w]
 * deploy/lower/ builds the tables from the encoder ops of the flatbuffer.
 */
#ifndef GLT_FRONTEND_H
#define GLT_FRONTEND_H

#include <stdint.h>

typedef struct {
    int32_t pixels;          /* H * W */
    int32_t channels;        /* raw uint8 channels per pixel */
    int32_t words;           /* packed output words per pixel */
    const uint32_t *lut;     /* [channels][256][words] */
} glt_frontend_params;

void glt_frontend_ref(const glt_frontend_params *p, const uint8_t *frame, uint32_t *output);
void glt_frontend_opt(const glt_frontend_params *p, const uint8_t *frame, uint32_t *output);

#endif /* GLT_FRONTEND_H */
