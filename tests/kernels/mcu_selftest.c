/*
 * Kernel self-test on Cortex-M7/M4 (QEMU mps2-an500 / mps2-an386), where
 * glt_bconv2d_opt runs its inline-assembly and RBIT/CLZ paths:
 *  1. randomized optimized == reference checks (bconv2d over shapes, groups,
 *     strides, dilation, padding kinds, output types; bmaxpool; frontend;
 *     quantize/dequantize) and, with -DGLT_STEM_CASES, the fused stem cases of
 *     the generated stem_cases.h (tables built by deploy/lower/ on the host;
 *     opt and ref must both equal the host's expected output),
 *  2. instruction counts of representative binary convolutions (SysTick under
 *     `-icount shift=0`, calibrated against a loop of known length).
 * Prints "check <name> <cases> ok|FAIL ..." and "bench <name> <binary MACs>
 * <ticks opt> <ticks ref>" lines, then "calib <ticks> <instructions>".
 */
#include <stdint.h>
#include <string.h>

#include "glt_bconv2d.h"
#include "glt_bmaxpool.h"
#include "glt_frontend.h"
#include "glt_quantize.h"
#include "glt_shortcut.h"
#include "glt_stem.h"

void sh_write(const char *s);

/* ------------------------------------------------------------ output */
static void put(const char *s) { sh_write(s); }
static void put_u(uint32_t v)
{
    char buf[12];
    int i = 11;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(&buf[i]);
}

/* ------------------------------------------------------------ random */
static uint32_t rng_state = 0x12345678u;
static uint32_t rnd(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}
static int32_t rnd_range(int32_t lo, int32_t hi) /* inclusive */
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

/* ------------------------------------------------------------ SysTick */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)
static void ticks_start(void)
{
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
}
static uint32_t ticks_now(void) { return SYST_CVR; }
static uint32_t ticks_since(uint32_t t0) { return (t0 - ticks_now()) & 0x00FFFFFFu; }

/* ------------------------------------------------------------ buffers */
static uint32_t in_buf[4096];
static uint32_t filt_buf[16384];
static uint32_t out_ref[20000], out_opt[20000];
static float mul_buf[256], bias_buf[256];
static int32_t thr_buf[256];
static uint16_t tap_buf[256 * 16];
static uint32_t scratch[8192];
static uint32_t lane_filt_buf[40000];
static uint32_t lane_thr_buf[33 * 64];
static int32_t sc_thr_buf[256];            /* a shortcut block's second thresholds */
static uint32_t lane_sc_thr_buf[33 * 64];
static uint32_t lut_buf[4 * 256 * 3];
static uint8_t frame_buf[2048];
static float fbuf[2048];

static int32_t words_of(int32_t c) { return (c + 31) / 32; }

static void same_valid(int32_t size, int32_t f, int32_t s, int32_t d, int same, int32_t *out, int32_t *pad)
{
    int32_t eff = (f - 1) * d + 1, total;
    *out = same ? (size + s - 1) / s : (size - eff + s) / s;
    total = (*out - 1) * s + eff - size;
    *pad = total > 0 ? total / 2 : 0;
}

/* random packed words with zero padding bits above `channels` */
static void random_packed(uint32_t *dst, int32_t vectors, int32_t channels)
{
    int32_t v, w, nw = words_of(channels);
    for (v = 0; v < vectors; ++v) {
        for (w = 0; w < nw; ++w) {
            uint32_t x = rnd();
            int32_t left = channels - 32 * w;
            if (left < 32) {
                x &= (1u << left) - 1u;
            }
            dst[v * nw + w] = x;
        }
    }
}

static size_t out_bytes(const glt_bconv2d_params *p)
{
    size_t px = (size_t)(p->out_h * p->out_w);
    if (p->output_type == GLT_OUT_BITS) {
        return px * (size_t)words_of(p->out_c) * 4u;
    }
    return px * (size_t)p->out_c * (p->output_type == GLT_OUT_FLOAT ? 4u : 1u);
}

