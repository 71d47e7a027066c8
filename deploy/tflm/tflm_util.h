/* Small helpers shared by the kernels: custom options, shapes, temp tensors. */
#ifndef LARQ_GLT_TFLM_UTIL_H
#define LARQ_GLT_TFLM_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_context.h"

namespace larq_glt {
namespace tflm {

// Integer custom options of an LCE op, read from its flexbuffer map. Missing
// keys are reported by name in Prepare (Init cannot fail in TFLM).
struct IntOptions {
  static constexpr int kMax = 8;
  int32_t value[kMax];
  const char* missing;  // first missing key, or nullptr
};

// Reads `keys[0..n)` (n <= IntOptions::kMax) from a custom options buffer.
void ReadIntOptions(const char* buffer, size_t length, const char* const* keys,
                    int n, IntOptions* out);

// Persistent (arena) storage for one op's data, zeroed.
void* AllocateZeroed(TfLiteContext* context, size_t bytes);

// Frees a temp tensor of Prepare on scope exit.
class TempTensor {
 public:
  TempTensor(TfLiteContext* context, TfLiteTensor* tensor)
      : micro_context_(tflite::GetMicroContext(context)), tensor_(tensor) {}
  ~TempTensor() {
    if (tensor_ != nullptr) micro_context_->DeallocateTempTfLiteTensor(tensor_);
  }
  TempTensor(const TempTensor&) = delete;
  TempTensor& operator=(const TempTensor&) = delete;
  TfLiteTensor* get() const { return tensor_; }
  TfLiteTensor* operator->() const { return tensor_; }
  explicit operator bool() const { return tensor_ != nullptr; }

 private:
  tflite::MicroContext* micro_context_;
  TfLiteTensor* tensor_;
};

TempTensor Input(TfLiteContext* context, TfLiteNode* node, int index);
TempTensor Output(TfLiteContext* context, TfLiteNode* node, int index);

inline int32_t Dim(const TfLiteTensor* t, int i) { return t->dims->data[i]; }
inline int32_t NumDims(const TfLiteTensor* t) { return t->dims->size; }
int32_t NumElements(const TfLiteTensor* t);
inline int32_t PackedWords(int32_t channels) { return (channels + 31) / 32; }

}  // namespace tflm
}  // namespace larq_glt

// Fails Prepare with a message (printf-style: name the op and the problem).
#define GLT_ENSURE(cond, ...)  \
  do {                         \
    if (!(cond)) {             \
      MicroPrintf(__VA_ARGS__); \
      return kTfLiteError;     \
    }                          \
  } while (0)

#endif  // LARQ_GLT_TFLM_UTIL_H
