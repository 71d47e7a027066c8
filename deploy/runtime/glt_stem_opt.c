/*
 * Optimized fused stem (bit-identical to glt_stem_ref); the two algorithms are
 * described in glt_stem.h.
 *
 * Levels: per output pixel and group of 32 output channels, eight 32-bit
 * accumulators hold 32 byte lanes; each (tap, channel) adds one 32-byte table row
 * (4 LDRD + 8 ADD), addressed by the raw pixel value through lv_offset. The
 * comparison with the thresholds is SIMD too: UADD8 + SEL on cores with the DSP
 * extension (8-bit sums: sum + (256 - u) carries out of its byte, setting that
 * byte's GE flag, exactly when sum >= u, for 1 <= u <= 255), else (or when the
 * sums need 16 bits) halfword lanes biased so that bit 15 of a lane is the
 * output bit. USUB8 is not used: Renode 1.15.3 sets its GE flags inverted.
 *
 * glt_stem_selfcheck() (called once at boot) runs the SIMD instructions the
 * levels algorithm relies on (UQADD8, UADD8 + SEL, through the very sequences
 * of the hot loop) on known vectors; if any answer is wrong, the levels
 * algorithm switches to a portable path with no DSP instruction (exact 16-bit
 * sums, compare16), slower but exact.
 *
 * With the DSP extension the rows are added with UQADD8 (saturating bytes): a
 * lane's comparison sum >= u (u <= 255) survives saturation, so one pass over
 * all taps suffices even when sums exceed 255, provided lowering could bring
 * every lane's u to 255 or below (lv_compare word 26; lanes with a larger u
 * are complemented and their bit inverted, word 25). Otherwise the taps are
 * summed in segments that fit a byte and widened to 16 bits.
 */
#include "glt_bconv2d.h"
#include "glt_frontend.h"
#include "glt_stem.h"

#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define GLT_STEM_DSP 1
#else
#define GLT_STEM_DSP 0
#endif

#define ROW_BYTES 32

/* Tests only: -DGLT_SIMULATE_BROKEN_SIMD=1 swaps SEL's operands in the SIMD
 * comparison, which is what GE flags set inverted (Renode 1.15.3's USUB8) do to
 * it; glt_stem_selfcheck must catch it and the results must stay exact. */
#if defined(GLT_SIMULATE_BROKEN_SIMD) && GLT_SIMULATE_BROKEN_SIMD
#define SEL_OPERANDS(set, clear) clear ", " set
#else
#define SEL_OPERANDS(set, clear) set ", " clear
#endif

/* 1 once glt_stem_selfcheck found a wrong SIMD answer: the portable path runs. */
static int s_portable;

/* The 8-bit lane accumulators of one group of 32 output channels. */
typedef struct {
    uint32_t a[8];
} lanes8;

#define COMPARE_INVERT 25   /* lv_compare word: lanes whose bit is inverted */
#define COMPARE_SATURATE 26 /* lv_compare word: 1 if saturated byte sums decide every lane */

/* a += b in byte lanes: saturating with the DSP extension (exact while the sums
 * fit a byte, as in a segment; decides sum >= u <= 255 beyond), else wrapping. */
#if GLT_STEM_DSP
#define LANE_ADD(a, b) __asm__("uqadd8 %0, %0, %1" : "+r"(a) : "r"(b))
#else
#define LANE_ADD(a, b) ((a) += (b))
#endif

/* Adds the 32-byte row at `row` to the accumulators a0..a7 (locals of the caller). */
#define ADD_ROW(row)                                                        \
    do {                                                                    \
        const uint32_t *r_ = (const uint32_t *)(const void *)(row);         \
        LANE_ADD(a0, r_[0]);                                                \
        LANE_ADD(a1, r_[1]);                                                \
        LANE_ADD(a2, r_[2]);                                                \
        LANE_ADD(a3, r_[3]);                                                \
        LANE_ADD(a4, r_[4]);                                                \
        LANE_ADD(a5, r_[5]);                                                \
        LANE_ADD(a6, r_[6]);                                                \
        LANE_ADD(a7, r_[7]);                                                \
    } while (0)

