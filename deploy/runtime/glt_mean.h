/*
 * Float MEAN over the spatial axes of an HWC tensor (Keras GlobalAveragePooling2D).
 * Same arithmetic as TFLite's reference Mean, used by its x86 kernel for this case:
 * per channel, a float sum in row-major input order, then one division by (float)(H*W).
 */
#ifndef GLT_MEAN_H
#define GLT_MEAN_H

#include <stdint.h>

typedef struct {
    int32_t pixels;     /* H * W */
    int32_t channels;
} glt_mean_params;

void glt_mean_ref(const glt_mean_params *p, const float *input, float *output);

#endif /* GLT_MEAN_H */
