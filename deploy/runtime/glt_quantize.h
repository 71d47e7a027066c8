/*
 * LceQuantize / LceDequantize (LCE tflite/kernels/quantization.cc).
 *
 * The tensor is seen as rows x cols, cols = its last dimension; each row is packed
 * into ceil(cols / 32) words, unused bits 0.
 *  quantize: bit = x < 0 (float), x < zero_point (int8), x == 0 (bool as uint8)
 *  dequantize: bit 0 -> +1.0f / zero_bit_value, bit 1 -> -1.0f / one_bit_value
 */
#ifndef GLT_QUANTIZE_H
#define GLT_QUANTIZE_H

#include <stdint.h>

typedef struct {
    int32_t rows, cols;
    int32_t zero_point;       /* int8 input only */
} glt_quantize_params;

typedef struct {
    int32_t rows, cols;
    int32_t zero_bit_value;   /* int8 output: value of bit 0 (+1) */
    int32_t one_bit_value;    /* int8 output: value of bit 1 (-1) */
} glt_dequantize_params;

void glt_quantize_float_ref(const glt_quantize_params *p, const float *input, uint32_t *output);
void glt_quantize_int8_ref(const glt_quantize_params *p, const int8_t *input, uint32_t *output);
void glt_quantize_bool_ref(const glt_quantize_params *p, const uint8_t *input, uint32_t *output);
void glt_dequantize_float_ref(const glt_dequantize_params *p, const uint32_t *input, float *output);
void glt_dequantize_int8_ref(const glt_dequantize_params *p, const uint32_t *input, int8_t *output);

void glt_quantize_float_opt(const glt_quantize_params *p, const float *input, uint32_t *output);
void glt_quantize_int8_opt(const glt_quantize_params *p, const int8_t *input, uint32_t *output);
void glt_quantize_bool_opt(const glt_quantize_params *p, const uint8_t *input, uint32_t *output);
void glt_dequantize_float_opt(const glt_dequantize_params *p, const uint32_t *input, float *output);
void glt_dequantize_int8_opt(const glt_dequantize_params *p, const uint32_t *input, int8_t *output);

#endif /* GLT_QUANTIZE_H */
