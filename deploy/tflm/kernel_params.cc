#include "kernel_params.h"

namespace larq_glt {
namespace tflm {
namespace {

int32_t PackedWords(int32_t channels) { return (channels + 31) / 32; }

int32_t PopCount(uint32_t x) {
  int32_t n = 0;
  for (; x != 0; x &= x - 1) ++n;
  return n;
}

// Counter planes of the bit-sliced algorithm (deploy/lower/ lane_planes):
// values lie in [-(acc_max + 1), acc_max + 1], and at least 5 planes.
int32_t LanePlanes(int32_t acc_max) {
  int32_t bits = 0;
  for (uint32_t v = static_cast<uint32_t>(acc_max) + 1; v != 0; v >>= 1) ++bits;
  return bits + 1 > 5 ? bits + 1 : 5;
}

ParamError Error(const char* format, int a = 0, int b = 0, int c = 0) {
  return ParamError{format, a, b, c};
}

int32_t ChannelsPerGroup(const Bconv2dOptions& o, const glt_bconv2d_params& p) {
  return o.channels_in / p.groups;
}

}  // namespace

bool OutputSizeAndPadding(int32_t padding, int32_t size, int32_t filter,
                          int32_t stride, int32_t dilation, int32_t* out,
                          int32_t* pad_before) {
  if (stride < 1 || dilation < 1 || filter < 1) return false;
  const int32_t effective = (filter - 1) * dilation + 1;
  if (padding == kPaddingSame) {
    *out = (size + stride - 1) / stride;
  } else if (padding == kPaddingValid) {
    *out = (size - effective + stride) / stride;
  } else {
    return false;
  }
  if (*out < 1) return false;
  const int32_t total = (*out - 1) * stride + effective - size;
  *pad_before = total > 0 ? total / 2 : 0;
  return true;
}

ParamError Bconv2dGeometry(const Bconv2dOptions& o, const int32_t input[3],
                           const int32_t filter[4], int32_t output_type,
                           const int32_t output[3], glt_bconv2d_params* p) {
  p->in_h = input[0];
  p->in_w = input[1];
  p->in_words = input[2];
  p->out_c = filter[0];
  p->filter_h = filter[1];
  p->filter_w = filter[2];
  p->group_words = filter[3];
  if (o.channels_in <= 0 || p->in_words != PackedWords(o.channels_in)) {
    return Error("LceBconv2d: input has %d words per pixel, channels_in=%d", p->in_words,
                 o.channels_in);
  }
  if (p->group_words <= 0 || p->in_words % p->group_words != 0) {
    return Error("LceBconv2d: filter depth %d words does not divide %d input words",
                 p->group_words, p->in_words);
  }
  p->groups = p->in_words / p->group_words;
  const int32_t channels_per_group = ChannelsPerGroup(o, *p);
  if (p->groups != 1 && (channels_per_group % 32 != 0 || p->out_c % p->groups != 0)) {
    return Error("LceBconv2d: %d groups need channels per group multiple of 32", p->groups);
  }
  if (p->filter_h * p->filter_w > kMaxTaps) {
    return Error("LceBconv2d: more than %d filter taps", kMaxTaps);
  }
  if (o.pad_values != 0 && o.pad_values != 1) {
    return Error("LceBconv2d: pad_values must be 0 or 1");
  }
  p->stride_h = o.stride_h;
  p->stride_w = o.stride_w;
  p->dilation_h = o.dilation_h;
  p->dilation_w = o.dilation_w;
  if (!OutputSizeAndPadding(o.padding, p->in_h, p->filter_h, p->stride_h, p->dilation_h,
                            &p->out_h, &p->pad_top) ||
      !OutputSizeAndPadding(o.padding, p->in_w, p->filter_w, p->stride_w, p->dilation_w,
                            &p->out_w, &p->pad_left)) {
    return Error("LceBconv2d: bad padding/stride/dilation");
  }
  p->zero_padding = (o.padding == kPaddingSame && o.pad_values == 0) ? 1 : 0;
  p->binary_zero_point = channels_per_group / 2;
  p->output_type = output_type;
  const int32_t out_depth = output_type == GLT_OUT_BITS ? PackedWords(p->out_c) : p->out_c;
  if (output[0] != p->out_h || output[1] != p->out_w || output[2] != out_depth) {
    return Error("LceBconv2d: output shape differs from the computed [1, %d, %d, %d]", p->out_h,
                 p->out_w, out_depth);
  }
  return kNoError;
}

void Bconv2dClampThresholds(const int32_t* thresholds, int32_t out_c, int32_t* clamped) {
  for (int32_t c = 0; c < out_c; ++c) {
    // acc lies in [0, 2^30): clamping LCE's +-infinity thresholds keeps acc > t.
    const int32_t t = thresholds[c];
    clamped[c] = t < kThresholdMin ? kThresholdMin : (t > kThresholdMax ? kThresholdMax : t);
  }
}

ParamError Bconv2dLanes(const Bconv2dOptions& o, int32_t lane_filter_words,
                        int32_t lane_threshold_words, glt_bconv2d_params* p) {
  const int32_t acc_max = p->filter_h * p->filter_w * ChannelsPerGroup(o, *p);
  const int32_t lane_groups = (p->out_c / p->groups + 31) / 32;
  const int32_t n = p->filter_h * p->filter_w * p->group_words;
  if (p->zero_padding || acc_max > kLanesAccMax) {
    return Error("LceBconv2d: lane tables need no zero padding and at most %d accumulated bits",
                 kLanesAccMax);
  }
  const int32_t filter_words = p->groups * lane_groups * (n * 32 + 32);
  const int32_t threshold_words = p->groups * lane_groups * kLaneThresholdWords;
  if (lane_filter_words != filter_words || lane_threshold_words != threshold_words) {
    return Error("LceBconv2d: lane tables must be constant INT32 of %d and %d words", filter_words,
                 threshold_words);
  }
  p->lane_groups = lane_groups;
  p->lane_planes = LanePlanes(acc_max);
  return kNoError;
}

void Bconv2dFuseOutput(const Bconv2dOptions& o, const float* multiplier, const float* bias,
                       double scale, double zero_point, float* fused, glt_bconv2d_params* p) {
  // LCE's back-transformation: filter height * width * channels per group.
  const int64_t backtransform_add =
      static_cast<int64_t>(p->filter_h) * p->filter_w * ChannelsPerGroup(o, *p);
  for (int32_t c = 0; c < p->out_c; ++c) {
    // LCE's OneTimeSetup: fused in double, stored as float.
    const double m = multiplier[c];
    const double b = bias[c];
    fused[c] = static_cast<float>(-1 * m / scale);
    fused[p->out_c + c] =
        static_cast<float>((b + static_cast<double>(backtransform_add) * m) / scale + zero_point);
  }
  p->multiplier = fused;
  p->bias = fused + p->out_c;
  int64_t nominal_min = INT32_MIN, nominal_max = INT32_MAX;
  switch (o.activation) {  // LCE treats other activations as none
    case kActRelu: nominal_min = 0; break;
    case kActReluN1To1: nominal_min = -1; nominal_max = 1; break;
    case kActRelu6: nominal_min = 0; nominal_max = 6; break;
    default: break;
  }
  const int64_t lo = nominal_min > -backtransform_add ? nominal_min : -backtransform_add;
  const int64_t hi = nominal_max < backtransform_add ? nominal_max : backtransform_add;
  p->clamp_min = static_cast<int32_t>(-hi + backtransform_add);
  p->clamp_max = static_cast<int32_t>(-lo + backtransform_add);
}

void Bconv2dTapPopcounts(const glt_bconv2d_params& p, const uint32_t* filter, uint16_t* per_tap) {
  const int32_t taps = p.filter_h * p.filter_w;
  for (int32_t i = 0; i < p.out_c * taps; ++i) {
    int32_t n = 0;
    for (int32_t w = 0; w < p.group_words; ++w) n += PopCount(filter[i * p.group_words + w]);
    per_tap[i] = static_cast<uint16_t>(n);
  }
}

ParamError BMaxPool2dGeometry(const BMaxPool2dOptions& o, const int32_t input[3],
                              const int32_t output[3], glt_bmaxpool_params* p) {
  p->in_h = input[0];
  p->in_w = input[1];
  p->words = input[2];
  p->filter_h = o.filter_h;
  p->filter_w = o.filter_w;
  p->stride_h = o.stride_h;
  p->stride_w = o.stride_w;
  if (!OutputSizeAndPadding(o.padding, p->in_h, p->filter_h, p->stride_h, 1, &p->out_h,
                            &p->pad_top) ||
      !OutputSizeAndPadding(o.padding, p->in_w, p->filter_w, p->stride_w, 1, &p->out_w,
                            &p->pad_left)) {
    return Error("LceBMaxPool2d: bad padding/filter/stride");
  }
  if (output[0] != p->out_h || output[1] != p->out_w || output[2] != p->words) {
    return Error("LceBMaxPool2d: output shape differs from the computed [1, %d, %d, %d]", p->out_h,
                 p->out_w, p->words);
  }
  return kNoError;
}

}  // namespace tflm
}  // namespace larq_glt
