/*
 * Optimized binary convolution for Cortex-M (bit-identical to glt_bconv2d_ref).
 * Cortex-M has no popcount instruction; two algorithms avoid needing one.
 *
 * 1. Lanes (bits output with lane tables, i.e. no zero-padding correction; the
 *    common case in a BNN body). Transposed: for output channel j,
 *      count_j = n1 + P_j - 2 * S_j,
 *    n1 = set bits of the receptive field ("window"), P_j = set bits of channel j's
 *    filter, S_j = number of window bits set where channel j's weight is -1 = the
 *    sum, over the window's set bits only, of a precomputed column word holding
 *    the weight bits of 32 channels. The columns add into a bit-sliced counter
 *    (lane j of plane p = bit p of channel j's sum) through Harley-Seal
 *    carry-save blocks of 16 columns; unset window bits cost nothing (and when
 *    most bits are set, the unset ones are summed instead). The counter starts at
 *    floor((threshold - P_j) / 2), so `count_j > threshold_j` becomes a
 *    bit-sliced comparison with a scalar that yields the packed output word.
 *    From two 32-channel lane groups on, the summed bits are listed once per
 *    window as column indices and every lane group reads that list; one lane group
 *    scans the window words instead. Per summed window bit and 32 channels on
 *    Thumb-2 (assembly): 2 instructions to load its column (about 5 to find it
 *    when scanning) + 15/16 of a 5-instruction CSA, plus listing the bit once.
 *
 * 2. SWAR (float/int8 output, zero-padding, or no lane tables): per output
 *    channel, popcount(window ^ filter row) over the N window words. Words come
 *    three at a time (x0, x1, x2): x0 and x1 are reduced to 2-bit field counts
 *    (<= 2) and the even/odd bits of x2 are added into the spare headroom of those
 *    fields (<= 3), so three words share one nibble stage (<= 12 per nibble).
 *    Byte sums use USADA8: acc_z sums the bytes of z (lo + 16*hi), acc_h the high
 *    nibbles (16*hi), and the count is acc_z - 15*(acc_h/16). Masks stay in
 *    registers so Thumb-2 folds every shift into an AND. On ARMv7E-M (Cortex-M4/M7)
 *    and ARMv8-M with DSP the six-word block is inline assembly (GCC otherwise
 *    rematerializes constants and spills): 6 LDRD + 6 EOR + 32 ALU = 44
 *    instructions per 192 binary MACs (4.36 MACs/instruction); elsewhere the
 *    same arithmetic is plain C.
 *
 * Both gather the window once per output pixel and group (im2col into scratch;
 * outside taps are zeros, i.e. LCE's one-padding, corrected afterwards for
 * zero-padding). SWAR reads 1x1 windows, and windows of full-width rows of one
 * group, in place (a dilation along a size-1 filter dimension changes nothing).
 * Float output whose window is the whole input (a 1x1-output classifier), whose
 * clamps never bite and whose rows are whole blocks of 24 words takes
 * glt_bconv2d_dense_opt's all-assembly rows (for a small layer such as a 2-class
 * classifier, calls and set-up are a large share); other whole-window layers
 * take SWAR, whose window is then the input itself.
 */
#include "glt_bconv2d.h"

#define GLT_MAX_TAPS 64 /* filter_h * filter_w supported by the optimized kernel */

#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define GLT_BCONV_ASM 1
#else
#define GLT_BCONV_ASM 0
#endif

#if defined(__GNUC__)
#define GLT_NOINLINE __attribute__((noinline))
#else
#define GLT_NOINLINE
#endif

/* An N-word reduction is split as [head: N % 3 words][one triple?][hexads]. */
typedef struct {
    int32_t n;       /* words per filter row */
    int32_t head;    /* N % 3 leading words */
    int32_t triple;  /* 1 if a lone triple follows the head */
    int32_t hexads;  /* 6-word blocks after them */
} run_shape;

static run_shape make_shape(int32_t n)
{
    run_shape s;
    int32_t triples = n / 3;
    s.n = n;
    s.head = n - 3 * triples;
    s.triple = triples & 1;
    s.hexads = triples >> 1;
    return s;
}

#if GLT_BCONV_ASM
/* One triple, x0 x1 x2 already XORed; w0 w1 are scratch. */
#define TRIPLE_BODY(x0, x1, x2)                                  \
    "and    %[w0], %[m55], %[" x0 "], lsr #1\n\t"                \
    "sub    %[" x0 "], %[" x0 "], %[w0]\n\t"                     \
    "and    %[w0], %[m55], %[" x2 "]\n\t"                        \
    "add    %[" x0 "], %[" x0 "], %[w0]\n\t"                     \
    "and    %[w1], %[m55], %[" x1 "], lsr #1\n\t"                \
    "sub    %[" x1 "], %[" x1 "], %[w1]\n\t"                     \
    "and    %[w1], %[m55], %[" x2 "], lsr #1\n\t"                \
    "add    %[" x1 "], %[" x1 "], %[w1]\n\t"                     \
    "and    %[w0], %[m33], %[" x0 "], lsr #2\n\t"                \
    "and    %[w1], %[m33], %[" x1 "], lsr #2\n\t"                \
    "add    %[w0], %[w0], %[w1]\n\t"                             \
    "add    %[" x0 "], %[" x0 "], %[" x1 "]\n\t"                 \
    "mls    %[" x0 "], %[w0], %[three], %[" x0 "]\n\t"           \
    "usada8 %[az], %[" x0 "], %[zero], %[az]\n\t"                \
    "and    %[" x0 "], %[" x0 "], #0xF0F0F0F0\n\t"               \
    "usada8 %[ah], %[" x0 "], %[zero], %[ah]\n\t"

#define ASM_OPERANDS                                                              \
    : [a0] "=&r"(t0), [a1] "=&r"(t1), [a2] "=&r"(t2), [a3] "=&r"(t3), [w0] "=&r"(t4), \
      [w1] "=&r"(t5), [az] "+r"(acc_z), [ah] "+r"(acc_h), [A] "+r"(a), [W] "+r"(w)  \
    : [m55] "r"(m55), [m33] "r"(m33), [three] "r"(three), [zero] "r"(zero)          \
    : "memory"

/* Six words at a and w, XORed and counted by BODY (a triple macro); both pointers
 * advance (post-indexed LDRD). */
