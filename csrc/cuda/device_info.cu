// CUDA side of device_info.hpp: compiled only when CMake finds a CUDA toolkit.
#include <cuda_runtime.h>

#include "cuda/device_info.hpp"

namespace cvae {
bool cuda_compiled() { return true; }

int cuda_device_count() {
  int count = 0;
  // No driver or no device is a normal situation here (CPU machines), not an error.
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return count;
}
}  // namespace cvae
