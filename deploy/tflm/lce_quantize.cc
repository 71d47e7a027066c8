// LceQuantize / LceDequantize on larq-glt's glt_quantize_* / glt_dequantize_*.
// The tensor is rows x cols (cols: its last dimension), each row bit-packed.
#include <math.h>

#include "glt_kernels.h"
#include "larq_glt_tflm.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tflm_util.h"

namespace larq_glt {
namespace tflm {
namespace {

// The rows and columns of `t` and whether `packed` is `t` bit-packed.
bool RowsCols(const TfLiteTensor* t, const TfLiteTensor* packed, int32_t* rows, int32_t* cols) {
  const int n = NumDims(t);
  if (n < 1 || NumDims(packed) != n) return false;
  *cols = Dim(t, n - 1);
  *rows = *cols > 0 ? NumElements(t) / *cols : 0;
  for (int i = 0; i < n - 1; ++i) {
    if (Dim(t, i) != Dim(packed, i)) return false;
  }
  return Dim(packed, n - 1) == PackedWords(*cols);
}

// ------------------------------------------------------------------ quantize

struct QuantizeData {
  glt_quantize_params params;
  TfLiteType input_type;
};

void* QuantizeInit(TfLiteContext* context, const char*, size_t) {
  return AllocateZeroed(context, sizeof(QuantizeData));
}

TfLiteStatus QuantizePrepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<QuantizeData*>(node->user_data);
  GLT_ENSURE(data != nullptr, "LceQuantize: out of arena for op data");
  TempTensor input = Input(context, node, 0);
  TempTensor output = Output(context, node, 0);
  GLT_ENSURE(input && output && output->type == kTfLiteInt32, "LceQuantize: output must be INT32");
  GLT_ENSURE(input->type == kTfLiteFloat32 || input->type == kTfLiteInt8 ||
                 input->type == kTfLiteBool,
             "LceQuantize: input type %d not supported (FLOAT32, INT8, BOOL)", (int)input->type);
  GLT_ENSURE(RowsCols(input.get(), output.get(), &data->params.rows, &data->params.cols),
             "LceQuantize: output is not the bit-packed input");
  data->input_type = input->type;
  data->params.zero_point = input->type == kTfLiteInt8 ? input->params.zero_point : 0;
  return kTfLiteOk;
}

TfLiteStatus QuantizeEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const QuantizeData*>(node->user_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  uint32_t* out = tflite::micro::GetTensorData<uint32_t>(tflite::micro::GetEvalOutput(context, node, 0));
  switch (data->input_type) {
    case kTfLiteFloat32:
      glt_quantize_float_opt(&data->params, tflite::micro::GetTensorData<float>(input), out);
      break;
    case kTfLiteInt8:
      glt_quantize_int8_opt(&data->params, tflite::micro::GetTensorData<int8_t>(input), out);
      break;
    default:  // bool, one byte per value
      glt_quantize_bool_opt(&data->params, tflite::micro::GetTensorData<uint8_t>(input), out);
      break;
  }
  return kTfLiteOk;
}

// ---------------------------------------------------------------- dequantize

struct DequantizeData {
  glt_dequantize_params params;
  TfLiteType output_type;
};

void* DequantizeInit(TfLiteContext* context, const char*, size_t) {
  return AllocateZeroed(context, sizeof(DequantizeData));
}

TfLiteStatus DequantizePrepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<DequantizeData*>(node->user_data);
  GLT_ENSURE(data != nullptr, "LceDequantize: out of arena for op data");
  TempTensor input = Input(context, node, 0);
  TempTensor output = Output(context, node, 0);
  GLT_ENSURE(input && output && input->type == kTfLiteInt32, "LceDequantize: input must be INT32");
  GLT_ENSURE(output->type == kTfLiteFloat32 || output->type == kTfLiteInt8,
             "LceDequantize: output type %d not supported (FLOAT32, INT8)", (int)output->type);
  GLT_ENSURE(RowsCols(output.get(), input.get(), &data->params.rows, &data->params.cols),
             "LceDequantize: input is not the bit-packed output");
  data->output_type = output->type;
  data->params.zero_bit_value = 1;
  data->params.one_bit_value = -1;
  if (output->type == kTfLiteInt8) {
    GLT_ENSURE(output->quantization.type == kTfLiteAffineQuantization,
               "LceDequantize: int8 output without quantization parameters");
    // +-1 in the output's scale: std::round (half away from zero) of 1 / scale.
    const float inverse = 1.0f / output->params.scale;
    const double magnitude = floor(fabs(static_cast<double>(inverse)) + 0.5);
    const int32_t offset = static_cast<int32_t>(inverse < 0 ? -magnitude : magnitude);
    const int32_t zp = output->params.zero_point;
    data->params.zero_bit_value = zp + offset < 127 ? zp + offset : 127;
    data->params.one_bit_value = zp - offset > -128 ? zp - offset : -128;
  }
  return kTfLiteOk;
}

TfLiteStatus DequantizeEval(TfLiteContext* context, TfLiteNode* node) {
  const auto* data = static_cast<const DequantizeData*>(node->user_data);
  const uint32_t* in = tflite::micro::GetTensorData<uint32_t>(tflite::micro::GetEvalInput(context, node, 0));
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  if (data->output_type == kTfLiteFloat32) {
    glt_dequantize_float_opt(&data->params, in, tflite::micro::GetTensorData<float>(output));
  } else {
    glt_dequantize_int8_opt(&data->params, in, tflite::micro::GetTensorData<int8_t>(output));
  }
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_LceQuantize() {
  return tflite::micro::RegisterOp(QuantizeInit, QuantizePrepare, QuantizeEval);
}

TFLMRegistration Register_LceDequantize() {
  return tflite::micro::RegisterOp(DequantizeInit, DequantizePrepare, DequantizeEval);
}

}  // namespace tflm
}  // namespace larq_glt