#define HEXAD_ASM(BODY)                                              \
    "ldrd   %[a0], %[a1], [%[A]], #8\n\t"                          \
    "ldrd   %[w0], %[w1], [%[W]], #8\n\t"                          \
    "eor    %[a0], %[a0], %[w0]\n\t"                               \
    "eor    %[a1], %[a1], %[w1]\n\t"                               \
    "ldrd   %[a2], %[a3], [%[A]], #8\n\t"                          \
    "ldrd   %[w0], %[w1], [%[W]], #8\n\t"                          \
    "eor    %[a2], %[a2], %[w0]\n\t"                               \
    "eor    %[a3], %[a3], %[w1]\n\t"                               \
    BODY("a0", "a1", "a2")                                           \
    "ldrd   %[a0], %[a1], [%[A]], #8\n\t"                          \
    "ldrd   %[w0], %[w1], [%[W]], #8\n\t"                          \
    "eor    %[a0], %[a0], %[w0]\n\t"                               \
    "eor    %[a1], %[a1], %[w1]\n\t"                               \
    BODY("a3", "a0", "a1")

#define HEXAD() __asm__(HEXAD_ASM(TRIPLE_BODY) ASM_OPERANDS)

/* Three words at a and w; both pointers advance. */
#define TRIPLE()                                                     \
    __asm__("ldrd   %[a0], %[a1], [%[A]], #8\n\t"                    \
            "ldrd   %[w0], %[w1], [%[W]], #8\n\t"                    \
            "eor    %[a0], %[a0], %[w0]\n\t"                         \
            "eor    %[a1], %[a1], %[w1]\n\t"                         \
            "ldr    %[a2], [%[A]], #4\n\t"                           \
            "ldr    %[w0], [%[W]], #4\n\t"                           \
            "eor    %[a2], %[a2], %[w0]\n\t"                         \
            TRIPLE_BODY("a0", "a1", "a2")                            \
            ASM_OPERANDS)

/* The dense path's variant of a triple: one accumulator instead of two. The
 * bytes of z are lo + 16 hi (nibble counts <= 12); those of z rotated by 4 are
 * hi + 16 lo' (the next byte's low nibble): their two byte sums add up to 17 times
 * the count, so `az / 17` is exact and a register is freed; the 0x55/0xAA masks
 * are immediates (the shifts move onto SUB/ADD), which frees another. */
#define TRIPLE_BODY17(x0, x1, x2)                                \
    "and    %[w0], %[" x0 "], #0xAAAAAAAA\n\t"                   \
    "sub    %[" x0 "], %[" x0 "], %[w0], lsr #1\n\t"             \
    "and    %[w0], %[" x2 "], #0x55555555\n\t"                   \
    "add    %[" x0 "], %[" x0 "], %[w0]\n\t"                     \
    "and    %[w1], %[" x1 "], #0xAAAAAAAA\n\t"                   \
    "sub    %[" x1 "], %[" x1 "], %[w1], lsr #1\n\t"             \
    "and    %[w1], %[" x2 "], #0xAAAAAAAA\n\t"                   \
    "add    %[" x1 "], %[" x1 "], %[w1], lsr #1\n\t"             \
    "and    %[w0], %[m33], %[" x0 "], lsr #2\n\t"                \
    "and    %[w1], %[m33], %[" x1 "], lsr #2\n\t"                \
    "add    %[w0], %[w0], %[w1]\n\t"                             \
    "add    %[" x0 "], %[" x0 "], %[" x1 "]\n\t"                 \
    "mls    %[" x0 "], %[w0], %[three], %[" x0 "]\n\t"           \
    "usada8 %[az], %[" x0 "], %[zero], %[az]\n\t"                \
    "ror    %[" x0 "], %[" x0 "], #4\n\t"                        \
    "usada8 %[az], %[" x0 "], %[zero], %[az]\n\t"

#define HEXAD17_BODY HEXAD_ASM(TRIPLE_BODY17)

/* az = 17 x the XOR-popcount of one filter row (a positive multiple of 24 words)
 * with the window; w advances past the row. The loop lives inside the assembly
 * (13 registers); window and word count are read from memory (one LDRD). */
typedef struct {
    const uint32_t *window;
    int32_t words;
} dense_row;

#define DENSE_ROW17(row)                                                                  \
    __asm__("ldrd   %[A], %[k], %[ro]\n\t"                                                \
            "mov    %[az], #0\n\t"                                                        \
            "1:\n\t" HEXAD17_BODY HEXAD17_BODY HEXAD17_BODY HEXAD17_BODY                   \
            "subs   %[k], %[k], #24\n\t"                                                  \
            "bne    1b\n\t"                                                               \
            : [a0] "=&r"(t0), [a1] "=&r"(t1), [a2] "=&r"(t2), [a3] "=&r"(t3),              \
              [w0] "=&r"(t4), [w1] "=&r"(t5), [az] "=&r"(az), [A] "=&r"(a), [W] "+r"(w),   \
              [k] "=&r"(k)                                                                \
            : [ro] "m"(row), [m33] "r"(m33), [three] "r"(three),                          \
              [zero] "r"(zero)                                                            \
            : "cc", "memory")

#define TWO_OVER_17 0xE1E1E1E2u /* 2 * (17^-1 mod 2^32): 2 * count = az * this, exactly */

#else /* portable C, same arithmetic */

#define TRIPLE()                                                              \
    do {                                                                      \
        const uint32_t x0 = a[0] ^ w[0];                                      \
        const uint32_t x1 = a[1] ^ w[1];                                      \
        const uint32_t x2 = a[2] ^ w[2];                                      \
        const uint32_t p = x0 - ((x0 >> 1) & m55) + (x2 & m55);               \
        const uint32_t q = x1 - ((x1 >> 1) & m55) + ((x2 >> 1) & m55);        \
        const uint32_t h = ((p >> 2) & m33) + ((q >> 2) & m33);               \
        const uint32_t z = (p + q) - h * three; /* nibble counts <= 12 */     \
        acc_z = glt_sum_bytes_acc(z, acc_z);                                  \
        acc_h = glt_sum_bytes_acc(z & 0xF0F0F0F0u, acc_h);                    \
        a += 3;                                                               \
        w += 3;                                                               \
    } while (0)

#define HEXAD()        \
    do {               \
        TRIPLE();      \
        TRIPLE();      \
    } while (0)

#endif

