/*
 * Shared definitions for the larq-glt binary-network runtime.
 *
 * Conventions (identical to Larq Compute Engine, so flatbuffer data is used as is):
 *  - Activations are NHWC with batch 1. A binary tensor is bit-packed along its
 *    last dimension into 32-bit words, channel c in bit (c % 32) of word c / 32;
 *    bit 0 means +1, bit 1 means -1; unused bits of the last word are 0.
 *  - Kernels never allocate and never validate: parameters are precomputed by
 *    deploy/lower/ and stored in const structs.
 *
 * Floating point: kernels that produce floats must be compiled without
 * floating-point contraction (a*b+c must round twice, as on the x86 reference
 * interpreter). -std=c99 implies -ffp-contract=off on GCC; with -std=gnu99 pass
 * -ffp-contract=off explicitly.
 */
#ifndef GLT_COMMON_H
#define GLT_COMMON_H

#include <stdint.h>

/* Output types of a binary convolution. */
#define GLT_OUT_FLOAT 0
#define GLT_OUT_INT8 1
#define GLT_OUT_BITS 2

#if defined(__GNUC__)
#define GLT_INLINE static inline __attribute__((always_inline))
/* Hides a constant from the optimizer so it stays in a register: lets GCC use
 * Thumb-2 "and rd, rmask, rx, lsr #n" (one instruction) instead of a shift and
 * an immediate AND (two). */
#define GLT_OPAQUE(x) __asm__("" : "+r"(x))
#else
#define GLT_INLINE static inline
#define GLT_OPAQUE(x) ((void)0)
#endif

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#endif

/* Number of set bits of a 32-bit word (portable SWAR, no popcount instruction). */
GLT_INLINE int32_t glt_popcount32(uint32_t x)
{
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0F0F0F0Fu;
    return (int32_t)((x * 0x01010101u) >> 24);
}

/* Index of the lowest set bit of a non-zero word. */
GLT_INLINE int32_t glt_ctz32(uint32_t x)
{
#if defined(__GNUC__)
    return (int32_t)__builtin_ctz(x);
#else
    int32_t n = 0;
    while ((x & 1u) == 0) {
        x >>= 1;
        ++n;
    }
    return n;
#endif
}

/* acc + sum of the four bytes of x (USADA8 on cores with the DSP extension). */
GLT_INLINE uint32_t glt_sum_bytes_acc(uint32_t x, uint32_t acc)
{
#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
    return __usada8(x, 0u, acc);
#else
    x = (x & 0x00FF00FFu) + ((x >> 8) & 0x00FF00FFu);
    return acc + ((x + (x >> 16)) & 0xFFFFu);
#endif
}

/* Round half away from zero (std::round, as TFLite's TfLiteRound on the host)
 * and saturate to int8, without libm. */
GLT_INLINE int8_t glt_round_to_int8(float y)
{
    int32_t i;
    float frac;
    if (!(y > -129.0f)) {
        return (int8_t)-128;
    }
    if (y >= 128.0f) {
        return (int8_t)127;
    }
    i = (int32_t)y; /* truncates toward zero */
    frac = y - (float)i; /* exact: |y| < 2^23 */
    if (frac >= 0.5f) {
        i += 1;
    } else if (frac <= -0.5f) {
        i -= 1;
    }
    if (i > 127) {
        i = 127;
    }
    if (i < -128) {
        i = -128;
    }
    return (int8_t)i;
}

#endif /* GLT_COMMON_H */
