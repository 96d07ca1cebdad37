// Fused Bernoulli log-likelihood: one pass over the logits, no B*S*P temporary.
//
// Per pixel the term is  x*l - softplus(l) = (x - [l > 0]) * l - log1p(exp(-|l|)),
// a form without cancellation between x*l and max(l, 0) (for x = 1 and l > 0 the first
// part is exactly 0). exp and log1p are our own branch-free float32 routines so that the
// compiler can vectorise the whole loop body (they live in pixel_term.hpp, which the CUDA
// kernel's "precise" variant shares):
//   exp(t), t <= 0:  t = n ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2), exp(r) by a
//                    degree-6 polynomial, 2^n assembled in the exponent bits. Arguments
//                    below -87 give 0 (never a denormal; the dropped softplus part is
//                    below 1.7e-38 in absolute value).
//   log1p(e), e in [0, 1]:  s = e / (2 + e) in [0, 1/3], log1p(e) = 2 atanh(s)
//                    = 2s + 2s z R(z), z = s^2 <= 1/9, R of degree 3. Accurate for tiny e
//                    (no 1 + e rounding).
// Polynomial coefficients: weighted least-squares fits iterated to minimax (Lawson) in
// relative error, done for this file: exp's polynomial is within 3.1e-9 and log1p's within
// 4.5e-9 of the true functions, i.e. well under half a float32 ulp. Evaluated in float32
// (checked on every 7th float input against double): exp within 1.02 ulp, log1p within
// 1.96 ulp (the rounding of 2 + e and of the division; correcting both cost ~20% speed),
// a whole pixel term within about 3 ulp of its value.
//
// Selects are written as integer compares and bit masks: under the default -ftrapping-math
// GCC will not if-convert a float compare or a branch holding float arithmetic, and an
// unconverted branch stops the vectoriser.
//
// Sums: each row keeps kLanes double accumulators (lane j takes pixels p = j mod kLanes),
// reduced pairwise at the end. The order of additions is fixed, so results do not depend
// on the thread count, and the AVX2 and AVX-512 variants agree bit for bit (the generic
// one, without FMA, can differ in the last bits of a term).
//
// bfloat16 logits (bernoulli_loglik_bf16) go through the same loop: each is widened to
// float32 exactly (a 16-bit shift) before its term, so a bfloat16 input gives bit for bit
// what its float32 widening gives.
//
// Multiversioning: on x86 with GCC/Clang the row kernel is compiled three times, for
// the baseline ISA (SSE2 on x86-64), for AVX2+FMA and for AVX-512F (+FMA), and the widest
// one the CPU supports is picked at run time with __builtin_cpu_supports. target_clones
// would give the same dispatch, but explicit variants let the FMA ones use fused
// multiply-adds (the build keeps -ffp-contract off, as ISO C++ mode does), and let tests
// run every variant the CPU has. Elsewhere only the portable variant exists.
#include "loglik/bernoulli_loglik.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/parallel.hpp"
#include "loglik/pixel_term.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CVAE_LOGLIK_X86_VARIANTS 1
#else
#define CVAE_LOGLIK_X86_VARIANTS 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define CVAE_ALWAYS_INLINE inline __attribute__((always_inline))
#define CVAE_RESTRICT __restrict__
#else
#define CVAE_ALWAYS_INLINE inline
#define CVAE_RESTRICT
#endif