/*
 * For each of `rows` consecutive filter rows r (N words each):
 *   count = sum over the N words of popcount(window[i] ^ filter[r * N + i])
 *   thresholds != NULL: shifts bit (count > thresholds[r]) into *bits from the top
 *   thresholds == NULL: acc_out[r] = count
 * Out of line so that the blocks get the whole register file.
 */
static GLT_NOINLINE void xor_popcount_rows(const uint32_t *window, const uint32_t *filter,
                                           int32_t rows, const run_shape *s,
                                           const int32_t *thresholds, int32_t *acc_out,
                                           uint32_t *bits)
{
    uint32_t m55 = 0x55555555u, m33 = 0x33333333u, three = 3u, zero = 0u;
    const uint32_t *w = filter;
    const int32_t head = s->head, triple = s->triple, hexads = s->hexads;
    uint32_t out_bits = *bits;
    int32_t r;
#if GLT_BCONV_ASM
    uint32_t t0, t1, t2, t3, t4, t5;
#endif
    /* Opaque: kept in registers instead of being rematerialized. */
    GLT_OPAQUE(m55);
    GLT_OPAQUE(m33);
    GLT_OPAQUE(three);
    GLT_OPAQUE(zero);

    for (r = 0; r < rows; ++r) {
        const uint32_t *a = window;
        uint32_t acc_z = 0, acc_h = 0; /* sums of the bytes of z and of z's high nibbles */
        int32_t k, count;
        if (head != 0) {
            const uint32_t x0 = a[0] ^ w[0];
            const uint32_t x1 = head > 1 ? a[1] ^ w[1] : 0u;
            const uint32_t p = x0 - ((x0 >> 1) & m55);
            const uint32_t q = x1 - ((x1 >> 1) & m55);
            const uint32_t h = ((p >> 2) & m33) + ((q >> 2) & m33);
            const uint32_t z = (p + q) - h * three;
            acc_z = glt_sum_bytes_acc(z, acc_z);
            acc_h = glt_sum_bytes_acc(z & 0xF0F0F0F0u, acc_h);
            a += head;
            w += head;
        }
        if (triple != 0) {
            TRIPLE();
        }
        for (k = hexads; k > 1; k -= 2) {
            HEXAD();
            HEXAD();
        }
        if (k != 0) {
            HEXAD();
        }
        /* bytes of z were lo + 16*hi; the count is lo + hi */
        count = (int32_t)(acc_z - 15u * (acc_h >> 4));
        if (thresholds != 0) {
            /* bit = count > threshold; no overflow: thresholds lie in [-1, 2^30]
               (deploy/lower/ clamps LCE's +-inf) */
            out_bits = (out_bits >> 1) | ((uint32_t)(thresholds[r] - count) & 0x80000000u);
        } else {
            acc_out[r] = count;
        }
    }
    *bits = out_bits;
}

/* Gathers the group's receptive field of one output pixel; returns the number of
 * outside taps and lists them in `outside`. */
static int32_t gather_window(const glt_bconv2d_params *p, const uint32_t *input, int32_t oy,
                             int32_t ox, int32_t group, uint32_t *window, int32_t *outside)
{
    const int32_t gw = p->group_words;
    const int32_t iy0 = oy * p->stride_h - p->pad_top;
    const int32_t ix0 = ox * p->stride_w - p->pad_left;
    int32_t n_outside = 0, ky, kx, k;
    if (iy0 >= 0 && ix0 >= 0 && iy0 + (p->filter_h - 1) * p->dilation_h < p->in_h &&
        ix0 + (p->filter_w - 1) * p->dilation_w < p->in_w) { /* inside: no checks */
        const int32_t step_x = p->dilation_w * p->in_words;
        for (ky = 0; ky < p->filter_h; ++ky) {
            const uint32_t *src =
                input + ((iy0 + ky * p->dilation_h) * p->in_w + ix0) * p->in_words + group * gw;
            for (kx = 0; kx < p->filter_w; ++kx, src += step_x) {
                for (k = 0; k < gw; ++k) {
                    *window++ = src[k];
                }
            }
        }
        return 0;
    }
    for (ky = 0; ky < p->filter_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        for (kx = 0; kx < p->filter_w; ++kx) {
            const int32_t ix = ix0 + kx * p->dilation_w;
            uint32_t *dst = window + (ky * p->filter_w + kx) * gw;
            if (iy >= 0 && iy < p->in_h && ix >= 0 && ix < p->in_w) {
                const uint32_t *src = input + (iy * p->in_w + ix) * p->in_words + group * gw;
                for (k = 0; k < gw; ++k) {
                    dst[k] = src[k];
                }
            } else {
                for (k = 0; k < gw; ++k) {
                    dst[k] = 0u; /* +1 values (one-padding) */
                }
                outside[n_outside++] = ky * p->filter_w + kx;
            }
        }
    }
    return n_outside;
}

/* LCE counts binary_zero_point for an outside tap under zero-padding; the window
 * held zeros there, which counted the tap's own popcount instead. */
static int32_t padding_correction(const glt_bconv2d_params *p, int32_t oc, const int32_t *outside,
                                  int32_t n_outside)
{
    const uint16_t *tp = p->tap_popcount + oc * p->filter_h * p->filter_w;
    int32_t t, corr = 0;
    for (t = 0; t < n_outside; ++t) {
        corr += p->binary_zero_point - (int32_t)tp[outside[t]];
    }
    return corr;
}

/* ----------------------------------------------------------------------------
 * Bit-sliced algorithm (bits output, no zero-padding correction).
 *
 * For output channel j: count_j = n1 + P_j - 2 * S_j, where n1 = popcount(window),
 * P_j = popcount(filter row j) and S_j = the sum, over the window's set bits i, of
 * bit j of lane_filter column i (32 channels as 32 lanes). S accumulates in a
 * bit-sliced counter (lane j of plane p = bit p of channel j's value) through
 * Harley-Seal carry-save blocks of 16 columns: ones, twos, fours and eights stay
 * in registers, weight-16 carries go to a zero-based counter `high` (short carry
 * chains), added to planes 4.. at the end. The counter starts at floor(T / 2)
 * (T = threshold - P_j), so `count_j > threshold_j` becomes a bit-sliced comparison
 * with a scalar, which yields the packed output word.
 *
 * Complement: when more than half the window bits are set, the unset bits are
 * summed instead: S_j = P_j - S'_j, the counter starts at -floor((threshold +
 * P_j) / 2) and the comparison is reversed, so a window costs min(n1, 32N - n1)
 * columns.
 *
 * Finding a bit costs about 5 instructions. With one lane group, lanes_scan
 * finds the set bits in the (complemented) window words; a sentinel word of ones
 * after the window points at 32 zero columns, which pad the last block of 16.
 * With more lane groups, lanes_columns lists the summed bits once per window as
 * 16-bit column indices (padded with index 32N, a zero column) and lanes_list
 * reads the list in every lane group, at 2 instructions per column.
 * ------------------------------------------------------------------------- */

