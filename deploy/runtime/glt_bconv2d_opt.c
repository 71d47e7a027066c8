/*
 * Optimized binary convolution for Cortex-M (bit-identical to glt_bconv2d_ref).
 *
 * Structure: per output pixel and group, the receptive field is gathered once
 * into a contiguous window (im2col; zeros for outside taps, corrected afterwards
 * for zero-padding), then each output channel of the group reduces
 * popcount(window ^ filter_row) over the same N words. Bits output is compared
 * with the thresholds right after each reduction.
 *
 * Popcount without a popcount instruction (carry-save SWAR): words come three at
 * a time (x0, x1, x2). x0 and x1 are reduced to 2-bit field counts (<= 2) and the
 * even/odd bits of x2 are added into the spare headroom of those fields (<= 3),
 * so three words share one nibble stage (<= 12 per nibble). Byte sums use
 * USADA8: acc_z sums the bytes of z (lo + 16*hi), acc_h the high nibbles (16*hi),
 * and the count is acc_z - 15*(acc_h/16). Masks stay in registers so Thumb-2
 * folds every shift into an AND. On ARMv7E-M (Cortex-M4/M7) and ARMv8-M with DSP
 * the block is inline assembly (GCC otherwise rematerializes constants and
 * spills); elsewhere the same arithmetic is plain C.
 *
 * Cost on Cortex-M7 per six 32-bit words (192 binary MACs): 6 LDRD, 6 EOR and
 * 32 ALU instructions = 44, i.e. 4.36 binary MACs per instruction, in
 * straight-line sequences of up to 5 blocks (no loop counter inside, constant
 * LDRD offsets).
 */
#include "glt_bconv2d.h"

#define GLT_MAX_TAPS 64 /* filter_h * filter_w supported by the optimized kernel */

#if defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define GLT_BCONV_ASM 1
#else
#define GLT_BCONV_ASM 0
#endif

#if defined(__GNUC__)
#define GLT_UNREACHABLE() __builtin_unreachable()
#define GLT_NOINLINE __attribute__((noinline))
#else
#define GLT_UNREACHABLE() ((void)0)
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

#define STR_(x) #x
#define STR(x) STR_(x)

#if GLT_BCONV_ASM
/* One triple, x0 x1 x2 in a0 a1 a2 (already XORed); w0 w1 are scratch. */
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
      [w1] "=&r"(t5), [az] "+r"(acc_z), [ah] "+r"(acc_h)                          \
    : [A] "r"(a), [W] "r"(w), [m55] "r"(m55), [m33] "r"(m33), [three] "r"(three),   \
      [zero] "r"(zero)                                                            \
    : "memory"

/* Words k..k+5 (k counted in words, may be negative). */
#define HEXAD(k)                                                     \
    __asm__("ldrd   %[a0], %[a1], [%[A], #" STR((k) * 4) "]\n\t"      \
            "ldrd   %[w0], %[w1], [%[W], #" STR((k) * 4) "]\n\t"      \
            "eor    %[a0], %[a0], %[w0]\n\t"                         \
            "eor    %[a1], %[a1], %[w1]\n\t"                         \
            "ldrd   %[a2], %[a3], [%[A], #" STR((k) * 4 + 8) "]\n\t"  \
            "ldrd   %[w0], %[w1], [%[W], #" STR((k) * 4 + 8) "]\n\t"  \
            "eor    %[a2], %[a2], %[w0]\n\t"                         \
            "eor    %[a3], %[a3], %[w1]\n\t"                         \
            TRIPLE_BODY("a0", "a1", "a2")                            \
            "ldrd   %[a0], %[a1], [%[A], #" STR((k) * 4 + 16) "]\n\t" \
            "ldrd   %[w0], %[w1], [%[W], #" STR((k) * 4 + 16) "]\n\t" \
            "eor    %[a0], %[a0], %[w0]\n\t"                         \
            "eor    %[a1], %[a1], %[w1]\n\t"                         \
            TRIPLE_BODY("a3", "a0", "a1")                            \
            ASM_OPERANDS)

