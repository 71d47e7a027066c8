/*
 * The kernel parameters the TFLM kernels compute in Prepare, as plain functions
 * of the custom options, the tensor shapes and the constant tensors.
 *
 * deploy/lower/ computes the same parameters in Python for the generated
 * runtime. They are computed twice on purpose: the TFLM kernels must run a
 * flatbuffer as the LCE converter wrote it (LCE's options and tensors, no
 * larq-glt build step), so they cannot just read precomputed values. To keep
 * the two equal, this file includes no TFLM header: tests/test_tflm.py
 * compiles it alone with the host's g++ and compares its results with
 * deploy/lower/ on every LceBconv2d and LceBMaxPool2d of the shipped model and
 * the test models, without a TFLM tree.
 */
#ifndef LARQ_GLT_TFLM_KERNEL_PARAMS_H
#define LARQ_GLT_TFLM_KERNEL_PARAMS_H

#include <stdint.h>

#include "glt_kernels.h"

namespace larq_glt {
namespace tflm {

constexpr int32_t kPaddingSame = 0;   // tflite::Padding_SAME
constexpr int32_t kPaddingValid = 1;  // tflite::Padding_VALID

// TfLiteFusedActivation values LCE's fused output clamps know.
constexpr int32_t kActRelu = 1, kActReluN1To1 = 2, kActRelu6 = 3;

constexpr int kMaxTaps = 64;                 // GLT_MAX_TAPS of glt_bconv2d_opt.c
constexpr int32_t kThresholdMin = -1;
constexpr int32_t kThresholdMax = 1 << 30;   // range glt_bconv2d_opt needs
constexpr int32_t kLanesAccMax = 32000;      // LANES_ACC_MAX of deploy/lower/
constexpr int32_t kLaneThresholdWords = 33;  // LANE_THRESHOLD_WORDS of deploy/lower/

// A parameter the kernel cannot run: a printf format and its int arguments
// (Prepare prints them with MicroPrintf); format nullptr: no error.
struct ParamError {
  const char* format;
  int a, b, c;
};
constexpr ParamError kNoError = {nullptr, 0, 0, 0};

// TFLite SAME/VALID output size and padding before the input
// (ComputePaddingHeightWidth); false for an unknown padding or bad sizes.
bool OutputSizeAndPadding(int32_t padding, int32_t size, int32_t filter,
                          int32_t stride, int32_t dilation, int32_t* out,
                          int32_t* pad_before);

// ------------------------------------------------------------ LceBconv2d

// LCE's integer custom options of LceBconv2d.
struct Bconv2dOptions {
  int32_t channels_in, stride_h, stride_w, dilation_h, dilation_w, padding, pad_values,
      activation;
};

// The shape fields of `p` (everything up to binary_zero_point, and output_type)
// from the options, input dims [H, W, words], filter dims [O, H, W, words],
// the output type (GLT_OUT_*) and output dims [H, W, C].
ParamError Bconv2dGeometry(const Bconv2dOptions& o, const int32_t input[3],
                           const int32_t filter[4], int32_t output_type,
                           const int32_t output[3], glt_bconv2d_params* p);

// Bit-packed output: LCE's thresholds clamped to the range glt_bconv2d_opt needs.
void Bconv2dClampThresholds(const int32_t* thresholds, int32_t out_c, int32_t* clamped);

// Bit-packed output with lane tables of the given sizes (words): checks them
// and sets lane_groups and lane_planes.
ParamError Bconv2dLanes(const Bconv2dOptions& o, int32_t lane_filter_words,
                        int32_t lane_threshold_words, glt_bconv2d_params* p);

// Float/int8 output: LCE's fused multiplier and bias (OneTimeSetup: in double,
// stored as float) into fused[0..out_c) and fused[out_c..2*out_c), pointed to
// by p->multiplier and p->bias, and the clamps of 2*acc. scale 1 and
// zero_point 0 for float output.
void Bconv2dFuseOutput(const Bconv2dOptions& o, const float* multiplier, const float* bias,
                       double scale, double zero_point, float* fused, glt_bconv2d_params* p);

// Zero padding: the popcount of each filter tap, [out_c][taps].
void Bconv2dTapPopcounts(const glt_bconv2d_params& p, const uint32_t* filter, uint16_t* per_tap);

// ------------------------------------------------------------ LceBMaxPool2d

struct BMaxPool2dOptions {
  int32_t filter_h, filter_w, stride_h, stride_w, padding;
};

// All of `p` from the options, input dims [H, W, words] and output dims.
ParamError BMaxPool2dGeometry(const BMaxPool2dOptions& o, const int32_t input[3],
                              const int32_t output[3], glt_bmaxpool_params* p);

}  // namespace tflm
}  // namespace larq_glt

#endif  // LARQ_GLT_TFLM_KERNEL_PARAMS_H