#define LANE_PLANES_MAX 16
#define LANE_THRESHOLD_WORDS 33 /* see glt_bconv2d.h */

typedef struct {
    const uint32_t *window; /* offset 0: N words, then the sentinel (lanes_scan) */
    const uint32_t *cols;   /* 4: the lane group's columns (N * 32 + 32 words) */
    uint32_t *planes;       /* 8: planes 0..3 (ones, twos, fours, eights): in and out */
    uint32_t *high;         /* 12: zero-based counter of weight-16 carries (out) */
    int32_t blocks;         /* 16: blocks of 16 columns, >= 1 */
    uint32_t invert;        /* 20: 0, or ~0 to sum the unset bits (lanes_scan) */
    const uint16_t *list;   /* 24: column indices, 16 * blocks of them (lanes_list) */
} lanes_job;

#if defined(__GNUC__) && defined(__thumb2__)
/*
 * Thumb-2, lanes_scan: registers r0 ones, r1 twos, r2/r3 columns, r4 bits left of the current
 * window word (bit-reversed: CLZ finds the lowest), r5 its columns, r6 the next
 * window word, r7/r8/r11 temporaries, r9/r10 pending carries, r12 0x80000000;
 * the stack holds fours, eights, the pending weight-8 carry, the block count, the
 * high pointer and the inversion mask. Per column: 5 instructions to find it (CBNZ,
 * CLZ, LDR, LSR, BIC) plus 15/16 of a 5-instruction carry-save adder.
 */
#define NEXT_ASM(x)                             \
    "1:\n\t"                                    \
    "cbnz   r4, 2f\n\t"                         \
    "ldr    r4, [r6], #4\n\t"                   \
    "ldr    r11, [sp, #20]\n\t"                 \
    "eor    r4, r4, r11\n\t"                    \
    "rbit   r4, r4\n\t"                         \
    "add    r5, r5, #128\n\t"                   \
    "b      1b\n"                               \
    "2:\n\t"                                    \
    "clz    r11, r4\n\t"                        \
    "ldr    " x ", [r5, r11, lsl #2]\n\t"       \
    "lsr    r11, r12, r11\n\t"                  \
    "bic    r4, r4, r11\n\t"
/* carry = majority(ones, r2, r3), ones ^= r2 ^ r3 */
#define CSA_ONES_ASM(carry)                     \
    NEXT_ASM("r2")                              \
    NEXT_ASM("r3")                              \
    "and    r7, r0, r2\n\t"                     \
    "eor    r0, r0, r2\n\t"                     \
    "and    " carry ", r0, r3\n\t"              \
    "eor    r0, r0, r3\n\t"                     \
    "orr    " carry ", " carry ", r7\n\t"
/* carry = majority(twos, r9, r8), twos ^= r9 ^ r8 */
#define CSA_TWOS_ASM(carry)                     \
    "and    r7, r1, r9\n\t"                     \
    "eor    r1, r1, r9\n\t"                     \
    "and    " carry ", r1, r8\n\t"              \
    "eor    r1, r1, r8\n\t"                     \
    "orr    " carry ", " carry ", r7\n\t"
/* r10 = majority(fours, r10, r9), fours ^= r10 ^ r9 */
#define CSA_FOURS_ASM                           \
    "ldr    r11, [sp]\n\t"                      \
    "and    r7, r11, r10\n\t"                   \
    "eor    r11, r11, r10\n\t"                  \
    "and    r10, r11, r9\n\t"                   \
    "eor    r11, r11, r9\n\t"                   \
    "orr    r10, r10, r7\n\t"                   \
    "str    r11, [sp]\n\t"
/* 8 columns into ones/twos; the weight-4 carries in r10 (first) and r9 (second) */
/* high += sixteens (r7), the high pointer at [sp + off]; a short carry chain */
#define ADD_SIXTEENS_ASM(off)                   \
    "cbz    r7, 5f\n\t"                         \
    "ldr    r9, [sp, #" off "]\n"               \
    "4:\n\t"                                    \
    "ldr    r8, [r9]\n\t"                       \
    "and    r10, r8, r7\n\t"                    \
    "eor    r8, r8, r7\n\t"                     \
    "str    r8, [r9], #4\n\t"                   \
    "movs   r7, r10\n\t"                        \
    "bne    4b\n"                               \
    "5:\n\t"

#define EIGHT_COLUMNS_ASM                       \
    CSA_ONES_ASM("r9")                          \
    CSA_ONES_ASM("r8")                          \
    CSA_TWOS_ASM("r10")                         \
    CSA_ONES_ASM("r9")                          \
    CSA_ONES_ASM("r8")                          \
    CSA_TWOS_ASM("r9")