/* Fills a bconv case; the caller sets the geometry fields. */
static void fill_bconv(glt_bconv2d_params *p, int32_t cin)
{
    const int32_t cg = cin / p->groups, taps = p->filter_h * p->filter_w;
    const int32_t acc_max = taps * cg;
    int32_t oc, t, w;
    p->in_words = words_of(cin);
    p->group_words = words_of(cg);
    p->binary_zero_point = cg / 2;
    random_packed(in_buf, p->in_h * p->in_w * p->groups, cg); /* per group packing */
    random_packed(filt_buf, p->out_c * taps, cg);
    for (oc = 0; oc < p->out_c; ++oc) {
        int32_t r = rnd_range(0, 9);
        thr_buf[oc] = r == 0 ? -1 : r == 1 ? (1 << 30) : rnd_range(-2, acc_max + 2);
        mul_buf[oc] = (float)rnd_range(-1000, 1000) / 512.0f;
        bias_buf[oc] = (float)rnd_range(-4000, 4000) / 64.0f;
        for (t = 0; t < taps; ++t) {
            int32_t pc = 0;
            for (w = 0; w < p->group_words; ++w) {
                pc += glt_popcount32(filt_buf[(oc * taps + t) * p->group_words + w]);
            }
            tap_buf[oc * taps + t] = (uint16_t)pc;
        }
    }
    p->clamp_min = rnd_range(0, acc_max);
    p->clamp_max = rnd_range(p->clamp_min, 2 * acc_max);
    p->filter = filt_buf;
    p->multiplier = mul_buf;
    p->bias = bias_buf;
    p->thresholds = thr_buf;
    p->tap_popcount = tap_buf;
    p->scratch = scratch;
}

/* Lane tables of the bit-sliced algorithm (what deploy/lower/ computes): the
 * filter columns and, from thresholds `thr_src`, the threshold planes `thr_dst`. */
static void build_lane_tables(glt_bconv2d_params *p, const int32_t *thr_src, uint32_t *thr_dst)
{
    const int32_t n = p->filter_h * p->filter_w * p->group_words;
    const int32_t ocg = p->out_c / p->groups, lg = (ocg + 31) / 32;
    const int32_t acc_max = p->filter_h * p->filter_w * (p->binary_zero_point * 2 + 1);
    int32_t g, l, j, i, pl, bits = 0;
    while ((1 << bits) <= acc_max + 1) {
        ++bits;
    }
    p->lane_groups = lg;
    p->lane_planes = bits + 1 < 5 ? 5 : bits + 1;
    memset(lane_filt_buf, 0, (size_t)(p->groups * lg * (n * 32 + 32)) * 4u);
    memset(thr_dst, 0, (size_t)(p->groups * lg * 33) * 4u);
    for (g = 0; g < p->groups; ++g) {
        for (l = 0; l < lg; ++l) {
            uint32_t *cols = lane_filt_buf + (g * lg + l) * (n * 32 + 32);
            uint32_t *thr = thr_dst + (g * lg + l) * 33;
            for (j = 0; j < 32 && 32 * l + j < ocg; ++j) {
                const int32_t oc = g * ocg + 32 * l + j;
                int32_t pc = 0, t, half, half_c;
                for (i = 0; i < n * 32; ++i) {
                    if ((filt_buf[oc * n + i / 32] >> (i % 32)) & 1u) {
                        cols[i] |= 1u << j;
                        ++pc;
                    }
                }
                t = thr_src[oc] < -1 ? -1 : thr_src[oc] > acc_max ? acc_max : thr_src[oc];
                half_c = -((t + pc) / 2); /* t + pc >= 0 */
                t -= pc;
                half = t >= 0 ? t / 2 : -((1 - t) / 2); /* floor */
                for (pl = 0; pl < 16; ++pl) {
                    thr[pl] |= (((uint32_t)half >> pl) & 1u) << j;
                    thr[17 + pl] |= (((uint32_t)half_c >> pl) & 1u) << j;
                }
                thr[16] |= (uint32_t)(t - 2 * half) << j;
            }
        }
    }
    p->lane_filter = lane_filt_buf;
}

