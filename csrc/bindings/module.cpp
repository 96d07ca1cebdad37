// The Python module `cascadevae_ext`: each kernel family registers its own functions.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "assign/assign.hpp"
#include "cuda/device_info.hpp"

namespace py = pybind11;

namespace cvae::bind {
void register_assign(py::module_& m);
void register_loglik(py::module_& m);
void register_layers(py::module_& m);
void register_cuda(py::module_& m);
}  // namespace cvae::bind

PYBIND11_MODULE(cascadevae_ext, m) {
  m.doc() =
      "Native kernels of cascadevae: the exact per-batch discrete assignment (assign) and "
      "the fused Bernoulli log-likelihood (bernoulli_loglik).";
  cvae::bind::register_assign(m);
  cvae::bind::register_loglik(m);
  cvae::bind::register_layers(m);
  cvae::bind::register_cuda(m);
  m.def(
      "build_info",
      []() {
        py::dict d;
        d["lemon"] = cvae::lemon_available();
        d["cuda_compiled"] = cvae::cuda_compiled();
        d["cuda_devices"] = cvae::cuda_device_count();
        d["compiler"] = CASCADEVAE_VERSION_INFO;
        return d;
      },
      "What this build contains: LEMON backend, CUDA sources compiled, CUDA devices visible, compiler.");
}