__attribute__((naked, noinline)) static void lanes_scan(lanes_job *job __attribute__((unused)))
{
    __asm__("push   {r0, r4-r11, lr}\n\t"
            "sub    sp, sp, #24\n\t" /* fours, eights, eights carry, blocks, high, invert */
            "ldr    r6, [r0]\n\t"
            "ldr    r5, [r0, #4]\n\t"
            "sub    r5, r5, #128\n\t"
            "ldr    r7, [r0, #8]\n\t"
            "ldr    r2, [r0, #12]\n\t"
            "str    r2, [sp, #16]\n\t"
            "ldr    r2, [r0, #16]\n\t"
            "str    r2, [sp, #12]\n\t"
            "ldr    r2, [r0, #20]\n\t"
            "str    r2, [sp, #20]\n\t"
            "ldrd   r8, r9, [r7, #8]\n\t"
            "strd   r8, r9, [sp]\n\t"
            "ldrd   r0, r1, [r7]\n\t"
            "mov    r12, #0x80000000\n\t"
            "movs   r4, #0\n"
            "3:\n\t"
            EIGHT_COLUMNS_ASM
            CSA_FOURS_ASM
            "str    r10, [sp, #8]\n\t"
            EIGHT_COLUMNS_ASM
            CSA_FOURS_ASM
            /* sixteens (r7) = majority(eights, eights carry, r10) */
            "ldr    r11, [sp, #4]\n\t"
            "ldr    r9, [sp, #8]\n\t"
            "and    r8, r11, r9\n\t"
            "eor    r11, r11, r9\n\t"
            "and    r7, r11, r10\n\t"
            "eor    r11, r11, r10\n\t"
            "orr    r7, r7, r8\n\t"
            "str    r11, [sp, #4]\n\t"
            ADD_SIXTEENS_ASM("16")
            "ldr    r7, [sp, #12]\n\t"
            "subs   r7, r7, #1\n\t"
            "str    r7, [sp, #12]\n\t"
            "bne    3b\n\t"
            "ldr    r7, [sp, #24]\n\t"
            "ldr    r7, [r7, #8]\n\t"
            "strd   r0, r1, [r7]\n\t"
            "ldrd   r8, r9, [sp]\n\t"
            "strd   r8, r9, [r7, #8]\n\t"
            "add    sp, sp, #24\n\t"
            "pop    {r0, r4-r11, pc}\n");
}
#undef NEXT_ASM
#undef CSA_FOURS_ASM
/*
 * Thumb-2, lanes_list: r4 the next list entry, r5 the columns, r6 fours, r12
 * eights (both freed by the list); the stack holds the pending weight-8 carry, the
 * block count and the high pointer. Per column: 2 instructions (LDRH, LDR) plus
 * 15/16 of a 5-instruction carry-save adder.
 */
#define NEXT_ASM(x)                             \
    "ldrh   r11, [r4], #2\n\t"                  \
    "ldr    " x ", [r5, r11, lsl #2]\n\t"
/* r10 = majority(fours, r10, r9), fours ^= r10 ^ r9 */
#define CSA_FOURS_ASM                           \
    "and    r7, r6, r10\n\t"                    \
    "eor    r6, r6, r10\n\t"                    \
    "and    r10, r6, r9\n\t"                    \
    "eor    r6, r6, r9\n\t"                     \
    "orr    r10, r10, r7\n\t"

__attribute__((naked, noinline)) static void lanes_list(lanes_job *job __attribute__((unused)))
{
    __asm__("push   {r0, r4-r11, lr}\n\t"
            "sub    sp, sp, #16\n\t" /* eights carry, blocks, high, (alignment) */
            "ldr    r4, [r0, #24]\n\t"
            "ldr    r5, [r0, #4]\n\t"
            "ldr    r7, [r0, #8]\n\t"
            "ldr    r2, [r0, #12]\n\t"
            "str    r2, [sp, #8]\n\t"
            "ldr    r2, [r0, #16]\n\t"
            "str    r2, [sp, #4]\n\t"
            "ldrd   r6, r12, [r7, #8]\n\t"
            "ldrd   r0, r1, [r7]\n"
            "3:\n\t"
            EIGHT_COLUMNS_ASM
            CSA_FOURS_ASM
            "str    r10, [sp]\n\t"
            EIGHT_COLUMNS_ASM
            CSA_FOURS_ASM
            /* sixteens (r7) = majority(eights, eights carry, r10) */
            "ldr    r9, [sp]\n\t"
            "and    r8, r12, r9\n\t"
            "eor    r12, r12, r9\n\t"
            "and    r7, r12, r10\n\t"
            "eor    r12, r12, r10\n\t"
            "orr    r7, r7, r8\n\t"
            ADD_SIXTEENS_ASM("8")
            "ldr    r7, [sp, #4]\n\t"
            "subs   r7, r7, #1\n\t"
            "str    r7, [sp, #4]\n\t"
            "bne    3b\n\t"
            "ldr    r7, [sp, #16]\n\t"
            "ldr    r7, [r7, #8]\n\t"
            "strd   r0, r1, [r7]\n\t"
            "strd   r6, r12, [r7, #8]\n\t"
            "add    sp, sp, #16\n\t"
            "pop    {r0, r4-r11, pc}\n");
}

/* See the C version below. Per listed bit: CLZ, ADD, STRH, LSR, BICS, BNE (the
 * word is bit-reversed, so CLZ finds its lowest bit). */
__attribute__((naked, noinline)) static int32_t lanes_columns(const uint32_t *window __attribute__((unused)),
                                                              int32_t n __attribute__((unused)),
                                                              uint32_t invert __attribute__((unused)),
                                                              uint16_t *list __attribute__((unused)))
{
    __asm__("push   {r4-r7, lr}\n\t"
            "mov    r4, r3\n\t"            /* the list's start */
            "movs   r5, #0\n\t"            /* 32 * word index */
            "lsl    r6, r1, #5\n\t"        /* 32 * n: the end, and the zero column */
            "mov    r12, #0x80000000\n"
            "1:\n\t"
            "cmp    r5, r6\n\t"
            "beq    4f\n\t"
            "ldr    r7, [r0], #4\n\t"
            "eor    r7, r7, r2\n\t"
            "rbit   r7, r7\n\t"
            "cbz    r7, 3f\n"
            "2:\n\t"
            "clz    lr, r7\n\t"
            "add    r1, lr, r5\n\t"
            "strh   r1, [r3], #2\n\t"
            "lsr    lr, r12, lr\n\t"
            "bics   r7, r7, lr\n\t"
            "bne    2b\n"
            "3:\n\t"
            "add    r5, r5, #32\n\t"
            "b      1b\n"
            "4:\n\t"                         /* pad to whole blocks of 16 (32 bytes) */
            "sub    r1, r3, r4\n\t"
            "tst    r1, #31\n\t"
            "beq    5f\n\t"
            "strh   r6, [r3], #2\n\t"
            "b      4b\n"
            "5:\n\t"
            "lsr    r0, r1, #5\n\t"
            "pop    {r4-r7, pc}\n");
}
#undef NEXT_ASM
#undef CSA_ONES_ASM
#undef CSA_TWOS_ASM
#undef CSA_FOURS_ASM
#undef EIGHT_COLUMNS_ASM
#undef ADD_SIXTEENS_ASM
#else /* portable C, same algorithms */