/* Stores the accumulators a0..a7 (locals of the caller) to dst[0..7]. */
#define STORE_ROW(dst)                                                      \
    do {                                                                    \
        (dst)[0] = a0;                                                      \
        (dst)[1] = a1;                                                      \
        (dst)[2] = a2;                                                      \
        (dst)[3] = a3;                                                      \
        (dst)[4] = a4;                                                      \
        (dst)[5] = a5;                                                      \
        (dst)[6] = a6;                                                      \
        (dst)[7] = a7;                                                      \
    } while (0)

/* 16-bit lanes: h[2w] += even bytes of a[w], h[2w + 1] += odd bytes. */
static void widen_add(const lanes8 *s, uint32_t *h)
{
    uint32_t m = 0x00FF00FFu;
    int32_t w;
    GLT_OPAQUE(m);
    for (w = 0; w < 8; ++w) {
        h[2 * w] += s->a[w] & m;
        h[2 * w + 1] += (s->a[w] >> 8) & m;
    }
}

/* Output bits from halfword sums: lane + (0x8000 - u) has bit 15 set when lane >= u. */
static uint32_t compare16(const uint32_t *h, const uint32_t *c)
{
    uint32_t bits = 0, m = 0x80008000u;
    int32_t w;
    GLT_OPAQUE(m);
    for (w = 0; w < 8; ++w) {
        bits |= ((h[2 * w] + c[2 * w]) & m) >> (15 - w);    /* channels w, w + 16 */
        bits |= ((h[2 * w + 1] + c[2 * w + 1]) & m) >> (7 - w); /* channels w + 8, w + 24 */
    }
    return (bits & c[-1]) ^ c[COMPARE_INVERT - 9]; /* c[-1]: word 8, the non-constant lanes */
}

/* Output bits from byte sums (the sums fit 8 bits). */
static uint32_t compare8(const lanes8 *s, const uint32_t *cmp)
{
#if GLT_STEM_DSP
    uint32_t bits = 0;
    int32_t w;
    for (w = 0; w < 8; ++w) {
        uint32_t ge;
        /* GE[i] = byte i of the sum + byte i of the word (256 - u) carries: sum >= u */
        __asm__("uadd8 %0, %1, %2\n\t"
                "sel   %0, " SEL_OPERANDS("%3", "%4")
                : "=&r"(ge)
                : "r"(s->a[w]), "r"(cmp[w]), "r"(0x01010101u << w), "r"(0u)
                : "cc");
        bits |= ge;
    }
    return (bits & cmp[8]) ^ cmp[COMPARE_INVERT];
#else
    uint32_t h[16];
    int32_t w;
    for (w = 0; w < 8; ++w) {
        h[2 * w] = s->a[w] & 0x00FF00FFu;
        h[2 * w + 1] = (s->a[w] >> 8) & 0x00FF00FFu;
    }
    return compare16(h, cmp + 9);
#endif
}

/* The hot loop: one output pixel, one group, every tap inside the frame, 3 raw
 * channels, dilation_w 1, one segment. */
typedef struct {
    const uint8_t *px;       /* offset 0: channel 0 of the window's top-left pixel */
    const uint8_t *table;    /* 4: the group's table (tap 0) */
    const uint16_t *offset;  /* 8: lv_offset (channel c at + 256 * c) */
    int32_t row_skip;        /* 12: bytes from after a filter row's last pixel to the next row */
    int32_t row_bytes;       /* 16: 3 * filter_w */
    int32_t filter_h;        /* 20 */
    const uint32_t *compare; /* 24: the group's lv_compare */
    uint32_t bits;           /* 28: the output word (out, DSP only) */
    uint32_t acc[8];         /* 32: the sums (out, without DSP) */
} rgb_job;

#if defined(__GNUC__) && defined(__thumb2__)
#define LEVELS_ASM 1
/* Thumb-2: all 14 registers hold the loop state (8 accumulators, pixel and tap
 * pointers, lv_offset, 3 temporaries), which GCC's allocator does not manage in C.
 * Per tap: 3 x (LDRB, LDRH, ADD, 4 LDRD, 8 ADD or UQADD8) + 2 channel biases + loop. */
