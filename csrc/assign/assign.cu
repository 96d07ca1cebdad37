// The exact assignment on the GPU: one warp per problem runs device_core.hpp's successive
// shortest paths with its state in shared memory, and the problem's costs too where they fit
// beside it (n S doubles more). Reads u on the device, writes int64 labels on the device, on
// the caller's stream; the host never waits.
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <climits>
#include <stdexcept>
#include <string>

#include "assign/device_core.hpp"
#include "cuda/cuda_check.hpp"
#include "cuda/kernels.hpp"

namespace cvae::cuda {
namespace {

using core::Top2;

// A warp as the solver's team: lane t owns classes t, t + 32, ...; reductions are xor
// butterflies, so every lane ends with the same result. (Host bodies are never used; they
// exist so that the __host__ __device__ solver can be instantiated with this team.)
struct WarpTeam {
  static constexpr unsigned kAll = 0xFFFFFFFFu;
  CVAE_HD int lane() const {
#if defined(__CUDA_ARCH__)
    return static_cast<int>(threadIdx.x & 31u);
#else
    return 0;
#endif
  }
  CVAE_HD int size() const { return 32; }
  CVAE_HD bool leader() const { return lane() == 0; }
  CVAE_HD void sync() const {
#if defined(__CUDA_ARCH__)
    __syncwarp(kAll);
#endif
  }
  CVAE_HD double min(double v) const {
#if defined(__CUDA_ARCH__)
    for (int o = 16; o > 0; o >>= 1) {
      double w = __shfl_xor_sync(kAll, v, o);
      v = w < v ? w : v;
    }
#endif
    return v;
  }
  CVAE_HD bool any(bool v) const {
#if defined(__CUDA_ARCH__)
    return __any_sync(kAll, v) != 0;
#else
    return v;
#endif
  }
  CVAE_HD void argmin(double& v, int32_t& i) const {
#if defined(__CUDA_ARCH__)
    for (int o = 16; o > 0; o >>= 1) {
      double w = __shfl_xor_sync(kAll, v, o);
      int32_t j = __shfl_xor_sync(kAll, i, o);
      if (core::before(w, j, v, i)) {
        v = w;
        i = j;
      }
    }
#endif
  }
  CVAE_HD Top2 top2(Top2 t) const {
#if defined(__CUDA_ARCH__)
    for (int o = 16; o > 0; o >>= 1) {
      Top2 other{__shfl_xor_sync(kAll, t.b1, o), __shfl_xor_sync(kAll, t.k1, o), __shfl_xor_sync(kAll, t.b2, o)};
      t = core::combine(t, other);
    }
#endif
    return t;
  }
};

// kTable: copy the problem's costs into shared memory first (when they fit beside the state).
template <typename T, bool kTable>
__global__ void __launch_bounds__(32) assign_kernel(const T* __restrict__ u, int32_t n, int32_t S, int64_t stride_g,
                                                    int64_t stride_i, int64_t stride_k, double mu,
                                                    int64_t* __restrict__ labels, double* __restrict__ prices) {
  extern __shared__ double core_shared[];
  const int64_t g = blockIdx.x;
  WarpTeam team;
  core::StridedScores<T> scores{u + g * stride_g, stride_i, stride_k};
  int64_t* out = labels + g * n;
  double* out_prices = prices ? prices + g * S : nullptr;
  if constexpr (kTable) {
    core::CostTable::fill(team, scores, n, S, core_shared);
    core::CoreWorkspace ws = core::CoreWorkspace::carve(core_shared + static_cast<int64_t>(n) * S, n, S);
    team.sync();
    core::SspCore<core::CostTable, WarpTeam>(team, core::CostTable{core_shared, S}, n, S, mu, ws).solve(out, out_prices);
  } else {
    core::CoreWorkspace ws = core::CoreWorkspace::carve(core_shared, n, S);
    core::SspCore<core::StridedScores<T>, WarpTeam>(team, scores, n, S, mu, ws).solve(out, out_prices);
  }
}

constexpr int kMaxDevices = 64;
constexpr int64_t kDefaultSharedBytes = 48 * 1024;  // usable without opting in

// Per device and kernel instance, the dynamic shared memory it has been allowed so far.
std::array<std::atomic<int64_t>, kMaxDevices * 4> g_allowed{};

template <typename T, bool kTable>
void allow_shared(int device, int64_t bytes) {
  if (bytes <= kDefaultSharedBytes) return;
  std::atomic<int64_t>& allowed = g_allowed[device * 4 + 2 * (sizeof(T) == 8) + kTable];
  if (allowed.load() >= bytes) return;
  check(cudaFuncSetAttribute(assign_kernel<T, kTable>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(bytes)),
        "assign on CUDA: cudaFuncSetAttribute");
  allowed.store(bytes);
}

template <typename T, bool kTable>
void launch(const AssignArgs& a, int64_t bytes) {
  allow_shared<T, kTable>(a.device, bytes);
  assign_kernel<T, kTable><<<static_cast<unsigned>(a.G), 32, static_cast<size_t>(bytes),
                             reinterpret_cast<cudaStream_t>(a.stream)>>>(
      static_cast<const T*>(a.u), static_cast<int32_t>(a.n), static_cast<int32_t>(a.S), a.stride_g, a.stride_i,
      a.stride_k, 2.0 * a.lam, a.labels, a.prices);
  check(cudaGetLastError(), "assign on CUDA: kernel launch");
}

template <typename T>
void launch(const AssignArgs& a, int64_t state_bytes, int64_t limit) {
  const int64_t with_table = state_bytes + static_cast<int64_t>(core::CostTable::bytes(a.n, a.S));
  if (with_table <= limit) launch<T, true>(a, with_table);
  else launch<T, false>(a, state_bytes);
}

}  // namespace

int64_t max_shared_bytes(int device) {
  static std::array<std::atomic<int64_t>, kMaxDevices> cache{};
  if (device < 0 || device >= kMaxDevices)
    throw std::invalid_argument("CUDA device index " + std::to_string(device) + " out of range");
  int64_t v = cache[device].load();
  if (v > 0) return v;
  int bytes = 0;
  check(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  cache[device].store(bytes);
  return bytes;
}

void assign(const AssignArgs& a) {
  if (a.G < 0 || a.n < 0 || a.S < 1) throw std::invalid_argument("assign on CUDA: bad shape");
  if (a.G > INT_MAX || a.n > INT_MAX || a.S > INT_MAX)
    throw std::length_error("assign on CUDA: G = " + std::to_string(a.G) + ", n = " + std::to_string(a.n) +
                            ", S = " + std::to_string(a.S) + " exceeds the 2^31 - 1 limit of the kernel's indices");
  DeviceGuard guard(a.device);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(a.stream);
  if (a.G == 0) return;
  if (a.n == 0) {  // no items: every class empty, price 0 certifies
    if (a.prices) check(cudaMemsetAsync(a.prices, 0, sizeof(double) * a.G * a.S, stream), "cudaMemsetAsync");
    return;
  }
  const int64_t bytes = static_cast<int64_t>(core::CoreWorkspace::bytes(a.n, a.S));
  const int64_t limit = max_shared_bytes(a.device);
  if (bytes > limit)
    throw std::length_error("assign on CUDA keeps each problem in shared memory: n = " + std::to_string(a.n) +
                            ", S = " + std::to_string(a.S) + " needs " + std::to_string(bytes) +
                            " bytes (about 12 S^2 + 12 n), more than the " + std::to_string(limit) +
                            " bytes a block may use on this GPU");
  if (a.u_double) launch<double>(a, bytes, limit);
  else launch<float>(a, bytes, limit);
}

}  // namespace cvae::cuda
