/*
 * Float AVERAGE_POOL_2D (TFLite semantics): per output, the float sum over the
 * window clipped to the input in row-major order, divided by the number of
 * elements summed, then clamped to the fused activation range.
 */
#ifndef GLT_AVGPOOL_H
#define GLT_AVGPOOL_H

#include <stdint.h>

typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left;
    float act_min, act_max;
} glt_avgpool_params;

void glt_avgpool_ref(const glt_avgpool_params *p, const float *input, float *output);

#endif /* GLT_AVGPOOL_H */
