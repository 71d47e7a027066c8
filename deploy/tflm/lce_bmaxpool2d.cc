// LceBMaxPool2d on larq-glt's glt_bmaxpool_opt (AND of the window's bits).
#include "glt_kernels.h"
#include "larq_glt_tflm.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tflm_util.h"

namespace larq_glt {
namespace tflm {
namespace {

enum Option { kFilterH, kFilterW, kStrideH, kStrideW, kPadding, kNumOptions };
const char* const kOptionKeys[kNumOptions] = {"filter_height", "filter_width", "stride_height",
                                              "stride_width", "padding"};

struct OpData {
  IntOptions options;
  glt_bmaxpool_params params;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(AllocateZeroed(context, sizeof(OpData)));
  if (data != nullptr) ReadIntOptions(buffer, length, kOptionKeys, kNumOptions, &data->options);
  return data;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  GLT_ENSURE(data != nullptr, "LceBMaxPool2d: out of arena for op data");
  GLT_ENSURE(data->options.missing == nullptr, "LceBMaxPool2d: custom option '%s' missing",
             data->options.missing);
  const int32_t* opt = data->options.value;
  TempTensor input = Input(context, node, 0);
  TempTensor output = Output(context, node, 0);
  GLT_ENSURE(input && output && input->type == kTfLiteInt32 && output->type == kTfLiteInt32 &&
                 NumDims(input.get()) == 4 && NumDims(output.get()) == 4 && Dim(input.get(), 0) == 1,
             "LceBMaxPool2d: input and output must be bit-packed INT32 [1, H, W, words]");
  glt_bmaxpool_params& p = data->params;
  p.in_h = Dim(input.get(), 1);
  p.in_w = Dim(input.get(), 2);
  p.words = Dim(input.get(), 3);
  p.filter_h = opt[kFilterH];
  p.filter_w = opt[kFilterW];
  p.stride_h = opt[kStrideH];
  p.stride_w = opt[kStrideW];
  GLT_ENSURE(OutputSizeAndPadding(opt[kPadding], p.in_h, p.filter_h, p.stride_h, 1, &p.out_h,
                                  &p.pad_top) &&
                 OutputSizeAndPadding(opt[kPadding], p.in_w, p.filter_w, p.stride_w, 1, &p.out_w,
                                      &p.pad_left),
             "LceBMaxPool2d: bad padding/filter/stride");
  GLT_ENSURE(Dim(output.get(), 0) == 1 && Dim(output.get(), 1) == p.out_h &&
                 Dim(output.get(), 2) == p.out_w && Dim(output.get(), 3) == p.words,
             "LceBMaxPool2d: output shape differs from the computed [1, %d, %d, %d]", (int)p.out_h,
             (int)p.out_w, (int)p.words);
  return kTfLiteOk;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  glt_bmaxpool_opt(&data->params, tflite::micro::GetTensorData<uint32_t>(input),
                   tflite::micro::GetTensorData<uint32_t>(output));
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_LceBMaxPool2d() { return tflite::micro::RegisterOp(Init, Prepare, Eval); }

}  // namespace tflm
}  // namespace larq_glt