static void build_lanes(glt_bconv2d_params *p)
{
    build_lane_tables(p, thr_buf, lane_thr_buf);
    p->lane_thresholds = lane_thr_buf;
}

/* Reference and optimized bconv on in_buf (outputs pre-filled differently): 1 if they differ. */
static int bconv_differs(const glt_bconv2d_params *p)
{
    memset(out_ref, 0xA5, sizeof out_ref);
    memset(out_opt, 0x5A, sizeof out_opt);
    glt_bconv2d_ref(p, in_buf, out_ref);
    glt_bconv2d_opt(p, in_buf, out_opt);
    return memcmp(out_ref, out_opt, out_bytes(p)) != 0;
}

/* Binary shortcut blocks: stride 1, SAME one-padding, out_c = cin (a multiple of
 * 32 per group); the input bit of each pixel and channel chooses the threshold.
 * Lane tables 2 times in 3 (one lane group, or the column list from two on). */
static int check_bconv_shortcut(int cases)
{
    int c, failed = 0;
    for (c = 0; c < cases; ++c) {
        glt_bconv2d_params p;
        glt_shortcut_params s;
        int32_t cin, oc, acc_max;
        memset(&p, 0, sizeof p);
        p.groups = rnd_range(0, 2) == 0 ? 1 : rnd_range(2, 4);
        cin = p.groups * 32 * (p.groups == 1 ? rnd_range(1, 4) : 1);
        p.out_c = cin;
        p.filter_h = p.filter_w = rnd_range(0, 3) == 0 ? 1 : 3;
        p.dilation_h = p.dilation_w = p.stride_h = p.stride_w = 1;
        p.in_h = p.out_h = rnd_range(1, 6);
        p.in_w = p.out_w = rnd_range(1, 6);
        p.pad_top = p.pad_left = p.filter_h / 2;
        p.output_type = GLT_OUT_BITS;
        fill_bconv(&p, cin);
        acc_max = p.filter_h * p.filter_w * (cin / p.groups);
        for (oc = 0; oc < p.out_c; ++oc) {
            sc_thr_buf[oc] = rnd_range(0, 2) ? thr_buf[oc] - rnd_range(0, 4) : rnd_range(-2, acc_max + 2);
            if (sc_thr_buf[oc] < -1) {
                sc_thr_buf[oc] = -1;
            }
        }
        memset(&s, 0, sizeof s);
        s.shortcut_thresholds = sc_thr_buf;
        if (rnd_range(0, 2) != 0) {
            build_lanes(&p);
            build_lane_tables(&p, sc_thr_buf, lane_sc_thr_buf);
            s.lane_shortcut_thresholds = lane_sc_thr_buf;
        }
        s.conv = p;
        s.scratch = scratch;
        memset(out_ref, 0xA5, sizeof out_ref);
        memset(out_opt, 0x5A, sizeof out_opt);
        glt_shortcut_ref(&s, in_buf, out_ref);
        glt_shortcut_opt(&s, in_buf, out_opt);
        if (memcmp(out_ref, out_opt, out_bytes(&p)) != 0) {
            if (failed < 5) {
                put("mismatch bconv_shortcut case ");
                put_u((uint32_t)c);
                put("\n");
            }
            ++failed;
        }
    }
    return failed;
}