#if GLT_STEM_DSP
#define ACC_ASM "uqadd8 "
#else
#define ACC_ASM "add    "
#endif
#define ROW_ASM(bias, at)                        \
    "ldrb   r11, [r8], #1\n\t"                   \
    bias                                         \
    "ldrh   r11, [r10, r11, lsl #1]\n\t"         \
    "add    r11, r9, r11\n\t"                    \
    "ldrd   r12, lr, [r11, #" at "+0]\n\t"       \
    ACC_ASM "r0, r0, r12\n\t"                    \
    ACC_ASM "r1, r1, lr\n\t"                     \
    "ldrd   r12, lr, [r11, #" at "+8]\n\t"       \
    ACC_ASM "r2, r2, r12\n\t"                    \
    ACC_ASM "r3, r3, lr\n\t"                     \
    "ldrd   r12, lr, [r11, #" at "+16]\n\t"      \
    ACC_ASM "r4, r4, r12\n\t"                    \
    ACC_ASM "r5, r5, lr\n\t"                     \
    "ldrd   r12, lr, [r11, #" at "+24]\n\t"      \
    ACC_ASM "r6, r6, r12\n\t"                    \
    ACC_ASM "r7, r7, lr\n\t"
#define TAP_ASM(at)                              \
    ROW_ASM("", at)                              \
    ROW_ASM("add    r11, r11, #256\n\t", at)     \
    ROW_ASM("add    r11, r11, #512\n\t", at)

#if GLT_STEM_DSP
/* bits |= lanes of accumulator `acc` >= their thresholds u, placed at bit w of
 * each byte (channel 8 * byte + w): UADD8 of the bytes 256 - u sets GE per byte
 * on carry-out (sum >= u), SEL picks the bit. */
#define COMPARE_ASM(acc, w, mask)                \
    "ldr    r11, [r9, #" w "*4]\n\t"             \
    "uadd8  r11, " acc ", r11\n\t"               \
    "mov    r11, #" mask "\n\t"                  \
    "sel    r11, " SEL_OPERANDS("r11", "r10") "\n\t" \
    "orr    r8, r8, r11\n\t"
#define FINISH_ASM                               \
    "ldr    r12, [sp, #8]\n\t"                   \
    "ldr    r9, [r12, #24]\n\t"                  \
    "movs   r8, #0\n\t"                          \
    "movs   r10, #0\n\t"                         \
    COMPARE_ASM("r0", "0", "0x01010101")         \
    COMPARE_ASM("r1", "1", "0x02020202")         \
    COMPARE_ASM("r2", "2", "0x04040404")         \
    COMPARE_ASM("r3", "3", "0x08080808")         \
    COMPARE_ASM("r4", "4", "0x10101010")         \
    COMPARE_ASM("r5", "5", "0x20202020")         \
    COMPARE_ASM("r6", "6", "0x40404040")         \
    COMPARE_ASM("r7", "7", "0x80808080")         \
    "ldr    r11, [r9, #32]\n\t" /* keep mask */  \
    "and    r8, r8, r11\n\t"                     \
    "ldr    r11, [r9, #100]\n\t" /* invert */    \
    "eor    r8, r8, r11\n\t"                     \
    "str    r8, [r12, #28]\n\t"
#else
#define FINISH_ASM                               \
    "ldr    r12, [sp, #8]\n\t"                   \
    "add    r12, r12, #32\n\t"                   \
    "stm    r12, {r0-r7}\n\t"
#endif

/* Sums the window in the accumulators r0-r7; taps_per_step (1 or 2) taps per
 * loop iteration. */