/* Words k..k+2. */
#define TRIPLE(k)                                                    \
    __asm__("ldrd   %[a0], %[a1], [%[A], #" STR((k) * 4) "]\n\t"      \
            "ldrd   %[w0], %[w1], [%[W], #" STR((k) * 4) "]\n\t"      \
            "eor    %[a0], %[a0], %[w0]\n\t"                         \
            "eor    %[a1], %[a1], %[w1]\n\t"                         \
            "ldr    %[a2], [%[A], #" STR((k) * 4 + 8) "]\n\t"         \
            "ldr    %[w0], [%[W], #" STR((k) * 4 + 8) "]\n\t"         \
            "eor    %[a2], %[a2], %[w0]\n\t"                         \
            TRIPLE_BODY("a0", "a1", "a2")                            \
            ASM_OPERANDS)

#else /* portable C, same arithmetic */

#define TRIPLE(k)                                                             \
    do {                                                                      \
        const uint32_t x0 = a[(k)] ^ w[(k)];                                  \
        const uint32_t x1 = a[(k) + 1] ^ w[(k) + 1];                          \
        const uint32_t x2 = a[(k) + 2] ^ w[(k) + 2];                          \
        const uint32_t p = x0 - ((x0 >> 1) & m55) + (x2 & m55);               \
        const uint32_t q = x1 - ((x1 >> 1) & m55) + ((x2 >> 1) & m55);        \
        const uint32_t h = ((p >> 2) & m33) + ((q >> 2) & m33);               \
        const uint32_t z = (p + q) - h * three; /* nibble counts <= 12 */     \
        acc_z = glt_sum_bytes_acc(z, acc_z);                                  \
        acc_h = glt_sum_bytes_acc(z & 0xF0F0F0F0u, acc_h);                    \
    } while (0)

#define HEXAD(k)          \
    do {                  \
        TRIPLE(k);        \
        TRIPLE((k) + 3);  \
    } while (0)

#endif

/* Constants of the popcount blocks. Opaque: GCC keeps them in registers instead
 * of rematerializing them, so the blocks fold shifts into ANDs. */
#define POPCOUNT_CONSTANTS                                              \
    uint32_t m55 = 0x55555555u, m33 = 0x33333333u, three = 3u, zero = 0u; \
    GLT_OPAQUE(m55);                                                    \
    GLT_OPAQUE(m33);                                                    \
    GLT_OPAQUE(three);                                                  \
    GLT_OPAQUE(zero)

#if GLT_BCONV_ASM
#define ASM_TEMPS uint32_t t0, t1, t2, t3, t4, t5
#else
#define ASM_TEMPS (void)zero
#endif

/* acc[r] = popcount over the head words and the lone triple, for r < rows. */
static void head_counts(const uint32_t *window, const uint32_t *filter, int32_t rows,
                        const run_shape *s, int32_t *acc)
{
    const int32_t head = s->head;
    int32_t r;
    POPCOUNT_CONSTANTS;
    ASM_TEMPS;
    for (r = 0; r < rows; ++r) {
        const uint32_t *w = filter + r * s->n;
        const uint32_t *a = window;
        uint32_t acc_z = 0, acc_h = 0;
        if (head != 0) {
            const uint32_t x0 = a[0] ^ w[0];
            const uint32_t x1 = head > 1 ? a[1] ^ w[1] : 0u;
            const uint32_t p = x0 - ((x0 >> 1) & m55);
            const uint32_t q = x1 - ((x1 >> 1) & m55);
            const uint32_t h = ((p >> 2) & m33) + ((q >> 2) & m33);
            const uint32_t z = (p + q) - h * three;
            acc_z = glt_sum_bytes_acc(z, acc_z);
            acc_h = glt_sum_bytes_acc(z & 0xF0F0F0F0u, acc_h);
        }
        if (s->triple) {
            a += head;
            w += head;
            TRIPLE(0);
        }
        acc[r] = (int32_t)(acc_z - 15u * (acc_h >> 4));
    }
}

