/* The C kernel cores of deploy/runtime, seen from C++ (they have C linkage). */
#ifndef LARQ_GLT_TFLM_KERNELS_H
#define LARQ_GLT_TFLM_KERNELS_H

extern "C" {
#include "glt_bconv2d.h"
#include "glt_bmaxpool.h"
#include "glt_frontend.h"
#include "glt_quantize.h"
#include "glt_stem.h"
}

#endif  // LARQ_GLT_TFLM_KERNELS_H