namespace cvae {
namespace {

using loglik::pixel_term;

// Lane count of the accumulators: 4 AVX2 / 2 AVX-512 float vectors per step; measured
// faster than 16 or 64 lanes on AVX2.
constexpr int64_t kLanes = 32;

// A logit as float32: bfloat16 is the top half of a float32's bits, so widening is a shift
// (exact), and the same loop vectorises for both input types.
CVAE_ALWAYS_INLINE float load_logit(const float* l, int64_t p) { return l[p]; }
CVAE_ALWAYS_INLINE float load_logit(const uint16_t* l, int64_t p) {
  const uint32_t bits = static_cast<uint32_t>(l[p]) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

template <bool kFma, class L>
CVAE_ALWAYS_INLINE double row_sum(const L* CVAE_RESTRICT l, const float* CVAE_RESTRICT x,
                                  int64_t P) {
  double acc[kLanes];
  for (int64_t j = 0; j < kLanes; ++j) acc[j] = 0.0;
  int64_t p = 0;
  for (; p + kLanes <= P; p += kLanes)
    for (int64_t j = 0; j < kLanes; ++j)
      acc[j] += static_cast<double>(pixel_term<kFma>(load_logit(l, p + j), x[p + j]));
  for (int64_t j = 0; j < P - p; ++j)
    acc[j] += static_cast<double>(pixel_term<kFma>(load_logit(l, p + j), x[p + j]));
  for (int64_t w = kLanes / 2; w >= 1; w /= 2)
    for (int64_t j = 0; j < w; ++j) acc[j] += acc[j + w];
  return acc[0];
}

template <class L>
using RowFn = double (*)(const L*, const float*, int64_t);

template <class L>
double row_generic(const L* l, const float* x, int64_t P) { return row_sum<false>(l, x, P); }

#if CVAE_LOGLIK_X86_VARIANTS
template <class L>
__attribute__((target("avx2,fma"))) double row_avx2(const L* l, const float* x, int64_t P) {
  return row_sum<true>(l, x, P);
}
template <class L>
__attribute__((target("avx512f,avx2,fma"))) double row_avx512(const L* l, const float* x, int64_t P) {
  return row_sum<true>(l, x, P);
}
#endif

bool cpu_has(LoglikIsa isa) {
  switch (isa) {
    case LoglikIsa::Auto:
    case LoglikIsa::Generic:
      return true;
#if CVAE_LOGLIK_X86_VARIANTS
    case LoglikIsa::Avx2:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LoglikIsa::Avx512:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma");
#endif
    default:
      return false;
  }
}

template <class L>
RowFn<L> row_fn_for(LoglikIsa isa) {
  switch (isa) {
#if CVAE_LOGLIK_X86_VARIANTS
    case LoglikIsa::Avx2:
      return row_avx2<L>;
    case LoglikIsa::Avx512:
      return row_avx512<L>;
#endif
    default:
      return row_generic<L>;
  }
}

// Threads: one per kMinPixelsPerThread pixels at most (~0.1 ms of AVX2 work), because
// parallel_for starts and joins its threads on every call (~140 us per thread on the
// loaded 2-core VM this was tuned on). Work is handed out in blocks of about
// kPixelsPerBlock pixels, pulled dynamically, so that a thread slowed down by other load
// does not hold up the call.
constexpr int64_t kMinPixelsPerThread = 131072;
constexpr int64_t kPixelsPerBlock = 8192;

}  // namespace

LoglikIsa loglik_best_isa() {
  static const LoglikIsa best = [] {
    if (cpu_has(LoglikIsa::Avx512)) return LoglikIsa::Avx512;
    if (cpu_has(LoglikIsa::Avx2)) return LoglikIsa::Avx2;
    return LoglikIsa::Generic;
  }();
  return best;
}

bool loglik_isa_supported(LoglikIsa isa) { return cpu_has(isa); }

const char* loglik_isa_name(LoglikIsa isa) {
  switch (isa) {
    case LoglikIsa::Auto: return "auto";
    case LoglikIsa::Generic: return "generic";
    case LoglikIsa::Avx2: return "avx2";
    case LoglikIsa::Avx512: return "avx512";
  }
  return "unknown";
}

namespace {

template <class L>
void loglik_rows(const L* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss, int64_t sp,
                 const float* x, int64_t xb, int64_t xp, float* out, int num_threads, LoglikIsa isa) {
  const int64_t rows = B * S;
  if (rows <= 0) return;
  if (P <= 0) {
    std::fill(out, out + rows, 0.0f);
    return;
  }
  if (isa == LoglikIsa::Auto) isa = loglik_best_isa();
  const RowFn<L> row = cpu_has(isa) ? row_fn_for<L>(isa) : row_generic<L>;
  const bool gather_l = sp != 1 && P > 1;
  const bool gather_x = xp != 1 && P > 1;
  // Cached: hardware_concurrency() reads /sys on glibc, ~10 us per call.
  static const int all_cores = default_num_threads();
  int threads = num_threads > 0 ? num_threads : all_cores;
  threads = static_cast<int>(std::min<int64_t>(threads, std::max<int64_t>(1, rows * P / kMinPixelsPerThread)));
  const int64_t block_rows = std::max<int64_t>(1, kPixelsPerBlock / P);
  const int64_t blocks = (rows + block_rows - 1) / block_rows;

  parallel_for(blocks, threads, [&](int64_t blk) {
    const int64_t r0 = blk * block_rows, r1 = std::min(rows, r0 + block_rows);
    std::vector<L> lbuf(gather_l ? P : 0);
    std::vector<float> xbuf(gather_x ? P : 0);
    int64_t x_row = -1;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / S, k = r - b * S;
      const L* lr = logits + b * sb + k * ss;
      const float* xr = x + b * xb;
      if (gather_l) {
        for (int64_t p = 0; p < P; ++p) lbuf[p] = lr[p * sp];
        lr = lbuf.data();
      }
      if (gather_x) {
        if (x_row != b) {
          for (int64_t p = 0; p < P; ++p) xbuf[p] = xr[p * xp];
          x_row = b;
        }
        xr = xbuf.data();
      }
      out[r] = static_cast<float>(row(lr, xr, P));
    }
  });
}

}  // namespace

void bernoulli_loglik(const float* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss,
                      int64_t sp, const float* x, int64_t xb, int64_t xp, float* out,
                      int num_threads, LoglikIsa isa) {
  loglik_rows(logits, B, S, P, sb, ss, sp, x, xb, xp, out, num_threads, isa);
}

void bernoulli_loglik_bf16(const uint16_t* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss,
                           int64_t sp, const float* x, int64_t xb, int64_t xp, float* out,
                           int num_threads, LoglikIsa isa) {
  loglik_rows(logits, B, S, P, sb, ss, sp, x, xb, xp, out, num_threads, isa);
}

namespace {

// Outside [0, 1] on the float's bits: +0 .. 1.0 are 0x00000000 .. 0x3F800000 in order; every
// negative value, NaN and anything above 1 has larger bits, except -0 (0x80000000).
CVAE_ALWAYS_INLINE uint32_t outside_unit(uint32_t bits) {
  return static_cast<uint32_t>(bits > 0x3F800000u) & static_cast<uint32_t>(bits != 0x80000000u);
}

CVAE_ALWAYS_INLINE uint32_t bits_at(const float* x, int64_t p) {
  uint32_t b;
  std::memcpy(&b, x + p, sizeof b);
  return b;
}

bool is_nan_logit(const float* l, int64_t p) { return (bits_at(l, p) & 0x7FFFFFFFu) > 0x7F800000u; }
bool is_nan_logit(const uint16_t* l, int64_t p) { return (l[p] & 0x7FFFu) > 0x7F80u; }

template <class L>
int64_t first_nan(const L* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss, int64_t sp,
                  const float* out) {
  for (int64_t r = 0; r < B * S; ++r) {
    if (!std::isnan(out[r])) continue;
    const int64_t b = r / S, k = r - b * S;
    const L* row = logits + b * sb + k * ss;
    for (int64_t p = 0; p < P; ++p)
      if (is_nan_logit(row, p * sp)) return r * P + p;
  }
  return -1;
}

// Whether any of the P contiguous targets is outside [0, 1]; compiled for the baseline ISA and
// for AVX2 (twice the lanes; measured 1.6x faster: it is compute-bound, x being in cache).
CVAE_ALWAYS_INLINE bool any_outside(const float* CVAE_RESTRICT row, int64_t P) {
  uint32_t any = 0;
  for (int64_t p = 0; p < P; ++p) any |= outside_unit(bits_at(row, p));
  return any != 0;
}
bool any_outside_generic(const float* row, int64_t P) { return any_outside(row, P); }
#if CVAE_LOGLIK_X86_VARIANTS
__attribute__((target("avx2"))) bool any_outside_avx2(const float* row, int64_t P) { return any_outside(row, P); }
#endif

}  // namespace

int64_t first_target_outside_unit_interval(const float* x, int64_t B, int64_t P, int64_t xb, int64_t xp) {
  bool (*contiguous)(const float*, int64_t) = any_outside_generic;
#if CVAE_LOGLIK_X86_VARIANTS
  static const bool avx2 = cpu_has(LoglikIsa::Avx2);
  if (avx2) contiguous = any_outside_avx2;
#endif
  for (int64_t b = 0; b < B; ++b) {
    const float* row = x + b * xb;
    bool any = false;
    if (xp == 1) {
      any = contiguous(row, P);
    } else {
      for (int64_t p = 0; p < P; ++p) any |= outside_unit(bits_at(row, p * xp)) != 0;
    }
    if (!any) continue;
    for (int64_t p = 0; p < P; ++p)
      if (outside_unit(bits_at(row, p * xp))) return b * P + p;
  }
  return -1;
}

int64_t first_nan_logit(const float* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss, int64_t sp,
                        const float* out) {
  return first_nan(logits, B, S, P, sb, ss, sp, out);
}

int64_t first_nan_logit_bf16(const uint16_t* logits, int64_t B, int64_t S, int64_t P, int64_t sb, int64_t ss,
                             int64_t sp, const float* out) {
  return first_nan(logits, B, S, P, sb, ss, sp, out);
}

}  // namespace cvae
