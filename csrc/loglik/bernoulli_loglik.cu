// The fused Bernoulli log-likelihood on the GPU: out[b, s] = sum_p x[b, p] l[b, s, p] -
// softplus(l[b, s, p]) for float32 or bfloat16 logits, float32 x and out. Bandwidth-bound: one
// block per row (b, s) streams the row once with 16-byte loads where the row and its x row are
// 16-byte aligned (scalar loads otherwise and for the tail), accumulates per thread in float32
// (device_terms.hpp), and reduces with warp shuffles and one shared-memory step.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/cuda_check.hpp"
#include "cuda/kernels.hpp"
#include "loglik/device_terms.hpp"

namespace cvae::cuda {
namespace {

using loglik::DeviceVariant;

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

// Logits element types: what one 16-byte load holds, and how an element becomes a float.
struct F32 {
  using Elem = float;
  static constexpr int kPerLoad = 4;
  __device__ __forceinline__ static float to_float(float v) { return v; }
  template <typename Acc>
  __device__ __forceinline__ static void add_vector(Acc& acc, const float* l, const float* x, int64_t v) {
    const float4 lv = __ldcs(reinterpret_cast<const float4*>(l) + v);  // read once: stream past L1/L2
    const float4 xv = __ldg(reinterpret_cast<const float4*>(x) + v);   // reread by the S rows of item b
    acc.add(lv.x, xv.x);
    acc.add(lv.y, xv.y);
    acc.add(lv.z, xv.z);
    acc.add(lv.w, xv.w);
    acc.flush();
  }
};

struct BF16 {
  using Elem = uint16_t;
  static constexpr int kPerLoad = 8;
  __device__ __forceinline__ static float to_float(uint16_t v) { return loglik::bf16_to_float(v); }
  template <typename Acc>
  __device__ __forceinline__ static void add_vector(Acc& acc, const uint16_t* l, const float* x, int64_t v) {
    const uint4 lv = __ldcs(reinterpret_cast<const uint4*>(l) + v);
    const float4 x0 = __ldg(reinterpret_cast<const float4*>(x) + 2 * v);
    const float4 x1 = __ldg(reinterpret_cast<const float4*>(x) + 2 * v + 1);
    // Each 32-bit word holds two bfloat16: the low half is the earlier element.
    acc.add(__uint_as_float(lv.x << 16), x0.x);
    acc.add(__uint_as_float(lv.x & 0xFFFF0000u), x0.y);
    acc.add(__uint_as_float(lv.y << 16), x0.z);
    acc.add(__uint_as_float(lv.y & 0xFFFF0000u), x0.w);
    acc.add(__uint_as_float(lv.z << 16), x1.x);
    acc.add(__uint_as_float(lv.z & 0xFFFF0000u), x1.y);
    acc.add(__uint_as_float(lv.w << 16), x1.z);
    acc.add(__uint_as_float(lv.w & 0xFFFF0000u), x1.w);
    acc.flush();
  }
};

constexpr int kMaxThreads = 256;

template <typename Type, typename Acc>
__global__ void __launch_bounds__(kMaxThreads) loglik_kernel(const typename Type::Elem* __restrict__ logits,
                                                             int64_t rows, int64_t S, int64_t P, int64_t stride_b,
                                                             int64_t stride_s, const float* __restrict__ x,
                                                             int64_t x_stride_b, float* __restrict__ out) {
  __shared__ float partial[2][kMaxThreads / 32];
  const int tid = static_cast<int>(threadIdx.x), nthreads = static_cast<int>(blockDim.x);
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t b = r / S, s = r - b * S;
    const typename Type::Elem* l = logits + b * stride_b + s * stride_s;
    const float* xr = x + b * x_stride_b;
    Acc acc;
    int64_t p = 0;
    if (aligned16(l) && aligned16(xr)) {  // the same for every thread of the block
      const int64_t vectors = P / Type::kPerLoad;
#pragma unroll 4
      for (int64_t v = tid; v < vectors; v += nthreads) Type::add_vector(acc, l, xr, v);
      p = vectors * Type::kPerLoad;
    }
    for (p += tid; p < P; p += nthreads) {
      acc.add(Type::to_float(l[p]), xr[p]);
      acc.flush();
    }
    float a0 = acc.part0(), a1 = acc.part1();
    for (int o = 16; o > 0; o >>= 1) {
      a0 += __shfl_xor_sync(0xFFFFFFFFu, a0, o);
      a1 += __shfl_xor_sync(0xFFFFFFFFu, a1, o);
    }
    const int warp = tid >> 5, warps = nthreads >> 5;
    if ((tid & 31) == 0) {
      partial[0][warp] = a0;
      partial[1][warp] = a1;
    }
    __syncthreads();
    if (tid == 0) {
      float s0 = 0.0f, s1 = 0.0f;
      for (int w = 0; w < warps; ++w) {
        s0 += partial[0][w];
        s1 += partial[1][w];
      }
      out[r] = Acc::finish(s0, s1);
    }
    __syncthreads();  // partial[] is reused by the next row
  }
}

template <typename Type, typename Acc>
void launch(const LoglikArgs& a, int64_t rows) {
  // 128 threads cover a 1024-pixel float row in two 16-byte loads each; longer rows get 256.
  const int threads = a.P * static_cast<int64_t>(sizeof(typename Type::Elem)) <= 4096 ? 128 : kMaxThreads;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(rows, INT_MAX));
  loglik_kernel<Type, Acc><<<blocks, threads, 0, reinterpret_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const typename Type::Elem*>(a.logits), rows, a.S, a.P, a.stride_b, a.stride_s, a.x, a.x_stride_b,
      a.out);
  check(cudaGetLastError(), "bernoulli_loglik on CUDA: kernel launch");
}

template <typename Type>
void launch_variant(const LoglikArgs& a, int64_t rows) {
  if (a.variant == static_cast<int>(DeviceVariant::Precise)) launch<Type, loglik::PreciseAcc>(a, rows);
  else launch<Type, loglik::FastAcc>(a, rows);
}

}  // namespace

void bernoulli_loglik(const LoglikArgs& a) {
  if (a.B < 0 || a.S < 0 || a.P < 0) throw std::invalid_argument("bernoulli_loglik on CUDA: negative shape");
  if (a.variant != static_cast<int>(DeviceVariant::Fast) && a.variant != static_cast<int>(DeviceVariant::Precise))
    throw std::invalid_argument("bernoulli_loglik on CUDA: unknown variant " + std::to_string(a.variant));
  const int64_t rows = a.B * a.S;
  DeviceGuard guard(a.device);
  if (rows == 0) return;
  if (a.P == 0) {
    check(cudaMemsetAsync(a.out, 0, sizeof(float) * rows, reinterpret_cast<cudaStream_t>(a.stream)), "cudaMemsetAsync");
    return;
  }
  if (a.logits_bf16) launch_variant<BF16>(a, rows);
  else launch_variant<F32>(a, rows);
}

}  // namespace cvae::cuda