#define LEVELS_FUNCTION(name, step_body, step_bytes)                                  \
    __attribute__((naked, noinline)) static void name(rgb_job *job __attribute__((unused))) \
    {                                                                                 \
        __asm__("push   {r0, r4-r11, lr}\n\t"                                        \
                "sub    sp, sp, #8\n\t" /* [sp]: end of the row's pixels, [sp, #4]: rows left */ \
                "ldr    r8, [r0]\n\t"                                                 \
                "ldr    r9, [r0, #4]\n\t"                                             \
                "ldr    r10, [r0, #8]\n\t"                                            \
                "ldr    r12, [r0, #20]\n\t"                                           \
                "str    r12, [sp, #4]\n\t"                                            \
                "movs   r0, #0\n\t"                                                   \
                "movs   r1, #0\n\t"                                                   \
                "movs   r2, #0\n\t"                                                   \
                "movs   r3, #0\n\t"                                                   \
                "movs   r4, #0\n\t"                                                   \
                "movs   r5, #0\n\t"                                                   \
                "movs   r6, #0\n\t"                                                   \
                "movs   r7, #0\n"                                                     \
                "1:\n\t"                                                              \
                "ldr    r12, [sp, #8]\n\t"                                            \
                "ldr    r12, [r12, #16]\n\t"                                          \
                "add    r12, r8, r12\n\t"                                             \
                "str    r12, [sp]\n"                                                  \
                "2:\n\t"                                                              \
                step_body                                                             \
                "add    r9, r9, #" step_bytes "\n\t"                                  \
                "ldr    r12, [sp]\n\t"                                                \
                "cmp    r8, r12\n\t"                                                  \
                "bne    2b\n\t"                                                       \
                "ldr    r12, [sp, #8]\n\t"                                            \
                "ldr    r12, [r12, #12]\n\t"                                          \
                "add    r8, r8, r12\n\t"                                              \
                "ldr    r12, [sp, #4]\n\t"                                            \
                "subs   r12, r12, #1\n\t"                                             \
                "str    r12, [sp, #4]\n\t"                                            \
                "bne    1b\n\t"                                                       \
                FINISH_ASM                                                            \
                "add    sp, sp, #8\n\t"                                               \
                "pop    {r0, r4-r11, pc}\n");                                         \
    }

LEVELS_FUNCTION(levels_rgb_1, TAP_ASM("0"), "32")
LEVELS_FUNCTION(levels_rgb_2, TAP_ASM("0") TAP_ASM("32"), "64") /* even filter_w */

#if GLT_STEM_DSP
/* The hot loop's comparison (FINISH_ASM) alone, on the sums in job->acc: for
 * glt_stem_selfcheck. */
__attribute__((naked, noinline)) static void finish_check(rgb_job *job __attribute__((unused)))
{
    __asm__("push   {r0, r4-r11, lr}\n\t"
            "sub    sp, sp, #8\n\t"
            "add    r12, r0, #32\n\t"
            "ldm    r12, {r0-r7}\n\t"
            FINISH_ASM
            "add    sp, sp, #8\n\t"
            "pop    {r0, r4-r11, pc}\n");
}
#endif
#undef ACC_ASM
#undef ROW_ASM
#undef TAP_ASM
#undef COMPARE_ASM
#undef FINISH_ASM
#undef LEVELS_FUNCTION
#else
#define LEVELS_ASM 0
static void levels_rgb_1(rgb_job *job)
{
    const uint16_t *off0 = job->offset, *off1 = off0 + 256, *off2 = off0 + 512;
    const uint8_t *px = job->px, *tap = job->table;
    uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    int32_t ky;
    for (ky = 0; ky < job->filter_h; ++ky, px += job->row_skip) {
        const uint8_t *end = px + job->row_bytes;
        for (; px != end; px += 3, tap += ROW_BYTES) {
            ADD_ROW(tap + off0[px[0]]);
            ADD_ROW(tap + off1[px[1]]);
            ADD_ROW(tap + off2[px[2]]);
        }
    }
    STORE_ROW(job->acc);
}
#define levels_rgb_2 levels_rgb_1
#endif

/* One output pixel, one group, any geometry: taps [t0, t1) of the window whose
 * top-left input pixel is (iy0, ix0). */
