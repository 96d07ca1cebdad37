// Builds without a CUDA toolkit: the CUDA entry points of kernels.hpp refuse with one message.
#include <stdexcept>

#include "cuda/kernels.hpp"

namespace cvae::cuda {
void assign(const AssignArgs&) { throw std::runtime_error(kNoCudaMessage); }
int64_t max_shared_bytes(int) { throw std::runtime_error(kNoCudaMessage); }
void bernoulli_loglik(const LoglikArgs&) { throw std::runtime_error(kNoCudaMessage); }
}  // namespace cvae::cuda