/* Carry-save adder: a + b + c = l + 2 h */
#define CSA(h, l, a, b, c)                      \
    do {                                        \
        const uint32_t u_ = (a) ^ (b);          \
        const uint32_t a_ = (a);                \
        (l) = u_ ^ (c);                         \
        (h) = (a_ & (b)) | (u_ & (c));          \
    } while (0)

/* The column of the next summed window bit: the next list entry, or the next set
   bit of the (inverted) window (the sentinel pads the end). */
#define NEXT(x)                                         \
    do {                                                \
        if (listed) {                                   \
            (x) = cols[*list++];                        \
        } else {                                        \
            while (bits == 0) {                         \
                bits = *window++ ^ invert;              \
                cols += 32;                             \
            }                                           \
            (x) = cols[glt_ctz32(bits)];                \
            bits &= bits - 1u;                          \
        }                                               \
    } while (0)

/* `listed` is a constant in each caller, so each gets its own loop. */
GLT_INLINE void lanes_accumulate(lanes_job *job, const int listed)
{
    const uint32_t *window = job->window, *cols = listed ? job->cols : job->cols - 32;
    const uint16_t *list = job->list;
    const uint32_t invert = job->invert;
    uint32_t ones = job->planes[0], twos = job->planes[1], fours = job->planes[2];
    uint32_t eights = job->planes[3], bits = 0;
    int32_t blocks = job->blocks;
    while (blocks-- > 0) {
        uint32_t x0, x1, twos_a, twos_b, fours_a, fours_b, eights_a, eights_b, carry;
        uint32_t *h = job->high;
        NEXT(x0); NEXT(x1); CSA(twos_a, ones, ones, x0, x1);
        NEXT(x0); NEXT(x1); CSA(twos_b, ones, ones, x0, x1);
        CSA(fours_a, twos, twos, twos_a, twos_b);
        NEXT(x0); NEXT(x1); CSA(twos_a, ones, ones, x0, x1);
        NEXT(x0); NEXT(x1); CSA(twos_b, ones, ones, x0, x1);
        CSA(fours_b, twos, twos, twos_a, twos_b);
        CSA(eights_a, fours, fours, fours_a, fours_b);
        NEXT(x0); NEXT(x1); CSA(twos_a, ones, ones, x0, x1);
        NEXT(x0); NEXT(x1); CSA(twos_b, ones, ones, x0, x1);
        CSA(fours_a, twos, twos, twos_a, twos_b);
        NEXT(x0); NEXT(x1); CSA(twos_a, ones, ones, x0, x1);
        NEXT(x0); NEXT(x1); CSA(twos_b, ones, ones, x0, x1);
        CSA(fours_b, twos, twos, twos_a, twos_b);
        CSA(eights_b, fours, fours, fours_a, fours_b);
        CSA(carry, eights, eights, eights_a, eights_b);
        while (carry != 0) { /* the counter never overflows: the carry dies */
            const uint32_t next = *h & carry;
            *h++ ^= carry;
            carry = next;
        }
    }
    job->planes[0] = ones;
    job->planes[1] = twos;
    job->planes[2] = fours;
    job->planes[3] = eights;
}
#undef NEXT
#undef CSA

static void lanes_scan(lanes_job *job)
{
    lanes_accumulate(job, 0);
}

static void lanes_list(lanes_job *job)
{
    lanes_accumulate(job, 1);
}

/* Lists the window bits to sum (set ones, or unset ones when `invert` is ~0) as
 * column indices, padded with 32 * n (a zero column) to whole blocks of 16;
 * returns the number of blocks. `list` holds 16 * n + 16 entries. */
static int32_t lanes_columns(const uint32_t *window, int32_t n, uint32_t invert, uint16_t *list)
{
    uint16_t *out = list;
    int32_t w;
    for (w = 0; w < n; ++w) {
        const uint32_t base = 32u * (uint32_t)w;
        uint32_t bits = window[w] ^ invert;
        while (bits != 0u) {
            *out++ = (uint16_t)(base + (uint32_t)glt_ctz32(bits));
            bits &= bits - 1u;
        }
    }
    while (((out - list) & 15) != 0) {
        *out++ = (uint16_t)(32 * n);
    }
    return (int32_t)((out - list) >> 4);
}
#endif

/* Gathers the lanes window of one output pixel and group (outside taps: zero
 * words, i.e. one-padding). */
static void gather_lanes_window(const glt_bconv2d_params *p, const uint32_t *input, int32_t oy,
                                int32_t ox, int32_t group, uint32_t *window)
{
    const int32_t gw = p->group_words, fw = p->filter_w;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t step_x = p->dilation_w * p->in_words;
    int32_t kx_lo = 0, kx_hi = fw, ky, kx, k;
    while (kx_lo < kx_hi && ix0 + kx_lo * p->dilation_w < 0) { /* inside taps: [kx_lo, kx_hi) */
        ++kx_lo;
    }
    while (kx_hi > kx_lo && ix0 + (kx_hi - 1) * p->dilation_w >= p->in_w) {
        --kx_hi;
    }
    for (ky = 0; ky < p->filter_h; ++ky) {
        const int32_t iy = iy0 + ky * p->dilation_h;
        uint32_t *end = window + fw * gw;
        if (iy >= 0 && iy < p->in_h) {
            const uint32_t *src = input + (iy * p->in_w + ix0 + kx_lo * p->dilation_w) * p->in_words + group * gw;
            for (k = kx_lo * gw; k > 0; --k) {
                *window++ = 0u; /* +1 values (one-padding) */
            }
            if (gw == 1) {
                for (kx = kx_lo; kx < kx_hi; ++kx, src += step_x) {
                    *window++ = *src;
                }
            } else {
                for (kx = kx_lo; kx < kx_hi; ++kx, src += step_x) {
                    for (k = 0; k < gw; ++k) {
                        *window++ = src[k];
                    }
                }
            }
        }
        while (window != end) {
            *window++ = 0u;
        }
    }
}

/* Set bits of window[0..n): three words share a nibble stage (as in the SWAR
 * algorithm: <= 12 per nibble), byte sums with USADA8 where available. */