static void levels_general(const glt_stem_params *p, const uint8_t *frame, int32_t iy0, int32_t ix0,
                           int32_t t0, int32_t t1, const uint8_t *table, lanes8 *s)
{
    const int32_t outside_row = (p->lv_rows - 1) * p->filter_h * p->filter_w * ROW_BYTES;
    uint32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    int32_t t, c;
    for (t = t0; t < t1; ++t) {
        const int32_t iy = iy0 + (t / p->filter_w) * p->dilation_h;
        const int32_t ix = ix0 + (t % p->filter_w) * p->dilation_w;
        const uint8_t *tap = table + t * ROW_BYTES;
        if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
            const uint8_t *px = frame + (iy * p->in_w + ix) * p->channels;
            for (c = 0; c < p->channels; ++c) {
                ADD_ROW(tap + p->lv_offset[c * 256 + px[c]]);
            }
        } else {
            ADD_ROW(tap + outside_row);
        }
    }
    STORE_ROW(s->a);
}

/* The levels algorithm with no DSP instruction, for when glt_stem_selfcheck
 * failed: every tap's row widened at once into exact 16-bit sums (at most 32767,
 * lowering's bound), then compare16. Exact for every group, saturated or not. */
static uint32_t levels_portable(const glt_stem_params *p, const uint8_t *frame, int32_t iy0, int32_t ix0,
                                const uint8_t *table, const uint32_t *cmp)
{
    const int32_t taps = p->filter_h * p->filter_w;
    uint32_t h[16] = {0};
    lanes8 s;
    int32_t t;
    for (t = 0; t < taps; ++t) {
        /* one tap at a time: a lane of one tap is at most 255 (wrapping adds are exact) */
        const int32_t iy = iy0 + (t / p->filter_w) * p->dilation_h;
        const int32_t ix = ix0 + (t % p->filter_w) * p->dilation_w;
        const uint8_t *tap = table + t * ROW_BYTES;
        int32_t c, w;
        for (w = 0; w < 8; ++w) {
            s.a[w] = 0;
        }
        if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
            const uint8_t *px = frame + (iy * p->in_w + ix) * p->channels;
            for (c = 0; c < p->channels; ++c) {
                const uint32_t *r = (const uint32_t *)(const void *)(tap + p->lv_offset[c * 256 + px[c]]);
                for (w = 0; w < 8; ++w) {
                    s.a[w] += r[w]; /* the channels of one tap sum to at most 255 per lane */
                }
            }
        } else {
            const uint32_t *r = (const uint32_t *)(const void *)(tap + (p->lv_rows - 1) * taps * ROW_BYTES);
            for (w = 0; w < 8; ++w) {
                s.a[w] += r[w];
            }
        }
        widen_add(&s, h);
    }
    return compare16(h, cmp + 9);
}

static void stem_levels_portable(const glt_stem_params *p, const uint8_t *frame, uint32_t *output)
{
    const int32_t group_bytes = p->lv_rows * p->filter_h * p->filter_w * ROW_BYTES;
    int32_t oy, ox, g;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            for (g = 0; g < p->lv_groups; ++g) {
                *output++ = levels_portable(p, frame, oy * p->stride_h - p->pad_top, ox * p->stride_w - p->pad_left,
                                            (const uint8_t *)(const void *)p->lv_table + g * group_bytes,
                                            p->lv_compare + g * GLT_STEM_COMPARE_WORDS);
            }
        }
    }
}

