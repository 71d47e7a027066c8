/*
 * Float SOFTMAX over the last dimension: exp(beta * (x - max)) / sum.
 * exp is computed without libm (range reduction + polynomial, relative error
 * below 2e-7), so results can differ from TFLite in the last bits; the class
 * order (argmax) is that of the logits.
 */
#ifndef GLT_SOFTMAX_H
#define GLT_SOFTMAX_H

#include <stdint.h>

typedef struct {
    int32_t rows, cols;
    float beta;
} glt_softmax_params;

void glt_softmax_ref(const glt_softmax_params *p, const float *input, float *output);

#endif /* GLT_SOFTMAX_H */