static int32_t popcount_words(const uint32_t *window, int32_t n)
{
    uint32_t m55 = 0x55555555u, m33 = 0x33333333u, mf0 = 0xF0F0F0F0u, az = 0, ah = 0;
    int32_t i;
    GLT_OPAQUE(m55);
    GLT_OPAQUE(m33);
    GLT_OPAQUE(mf0);
    for (i = 0; i < n; i += 3) {
        const uint32_t x0 = window[i];
        const uint32_t x1 = i + 1 < n ? window[i + 1] : 0u;
        const uint32_t x2 = i + 2 < n ? window[i + 2] : 0u;
        const uint32_t a = x0 - ((x0 >> 1) & m55) + (x2 & m55);
        const uint32_t b = x1 - ((x1 >> 1) & m55) + ((x2 >> 1) & m55);
        const uint32_t h = ((a >> 2) & m33) + ((b >> 2) & m33);
        const uint32_t z = (a + b) - 3u * h; /* nibble counts <= 12 */
        az = glt_sum_bytes_acc(z, az);
        ah = glt_sum_bytes_acc(z & mf0, ah);
    }
    return (int32_t)(az - 15u * (ah >> 4)); /* bytes of z were lo + 16 * hi */
}

/* Finishes the counter and compares it: value = planes[0..3] + 16 * high on top
 * of init[4..] (two's complement, `planes` planes); returns the lanes whose value
 * is below the scalar k (k fits). Leaves high zeroed for the next use. */
static uint32_t lanes_finish_less(const uint32_t *low, const uint32_t *init, uint32_t *high,
                                  int32_t planes, int32_t k)
{
    uint32_t lt = 0, carry = 0, y;
    int32_t p;
    /* LSB first: lt = (low bits of value < low bits of k) */
    for (p = 0; p < 4; ++p) {
        lt = ((uint32_t)k >> p) & 1u ? (lt | ~low[p]) : (lt & ~low[p]);
    }
    for (p = 4;; ++p) {
        const uint32_t a = init[p], h = high[p - 4];
        high[p - 4] = 0;
        y = a ^ h ^ carry; /* full adder: init + high */
        carry = (a & h) | (carry & (a ^ h));
        if (p == planes - 1) {
            break;
        }
        lt = ((uint32_t)k >> p) & 1u ? (lt | ~y) : (lt & ~y);
    }
    /* y is the sign plane. k >= 0: every negative value is below; k < 0: only
       negative values can be */
    return k >= 0 ? (y | lt) : (y & lt);
}

static GLT_NOINLINE void conv_lanes(const glt_bconv2d_params *p, const uint32_t *input, uint32_t *output)
{
    const int32_t taps = p->filter_h * p->filter_w;
    const int32_t n = taps * p->group_words;
    const int32_t oc_per_group = p->out_c / p->groups;
    const int32_t out_words = (p->out_c + 31) / 32;
    const int32_t planes_n = p->lane_planes;
    const int aligned = (oc_per_group & 31) == 0;
    uint32_t planes[LANE_PLANES_MAX];
    uint32_t high[LANE_PLANES_MAX] = {0}; /* zero between uses (lanes_finish_less) */
    uint32_t *const window = p->scratch; /* n words, the sentinel, then the column list */
    const int listed = p->lane_groups > 1; /* listing a bit pays off from two passes */
    lanes_job job;
    int32_t oy, ox, g, l, i;

    job.window = window;
    job.list = (uint16_t *)(window + n + 1);
    job.planes = planes;
    job.high = high;
    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            uint32_t *out = output + (oy * p->out_w + ox) * out_words;
            if (!aligned) {
                for (i = 0; i < out_words; ++i) {
                    out[i] = 0;
                }
            }
            for (g = 0; g < p->groups; ++g) {
                int32_t n1, columns;
                uint32_t invert;
                gather_lanes_window(p, input, oy, ox, g, window);
                n1 = popcount_words(window, n);
                invert = 2 * n1 > 32 * n ? 0xFFFFFFFFu : 0u;
                columns = invert ? 32 * n - n1 : n1;
                job.invert = invert;
                if (!listed) {
                    job.blocks = (columns + 15) >> 4;
                    window[n] = ~invert; /* all ones once inverted: zero columns */
                } else {
                    job.blocks = columns > 0 ? lanes_columns(window, n, invert, (uint16_t *)job.list) : 0;
                }
                for (l = 0; l < p->lane_groups; ++l) {
                    const int32_t table = g * p->lane_groups + l;
                    const uint32_t *thr = p->lane_thresholds + table * LANE_THRESHOLD_WORDS;
                    const uint32_t *init = invert ? thr + 17 : thr;
                    const int32_t oc0 = g * oc_per_group + 32 * l;
                    uint32_t bits, carry;
                    for (i = 0; i < 4; ++i) {
                        planes[i] = init[i];
                    }
                    /* The threshold of lane j is k + d_j: d_j = 0 for even n1; for odd n1,
                       d_j = 1 - odd_j (normal) or odd_j (complement). Adding 1 - d_j as
                       one more column turns it into one comparison with k + 1. */
                    carry = (n1 & 1) ? (invert ? ~thr[16] : thr[16]) : 0u;
                    for (i = 0; i < 4; ++i) {
                        const uint32_t next = planes[i] & carry;
                        planes[i] ^= carry;
                        carry = next;
                    }
                    high[0] = carry;
                    if (job.blocks > 0) {
                        job.cols = p->lane_filter + table * (n * 32 + 32);
                        if (listed) {
                            lanes_list(&job);
                        } else {
                            lanes_scan(&job);
                        }
                    }
                    if (!invert) {
                        /* count > threshold <=> floor(T/2) + S < ceil((n1 - T mod 2) / 2):
                           k = n1 / 2 (+ the column for odd n1) */
                        bits = lanes_finish_less(planes, init, high, planes_n, (n1 >> 1) + (n1 & 1));
                    } else {
                        /* count > threshold <=> S' - h >= floor((o - n1) / 2) + 1, with
                           h = floor((threshold + P) / 2) and o its remainder mod 2:
                           not below 1 - ceil(n1 / 2) (+ the column for odd n1) */
                        bits = ~lanes_finish_less(planes, init, high, planes_n, 1 - ((n1 + 1) >> 1) + (n1 & 1));
                    }
                    if (aligned) {
                        out[oc0 >> 5] = bits;
                    } else {
                        const int32_t lanes = oc_per_group - 32 * l < 32 ? oc_per_group - 32 * l : 32;
                        for (i = 0; i < lanes; ++i) {
                            out[(oc0 + i) >> 5] |= ((bits >> i) & 1u) << ((oc0 + i) & 31);
                        }
                    }
                }
            }
        }
    }
}

