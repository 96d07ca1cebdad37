// Whether CUDA sources were compiled into this build, and how many devices the driver sees.
// The GPU kernels (assign, bernoulli_loglik) plug in beside this file in csrc/cuda/.
#pragma once

namespace cvae {
bool cuda_compiled();
int cuda_device_count();  // 0 without a driver or device; never throws
}  // namespace cvae
