/*
 * Float FULLY_CONNECTED: out[b][o] = clamp(sum_i in[b][i] * w[o][i] + bias[o]).
 * Products are summed in index order and the bias is added last. This is exact
 * (order-independent) when inputs and weights are +-1 (a binary dense layer fed
 * by LceDequantize), so it then matches any TFLite kernel bit for bit; with
 * arbitrary float weights it can differ from TFLite's GEMM in the last bits.
 */
#ifndef GLT_FULLY_CONNECTED_H
#define GLT_FULLY_CONNECTED_H

#include <stdint.h>

typedef struct {
    int32_t batches;
    int32_t in_features, out_features;
    float act_min, act_max;
    const float *weights;   /* [out_features][in_features] */
    const float *bias;      /* [out_features] or NULL */
} glt_fully_connected_params;

void glt_fully_connected_ref(const glt_fully_connected_params *p, const float *input, float *output);

#endif /* GLT_FULLY_CONNECTED_H */
