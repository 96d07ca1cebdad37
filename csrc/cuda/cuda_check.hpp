// Helpers of the CUDA launchers (included by .cu files only): error checks that throw, and a
// guard that makes the tensor's device current for the launch.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace cvae::cuda {

inline void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that later calls are not blamed for it
  throw std::runtime_error(std::string(what) + ": CUDA error " + cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ")");
}

// Makes `device` current for the lifetime of the guard (the caller's tensors live there; the
// current device may be another one). Neither call synchronises.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    else previous_ = -1;
  }
  ~DeviceGuard() {
    if (previous_ >= 0) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

}  // namespace cvae::cuda