static int check_bconv(int cases)
{
    int c, failed = 0;
    for (c = 0; c < cases; ++c) {
        glt_bconv2d_params p;
        int32_t cin, same;
        memset(&p, 0, sizeof p);
        p.groups = rnd_range(0, 4) < 3 ? 1 : rnd_range(2, 3);
        if (p.groups == 1) {
            static const int32_t cins[] = {1, 3, 31, 32, 33, 64, 65, 96, 130, 200, 224};
            cin = cins[rnd_range(0, 10)];
        } else {
            cin = p.groups * 32 * rnd_range(1, 2);
        }
        p.out_c = p.groups * rnd_range(1, 70 / p.groups);
        p.filter_h = rnd_range(1, 4);
        p.filter_w = rnd_range(1, 4);
        p.dilation_h = rnd_range(0, 3) == 0 ? 2 : 1;
        p.dilation_w = rnd_range(0, 3) == 0 ? 2 : 1;
        p.stride_h = rnd_range(1, 3);
        p.stride_w = rnd_range(1, 3);
        p.in_h = rnd_range((p.filter_h - 1) * p.dilation_h + 1, 9);
        p.in_w = rnd_range((p.filter_w - 1) * p.dilation_w + 1, 9);
        same = rnd_range(0, 1);
        p.zero_padding = same && rnd_range(0, 1);
        p.output_type = rnd_range(0, 2);
        same_valid(p.in_h, p.filter_h, p.stride_h, p.dilation_h, same, &p.out_h, &p.pad_top);
        same_valid(p.in_w, p.filter_w, p.stride_w, p.dilation_w, same, &p.out_w, &p.pad_left);
        fill_bconv(&p, cin);
        if (p.output_type == GLT_OUT_BITS && !p.zero_padding && rnd_range(0, 2) != 0) {
            build_lanes(&p);
        }
        if (bconv_differs(&p)) {
            if (failed < 5) {
                put("mismatch bconv case ");
                put_u((uint32_t)c);
                put(" cin ");
                put_u((uint32_t)cin);
                put(" groups ");
                put_u((uint32_t)p.groups);
                put("\n");
            }
            ++failed;
        }
    }
    return failed;
}

/* Float/int8 output whose window is the whole input (1x1 output, VALID): the
 * dedicated path of glt_bconv2d_opt, every n % 6 and out_c up to 70; half the
 * cases with the clamps of a layer without activation (what lowering emits for
 * a classifier), which with float output and n % 24 == 0 (e.g. 3x3x256, 2x2x192,
 * 3x2x128) takes the all-assembly rows of glt_bconv2d_dense_opt. */
static int check_bconv_whole(int cases)
{
    static const int32_t cins[] = {1, 32, 33, 64, 96, 130, 200, 256, 192, 128};
    int c, failed = 0;
    for (c = 0; c < cases; ++c) {
        glt_bconv2d_params p;
        int32_t cin;
        memset(&p, 0, sizeof p);
        p.groups = 1;
        p.out_c = c < 8 ? 2 : rnd_range(1, 70);
        p.filter_h = p.in_h = rnd_range(1, 3);
        p.filter_w = p.in_w = rnd_range(1, 3);
        p.out_h = p.out_w = 1;
        p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
        p.output_type = c < 8 || rnd_range(0, 1) ? GLT_OUT_FLOAT : GLT_OUT_INT8;
        cin = c < 8 ? 256 : cins[rnd_range(0, 9)];
        if (c < 8) {
            p.filter_h = p.in_h = p.filter_w = p.in_w = 3;
        }
        fill_bconv(&p, cin);
        if (c < 8 || rnd_range(0, 1)) { /* no activation: the clamps never bite */
            p.clamp_min = 0;
            p.clamp_max = 2 * p.filter_h * p.filter_w * cin;
        }
        if (bconv_differs(&p)) {
            if (failed < 5) {
                put("mismatch bconv_whole case ");
                put_u((uint32_t)c);
                put("\n");
            }
            ++failed;
        }
    }
    return failed;
}
static int check_bmaxpool(int cases)
{
    int c, failed = 0;
    for (c = 0; c < cases; ++c) {
        glt_bmaxpool_params p;
        int32_t same = rnd_range(0, 1), i, n;
        p.in_h = rnd_range(1, 9);
        p.in_w = rnd_range(1, 9);
        p.words = rnd_range(1, 5);
        p.filter_h = rnd_range(1, p.in_h < 4 ? p.in_h : 4);
        p.filter_w = rnd_range(1, p.in_w < 4 ? p.in_w : 4);
        p.stride_h = rnd_range(1, 3);
        p.stride_w = rnd_range(1, 3);
        same_valid(p.in_h, p.filter_h, p.stride_h, 1, same, &p.out_h, &p.pad_top);
        same_valid(p.in_w, p.filter_w, p.stride_w, 1, same, &p.out_w, &p.pad_left);
        n = p.in_h * p.in_w * p.words;
        for (i = 0; i < n; ++i) {
            in_buf[i] = rnd() | rnd(); /* mostly ones: ANDs matter */
        }
        glt_bmaxpool_ref(&p, in_buf, out_ref);
        glt_bmaxpool_opt(&p, in_buf, out_opt);
        if (memcmp(out_ref, out_opt, (size_t)(p.out_h * p.out_w * p.words) * 4u) != 0) {
            ++failed;
        }
    }
    return failed;
}

