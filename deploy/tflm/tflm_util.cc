#include "tflm_util.h"

#include <string.h>

#include "flatbuffers/flexbuffers.h"

namespace larq_glt {
namespace tflm {

void ReadIntOptions(const char* buffer, size_t length, const char* const* keys,
                    int n, IntOptions* out) {
  out->missing = nullptr;
  if (buffer == nullptr || length == 0) {
    out->missing = n > 0 ? keys[0] : nullptr;
    return;
  }
  const flexbuffers::Map map =
      flexbuffers::GetRoot(reinterpret_cast<const uint8_t*>(buffer), length)
          .AsMap();
  for (int i = 0; i < n && i < IntOptions::kMax; ++i) {
    const flexbuffers::Reference value = map[keys[i]];
    if (value.IsNull()) {
      if (out->missing == nullptr) out->missing = keys[i];
      out->value[i] = 0;
    } else {
      out->value[i] = value.AsInt32();
    }
  }
}

void* AllocateZeroed(TfLiteContext* context, size_t bytes) {
  void* p = context->AllocatePersistentBuffer(context, bytes);
  if (p != nullptr) memset(p, 0, bytes);
  return p;
}

TempTensor Input(TfLiteContext* context, TfLiteNode* node, int index) {
  // An absent optional input (-1) gives a null tensor.
  return TempTensor(context, tflite::GetMicroContext(context)->AllocateTempInputTensor(node, index));
}

TempTensor Output(TfLiteContext* context, TfLiteNode* node, int index) {
  return TempTensor(context, tflite::GetMicroContext(context)->AllocateTempOutputTensor(node, index));
}

int32_t NumElements(const TfLiteTensor* t) {
  int32_t n = 1;
  for (int i = 0; i < t->dims->size; ++i) n *= t->dims->data[i];
  return n;
}

}  // namespace tflm
}  // namespace larq_glt
