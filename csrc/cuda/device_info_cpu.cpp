// CPU-only builds: the CUDA half of device_info.hpp, answering "not compiled".
#include "cuda/device_info.hpp"

namespace cvae {
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
}  // namespace cvae