/*
 * acc[r] += popcount(window[i] ^ filter[r * stride + i]) for i < 6K, r < rows.
 * One function per K (straight-line blocks, constant LDRD offsets), out of line so
 * that the blocks get the whole register file. The running count is the initial
 * value of the byte accumulator: the count is acc_z - 15 * (acc_h / 16).
 */
#define DEFINE_HEXAD_ROWS(K, BLOCKS)                                                    \
    static GLT_NOINLINE void hexad_rows_##K(const uint32_t *window, const uint32_t *filter, \
                                            int32_t stride, int32_t rows, int32_t *acc) \
    {                                                                                   \
        const uint32_t *const a = window + 6 * (K);                                     \
        const uint32_t *w = filter + 6 * (K);                                           \
        POPCOUNT_CONSTANTS;                                                             \
        ASM_TEMPS;                                                                      \
        do {                                                                            \
            uint32_t acc_z = (uint32_t)*acc, acc_h = 0;                                 \
            BLOCKS;                                                                     \
            *acc++ = (int32_t)(acc_z - 15u * (acc_h >> 4));                             \
            w += stride;                                                                \
        } while (--rows > 0);                                                           \
    }

DEFINE_HEXAD_ROWS(1, HEXAD(-6))
DEFINE_HEXAD_ROWS(2, HEXAD(-12); HEXAD(-6))
DEFINE_HEXAD_ROWS(3, HEXAD(-18); HEXAD(-12); HEXAD(-6))
DEFINE_HEXAD_ROWS(4, HEXAD(-24); HEXAD(-18); HEXAD(-12); HEXAD(-6))
DEFINE_HEXAD_ROWS(5, HEXAD(-30); HEXAD(-24); HEXAD(-18); HEXAD(-12); HEXAD(-6))

typedef void (*hexad_rows_fn)(const uint32_t *, const uint32_t *, int32_t, int32_t, int32_t *);
static const hexad_rows_fn hexad_rows[6] = {0, hexad_rows_1, hexad_rows_2, hexad_rows_3,
                                            hexad_rows_4, hexad_rows_5};

/* acc[r] = popcount(window ^ filter row r) over the N words, for 0 < rows <= 32. */
static void xor_popcount_rows(const uint32_t *window, const uint32_t *filter, int32_t rows,
                              const run_shape *s, int32_t *acc)
{
    const int32_t skip = s->head + 3 * s->triple;
    int32_t done = 0, r;
    if (skip != 0) {
        head_counts(window, filter, rows, s, acc);
    } else {
        for (r = 0; r < rows; ++r) {
            acc[r] = 0;
        }
    }
    while (done < s->hexads) { /* column slices of up to 5 hexads over all rows */
        const int32_t k = s->hexads - done < 5 ? s->hexads - done : 5;
        hexad_rows[k](window + skip + 6 * done, filter + skip + 6 * done, s->n, rows, acc);
        done += k;
    }
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

static void write_dense(const glt_bconv2d_params *p, void *output, int32_t pixel, int32_t oc,
                        int32_t acc)
{
    int32_t x = acc * 2;
    float y;
    if (x < p->clamp_min) {
        x = p->clamp_min;
    }
    if (x > p->clamp_max) {
        x = p->clamp_max;
    }
    y = (float)x * p->multiplier[oc];
    y = y + p->bias[oc];
    if (p->output_type == GLT_OUT_FLOAT) {
        ((float *)output)[pixel * p->out_c + oc] = y;
    } else {
        ((int8_t *)output)[pixel * p->out_c + oc] = glt_round_to_int8(y);
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
                    xor_popcount_rows(window, p->filter + oc * n, chunk, &shape, acc);
                    for (c = 0; c < chunk; ++c) {
                        int32_t a = acc[c];
                        if (n_outside != 0) {
                            a += padding_correction(p, oc + c, outside, n_outside);
                        }
                        if (is_bits) {
                            /* bit = a > threshold; no overflow: thresholds lie in
                               [-1, 2^30] (deploy/lowering.py clamps LCE's +-inf) */
                            bits = (bits >> 1) | ((uint32_t)(p->thresholds[oc + c] - a) & 0x80000000u);
                        } else {
                            write_dense(p, output, pixel, oc + c, a);
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
