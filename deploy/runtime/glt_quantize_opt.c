/* Optimized LceQuantize / LceDequantize: whole words at a time, bits shifted in
 * from the top (no variable shifts), floats written as IEEE bit patterns. */
#include "glt_quantize.h"

#include <string.h>

void glt_quantize_float_opt(const glt_quantize_params *p, const float *input, uint32_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const float *in = input + r * p->cols;
        for (c = 0; c < p->cols; c += 32) {
            const int32_t n = p->cols - c < 32 ? p->cols - c : 32;
            uint32_t word = 0;
            int32_t i;
            for (i = 0; i < n; ++i) {
                word = (word >> 1) | ((uint32_t)(in[c + i] < 0.0f) << 31);
            }
            *output++ = n == 32 ? word : word >> (32 - n);
        }
    }
}

void glt_quantize_int8_opt(const glt_quantize_params *p, const int8_t *input, uint32_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const int8_t *in = input + r * p->cols;
        for (c = 0; c < p->cols; c += 32) {
            const int32_t n = p->cols - c < 32 ? p->cols - c : 32;
            uint32_t word = 0;
            int32_t i;
            for (i = 0; i < n; ++i) {
                /* x < zp  <=>  x - zp < 0 (no overflow in int32) */
                word = (word >> 1) | ((uint32_t)((int32_t)in[c + i] - p->zero_point) & 0x80000000u);
            }
            *output++ = n == 32 ? word : word >> (32 - n);
        }
    }
}

void glt_quantize_bool_opt(const glt_quantize_params *p, const uint8_t *input, uint32_t *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        const uint8_t *in = input + r * p->cols;
        for (c = 0; c < p->cols; c += 32) {
            const int32_t n = p->cols - c < 32 ? p->cols - c : 32;
            uint32_t word = 0;
            int32_t i;
            for (i = 0; i < n; ++i) {
                word = (word >> 1) | ((uint32_t)(in[c + i] == 0) << 31);
            }
            *output++ = n == 32 ? word : word >> (32 - n);
        }
    }
}

void glt_dequantize_float_opt(const glt_dequantize_params *p, const uint32_t *input, float *output)
{
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        float *out = output + r * p->cols;
        for (c = 0; c < p->cols; c += 32) {
            const int32_t n = p->cols - c < 32 ? p->cols - c : 32;
            uint32_t word = *input++;
            int32_t i;
            for (i = 0; i < n; ++i, word >>= 1) {
                /* +1.0f is 0x3F800000; the bit is the sign */
                const uint32_t f = 0x3F800000u | (word << 31);
                memcpy(&out[c + i], &f, sizeof f);
            }
        }
    }
}

void glt_dequantize_int8_opt(const glt_dequantize_params *p, const uint32_t *input, int8_t *output)
{
    const int8_t v0 = (int8_t)p->zero_bit_value, v1 = (int8_t)p->one_bit_value;
    int32_t r, c;
    for (r = 0; r < p->rows; ++r) {
        int8_t *out = output + r * p->cols;
        for (c = 0; c < p->cols; c += 32) {
            const int32_t n = p->cols - c < 32 ? p->cols - c : 32;
            uint32_t word = *input++;
            int32_t i;
            for (i = 0; i < n; ++i, word >>= 1) {
                out[c + i] = (word & 1u) ? v1 : v0;
            }
        }
    }
}