static void stem_levels(const glt_stem_params *p, const uint8_t *frame, uint32_t *output)
{
    const int32_t taps = p->filter_h * p->filter_w;
    const int32_t seg = p->lv_segment_taps;
    const int32_t group_bytes = p->lv_rows * taps * ROW_BYTES;
    const int32_t span_h = (p->filter_h - 1) * p->dilation_h, span_w = (p->filter_w - 1) * p->dilation_w;
    const uint8_t *table = (const uint8_t *)(const void *)p->lv_table;
    rgb_job job;
    int32_t oy, ox, g, t;
    job.offset = p->lv_offset;
    job.row_skip = (p->dilation_h * p->in_w - p->filter_w) * 3;
    job.row_bytes = 3 * p->filter_w;
    job.filter_h = p->filter_h;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int inside = iy0 >= 0 && ix0 >= 0 && iy0 + span_h < p->in_h && ix0 + span_w < p->in_w;
            for (g = 0; g < p->lv_groups; ++g) {
                const uint8_t *tg = table + g * group_bytes;
                const uint32_t *cmp = p->lv_compare + g * GLT_STEM_COMPARE_WORDS;
                lanes8 s;
                if (seg >= taps || (GLT_STEM_DSP && cmp[COMPARE_SATURATE])) {
                    if (inside && p->channels == 3 && p->dilation_w == 1) {
                        job.px = frame + (iy0 * p->in_w + ix0) * 3;
                        job.table = tg;
                        job.compare = cmp;
                        if ((p->filter_w & 1) == 0) {
                            levels_rgb_2(&job);
                        } else {
                            levels_rgb_1(&job);
                        }
#if LEVELS_ASM && GLT_STEM_DSP
                        *output++ = job.bits;
                        continue;
#else
                        for (t = 0; t < 8; ++t) {
                            s.a[t] = job.acc[t];
                        }
#endif
                    } else {
                        levels_general(p, frame, iy0, ix0, 0, taps, tg, &s);
                    }
                    *output++ = compare8(&s, cmp);
                } else {
                    uint32_t h[16] = {0};
                    for (t = 0; t < taps; t += seg) {
                        levels_general(p, frame, iy0, ix0, t, t + seg < taps ? t + seg : taps, tg, &s);
                        widen_add(&s, h);
                    }
                    *output++ = compare16(h, cmp + 9);
                }
            }
        }
    }
}

/* Words: the front end encodes the input rows of one output row at a time into
 * scratch (rows outside the frame are left out and become padding of a
 * one-row convolution), then glt_bconv2d_opt. */
static void stem_words(const glt_stem_params *p, const uint8_t *frame, void *output)
{
    const int32_t row_words = p->in_w * p->words;
    /* bytes of one output row */
    const int32_t out_row = p->output_type == GLT_OUT_BITS ? p->out_w * ((p->out_c + 31) / 32) * 4
                            : p->output_type == GLT_OUT_FLOAT ? p->out_w * p->out_c * 4
                                                              : p->out_w * p->out_c;
    uint32_t *strip = p->scratch;
    glt_frontend_params f;
    glt_bconv2d_params c;
    int32_t oy, ky;
    f.pixels = p->in_w;
    f.channels = p->channels;
    f.words = p->words;
    f.lut = p->lut;
    c.in_w = p->in_w;
    c.in_words = p->words;
    c.out_h = 1;
    c.out_w = p->out_w;
    c.out_c = p->out_c;
    c.filter_h = p->filter_h;
    c.filter_w = p->filter_w;
    c.group_words = p->words;
    c.groups = 1;
    c.stride_h = 1;
    c.stride_w = p->stride_w;
    c.dilation_h = 1; /* the strip holds the dilated rows */
    c.dilation_w = p->dilation_w;
    c.pad_left = p->pad_left;
    c.zero_padding = p->zero_padding;
    c.binary_zero_point = p->binary_zero_point;
    c.output_type = p->output_type;
    c.clamp_min = p->clamp_min;
    c.clamp_max = p->clamp_max;
    c.lane_groups = p->lane_groups;
    c.lane_planes = p->lane_planes;
    c.filter = p->filter;
    c.multiplier = p->multiplier;
    c.bias = p->bias;
    c.thresholds = p->thresholds;
    c.tap_popcount = p->tap_popcount;
    c.lane_filter = p->lane_filter;
    c.lane_thresholds = p->lane_thresholds;
    c.scratch = strip + p->filter_h * row_words;
    for (oy = 0; oy < p->out_h; ++oy) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        int32_t first = -1, rows = 0;
        for (ky = 0; ky < p->filter_h; ++ky) {
            const int32_t iy = iy0 + ky * p->dilation_h;
            if (iy >= 0 && iy < p->in_h) {
                if (first < 0) {
                    first = ky;
                }
                glt_frontend_opt(&f, frame + iy * p->in_w * p->channels, strip + rows * row_words);
                ++rows;
            }
        }
        c.in_h = rows;
        c.pad_top = first < 0 ? p->filter_h : first; /* strip row r is filter row first + r */
        glt_bconv2d_opt(&c, strip, (uint8_t *)output + oy * out_row);
    }
}

