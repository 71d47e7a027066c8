/* Exports sizeof/offsetof of the runtime's parameter structs so the ctypes
 * mirrors in hostlib.py can be checked against the C compiler's layout. */
#include <stddef.h>

#include "glt_argmax.h"
#include "glt_avgpool.h"
#include "glt_bconv2d.h"
#include "glt_bmaxpool.h"
#include "glt_copy.h"
#include "glt_frontend.h"
#include "glt_fully_connected.h"
#include "glt_mean.h"
#include "glt_quantize.h"
#include "glt_shortcut.h"
#include "glt_softmax.h"
#include "glt_stem.h"
#include "glt_word_gather.h"

#define STRUCTS(X)                  \
    X(glt_bconv2d_params, scratch)  \
    X(glt_shortcut_params, scratch) \
    X(glt_bmaxpool_params, pad_left) \
    X(glt_quantize_params, zero_point) \
    X(glt_dequantize_params, one_bit_value) \
    X(glt_frontend_params, lut)     \
    X(glt_stem_params, scratch)     \
    X(glt_mean_params, channels)    \
    X(glt_avgpool_params, act_max)  \
    X(glt_fully_connected_params, bias) \
    X(glt_softmax_params, beta)     \
    X(glt_argmax_params, output_int64) \
    X(glt_copy_params, bytes)      \
    X(glt_word_gather_params, order)

#define DEFINE(name, last)                                                   \
    size_t glt_test_sizeof_##name(void) { return sizeof(name); }             \
    size_t glt_test_last_offset_##name(void) { return offsetof(name, last); }
STRUCTS(DEFINE)
