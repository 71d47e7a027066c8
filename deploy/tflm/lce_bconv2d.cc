// LceBconv2d on larq-glt's glt_bconv2d_opt.
//
// Prepare computes, from the custom options and the constant tensors, exactly
// what deploy/lower/ computes for the generated runtime (padding, LCE's
// fused output multiplier/bias in double, clamps, clamped thresholds, per-tap
// filter popcounts for zero padding).
//
// Optional inputs 5 and 6 (bit-packed output only): the lane tables of
// glt_bconv2d_opt's bit-sliced algorithm (lane_filter, lane_thresholds, INT32
// constants), which deploy/tflm/target.py adds to the flatbuffer at build time from
// deploy/lower/: they cost flash instead of arena RAM. Without them (a
// plain LCE flatbuffer) the kernel takes its per-channel path: same bits, slower.
#include <math.h>
#include <string.h>

#include "glt_kernels.h"
#include "larq_glt_tflm.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tflm_util.h"

namespace larq_glt {
namespace tflm {
namespace {

constexpr int kMaxTaps = 64;  // GLT_MAX_TAPS of glt_bconv2d_opt.c
constexpr int32_t kThresholdMin = -1;
constexpr int32_t kThresholdMax = 1 << 30;  // range glt_bconv2d_opt needs
constexpr int32_t kLanesAccMax = 32000;     // LANES_ACC_MAX of deploy/lower/
constexpr int32_t kLaneThresholdWords = 33; // LANE_THRESHOLD_WORDS of deploy/lower/
constexpr int kLaneFilterInput = 5, kLaneThresholdsInput = 6;

// Counter planes of the bit-sliced algorithm (deploy/lower/ lane_planes):
// values lie in [-(acc_max + 1), acc_max + 1], and at least 5 planes.
int32_t LanePlanes(int32_t acc_max) {
  int32_t bits = 0;
  for (uint32_t v = static_cast<uint32_t>(acc_max) + 1; v != 0; v >>= 1) ++bits;
  return bits + 1 > 5 ? bits + 1 : 5;
}

enum Option {
  kChannelsIn,
  kStrideH,
  kStrideW,
  kDilationH,
  kDilationW,
  kPadding,
  kPadValues,
  kActivation,
  kNumOptions
};
const char* const kOptionKeys[kNumOptions] = {
    "channels_in",   "stride_height",          "stride_width",
    "dilation_height_factor", "dilation_width_factor", "padding",
    "pad_values",    "fused_activation_function"};

struct OpData {
  IntOptions options;
  glt_bconv2d_params params;
  int scratch_index;  // -1: the kernel needs no scratch
  bool lanes;         // lane tables given (inputs 5 and 6)
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(AllocateZeroed(context, sizeof(OpData)));
  if (data != nullptr) {
    ReadIntOptions(buffer, length, kOptionKeys, kNumOptions, &data->options);
    data->scratch_index = -1;
  }
  return data;
}

int32_t PopCount(uint32_t x) {
  int32_t n = 0;
  for (; x != 0; x &= x - 1) ++n;
  return n;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  GLT_ENSURE(data != nullptr, "LceBconv2d: out of arena for op data");
  const int32_t* opt = data->options.value;
  GLT_ENSURE(data->options.missing == nullptr,
             "LceBconv2d: custom option '%s' missing", data->options.missing);
  GLT_ENSURE(node->inputs->size >= 2 && node->outputs->size == 1,
             "LceBconv2d: expected input, filter, ... and one output");

  TempTensor input = Input(context, node, 0);
  TempTensor filter = Input(context, node, 1);
  TempTensor output = Output(context, node, 0);
  GLT_ENSURE(input && filter && output, "LceBconv2d: missing input/filter/output");
  GLT_ENSURE(input->type == kTfLiteInt32 && NumDims(input.get()) == 4 && Dim(input.get(), 0) == 1,
             "LceBconv2d: input must be bit-packed INT32 [1, H, W, words]");
  GLT_ENSURE(filter->type == kTfLiteInt32 && NumDims(filter.get()) == 4 &&
                 filter->allocation_type == kTfLiteMmapRo,
             "LceBconv2d: filter must be a constant bit-packed INT32 [O, H, W, words]");
  GLT_ENSURE(NumDims(output.get()) == 4, "LceBconv2d: output must be 4-D");

  glt_bconv2d_params& p = data->params;
  p.in_h = Dim(input.get(), 1);
  p.in_w = Dim(input.get(), 2);
  p.in_words = Dim(input.get(), 3);
  p.out_c = Dim(filter.get(), 0);
  p.filter_h = Dim(filter.get(), 1);
  p.filter_w = Dim(filter.get(), 2);
  p.group_words = Dim(filter.get(), 3);
  const int32_t channels_in = opt[kChannelsIn];
  GLT_ENSURE(channels_in > 0 && p.in_words == PackedWords(channels_in),
             "LceBconv2d: input has %d words per pixel, channels_in=%d", (int)p.in_words,
             (int)channels_in);
  GLT_ENSURE(p.group_words > 0 && p.in_words % p.group_words == 0,
             "LceBconv2d: filter depth %d words does not divide %d input words", (int)p.group_words,
             (int)p.in_words);
  p.groups = p.in_words / p.group_words;
  const int32_t channels_per_group = channels_in / p.groups;
  GLT_ENSURE(p.groups == 1 || (channels_per_group % 32 == 0 && p.out_c % p.groups == 0),
             "LceBconv2d: %d groups need channels per group multiple of 32", (int)p.groups);
  const int32_t taps = p.filter_h * p.filter_w;
  GLT_ENSURE(taps <= kMaxTaps, "LceBconv2d: more than %d filter taps", kMaxTaps);
  GLT_ENSURE(opt[kPadValues] == 0 || opt[kPadValues] == 1, "LceBconv2d: pad_values must be 0 or 1");

  p.stride_h = opt[kStrideH];
  p.stride_w = opt[kStrideW];
  p.dilation_h = opt[kDilationH];
  p.dilation_w = opt[kDilationW];
  GLT_ENSURE(OutputSizeAndPadding(opt[kPadding], p.in_h, p.filter_h, p.stride_h, p.dilation_h,
                                  &p.out_h, &p.pad_top) &&
                 OutputSizeAndPadding(opt[kPadding], p.in_w, p.filter_w, p.stride_w,
                                      p.dilation_w, &p.out_w, &p.pad_left),
             "LceBconv2d: bad padding/stride/dilation");
  p.zero_padding = (opt[kPadding] == kPaddingSame && opt[kPadValues] == 0) ? 1 : 0;
  p.binary_zero_point = channels_per_group / 2;

  switch (output->type) {
    case kTfLiteInt32: p.output_type = GLT_OUT_BITS; break;
    case kTfLiteFloat32: p.output_type = GLT_OUT_FLOAT; break;
    case kTfLiteInt8: p.output_type = GLT_OUT_INT8; break;
    default: GLT_ENSURE(false, "LceBconv2d: output type %d not supported", (int)output->type);
  }
  const int32_t out_depth = p.output_type == GLT_OUT_BITS ? PackedWords(p.out_c) : p.out_c;
  GLT_ENSURE(Dim(output.get(), 0) == 1 && Dim(output.get(), 1) == p.out_h &&
                 Dim(output.get(), 2) == p.out_w && Dim(output.get(), 3) == out_depth,
             "LceBconv2d: output shape differs from the computed [1, %d, %d, %d]", (int)p.out_h,
             (int)p.out_w, (int)out_depth);

  const uint32_t* filter_words = reinterpret_cast<const uint32_t*>(filter->data.raw);
  p.filter = filter_words;
  // LCE's back-transformation: filter height * width * channels per group.
  const int64_t backtransform_add = static_cast<int64_t>(taps) * channels_per_group;
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);