static int check_frontend_quantize(int cases)
{
    int c, failed = 0;
    for (c = 0; c < cases; ++c) {
        glt_frontend_params f;
        glt_quantize_params q;
        glt_dequantize_params d;
        int32_t i;
        f.pixels = rnd_range(1, 300);
        f.channels = c % 2 ? 3 : rnd_range(1, 4);
        f.words = c % 2 ? 1 : rnd_range(1, 3);
        f.lut = lut_buf;
        for (i = 0; i < f.channels * 256 * f.words; ++i) {
            lut_buf[i] = rnd();
        }
        for (i = 0; i < f.pixels * f.channels; ++i) {
            frame_buf[i] = (uint8_t)rnd();
        }
        glt_frontend_ref(&f, frame_buf, out_ref);
        glt_frontend_opt(&f, frame_buf, out_opt);
        failed += memcmp(out_ref, out_opt, (size_t)(f.pixels * f.words) * 4u) != 0;

        q.rows = rnd_range(1, 5);
        q.cols = rnd_range(1, 300);
        q.zero_point = rnd_range(-128, 127);
        for (i = 0; i < q.rows * q.cols; ++i) {
            fbuf[i] = (float)rnd_range(-50, 50) / 8.0f;
            frame_buf[i] = (uint8_t)rnd();
        }
        glt_quantize_float_ref(&q, fbuf, out_ref);
        glt_quantize_float_opt(&q, fbuf, out_opt);
        failed += memcmp(out_ref, out_opt, (size_t)(q.rows * words_of(q.cols)) * 4u) != 0;
        glt_quantize_int8_ref(&q, (const int8_t *)frame_buf, out_ref);
        glt_quantize_int8_opt(&q, (const int8_t *)frame_buf, out_opt);
        failed += memcmp(out_ref, out_opt, (size_t)(q.rows * words_of(q.cols)) * 4u) != 0;
        d.rows = q.rows;
        d.cols = q.cols;
        d.zero_bit_value = 37;
        d.one_bit_value = -41;
        glt_dequantize_float_ref(&d, out_ref, (float *)out_opt);
        glt_dequantize_float_opt(&d, out_ref, (float *)(out_opt + 4096));
        failed += memcmp(out_opt, out_opt + 4096, (size_t)(d.rows * d.cols) * 4u) != 0;
        glt_dequantize_int8_ref(&d, out_ref, (int8_t *)out_opt);
        glt_dequantize_int8_opt(&d, out_ref, (int8_t *)(out_opt + 4096));
        failed += memcmp(out_opt, out_opt + 4096, (size_t)(d.rows * d.cols)) != 0;
    }
    return failed;
}

#ifdef GLT_STEM_CASES
#include "stem_cases.h" /* written by tests/test_kernels.py */

static int check_stem(void)
{
    int c, failed = 0;
    for (c = 0; c < STEM_CASES; ++c) {
        memset(out_ref, 0xA5, sizeof out_ref);
        memset(out_opt, 0x5A, sizeof out_opt);
        glt_stem_ref(&stem_params_list[c], stem_frames[c], out_ref);
        glt_stem_opt(&stem_params_list[c], stem_frames[c], out_opt);
        if (memcmp(out_ref, stem_expected[c], stem_expected_bytes[c]) != 0 ||
            memcmp(out_opt, stem_expected[c], stem_expected_bytes[c]) != 0) {
            put("mismatch stem case ");
            put_u((uint32_t)c);
            put("\n");
            ++failed;
        }
    }
    return failed;
}

