"""Stage 1 of deploy/: a flatbuffer model (larq_glt.flatbuffer.Model) lowered to plain-data kernel calls.

Each :class:`KernelCall` says which C function of ``deploy/runtime`` to call, with
which parameter struct (scalar fields in ``params``, const array fields in
``arrays``), on which activation tensors. Everything LCE computes at prepare time
(padding, fused output multipliers/biases, clamps, zero-padding data, thresholds)
is computed here, bit for bit as LCE does, so the C hot paths only compute.

Every kernel has the C signature ``void fn(const <params_type> *p, const void *in,
void *out)``. A params field named ``scratch`` (see ``scratch_bytes``) points to
RAM the optimized kernel may use; absent array fields are NULL.

The uint8 input encoder (CAST/TILE/SUB/... ending in LceQuantize) is fused into
one front-end call whose per-channel tables are obtained by evaluating those ops
on probe frames (:func:`frontend_lut`). When its only reader is a binary conv,
both become one ``glt_stem`` call that reads the raw frame (:func:`fuse_stem_calls`):
the encoded frame is never stored, and a code with few patterns per channel (a
thermometer: K + 1) turns the conv into sums of precomputed per-level rows
(:func:`stem_level_tables`).

Example (a 3x3 binary conv writing bit-packed output)::

    KernelCall(op_indices=(4,), op_name='LceBconv2d', function='glt_bconv2d_opt',
               reference_function='glt_bconv2d_ref', header='glt_bconv2d.h',
               params_type='glt_bconv2d_params',
               params={'in_h': 9, 'in_w': 7, 'in_words': 2, 'out_h': 9, 'out_w': 7,
                       'out_c': 32, 'filter_h': 3, 'filter_w': 3, 'group_words': 2,
                       'groups': 1, 'stride_h': 1, 'stride_w': 1, 'dilation_h': 1,
                       'dilation_w': 1, 'pad_top': 1, 'pad_left': 1, 'zero_padding': 0,
                       'binary_zero_point': 16, 'output_type': 2, 'clamp_min': 0,
                       'clamp_max': 0, 'lane_groups': 1, 'lane_planes': 10},
               arrays={'filter': uint32[576], 'thresholds': int32[32],
                       'lane_filter': uint32[608], 'lane_thresholds': uint32[33]},
               inputs=(18,), outputs=(19,), input_bytes=(504,), output_bytes=(252,),
               scratch_bytes=76, binary_macs=598752, reference_arrays=('filter', 'thresholds'))

The C side is then: ``static const glt_bconv2d_params p4 = {.in_h = 9, ...,
.filter = p4_filter, .lane_filter = p4_lane_filter, ..., .scratch = scratch};``
and ``glt_bconv2d_opt(&p4, arena + off_in, arena + off_out);``.
"""

# calls.py      KernelCall, UnsupportedOpError, the operand helpers
# lce_ops.py    LceBconv2d, LceBMaxPool2d, LceQuantize, LceDequantize (+ bit-sliced lane tables, binary shortcuts,
#               shuffled blocks)
# builtin_ops.py  reshapes, MEAN, AVERAGE_POOL_2D, FULLY_CONNECTED, SOFTMAX, ARG_MAX
# frontend.py   the uint8 input encoder as one look-up-table call
# stem.py       the front end fused with the first binary convolution
# schedule.py   lower_model / lower_operator: the whole model, in order
from deploy.lower.calls import C_TYPES, LANES_ACC_MAX, MAX_TAPS, OUT_BITS, OUT_FLOAT, OUT_INT8, KernelCall, UnsupportedOpError
from deploy.lower.frontend import find_frontend, frontend_lut
from deploy.lower.lce_ops import (LANE_THRESHOLD_WORDS, bconv_is_dense, bconv_scratch_bytes, bitpack, lane_planes, lane_tables,
                                  lower_shortcut, lower_word_shuffle, shortcut_scratch_bytes, shortcut_thresholds,
                                  sign_thresholds)
from deploy.lower.schedule import LOWERINGS, lower_model, lower_operator
from deploy.lower.stem import (STEM_COMPARE_WORDS, STEM_LANES, STEM_TABLE_MAX_BYTES, fuse_stem_calls, stem_level_tables,
                               stem_params)

__all__ = [
    "UnsupportedOpError",
    "KernelCall",
    "lower_model",
    "lower_operator",
    "find_frontend",
    "LOWERINGS",
    "frontend_lut",
    "bitpack",
    "lane_tables",
    "lane_planes",
    "lower_shortcut",
    "lower_word_shuffle",
    "sign_thresholds",
    "shortcut_scratch_bytes",
    "shortcut_thresholds",
    "bconv_scratch_bytes",
    "bconv_is_dense",
    "fuse_stem_calls",
    "stem_params",
    "stem_level_tables",
    "C_TYPES",
    "OUT_FLOAT",
    "OUT_INT8",
    "OUT_BITS",
    "MAX_TAPS",
    "LANES_ACC_MAX",
    "LANE_THRESHOLD_WORDS",
    "STEM_LANES",
    "STEM_COMPARE_WORDS",
    "STEM_TABLE_MAX_BYTES",
]
