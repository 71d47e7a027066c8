// LceBMaxPool2d on larq-glt's glt_bmaxpool_opt (AND of the window's bits).
#include "glt_kernels.h"
#include "kernel_params.h"
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
  // The parameters themselves: kernel_params.cc (compared with deploy/lower/ by the tests).
  const BMaxPool2dOptions options = {opt[kFilterH], opt[kFilterW], opt[kStrideH], opt[kStrideW],
                                     opt[kPadding]};
  const int32_t in_dims[3] = {Dim(input.get(), 1), Dim(input.get(), 2), Dim(input.get(), 3)};
  const int32_t out_dims[3] = {Dim(output.get(), 1), Dim(output.get(), 2), Dim(output.get(), 3)};
  GLT_ENSURE(Dim(output.get(), 0) == 1, "LceBMaxPool2d: output batch must be 1");
  const ParamError error = BMaxPool2dGeometry(options, in_dims, out_dims, &data->params);
  GLT_ENSURE(error.format == nullptr, error.format, error.a, error.b, error.c);
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
