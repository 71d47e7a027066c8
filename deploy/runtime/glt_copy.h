/* RESHAPE / SQUEEZE / EXPAND_DIMS: the bytes do not change; a copy when the
 * planner gives input and output different buffers. */
#ifndef GLT_COPY_H
#define GLT_COPY_H

#include <stdint.h>

typedef struct {
    int32_t bytes;
} glt_copy_params;

void glt_copy_ref(const glt_copy_params *p, const void *input, void *output);

#endif /* GLT_COPY_H */