static GLT_NOINLINE void conv_swar(const glt_bconv2d_params *p, const uint32_t *input, void *output);

void glt_bconv2d_dense_opt(const glt_bconv2d_params *p, const uint32_t *input, void *output)
{
#if GLT_BCONV_ASM
    /* Float output whose clamp never bites (2 * count lies in [0, 64 words]) and
     * whole blocks of four hexads: each row's count in one assembly loop, then its
     * output transform (a small layer, e.g. a classifier, is mostly set-up). */
    const int32_t words = p->filter_h * p->filter_w * p->group_words;
    /* words % 24 == 0 without a division: 8 | words, and 3 | words / 8 (x * 3^-1 mod
       2^32 maps the multiples of 3, and only them, into [0, 2^32 / 3]) */
    if (p->output_type == GLT_OUT_FLOAT && (words & 7) == 0 &&
        ((uint32_t)words >> 3) * 0xAAAAAAABu <= 0x55555555u && p->clamp_min <= 0 &&
        p->clamp_max >= 64 * words) {
        const uint32_t m33 = 0x33333333u, three = 3u, zero = 0u;
        uint32_t t0, t1, t2, t3, t4, t5, az;
        const uint32_t *a, *w = p->filter;
        dense_row row;
        const float *mul = p->multiplier, *bias = p->bias;
        float *out = (float *)output;
        float *const end = out + p->out_c;
        int32_t k;
        row.window = input;
        row.words = words;
        do {
            float y;
            DENSE_ROW17(row);
            y = (float)(int32_t)(az * TWO_OVER_17) * *mul++; /* two roundings, as */
            *out++ = y + *bias++;                             /* glt_bconv_write_dense */
        } while (out != end);
        return;
    }
#endif
    /* any other whole-window layer: the SWAR path reads such a window in place */
    conv_swar(p, input, output);
}

int glt_bconv2d_is_dense(const glt_bconv2d_params *p)
{
    return p->output_type != GLT_OUT_BITS && p->out_h == 1 && p->out_w == 1 && p->groups == 1 &&
           p->pad_top == 0 && p->pad_left == 0 && p->filter_h == p->in_h && p->filter_w == p->in_w &&
           (p->dilation_h == 1 || p->in_h == 1) && (p->dilation_w == 1 || p->in_w == 1);
}

static GLT_NOINLINE void conv_swar(const glt_bconv2d_params *p, const uint32_t *input, void *output)
{
    const int32_t taps = p->filter_h * p->filter_w;
    const int32_t n = taps * p->group_words;
    const int32_t oc_per_group = p->out_c / p->groups;
    const int32_t out_words = (p->out_c + 31) / 32;
    const int is_bits = p->output_type == GLT_OUT_BITS;
    const run_shape shape = make_shape(n);
    /* one group, rows spanning the whole input width, no column padding */
    const int contiguous = p->groups == 1 && p->filter_w == p->in_w &&
                           (p->dilation_h == 1 || p->filter_h == 1) &&
                           (p->dilation_w == 1 || p->filter_w == 1) && p->out_w == 1 && p->pad_left == 0;
    int32_t outside[GLT_MAX_TAPS];
    int32_t acc[32];
    int32_t oy, ox, g, c;

    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            const int32_t pixel = oy * p->out_w + ox;
            uint32_t *bits_out = (uint32_t *)output + pixel * out_words;
            uint32_t bits = 0; /* output bits, shifted in from the top */
            int32_t oc = 0;
            for (g = 0; g < p->groups; ++g) {
                const uint32_t *window;
                int32_t n_outside = 0, left = oc_per_group;
                if (taps == 1) { /* 1x1 is never padded: the pixel's words are the window */
                    window = input +
                             ((oy * p->stride_h) * p->in_w + ox * p->stride_w) * p->in_words +
                             g * p->group_words;
                } else if (contiguous && oy * p->stride_h - p->pad_top >= 0 &&
                           oy * p->stride_h - p->pad_top + p->filter_h <= p->in_h) {
                    /* full-width rows of one group: the window is in place */
                    window = input + (oy * p->stride_h - p->pad_top) * p->in_w * p->in_words;
                } else {
                    n_outside = gather_window(p, input, oy, ox, g, p->scratch, outside);
                    window = p->scratch;
                }
                if (!p->zero_padding) {
                    n_outside = 0;
                }
                while (left > 0) {
                    /* chunks end on output word boundaries */
                    int32_t chunk = 32 - (oc & 31);
                    if (chunk > left) {
                        chunk = left;
                    }
                    if (is_bits && n_outside == 0) {
                        xor_popcount_rows(window, p->filter + oc * n, chunk, &shape,
                                          p->thresholds + oc, 0, &bits);
                    } else {
                        xor_popcount_rows(window, p->filter + oc * n, chunk, &shape, 0, acc, &bits);
                        for (c = 0; c < chunk; ++c) {
                            int32_t a = acc[c];
                            if (n_outside != 0) {
                                a += padding_correction(p, oc + c, outside, n_outside);
                            }
                            if (is_bits) {
                                /* bit = a > threshold (thresholds lie in [-1, 2^30]) */
                                bits = (bits >> 1) |
                                       ((uint32_t)(p->thresholds[oc + c] - a) & 0x80000000u);
                            } else {
                                glt_bconv_write_dense(p->output_type, p->clamp_min, p->clamp_max,
                                                      p->multiplier[oc + c], p->bias[oc + c], a,
                                                      output, pixel * p->out_c + oc + c);
                            }
                        }
                    }
                    oc += chunk;
                    left -= chunk;
                    if (is_bits && (oc & 31) == 0) {
                        *bits_out++ = bits;
                        bits = 0;
                    }
                }
            }
            if (is_bits && (p->out_c & 31) != 0) {
                *bits_out = bits >> (32 - (p->out_c & 31));
            }
        }
    }
}

void glt_bconv2d_opt(const glt_bconv2d_params *p, const uint32_t *input, void *output)
{
    if (p->output_type == GLT_OUT_BITS) {
        if (p->lane_filter != 0 && !p->zero_padding) {
            conv_lanes(p, input, (uint32_t *)output);
        } else {
            conv_swar(p, input, output);
        }
    } else if (glt_bconv2d_is_dense(p)) {
        glt_bconv2d_dense_opt(p, input, output);
    } else {
        conv_swar(p, input, output);
    }
}