/* Instructions of the fused stem on case 0 (the default model's stem shape). */
static void bench_stem(uint32_t macs)
{
    uint32_t t0, t_opt, t_ref;
    ticks_start();
    t0 = ticks_now();
    glt_stem_opt(&stem_params_list[0], stem_frames[0], out_opt);
    t_opt = ticks_since(t0);
    ticks_start();
    t0 = ticks_now();
    glt_stem_ref(&stem_params_list[0], stem_frames[0], out_ref);
    t_ref = ticks_since(t0);
    put("bench stem_case0 ");
    put_u(macs);
    put(" ");
    put_u(t_opt);
    put(" ");
    put_u(t_ref);
    put(memcmp(out_ref, out_opt, stem_expected_bytes[0]) ? " MISMATCH\n" : " same\n");
}
#endif

static void report_check(const char *name, int cases, int failed)
{
    put("check ");
    put(name);
    put(" ");
    put_u((uint32_t)cases);
    put(failed ? " FAIL " : " ok ");
    put_u((uint32_t)failed);
    put("\n");
}

/* ------------------------------------------------------------ benchmarks */
static void bench(const char *name, int32_t hw, int32_t cin, int32_t cout, int32_t k, int32_t groups,
                  int32_t out_type, int lanes)
{
    glt_bconv2d_params p;
    uint32_t t0, t_opt, t_ref, macs;
    memset(&p, 0, sizeof p);
    p.in_h = p.in_w = hw;
    p.out_h = p.out_w = hw;
    p.out_c = cout;
    p.filter_h = p.filter_w = k;
    p.groups = groups;
    p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
    p.pad_top = p.pad_left = k / 2;
    p.output_type = out_type;
    fill_bconv(&p, cin);
    if (lanes) {
        build_lanes(&p);
    }
    p.clamp_min = 0;
    p.clamp_max = 1 << 20;
    ticks_start();
    t0 = ticks_now();
    glt_bconv2d_opt(&p, in_buf, out_opt);
    t_opt = ticks_since(t0);
    ticks_start();
    t0 = ticks_now();
    glt_bconv2d_ref(&p, in_buf, out_ref);
    t_ref = ticks_since(t0);
    macs = (uint32_t)(hw * hw * cout * k * k * (cin / groups));
    put("bench ");
    put(name);
    put(" ");
    put_u(macs);
    put(" ");
    put_u(t_opt);
    put(" ");
    put_u(t_ref);
    put(memcmp(out_ref, out_opt, out_bytes(&p)) ? " MISMATCH\n" : " same\n");
}

/* The person detector's classifier: 3x3 VALID over 3x3x256, 2 float outputs. */
static void bench_classifier(void)
{
    glt_bconv2d_params p;
    uint32_t t0, t_opt, t_ref;
    memset(&p, 0, sizeof p);
    p.in_h = p.in_w = p.filter_h = p.filter_w = 3;
    p.out_h = p.out_w = 1;
    p.out_c = 2;
    p.groups = 1;
    p.stride_h = p.stride_w = p.dilation_h = p.dilation_w = 1;
    p.output_type = GLT_OUT_FLOAT;
    fill_bconv(&p, 256);
    p.clamp_min = 0; /* no activation, as lowering emits it */
    p.clamp_max = 2 * 9 * 256;
    ticks_start();
    t0 = ticks_now();
    glt_bconv2d_opt(&p, in_buf, out_opt);
    t_opt = ticks_since(t0);
    ticks_start();
    t0 = ticks_now();
    glt_bconv2d_ref(&p, in_buf, out_ref);
    t_ref = ticks_since(t0);
    put("bench classifier_3x3x256_to2_float 4608 ");
    put_u(t_opt);
    put(" ");
    put_u(t_ref);
    put(memcmp(out_ref, out_opt, out_bytes(&p)) ? " MISMATCH\n" : " same\n");
}
static void calibrate(void)
{
    /* 4 instructions per iteration (3 adds, subs... + bne): 1M iterations */
    uint32_t t0, n = 250000u, a = 0;
    ticks_start();
    t0 = ticks_now();
    __asm__ volatile("1:\n\t"
                     "add %[a], %[a], #1\n\t"
                     "add %[a], %[a], #1\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "bne 1b\n"
                     : [a] "+r"(a), [n] "+r"(n));
    put("calib ");
    put_u(ticks_since(t0));
    put(" 1000000\n");
}

