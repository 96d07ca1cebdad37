// Python bindings of the fused Bernoulli log-likelihood (placeholder until the kernel lands).
#include <pybind11/pybind11.h>

namespace cvae::bind {
void register_loglik(pybind11::module_& m) {}
}  // namespace cvae::bind
