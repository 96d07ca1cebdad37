// Host run of the CUDA log-likelihood kernel's accumulators (see bernoulli_loglik.hpp).
#include <cstdint>
#include <stdexcept>
#include <string>

#include "loglik/bernoulli_loglik.hpp"
#include "loglik/device_terms.hpp"

namespace cvae {
namespace {

template <typename Acc>
float row(const void* logits, bool bf16, int64_t base, int64_t P, int64_t sp, const float* x, int64_t xb, int64_t xp) {
  Acc acc;
  for (int64_t p = 0; p < P; ++p) {
    const int64_t at = base + p * sp;
    const float l = bf16 ? loglik::bf16_to_float(static_cast<const uint16_t*>(logits)[at])
                         : static_cast<const float*>(logits)[at];
    acc.add(l, x[xb + p * xp]);
    if (p % 8 == 7) acc.flush();  // groups of 8, as the kernel's bfloat16 loads
  }
  acc.flush();
  return Acc::finish(acc.part0(), acc.part1());
}

}  // namespace

void bernoulli_loglik_device_reference(const void* logits, bool bf16, int64_t B, int64_t S, int64_t P, int64_t sb,
                                       int64_t ss, int64_t sp, const float* x, int64_t xb, int64_t xp, float* out,
                                       int variant) {
  const bool precise = variant == static_cast<int>(loglik::DeviceVariant::Precise);
  if (!precise && variant != static_cast<int>(loglik::DeviceVariant::Fast))
    throw std::invalid_argument("unknown device variant " + std::to_string(variant));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t base = b * sb + s * ss;
      out[b * S + s] = precise ? row<loglik::PreciseAcc>(logits, bf16, base, P, sp, x, b * xb, xp)
                               : row<loglik::FastAcc>(logits, bf16, base, P, sp, x, b * xb, xp);
    }
}

}  // namespace cvae
