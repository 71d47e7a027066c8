/* ARG_MAX over the last dimension (TFLite: the first maximum wins). */
#ifndef GLT_ARGMAX_H
#define GLT_ARGMAX_H

#include <stdint.h>

typedef struct {
    int32_t rows, cols;
    int32_t output_int64;   /* 1: int64 indices (tf.argmax default), 0: int32 */
} glt_argmax_params;

void glt_argmax_ref(const glt_argmax_params *p, const float *input, void *output);

#endif /* GLT_ARGMAX_H */