  if (p.output_type == GLT_OUT_BITS) {
    TempTensor thresholds = Input(context, node, 4);
    GLT_ENSURE(thresholds && thresholds->type == kTfLiteInt32 &&
                   NumElements(thresholds.get()) == p.out_c,
               "LceBconv2d: bit-packed output needs %d INT32 thresholds (input 4)", (int)p.out_c);
    auto* clamped = static_cast<int32_t*>(
        micro_context->AllocatePersistentBuffer(sizeof(int32_t) * p.out_c));
    GLT_ENSURE(clamped != nullptr, "LceBconv2d: out of arena for thresholds");
    for (int32_t c = 0; c < p.out_c; ++c) {
      // acc lies in [0, 2^30): clamping LCE's +-infinity thresholds keeps acc > t.
      const int32_t t = thresholds->data.i32[c];
      clamped[c] = t < kThresholdMin ? kThresholdMin : (t > kThresholdMax ? kThresholdMax : t);
    }
    p.thresholds = clamped;
    TempTensor lane_filter = Input(context, node, kLaneFilterInput);
    TempTensor lane_thresholds = Input(context, node, kLaneThresholdsInput);
    if (lane_filter || lane_thresholds) {
      const int32_t acc_max = taps * channels_per_group;
      const int32_t lane_groups = (p.out_c / p.groups + 31) / 32;
      const int32_t n = taps * p.group_words;
      GLT_ENSURE(lane_filter && lane_thresholds && !p.zero_padding && acc_max <= kLanesAccMax,
                 "LceBconv2d: lane tables need both inputs 5 and 6, no zero padding and at most %d "
                 "accumulated bits", (int)kLanesAccMax);
      GLT_ENSURE(lane_filter->type == kTfLiteInt32 && lane_thresholds->type == kTfLiteInt32 &&
                     lane_filter->allocation_type == kTfLiteMmapRo &&
                     lane_thresholds->allocation_type == kTfLiteMmapRo &&
                     NumElements(lane_filter.get()) == p.groups * lane_groups * (n * 32 + 32) &&
                     NumElements(lane_thresholds.get()) == p.groups * lane_groups * kLaneThresholdWords,
                 "LceBconv2d: lane tables must be constant INT32 of %d and %d words",
                 (int)(p.groups * lane_groups * (n * 32 + 32)),
                 (int)(p.groups * lane_groups * kLaneThresholdWords));
      p.lane_groups = lane_groups;
      p.lane_planes = LanePlanes(acc_max);
      data->lanes = true;
    }
  } else {
    TempTensor multiplier = Input(context, node, 2);
    TempTensor bias = Input(context, node, 3);
    GLT_ENSURE(multiplier && bias && multiplier->type == kTfLiteFloat32 &&
                   bias->type == kTfLiteFloat32 && NumElements(multiplier.get()) == p.out_c &&
                   NumElements(bias.get()) == p.out_c,
               "LceBconv2d: float/int8 output needs %d FLOAT32 multipliers and biases",
               (int)p.out_c);
    double scale = 1.0, zero_point = 0.0;
    if (p.output_type == GLT_OUT_INT8) {
      GLT_ENSURE(output->quantization.type == kTfLiteAffineQuantization,
                 "LceBconv2d: int8 output without quantization parameters");
      scale = output->params.scale;
      zero_point = output->params.zero_point;
    }
    auto* fused = static_cast<float*>(
        micro_context->AllocatePersistentBuffer(2 * sizeof(float) * p.out_c));
    GLT_ENSURE(fused != nullptr, "LceBconv2d: out of arena for multipliers");
    for (int32_t c = 0; c < p.out_c; ++c) {
      // LCE's OneTimeSetup: fused in double, stored as float.
      const double m = multiplier->data.f[c];
      const double b = bias->data.f[c];
      fused[c] = static_cast<float>(-1 * m / scale);
      fused[p.out_c + c] =
          static_cast<float>((b + static_cast<double>(backtransform_add) * m) / scale + zero_point);
    }
    p.multiplier = fused;
    p.bias = fused + p.out_c;
    int64_t nominal_min = INT32_MIN, nominal_max = INT32_MAX;
    switch (opt[kActivation]) {  // LCE treats other activations as none
      case kTfLiteActRelu: nominal_min = 0; break;
      case kTfLiteActReluN1To1: nominal_min = -1; nominal_max = 1; break;
      case kTfLiteActRelu6: nominal_min = 0; nominal_max = 6; break;
      default: break;
    }
    const int64_t lo = nominal_min > -backtransform_add ? nominal_min : -backtransform_add;
    const int64_t hi = nominal_max < backtransform_add ? nominal_max : backtransform_add;
    p.clamp_min = static_cast<int32_t>(-hi + backtransform_add);
    p.clamp_max = static_cast<int32_t>(-lo + backtransform_add);
  }

