// GltFrontend: larq-glt's fused uint8 input encoder (glt_frontend_opt).
//
// deploy/tflm/rewrite.py replaces the encoder ops of an LCE model (CAST, RESHAPE, SUB,
// ... ending in LceQuantize) with this op: input 0 is the raw uint8 frame
// [1, H, W, C], input 1 the constant per-channel tables [C, 256, words] (INT32)
// that deploy/lower/ derives and verifies from those ops, output 0 the
// bit-packed activations [1, H, W, words]. No custom options.
#include "glt_kernels.h"
#include "larq_glt_tflm.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tflm_util.h"

namespace larq_glt {
namespace tflm {
namespace {

void* Init(TfLiteContext* context, const char*, size_t) {
  return AllocateZeroed(context, sizeof(glt_frontend_params));
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* p = static_cast<glt_frontend_params*>(node->user_data);
  GLT_ENSURE(p != nullptr, "GltFrontend: out of arena for op data");
  TempTensor frame = Input(context, node, 0);
  TempTensor lut = Input(context, node, 1);
  TempTensor output = Output(context, node, 0);
  GLT_ENSURE(frame && lut && output, "GltFrontend: needs frame, tables and one output");
  GLT_ENSURE(frame->type == kTfLiteUInt8 && NumDims(frame.get()) == 4 && Dim(frame.get(), 0) == 1,
             "GltFrontend: input must be UINT8 [1, H, W, C]");
  const int32_t channels = Dim(frame.get(), 3);
  GLT_ENSURE(output->type == kTfLiteInt32 && NumDims(output.get()) == 4 &&
                 Dim(output.get(), 1) == Dim(frame.get(), 1) &&
                 Dim(output.get(), 2) == Dim(frame.get(), 2),
             "GltFrontend: output must be INT32 [1, H, W, words]");
  const int32_t words = Dim(output.get(), 3);
  GLT_ENSURE(lut->type == kTfLiteInt32 && lut->allocation_type == kTfLiteMmapRo &&
                 NumElements(lut.get()) == channels * 256 * words,
             "GltFrontend: tables must be a constant INT32 [%d, 256, %d]", (int)channels,
             (int)words);
  p->pixels = Dim(frame.get(), 1) * Dim(frame.get(), 2);
  p->channels = channels;
  p->words = words;
  return kTfLiteOk;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  auto* p = static_cast<glt_frontend_params*>(node->user_data);
  p->lut = tflite::micro::GetTensorData<uint32_t>(tflite::micro::GetEvalInput(context, node, 1));
  glt_frontend_opt(p, tflite::micro::GetTensorData<uint8_t>(tflite::micro::GetEvalInput(context, node, 0)),
                   tflite::micro::GetTensorData<uint32_t>(tflite::micro::GetEvalOutput(context, node, 0)));
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_GltFrontend() { return tflite::micro::RegisterOp(Init, Prepare, Eval); }

}  // namespace tflm
}  // namespace larq_glt
