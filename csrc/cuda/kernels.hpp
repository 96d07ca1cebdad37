// Host-callable entry points of the CUDA kernels. No CUDA types appear here, so the bindings
// include it in every build; a build without a CUDA toolkit links kernels_stub.cpp instead,
// whose functions throw std::runtime_error(kNoCudaMessage).
//
// Every entry point enqueues work on the caller's stream and returns without waiting for the
// GPU: no host synchronisation, so the launches can be captured in a CUDA graph. Pointers are
// device pointers on `device`; the caller allocated every output.
#pragma once
#include <cstdint>

namespace cvae::cuda {

inline constexpr const char* kNoCudaMessage =
    "this build of cascadevae_ext has no CUDA kernels (built without a CUDA toolkit)";

// The exact assignment (device_core.hpp) of G problems of n x S, one warp per problem, its
// state in shared memory (CoreWorkspace::bytes(n, S) per problem). Throws std::length_error
// when that exceeds max_shared_bytes(device).
struct AssignArgs {
  const void* u;      // float32, or float64 when u_double; element (g, i, k) at
  bool u_double;      //   u[g * stride_g + i * stride_i + k * stride_k]
  int64_t G, n, S;
  int64_t stride_g, stride_i, stride_k;
  double lam;         // lambda' (ordered pairs), >= 0
  int64_t* labels;    // G * n, contiguous
  double* prices;     // G * S, contiguous, or nullptr
  int device;
  std::uintptr_t stream;  // a cudaStream_t
};
void assign(const AssignArgs& args);

// The largest dynamic shared memory a block may use on `device` (the opt-in maximum).
int64_t max_shared_bytes(int device);

// The fused Bernoulli log-likelihood out[b, s] = sum_p x[b, p] l[b, s, p] - softplus(l[b, s, p])
// (device_terms.hpp), one block per row (b, s), float32 accumulation.
struct LoglikArgs {
  const void* logits;  // float32, or bfloat16 when logits_bf16; element (b, s, p) at
  bool logits_bf16;    //   logits[b * stride_b + s * stride_s + p]  (unit pixel stride)
  int64_t B, S, P;
  int64_t stride_b, stride_s;
  const float* x;      // element (b, p) at x[b * x_stride_b + p]
  int64_t x_stride_b;
  float* out;          // B * S, contiguous
  int variant;         // loglik::DeviceVariant
  int device;
  std::uintptr_t stream;
};
void bernoulli_loglik(const LoglikArgs& args);

}  // namespace cvae::cuda