  if (p.zero_padding) {
    auto* per_tap = static_cast<uint16_t*>(
        micro_context->AllocatePersistentBuffer(sizeof(uint16_t) * p.out_c * taps));
    GLT_ENSURE(per_tap != nullptr, "LceBconv2d: out of arena for tap popcounts");
    for (int32_t i = 0; i < p.out_c * taps; ++i) {
      int32_t n = 0;
      for (int32_t w = 0; w < p.group_words; ++w) n += PopCount(filter_words[i * p.group_words + w]);
      per_tap[i] = static_cast<uint16_t>(n);
    }
    p.tap_popcount = per_tap;
  }

  // The im2col window (plus the sentinel word of the lanes algorithm), shared
  // with other ops' scratch.
  const size_t scratch_bytes = sizeof(uint32_t) * (static_cast<size_t>(taps) * p.group_words + 1);
  return context->RequestScratchBufferInArena(context, scratch_bytes, &data->scratch_index);
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  const TfLiteEvalTensor* filter = tflite::micro::GetEvalInput(context, node, 1);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  data->params.filter = tflite::micro::GetTensorData<uint32_t>(filter);
  if (data->lanes) {
    data->params.lane_filter =
        tflite::micro::GetTensorData<uint32_t>(tflite::micro::GetEvalInput(context, node, kLaneFilterInput));
    data->params.lane_thresholds = tflite::micro::GetTensorData<uint32_t>(
        tflite::micro::GetEvalInput(context, node, kLaneThresholdsInput));
  }
  data->params.scratch =
      static_cast<uint32_t*>(context->GetScratchBuffer(context, data->scratch_index));
  glt_bconv2d_opt(&data->params, tflite::micro::GetTensorData<uint32_t>(input), output->data.data);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_LceBconv2d() { return tflite::micro::RegisterOp(Init, Prepare, Eval); }

}  // namespace tflm
}  // namespace larq_glt
