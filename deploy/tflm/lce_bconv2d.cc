// LceBconv2d on larq-glt's glt_bconv2d_opt.
//
// Prepare checks the tensors and computes, from LCE's custom options and the
// constant tensors, exactly what deploy/lower/ computes for the generated
// runtime (padding, LCE's fused output multiplier/bias in double, clamps,
// clamped thresholds, per-tap filter popcounts for zero padding): the
// computation is kernel_params.cc, which the tests compile alone on the host
// and compare with deploy/lower/ on every op of the shipped and test models.
//
// Optional inputs 5 and 6 (bit-packed output only): the lane tables of
// glt_bconv2d_opt's bit-sliced algorithm (lane_filter, lane_thresholds, INT32
// constants), which deploy/tflm/rewrite.py adds to the flatbuffer at build time from
// deploy/lower/: they cost flash instead of arena RAM. Without them (a
// plain LCE flatbuffer) the kernel takes its per-channel path: same bits, slower.
#include "glt_kernels.h"
#include "kernel_params.h"
#include "larq_glt_tflm.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tflm_util.h"

namespace larq_glt {
namespace tflm {
namespace {

constexpr int kLaneFilterInput = 5, kLaneThresholdsInput = 6;

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

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  GLT_ENSURE(data != nullptr, "LceBconv2d: out of arena for op data");
  const int32_t* opt = data->options.value;
  GLT_ENSURE(data->options.missing == nullptr,
             "LceBconv2d: custom option '%s' missing", data->options.missing);
  GLT_ENSURE(node->inputs->size >= 2 && node->outputs->size == 1,
             "LceBconv2d: expected input, filter, ... and one output");
  const Bconv2dOptions options = {opt[kChannelsIn], opt[kStrideH],  opt[kStrideW],
                                  opt[kDilationH],  opt[kDilationW], opt[kPadding],
                                  opt[kPadValues],  opt[kActivation]};

  TempTensor input = Input(context, node, 0);
  TempTensor filter = Input(context, node, 1);
  TempTensor output = Output(context, node, 0);
  GLT_ENSURE(input && filter && output, "LceBconv2d: missing input/filter/output");
  GLT_ENSURE(input->type == kTfLiteInt32 && NumDims(input.get()) == 4 && Dim(input.get(), 0) == 1,
             "LceBconv2d: input must be bit-packed INT32 [1, H, W, words]");
  GLT_ENSURE(filter->type == kTfLiteInt32 && NumDims(filter.get()) == 4 &&
                 filter->allocation_type == kTfLiteMmapRo,
             "LceBconv2d: filter must be a constant bit-packed INT32 [O, H, W, words]");
  GLT_ENSURE(NumDims(output.get()) == 4 && Dim(output.get(), 0) == 1,
             "LceBconv2d: output must be 4-D [1, H, W, C]");
  int32_t output_type = GLT_OUT_FLOAT;
  switch (output->type) {
    case kTfLiteInt32: output_type = GLT_OUT_BITS; break;
    case kTfLiteFloat32: output_type = GLT_OUT_FLOAT; break;
    case kTfLiteInt8: output_type = GLT_OUT_INT8; break;
    default: GLT_ENSURE(false, "LceBconv2d: output type %d not supported", (int)output->type);
  }

  // The parameters themselves: kernel_params.cc (compared with deploy/lower/ by the tests).
  glt_bconv2d_params& p = data->params;
  const int32_t in_dims[3] = {Dim(input.get(), 1), Dim(input.get(), 2), Dim(input.get(), 3)};
  const int32_t filter_dims[4] = {Dim(filter.get(), 0), Dim(filter.get(), 1), Dim(filter.get(), 2),
                                  Dim(filter.get(), 3)};
  const int32_t out_dims[3] = {Dim(output.get(), 1), Dim(output.get(), 2), Dim(output.get(), 3)};
  ParamError error = Bconv2dGeometry(options, in_dims, filter_dims, output_type, out_dims, &p);
  GLT_ENSURE(error.format == nullptr, error.format, error.a, error.b, error.c);

  const uint32_t* filter_words = reinterpret_cast<const uint32_t*>(filter->data.raw);
  p.filter = filter_words;
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);

  if (p.output_type == GLT_OUT_BITS) {
    TempTensor thresholds = Input(context, node, 4);
    GLT_ENSURE(thresholds && thresholds->type == kTfLiteInt32 &&
                   NumElements(thresholds.get()) == p.out_c,
               "LceBconv2d: bit-packed output needs %d INT32 thresholds (input 4)", (int)p.out_c);
    auto* clamped = static_cast<int32_t*>(
        micro_context->AllocatePersistentBuffer(sizeof(int32_t) * p.out_c));
    GLT_ENSURE(clamped != nullptr, "LceBconv2d: out of arena for thresholds");
    Bconv2dClampThresholds(thresholds->data.i32, p.out_c, clamped);
    p.thresholds = clamped;
    TempTensor lane_filter = Input(context, node, kLaneFilterInput);
    TempTensor lane_thresholds = Input(context, node, kLaneThresholdsInput);
    if (lane_filter || lane_thresholds) {
      GLT_ENSURE(lane_filter && lane_thresholds && lane_filter->type == kTfLiteInt32 &&
                     lane_thresholds->type == kTfLiteInt32 &&
                     lane_filter->allocation_type == kTfLiteMmapRo &&
                     lane_thresholds->allocation_type == kTfLiteMmapRo,
                 "LceBconv2d: lane tables need both inputs 5 and 6, constant INT32");
      error = Bconv2dLanes(options, NumElements(lane_filter.get()),
                           NumElements(lane_thresholds.get()), &p);
      GLT_ENSURE(error.format == nullptr, error.format, error.a, error.b, error.c);
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
    Bconv2dFuseOutput(options, multiplier->data.f, bias->data.f, scale, zero_point, fused, &p);
  }

  const int32_t taps = p.filter_h * p.filter_w;
  if (p.zero_padding) {
    auto* per_tap = static_cast<uint16_t*>(
        micro_context->AllocatePersistentBuffer(sizeof(uint16_t) * p.out_c * taps));
    GLT_ENSURE(per_tap != nullptr, "LceBconv2d: out of arena for tap popcounts");
    Bconv2dTapPopcounts(p, filter_words, per_tap);
    p.tap_popcount = per_tap;
  }

  // The im2col window and a sentinel word, plus the column list of the lanes
  // algorithm from two lane groups on (bconv_scratch_bytes in deploy/lower), shared
  // with other ops' scratch.
  const size_t n_words = static_cast<size_t>(taps) * p.group_words;
  const size_t list_bytes = data->lanes && p.lane_groups > 1 ? sizeof(uint16_t) * (16 * n_words + 16) : 0;
  const size_t scratch_bytes = sizeof(uint32_t) * (n_words + 1) + list_bytes;
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