/* Known vectors for the SIMD instructions: UQADD8 saturates each byte, and the
 * comparison (UADD8 of 256 - u, SEL) gives bit w of byte i = lane sum >= u at the
 * edges (sums 0 and 255, u = 1 and 255). */
const char *glt_stem_selfcheck(void)
{
#if GLT_STEM_DSP
    static const uint32_t add_a[4] = {0xFF807F01u, 0x00000000u, 0xFEFF01F0u, 0x7F7F8081u};
    static const uint32_t add_b[4] = {0x01808001u, 0xFFFFFFFFu, 0x01010F10u, 0x80818080u};
    static const uint32_t add_sum[4] = {0xFFFFFF02u, 0xFFFFFFFFu, 0xFFFF10FFu, 0xFFFFFFFFu};
    rgb_job job;
    uint32_t cmp[GLT_STEM_COMPARE_WORDS];
    int32_t i, w, v, failed_add = 0, failed_cmp = 0;
    for (i = 0; i < 4; ++i) {
        uint32_t a = add_a[i];
        LANE_ADD(a, add_b[i]);
        failed_add |= a != add_sum[i];
    }
    for (v = 0; v < 4; ++v) {
        /* lane sums and thresholds u in 1..255 around the edges, every lane kept */
        uint32_t expected = 0;
        for (i = 0; i < GLT_STEM_COMPARE_WORDS; ++i) {
            cmp[i] = 0;
        }
        for (w = 0; w < 8; ++w) {
            job.acc[w] = 0;
            for (i = 0; i < 4; ++i) {
                const int32_t lane = 8 * i + w;
                static const uint8_t edge_sum[4] = {255, 254, 0, 1}, edge_u[4] = {255, 255, 1, 1};
                uint32_t sum = (uint32_t)((v & 1) ? 255 - 3 * lane : 7 * lane + 64 * (v >> 1)) & 0xFFu;
                uint32_t u = 1u + (uint32_t)((v & 2) ? 254 - 8 * lane : 8 * lane + v) % 255u;
                if (v == 0 && lane < 4) {
                    sum = edge_sum[lane];
                    u = edge_u[lane];
                }
                job.acc[w] |= sum << (8 * i);
                cmp[w] |= ((256u - u) & 0xFFu) << (8 * i);
                expected |= (uint32_t)(sum >= u) << lane;
            }
        }
        cmp[8] = 0xFFFFFFFFu;
        cmp[COMPARE_INVERT] = v == 3 ? 0x0F0F0F0Fu : 0u;
        expected ^= cmp[COMPARE_INVERT];
        job.compare = cmp;
        job.bits = ~expected;
        finish_check(&job);
        failed_cmp |= job.bits != expected;
        {
            lanes8 s;
            for (w = 0; w < 8; ++w) {
                s.a[w] = job.acc[w];
            }
            failed_cmp |= compare8(&s, cmp) != expected;
        }
    }
    if (failed_add || failed_cmp) {
        s_portable = 1;
        return failed_add ? (failed_cmp ? "stem SIMD: UQADD8 saturation and UADD8+SEL comparison"
                                        : "stem SIMD: UQADD8 saturation")
                          : "stem SIMD: UADD8+SEL comparison (GE flags)";
    }
#endif
    s_portable = 0;
    return 0;
}

void glt_stem_opt(const glt_stem_params *p, const uint8_t *frame, void *output)
{
    if (p->lv_table != 0 && p->output_type == GLT_OUT_BITS) {
        if (s_portable) {
            stem_levels_portable(p, frame, (uint32_t *)output);
        } else {
            stem_levels(p, frame, (uint32_t *)output);
        }
    } else {
        stem_words(p, frame, output);
    }
}