int main(void)
{
    int failed = 0, f;
    put("larq-glt kernel self-test\n");
    f = check_bconv(300);
    report_check("bconv2d", 300, f);
    failed += f;
    f = check_bconv_whole(120);
    report_check("bconv2d_whole", 120, f);
    failed += f;
    f = check_bmaxpool(200);
    report_check("bmaxpool", 200, f);
    failed += f;
    f = check_frontend_quantize(60);
    report_check("frontend_quantize", 60, f);
    failed += f;
#ifdef GLT_STEM_CASES
    {
        /* before and after the boot-time SIMD check: with -DGLT_SIMULATE_BROKEN_SIMD
         * the first run is wrong, the check names the failure and the second run
         * (portable path) is right again */
        const char *broken;
        int before = check_stem();
        put("stem_unchecked ");
        put_u((uint32_t)before);
        put("\n");
        broken = glt_stem_selfcheck();
        put("stem_selfcheck ");
        put(broken ? broken : "ok");
        put("\n");
#if !(defined(GLT_SIMULATE_BROKEN_SIMD) && GLT_SIMULATE_BROKEN_SIMD)
        failed += before + (broken != 0);
#endif
        f = check_stem();
        report_check("stem", STEM_CASES, f);
        failed += f;
    }
#endif
    f = check_bconv_shortcut(150);
    report_check("bconv2d_shortcut", 150, f);
    failed += f;
    calibrate();
#ifdef GLT_STEM_CASES
    bench_stem(STEM_CASE0_MACS);
#endif
    bench("swar_3x3_32to32_bits", 16, 32, 32, 3, 1, GLT_OUT_BITS, 0);
    bench("lanes_3x3_32to32_bits", 16, 32, 32, 3, 1, GLT_OUT_BITS, 1);
    bench("swar_3x3_32to64_bits", 12, 32, 64, 3, 1, GLT_OUT_BITS, 0);
    bench("lanes_3x3_32to64_bits", 12, 32, 64, 3, 1, GLT_OUT_BITS, 1);
    bench("swar_3x3_64to64_bits", 12, 64, 64, 3, 1, GLT_OUT_BITS, 0);
    bench("lanes_3x3_64to64_bits", 12, 64, 64, 3, 1, GLT_OUT_BITS, 1);
    bench("swar_3x3_128to128_bits", 8, 128, 128, 3, 1, GLT_OUT_BITS, 0);
    bench("lanes_3x3_128to128_bits", 8, 128, 128, 3, 1, GLT_OUT_BITS, 1);
    bench("swar_3x3_g4_128to128_bits", 8, 128, 128, 3, 4, GLT_OUT_BITS, 0);
    bench("lanes_3x3_g4_128to128_bits", 8, 128, 128, 3, 4, GLT_OUT_BITS, 1);
    bench("swar_4x4_30to32_bits", 8, 30, 32, 4, 1, GLT_OUT_BITS, 0);
    bench("lanes_4x4_30to32_bits", 8, 30, 32, 4, 1, GLT_OUT_BITS, 1);
    bench("swar_1x1_64to64_bits", 12, 64, 64, 1, 1, GLT_OUT_BITS, 0);
    bench("lanes_1x1_64to64_bits", 12, 64, 64, 1, 1, GLT_OUT_BITS, 1);
    bench("swar_3x3_64to64_float", 12, 64, 64, 3, 1, GLT_OUT_FLOAT, 0);
    bench_classifier();
    put(failed ? "RESULT FAIL\n" : "RESULT PASS\n");
    return failed != 0;
}
