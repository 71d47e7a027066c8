// GltStem: the input front end fused with the first binary convolution
// (glt_stem_opt): raw uint8 frame in, the convolution's output out; the encoded
// frame never exists in RAM.
//
// deploy/tflm/rewrite.py writes this op in place of the encoder ops and the LceBconv2d
// that reads them, from the very kernel call deploy/lower/ makes for the
// generated runtime: every integer field of glt_stem_params is a custom option
// of the same name (plus scratch_bytes), every array field a constant input in
// the order of kArrayInputs below (raw bytes, -1 when absent).
#include <stddef.h>

#include "glt_kernels.h"
#include "larq_glt_tflm.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tflm_util.h"

namespace larq_glt {
namespace tflm {
namespace {

using Params = glt_stem_params;

struct IntField {
  const char* key;
  int32_t Params::*member;
};
const IntField kIntFields[] = {
    {"in_h", &Params::in_h},         {"in_w", &Params::in_w},
    {"channels", &Params::channels}, {"words", &Params::words},
    {"out_h", &Params::out_h},       {"out_w", &Params::out_w},
    {"out_c", &Params::out_c},       {"filter_h", &Params::filter_h},
    {"filter_w", &Params::filter_w}, {"stride_h", &Params::stride_h},
    {"stride_w", &Params::stride_w}, {"dilation_h", &Params::dilation_h},
    {"dilation_w", &Params::dilation_w}, {"pad_top", &Params::pad_top},
    {"pad_left", &Params::pad_left}, {"zero_padding", &Params::zero_padding},
    {"binary_zero_point", &Params::binary_zero_point}, {"output_type", &Params::output_type},
    {"clamp_min", &Params::clamp_min}, {"clamp_max", &Params::clamp_max},
    {"lane_groups", &Params::lane_groups}, {"lane_planes", &Params::lane_planes},
    {"lv_groups", &Params::lv_groups}, {"lv_rows", &Params::lv_rows},
    {"lv_segment_taps", &Params::lv_segment_taps},
};
constexpr int kNumIntFields = sizeof(kIntFields) / sizeof(kIntFields[0]);

// Array fields, as inputs 1.. (input 0 is the frame).
const char* const kArrayInputs[] = {"lut",          "filter",      "multiplier", "bias",
                                    "thresholds",   "tap_popcount", "lane_filter",
                                    "lane_thresholds", "lv_offset", "lv_table",  "lv_compare"};
constexpr int kNumArrays = sizeof(kArrayInputs) / sizeof(kArrayInputs[0]);

struct OpData {
  Params params;
  const char* missing;  // first missing custom option, or nullptr
  int32_t scratch_bytes;
  int scratch_index;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  auto* data = static_cast<OpData*>(AllocateZeroed(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  data->scratch_index = -1;
  // Read in chunks of IntOptions::kMax keys.
  const char* keys[kNumIntFields + 1];
  for (int i = 0; i < kNumIntFields; ++i) keys[i] = kIntFields[i].key;
  keys[kNumIntFields] = "scratch_bytes";
  IntOptions options;
  for (int first = 0; first < kNumIntFields + 1; first += IntOptions::kMax) {
    const int n = kNumIntFields + 1 - first < IntOptions::kMax ? kNumIntFields + 1 - first : IntOptions::kMax;
    ReadIntOptions(buffer, length, keys + first, n, &options);
    if (options.missing != nullptr && data->missing == nullptr) data->missing = options.missing;
    for (int i = 0; i < n; ++i) {
      if (first + i < kNumIntFields) {
        data->params.*(kIntFields[first + i].member) = options.value[i];
      } else {
        data->scratch_bytes = options.value[i];
      }
    }
  }
  return data;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  GLT_ENSURE(data != nullptr, "GltStem: out of arena for op data");
  GLT_ENSURE(data->missing == nullptr, "GltStem: custom option '%s' missing", data->missing);
  GLT_ENSURE(node->inputs->size == 1 + kNumArrays && node->outputs->size == 1,
             "GltStem: expected the frame, %d table inputs and one output", kNumArrays);
  const Params& p = data->params;
  TempTensor frame = Input(context, node, 0);
  TempTensor output = Output(context, node, 0);
  GLT_ENSURE(frame && output && frame->type == kTfLiteUInt8 &&
                 NumElements(frame.get()) == p.in_h * p.in_w * p.channels,
             "GltStem: input must be the UINT8 [1, %d, %d, %d] frame", (int)p.in_h, (int)p.in_w,
             (int)p.channels);
  const int32_t depth = p.output_type == GLT_OUT_BITS ? PackedWords(p.out_c) : p.out_c;
  GLT_ENSURE(NumElements(output.get()) == p.out_h * p.out_w * depth,
             "GltStem: output must be [1, %d, %d, %d]", (int)p.out_h, (int)p.out_w, (int)depth);
  for (int i = 0; i < kNumArrays; ++i) {
    TempTensor table = Input(context, node, 1 + i);
    GLT_ENSURE(!table || table->allocation_type == kTfLiteMmapRo, "GltStem: table %s must be a constant",
               kArrayInputs[i]);
  }
  if (data->scratch_bytes > 0) {
    return context->RequestScratchBufferInArena(context, data->scratch_bytes, &data->scratch_index);
  }
  return kTfLiteOk;
}

const void* Table(TfLiteContext* context, TfLiteNode* node, int i) {
  const TfLiteEvalTensor* t = tflite::micro::GetEvalInput(context, node, 1 + i);
  return t == nullptr ? nullptr : t->data.data;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  Params& p = data->params;
  // Array pointers point into the flatbuffer; set here, as TFLM hands them out.
  p.lut = static_cast<const uint32_t*>(Table(context, node, 0));
  p.filter = static_cast<const uint32_t*>(Table(context, node, 1));
  p.multiplier = static_cast<const float*>(Table(context, node, 2));
  p.bias = static_cast<const float*>(Table(context, node, 3));
  p.thresholds = static_cast<const int32_t*>(Table(context, node, 4));
  p.tap_popcount = static_cast<const uint16_t*>(Table(context, node, 5));
  p.lane_filter = static_cast<const uint32_t*>(Table(context, node, 6));
  p.lane_thresholds = static_cast<const uint32_t*>(Table(context, node, 7));
  p.lv_offset = static_cast<const uint16_t*>(Table(context, node, 8));
  p.lv_table = static_cast<const uint32_t*>(Table(context, node, 9));
  p.lv_compare = static_cast<const uint32_t*>(Table(context, node, 10));
  p.scratch = data->scratch_index >= 0
                  ? static_cast<uint32_t*>(context->GetScratchBuffer(context, data->scratch_index))
                  : nullptr;
  glt_stem_opt(&p, tflite::micro::GetTensorData<uint8_t>(tflite::micro::GetEvalInput(context, node, 0)),
               tflite::micro::GetEvalOutput(context, node, 0)->data.data);
  return kTfLiteOk;
}

}  // namespace

TFLMRegistration Register_GltStem() { return tflite::micro::RegisterOp(Init, Prepare, Eval); }

}  // namespace tflm
}  // namespace larq_glt
