// Fused Bernoulli log-likelihood of images under several logit maps (plain C++, no Python).
//
//   out[b, k] = sum_p  x[b, p] * l[b, k, p] - softplus(l[b, k, p])
//
// with softplus(l) = max(l, 0) + log1p(exp(-|l|)), evaluated in one pass per row (b, k):
// the B*S*P tensor of per-pixel terms is never materialised.
#pragma once
#include <cstdint>

namespace cvae {

// Which SIMD variant of the inner loop runs. Auto picks the widest one this CPU supports;
// the others exist so that tests can compare the variants on one machine. A variant the
// CPU (or a non-x86 / non-GCC-compatible build) lacks falls back to Generic.
enum class LoglikIsa : int { Auto = 0, Generic = 1, Avx2 = 2, Avx512 = 3 };

// logits: element (b, k, p) at logits[b*sb + k*ss + p*sp]   (B x S x P, float32)
// x:      element (b, p)    at x[b*xb + p*xp]                (B x P, float32)
// out:    B*S floats, row-major (b, k).
// Strides are in elements and may be zero or negative; the fast path needs sp == 1 and
// xp == 1, other pixel strides are gathered row by row into a scratch buffer.
// Each row sum is accumulated in double (per-lane accumulators, reduced pairwise) and
// rounded to float once; the result does not depend on num_threads (0 = all cores).
// Rows are split over threads; P == 0 gives zeros. NaN in logits or x propagates.
void bernoulli_loglik(const float* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss,
                      int64_t sp, const float* x, int64_t xb, int64_t xp, float* out,
                      int num_threads, LoglikIsa isa = LoglikIsa::Auto);

// The same for bfloat16 logits (raw bits, uint16); x and out stay float32. Each logit is
// widened to float32 exactly, so the result equals the float32 call on the widened logits.
void bernoulli_loglik_bf16(const uint16_t* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss,
                           int64_t sp, const float* x, int64_t xb, int64_t xp, float* out,
                           int num_threads, LoglikIsa isa = LoglikIsa::Auto);

// Input checks (the bindings call them; the kernels above do not check).
// Flat index b * P + p of the first target outside [0, 1] (NaN included; -0 counts as 0), or
// -1. One pass over B x P, integer compares on the bit patterns, so it vectorises.
int64_t first_target_outside_unit_interval(const float* x, int64_t B, int64_t P, int64_t xb, int64_t xp);
// Flat index (b * S + k) * P + p of the first NaN logit, or -1, given the kernel's output:
// a NaN logit always makes its row's sum NaN, so only rows whose out[b, k] is NaN are
// searched and valid input costs one pass over the B x S outputs. (A NaN row without a NaN
// logit comes from an infinite logit the target agrees with, as documented.)
int64_t first_nan_logit(const float* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss, int64_t sp,
                        const float* out);
int64_t first_nan_logit_bf16(const uint16_t* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss,
                             int64_t sp, const float* out);

// The variant LoglikIsa::Auto resolves to on this CPU.
LoglikIsa loglik_best_isa();
// Whether `isa` can run on this CPU (Generic and Auto always can).
bool loglik_isa_supported(LoglikIsa isa);
const char* loglik_isa_name(LoglikIsa isa);

}  // namespace cvae

namespace cvae {

// The CUDA kernel's per-pixel accumulation (device_terms.hpp) run on the host, one row at a
// time with one serial float32 sum: for testing the GPU formulas on any machine. logits are
// float32, or bfloat16 bit patterns when bf16; strides as in bernoulli_loglik. variant is a
// loglik::DeviceVariant (0 fast, 1 precise). The GPU sums in another order, so results
// agree to float32 rounding, not bit for bit.
void bernoulli_loglik_device_reference(const void* logits, bool bf16, int64_t B, int64_t S, int64_t P, int64_t sb,
                                       int64_t ss, int64_t sp, const float* x, int64_t xb, int64_t xp, float* out,
                                       int variant);

}  // namespace cvae
