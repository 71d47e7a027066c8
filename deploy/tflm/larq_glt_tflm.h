/*
 * larq-glt's binary-network operators for TensorFlow Lite Micro.
 *
 * The Larq Compute Engine custom ops (LceQuantize, LceDequantize, LceBconv2d,
 * LceBMaxPool2d) and larq-glt's fused uint8 input encoder (GltFrontend, or
 * GltStem: the encoder fused with the first convolution; deploy/tflm/rewrite.py writes
 * them in place of the encoder ops), as TFLM kernels that call the C kernel
 * cores of larq-glt's generated runtime (deploy/runtime): same results, bit for
 * bit, as the LCE interpreter.
 *
 *   tflite::MicroMutableOpResolver<8> resolver;
 *   larq_glt::tflm::RegisterLceOps(&resolver);   // all six custom ops
 *   resolver.AddReshape();                        // plus the model's builtins
 *
 * Build: C++17 against a TFLM tree (its flatbuffers download provides
 * flatbuffers/flexbuffers.h), with -DTF_LITE_STATIC_MEMORY, plus the C files of
 * deploy/runtime compiled as C99.
 */
#ifndef LARQ_GLT_TFLM_H
#define LARQ_GLT_TFLM_H

#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace larq_glt {
namespace tflm {

// Custom op names, as the LCE converter writes them (GltFrontend, GltStem: deploy/tflm/rewrite.py).
constexpr const char kLceQuantize[] = "LceQuantize";
constexpr const char kLceDequantize[] = "LceDequantize";
constexpr const char kLceBconv2d[] = "LceBconv2d";
constexpr const char kLceBMaxPool2d[] = "LceBMaxPool2d";
constexpr const char kGltFrontend[] = "GltFrontend";
constexpr const char kGltStem[] = "GltStem";

TFLMRegistration Register_LceQuantize();
TFLMRegistration Register_LceDequantize();
TFLMRegistration Register_LceBconv2d();
TFLMRegistration Register_LceBMaxPool2d();
TFLMRegistration Register_GltFrontend();
TFLMRegistration Register_GltStem();

// Adds all six ops to `resolver` (which needs room for them: 6 of its tOpCount).
template <unsigned int tOpCount>
TfLiteStatus RegisterLceOps(tflite::MicroMutableOpResolver<tOpCount>* resolver) {
  // AddCustom copies the registration, so temporaries are fine.
  const TFLMRegistration quantize = Register_LceQuantize();
  const TFLMRegistration dequantize = Register_LceDequantize();
  const TFLMRegistration bconv = Register_LceBconv2d();
  const TFLMRegistration bmaxpool = Register_LceBMaxPool2d();
  const TFLMRegistration frontend = Register_GltFrontend();
  const TFLMRegistration stem = Register_GltStem();
  if (resolver->AddCustom(kLceQuantize, &quantize) != kTfLiteOk ||
      resolver->AddCustom(kLceDequantize, &dequantize) != kTfLiteOk ||
      resolver->AddCustom(kLceBconv2d, &bconv) != kTfLiteOk ||
      resolver->AddCustom(kLceBMaxPool2d, &bmaxpool) != kTfLiteOk ||
      resolver->AddCustom(kGltFrontend, &frontend) != kTfLiteOk ||
      resolver->AddCustom(kGltStem, &stem) != kTfLiteOk) {
    return kTfLiteError;
  }
  return kTfLiteOk;
}

}  // namespace tflm
}  // namespace larq_glt

#endif  // LARQ_GLT_TFLM_H
