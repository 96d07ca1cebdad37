// Per-pixel accumulators of the CUDA log-likelihood kernel (bernoulli_loglik.cu), host and
// device. Both evaluate  x*l - softplus(l) = (x - [l >= 0]) * l - log1p(exp(-|l|))  (the CPU
// kernel's formula) and accumulate in float32:
//   Precise: the CPU kernel's own float32 routines (pixel_term.hpp, FMA variant), one sum;
//   Fast:    exp and log from the GPU's special-function unit (ex2.approx, lg2.approx), with
//            the linear part and the log2 of the tail summed separately and the tail scaled
//            by ln 2 once per row; the tails of a group of pixels (one 16-byte load, 4 or 8)
//            are multiplied, prod (1 + e_p) <= 2^8, and take one log2 per group. About a
//            third of the instructions of Precise and one special-function op per pixel, for
//            bandwidth-bound bfloat16 input. Error: about 2^-22 relative per group's log2.
// On the host (tests) Fast uses std::exp and std::log2 in place of the hardware
// approximations, so host runs check the formula, not the approximation error.
#pragma once
#include <cmath>
#include <cstdint>

#include "common/host_device.hpp"
#include "loglik/pixel_term.hpp"

namespace cvae::loglik {

enum class DeviceVariant : int { Fast = 0, Precise = 1 };

// bfloat16 is the top half of a float32.
CVAE_HD_INLINE float bf16_to_float(uint16_t b) { return bits_float(static_cast<uint32_t>(b) << 16); }

// Callers add at most 8 pixels between flushes (the product stays below 2^8).
struct FastAcc {
  float lin = 0.0f;   // sum of (x - [l >= 0]) * l
  float tail = 0.0f;  // sum of log2(1 + exp(-|l|)) over flushed groups
  float prod = 1.0f;  // prod of (1 + exp(-|l|)) over the current group
  CVAE_HD_INLINE void add(float l, float x) {
    const uint32_t bits = float_bits(l);
    const float a = bits_float(bits & 0x7FFFFFFFu);
#if defined(__CUDA_ARCH__)
    prod *= 1.0f + __expf(-a);
#else
    prod *= 1.0f + std::exp(-a);
#endif
    const float positive = bits_float(((bits >> 31) - 1u) & 0x3F800000u);
    lin = madd<true>(x - positive, l, lin);
  }
  CVAE_HD_INLINE void flush() {
#if defined(__CUDA_ARCH__)
    tail += __log2f(prod);
#else
    tail += std::log2(prod);
#endif
    prod = 1.0f;
  }
  CVAE_HD_INLINE float part0() const { return lin; }
  CVAE_HD_INLINE float part1() const { return tail; }  // after flush()
  CVAE_HD_INLINE static float finish(float lin_sum, float tail_sum) {
    return madd<true>(-0.693147180559945309f, tail_sum, lin_sum);
  }
};

struct PreciseAcc {
  float sum = 0.0f;
  CVAE_HD_INLINE void add(float l, float x) { sum += pixel_term<true>(l, x); }
  CVAE_HD_INLINE void flush() {}
  CVAE_HD_INLINE float part0() const { return sum; }
  CVAE_HD_INLINE float part1() const { return 0.0f; }
  CVAE_HD_INLINE static float finish(float s, float) { return s; }
};

}  // namespace cvae::loglik
