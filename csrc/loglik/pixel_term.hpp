// The per-pixel term of the fused Bernoulli log-likelihood, x*l - softplus(l), with our own
// branch-free float32 exp and log1p: shared by the CPU kernel (bernoulli_loglik.cpp, whose
// header comment derives the routines and their accuracy) and the "precise" variant of the
// CUDA kernel (bernoulli_loglik.cu), so both evaluate the same float32 operations per pixel.
// Selects are integer bit masks so that GCC vectorises the CPU loop under -ftrapping-math.
#pragma once
#include <cstdint>
#include <cstring>

#include "common/host_device.hpp"

namespace cvae::loglik {

CVAE_HD_INLINE uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

CVAE_HD_INLINE float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// a*b + c, fused where the variant has FMA (only instantiated with true inside functions
// compiled for an FMA target, where __builtin_fmaf becomes one instruction; on the GPU an
// fma.rn instruction).
template <bool kFma>
CVAE_HD_INLINE float madd(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  if constexpr (kFma) return __fmaf_rn(a, b, c);
#elif defined(__GNUC__) || defined(__clang__)
  if constexpr (kFma) return __builtin_fmaf(a, b, c);
#endif
  return a * b + c;
}

constexpr uint32_t kExpMaxArgBits = 0x42AE0000u;  // 87.0f; exp(-87) = 1.65e-38 > FLT_MIN
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kRoundMagic = 12582912.0f;   // 1.5 * 2^23: x + magic rounds x to an integer
constexpr uint32_t kRoundMagicBits = 0x4B400000u;
constexpr float kLn2Hi = 0.693145751953125f;  // ln2 to 16 bits: n * kLn2Hi is exact
constexpr float kLn2Lo = 1.42860682030941723e-6f;
// exp(r) ~ 1 + r + r^2 (e0 + e1 r + e2 r^2 + e3 r^3 + e4 r^4) on |r| <= ln2/2
constexpr float kE0 = 0.49999994f, kE1 = 0.1666652f, kE2 = 0.041668393f, kE3 = 0.008368781f,
                kE4 = 0.0013814467f;
// atanh(s)/s ~ 1 + z (c0 + c1 z + c2 z^2 + c3 z^3), z = s^2 <= 1/9
constexpr float kA0 = 0.3333321f, kA1 = 0.20010768f, kA2 = 0.14000839f, kA3 = 0.14006336f;

// exp(-a) for a = |l| given by its bit pattern abits (sign bit clear); 0 for a > 87.
// Comparisons are done on the bit patterns (which order like the values for a >= 0):
// integer compares cannot raise FP exceptions, so the vectoriser if-converts them even
// under the default -ftrapping-math. NaN gives 0 here; the caller's l * w term keeps it.
template <bool kFma>
CVAE_HD_INLINE float exp_neg_abs(uint32_t abits) {
  const bool tiny = abits > kExpMaxArgBits;
  const float t = -bits_float(tiny ? kExpMaxArgBits : abits);  // in [-87, -0]
  const float v = madd<kFma>(t, kLog2e, kRoundMagic);            // magic + round(t / ln2)
  const float n = v - kRoundMagic;                               // n in [-126, 0], exact
  float r = madd<kFma>(n, -kLn2Hi, t);
  r = madd<kFma>(n, -kLn2Lo, r);
  float q = madd<kFma>(kE4, r, kE3);
  q = madd<kFma>(q, r, kE2);
  q = madd<kFma>(q, r, kE1);
  q = madd<kFma>(q, r, kE0);
  const float y = madd<kFma>(q, r * r, r) + 1.0f;
  // float_bits(v) = kRoundMagicBits + n; the biased exponent n + 127 is in [1, 127].
  const float scale = bits_float((float_bits(v) - kRoundMagicBits + 127u) << 23);
  // Selects are bit masks: a float ?: lets GCC sink the arithmetic into a branch, which
  // it then cannot if-convert under -ftrapping-math.
  const uint32_t keep = tiny ? 0u : 0xFFFFFFFFu;
  return bits_float(float_bits(y * scale) & keep);
}

// log1p(e) for e in [0, 1].
template <bool kFma>
CVAE_HD_INLINE float log1p_unit(float e) {
  const float s = e / (2.0f + e);
  const float z = s * s;
  float a = madd<kFma>(kA3, z, kA2);
  a = madd<kFma>(a, z, kA1);
  a = madd<kFma>(a, z, kA0);
  const float s2 = s + s;
  return madd<kFma>(s2 * z, a, s2);
}

// x*l - softplus(l).
template <bool kFma>
CVAE_HD_INLINE float pixel_term(float l, float x) {
  const uint32_t lbits = float_bits(l);
  const float softplus_tail = log1p_unit<kFma>(exp_neg_abs<kFma>(lbits & 0x7FFFFFFFu));
  // [l >= 0] from the sign bit, as a bit mask (a float select would let GCC move x - 1
  // into a branch, which blocks vectorisation under -ftrapping-math). For l = +0 either
  // value is right, since w is multiplied by l.
  const float positive = bits_float(((lbits >> 31) - 1u) & 0x3F800000u);
  const float w = x - positive;  // exact for x in [1/2, 1] and for l < 0
  return madd<kFma>(w, l, -softplus_tail);
}

}  // namespace cvae::loglik
