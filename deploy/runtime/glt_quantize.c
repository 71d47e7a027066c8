/* Reference LceQuantize / LceDequantize: one element at a time. */
#include "glt_quantize.h"

#define WORDS(cols) (((cols) + 31) / 32)

void glt_quantize_float_ref(const glt_quantize_params *p, const float *input, uint32_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        uint32_t *out = output + r * WORDS(p->cols);
        for (c = 0; c < p->cols; ++c) {
            if (c % 32 == 0) {
                out[c / 32] = 0;
            }
            if (input[r * p->cols + c] < 0.0f) { /* -0.0f and NaN give +1 */
                out[c / 32] |= (uint32_t)1 << (c % 32);
            }
        }
    }
}

void glt_quantize_int8_ref(const glt_quantize_params *p, const int8_t *input, uint32_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        uint32_t *out = output + r * WORDS(p->cols);
        for (c = 0; c < p->cols; ++c) {
            if (c % 32 == 0) {
                out[c / 32] = 0;
            }
            if ((int32_t)input[r * p->cols + c] < p->zero_point) {
                out[c / 32] |= (uint32_t)1 << (c % 32);
            }
        }
    }
}

void glt_quantize_bool_ref(const glt_quantize_params *p, const uint8_t *input, uint32_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        uint32_t *out = output + r * WORDS(p->cols);
        for (c = 0; c < p->cols; ++c) {
            if (c % 32 == 0) {
                out[c / 32] = 0;
            }
            if (input[r * p->cols + c] == 0) { /* false is -1 */
                out[c / 32] |= (uint32_t)1 << (c % 32);
            }
        }
    }
}

void glt_dequantize_float_ref(const glt_dequantize_params *p, const uint32_t *input, float *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const uint32_t *in = input + r * WORDS(p->cols);
        for (c = 0; c < p->cols; ++c) {
            const uint32_t bit = (in[c / 32] >> (c % 32)) & 1u;
            output[r * p->cols + c] = bit ? -1.0f : 1.0f;
        }
    }
}

void glt_dequantize_int8_ref(const glt_dequantize_params *p, const uint32_t *input, int8_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const uint32_t *in = input + r * WORDS(p->cols);
        for (c = 0; c < p->cols; ++c) {
            const uint32_t bit = (in[c / 32] >> (c % 32)) & 1u;
            output[r * p->cols + c] = (int8_t)(bit ? p->one_bit_value : p->zero_bit_value);
        }
    }
}
