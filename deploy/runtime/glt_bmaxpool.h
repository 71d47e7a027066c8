/*
 * Binary max pool with the semantics of LCE's LceBMaxPool2d (core/bmaxpool.h):
 * max of +-1 values is the AND of their bits over the window clipped to the input
 * (padding never contributes).
 */
#ifndef GLT_BMAXPOOL_H
#define GLT_BMAXPOOL_H

#include <stdint.h>

typedef struct {
    int32_t in_h, in_w;
    int32_t words;               /* packed words per pixel */
    int32_t out_h, out_w;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;   /* TF SAME padding, 0 for VALID */
} glt_bmaxpool_params;

void glt_bmaxpool_ref(const glt_bmaxpool_params *p, const uint32_t *input, uint32_t *output);
void glt_bmaxpool_opt(const glt_bmaxpool_params *p, const uint32_t *input, uint32_t *output);

#endif /* GLT_BMAXPOOL_H */
