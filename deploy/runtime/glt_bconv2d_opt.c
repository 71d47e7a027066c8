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
 *    carry-save blocks of 16 columns; unset window bits cost nothing. The counter
 *    starts at floor((threshold - P_j) / 2), so `count_j > threshold_j` becomes a
 *    bit-sliced comparison with a scalar that yields the packed output word.
 *    Per set window bit and 32 channels: 2 loads + 15/16 CSA (~4.7) + list
 *    building (~5) on Cortex-M7.
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
 * 1x1 convolutions read the input in place; outside taps are zeros, i.e. LCE's
 * one-padding, corrected afterwards for zero-padding).
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

/* Six words at a and w; both pointers advance (post-indexed LDRD). */
#define HEXAD()                                                      \
    __asm__("ldrd   %[a0], %[a1], [%[A]], #8\n\t"                    \
            "ldrd   %[w0], %[w1], [%[W]], #8\n\t"                    \
            "eor    %[a0], %[a0], %[w0]\n\t"                         \
            "eor    %[a1], %[a1], %[w1]\n\t"                         \
            "ldrd   %[a2], %[a3], [%[A]], #8\n\t"                    \
            "ldrd   %[w0], %[w1], [%[W]], #8\n\t"                    \
            "eor    %[a2], %[a2], %[w0]\n\t"                         \
            "eor    %[a3], %[a3], %[w1]\n\t"                         \
            TRIPLE_BODY("a0", "a1", "a2")                            \
            "ldrd   %[a0], %[a1], [%[A]], #8\n\t"                    \
            "ldrd   %[w0], %[w1], [%[W]], #8\n\t"                    \
            "eor    %[a0], %[a0], %[w0]\n\t"                         \
            "eor    %[a1], %[a1], %[w1]\n\t"                         \
            TRIPLE_BODY("a3", "a0", "a1")                            \
            ASM_OPERANDS)

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
        for (k = hexads; k > 0; --k) {
            HEXAD();
        }
        /* bytes of z were lo + 16*hi; the count is lo + hi */
        count = (int32_t)(acc_z - 15u * (acc_h >> 4));
        if (thresholds != 0) {
            /* bit = count > threshold; no overflow: thresholds lie in [-1, 2^30]
               (deploy/lowering.py clamps LCE's +-inf) */
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
 * P_j = popcount(filter row j) and S_j = number of window bits set where channel j's
 * weight bit is set, i.e. the sum, over the window's set bits i, of lane_filter
 * word i (32 channels as 32 lanes). The sums accumulate in a bit-sliced counter
 * (lane j of plane p = bit p of channel j's value) with a carry-save tree: two
 * words cost one CSA on plane 0, every second pair one more on plane 1, and so on
 * (Harley-Seal), so a set window bit costs about 12 instructions for 32 channels,
 * and unset bits cost nothing. The counter starts at floor(T/2) (T = threshold -
 * P_j), so bit_j = count_j > threshold_j becomes a bit-sliced comparison with a
 * scalar, which directly yields the packed output word.
 * ------------------------------------------------------------------------- */

#define PLANES 16

#if defined(__GNUC__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7 && defined(__thumb2__)
#define LANES_ARM 1 /* RBIT + CLZ: lowest set bit in one instruction per bit */
#else
#define LANES_ARM 0
#endif

/* Carry-save adder: a + b + c = l + 2 h */
#define CSA(h, l, a, b, c)                      \
    do {                                        \
        const uint32_t u_ = (a) ^ (b);          \
        const uint32_t a_ = (a);                \
        (l) = u_ ^ (c);                         \
        (h) = (a_ & (b)) | (u_ & (c));          \
    } while (0)

/* Adds word c (one bit per lane) at plane p of the 12-plane counter of
 * weight-16 carries, carrying upwards until no lane carries. */
static void ripple(uint32_t *planes, int32_t p, uint32_t c)
{
    for (; p < PLANES - 4 && c != 0; ++p) {
        const uint32_t carry = planes[p] & c;
        planes[p] ^= c;
        c = carry;
    }
}

#if LANES_ARM
#define RBIT(v) __extension__({ uint32_t o_; __asm__("rbit %0, %1" : "=r"(o_) : "r"(v)); o_; })
#endif

/* Lists the set bits of window[0..n) as column indices (word * 32 + bit), then
 * pads the list to a multiple of 16 with `pad` (the index of a zero column).
 * Returns the number of set bits. */
static int32_t set_bit_list(const uint32_t *window, int32_t n, uint16_t *list, uint16_t pad)
{
    uint16_t *out = list;
    int32_t w;
    for (w = 0; w < n; ++w) {
#if LANES_ARM
        uint32_t r = RBIT(window[w]); /* CLZ of the reversed word: lowest set bit */
        const uint32_t base = (uint32_t)w * 32u;
        while (r != 0) {
            const uint32_t b = (uint32_t)__builtin_clz(r);
            r &= ~(0x80000000u >> b);
            *out++ = (uint16_t)(base + b);
        }
#else
        uint32_t r = window[w];
        while (r != 0) {
            *out++ = (uint16_t)(w * 32 + glt_ctz32(r));
            r &= r - 1u;
        }
#endif
    }
    {
        const int32_t count = (int32_t)(out - list);
        while (((out - list) & 15) != 0) {
            *out++ = pad;
        }
        return count;
    }
}

#define NEXT(x) ((x) = cols[*list++])

/* planes += sum of cols[list[k]] over k < 16 * blocks: Harley-Seal blocks of 16
 * columns (15 CSAs) into ones/twos/fours/eights; the weight-16 carries count in
 * a zero-based counter (short carry chains), added to planes 4.. at the end. */
static GLT_NOINLINE void lanes_accumulate(const uint16_t *list, int32_t blocks, const uint32_t *cols,
                                          uint32_t *planes)
{
    uint32_t ones = planes[0], twos = planes[1], fours = planes[2], eights = planes[3];
    uint32_t high[PLANES - 4] = {0};
    int32_t p;
    while (blocks-- > 0) {
        uint32_t x0, x1, twos_a, twos_b, fours_a, fours_b, eights_a, eights_b, sixteens;
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
        CSA(sixteens, eights, eights, eights_a, eights_b);
        ripple(high, 0, sixteens); /* counts from zero: the carry dies fast */
    }
    planes[0] = ones;
    planes[1] = twos;
    planes[2] = fours;
    planes[3] = eights;
    {
        uint32_t carry = 0; /* planes[4..] += high (bit-sliced full adders) */
        for (p = 4; p < PLANES; ++p) {
            const uint32_t a = planes[p], h = high[p - 4];
            planes[p] = a ^ h ^ carry;
            carry = (a & h) | (carry & (a ^ h));
        }
    }
}

#undef NEXT

/* Lanes j with value (floor(T/2) + S) < k_j, k_j = (n1 - (T mod 2) + 1) / 2. */
static uint32_t lanes_compare(const uint32_t *planes, uint32_t t_odd, int32_t n1)
{
    const uint32_t k0 = (uint32_t)(n1 + 1) >> 1, k1 = (uint32_t)n1 >> 1;
    uint32_t lt0 = 0, lt1 = 0;
    int32_t p;
    for (p = 0; p < PLANES - 1; ++p) { /* LSB first: lt = (Y < k) on planes 0..p */
        const uint32_t y = planes[p];
        lt0 = (k0 >> p) & 1u ? (lt0 | ~y) : (lt0 & ~y);
        lt1 = (k1 >> p) & 1u ? (lt1 | ~y) : (lt1 & ~y);
    }
    /* negative values are below any k >= 0 */
    return planes[PLANES - 1] | (t_odd & lt1) | (~t_odd & lt0);
}

static GLT_NOINLINE void conv_lanes(const glt_bconv2d_params *p, const uint32_t *input, uint32_t *output)
{
    const int32_t taps = p->filter_h * p->filter_w;
    const int32_t n = taps * p->group_words;
    const int32_t oc_per_group = p->out_c / p->groups;
    const int32_t out_words = (p->out_c + 31) / 32;
    const int aligned = (oc_per_group & 31) == 0;
    int32_t outside[GLT_MAX_TAPS];
    uint32_t planes[PLANES];
    /* set-bit list after the window in scratch (see glt_bconv2d.h) */
    uint16_t *const list = (uint16_t *)(p->scratch + n);
    int32_t oy, ox, g, l, i;

    for (oy = 0; oy < p->out_h; ++oy) {
        for (ox = 0; ox < p->out_w; ++ox) {
            uint32_t *out = output + (oy * p->out_w + ox) * out_words;
            if (!aligned) {
                for (i = 0; i < out_words; ++i) {
                    out[i] = 0;
                }
            }
            for (g = 0; g < p->groups; ++g) {
                const uint32_t *window;
                int32_t n1 = 0;
                if (taps == 1) {
                    window = input +
                             ((oy * p->stride_h) * p->in_w + ox * p->stride_w) * p->in_words +
                             g * p->group_words;
                } else {
                    (void)gather_window(p, input, oy, ox, g, p->scratch, outside);
                    window = p->scratch;
                }
                n1 = set_bit_list(window, n, list, (uint16_t)(n * 32));
                for (l = 0; l < p->lane_groups; ++l) {
                    const int32_t table = g * p->lane_groups + l;
                    const uint32_t *thr = p->lane_thresholds + table * (PLANES + 1);
                    const int32_t oc0 = g * oc_per_group + 32 * l;
                    uint32_t bits;
                    for (i = 0; i < PLANES; ++i) {
                        planes[i] = thr[i];
                    }
                    lanes_accumulate(list, (n1 + 15) >> 4, p->lane_filter + table * (n * 32 + 1),
                                     planes);
                    bits = lanes_compare(planes, thr[PLANES], n1);
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

void glt_bconv2d_opt(const glt_bconv2d_params *p, const uint32_t *input, void *output)
{
    const int32_t taps = p->filter_h * p->filter_w;
    const int32_t n = taps * p->group_words;
    const int32_t oc_per_group = p->out_c / p->groups;
    const int32_t out_words = (p->out_c + 31) / 32;
    const int is_bits = p->output_type == GLT_OUT_BITS;
    const run_shape shape = make_shape(n);
    int32_t outside[GLT_MAX_TAPS];
    int32_t acc[32];
    int32_t oy, ox, g, c;

    if (is_bits && p->lane_filter != 0 && !p->zero_padding) {
        conv_lanes(p, input, (uint32_t *)output);
        return;
    }
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
