// Python bindings of the CUDA kernels and of the host runs of their cores. The kernels take raw
// device pointers, element strides and a stream from the thin wrapper cascadevae/kernels.py,
// which validates the torch tensors (device, dtype, layout) and allocates the outputs; the
// extension never links against torch. In a build without CUDA they raise RuntimeError
// ("this build of cascadevae_ext has no CUDA kernels ...").
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "assign/device_core.hpp"
#include "bindings/convert.hpp"
#include "cuda/kernels.hpp"
#include "loglik/bernoulli_loglik.hpp"
#include "loglik/device_terms.hpp"

namespace cvae::bind {
namespace {

int variant_arg(const std::string& name) {
  if (name == "fast") return static_cast<int>(loglik::DeviceVariant::Fast);
  if (name == "precise") return static_cast<int>(loglik::DeviceVariant::Precise);
  throw py::value_error("variant = '" + name + "' is not one of 'fast', 'precise'");
}

template <typename P>
P* pointer(std::uintptr_t address) {
  return reinterpret_cast<P*>(address);
}

void assign_cuda(std::uintptr_t u, const std::string& dtype, int64_t G, int64_t n, int64_t S, int64_t stride_g,
                 int64_t stride_i, int64_t stride_k, py::handle lam_obj, std::uintptr_t labels, std::uintptr_t prices,
                 int device, std::uintptr_t stream) {
  if (dtype != "float32" && dtype != "float64")
    throw py::type_error("u has dtype " + dtype + "; the CUDA assign takes float32 or float64");
  cuda::AssignArgs a{pointer<const void>(u), dtype == "float64", G, n, S, stride_g, stride_i, stride_k,
                     as_nonnegative_real(lam_obj, "lam"), pointer<int64_t>(labels), pointer<double>(prices), device,
                     stream};
  py::gil_scoped_release release;
  cuda::assign(a);
}

void loglik_cuda(std::uintptr_t logits, const std::string& dtype, int64_t B, int64_t S, int64_t P, int64_t stride_b,
                 int64_t stride_s, std::uintptr_t x, int64_t x_stride_b, std::uintptr_t out, const std::string& variant,
                 int device, std::uintptr_t stream) {
  if (dtype != "float32" && dtype != "bfloat16")
    throw py::type_error("logits has dtype " + dtype + "; the CUDA bernoulli_loglik takes float32 or bfloat16");
  cuda::LoglikArgs a{pointer<const void>(logits), dtype == "bfloat16", B, S, P, stride_b, stride_s,
                     pointer<const float>(x), x_stride_b, pointer<float>(out), variant_arg(variant), device, stream};
  py::gil_scoped_release release;
  cuda::bernoulli_loglik(a);
}

py::array_t<float> loglik_device_reference(py::array logits, py::array x, const std::string& variant) {
  const bool bf16 = logits.dtype().kind() == 'u' && logits.itemsize() == 2;
  if (!bf16 && dtype_of(logits) != DType::Float32)
    throw py::type_error("logits must be float32, or uint16 holding bfloat16 bit patterns");
  if (dtype_of(x) != DType::Float32) throw py::type_error("x must be float32");
  if (logits.ndim() != 3 || x.ndim() != 2 || x.shape(0) != logits.shape(0) || x.shape(1) != logits.shape(2))
    throw py::value_error("logits must be (B, S, P) and x (B, P), got " + shape_str(logits) + " and " + shape_str(x));
  const int v = variant_arg(variant);
  const int64_t B = logits.shape(0), S = logits.shape(1), P = logits.shape(2);
  py::array_t<float> out({static_cast<py::ssize_t>(B), static_cast<py::ssize_t>(S)});
  bernoulli_loglik_device_reference(logits.data(), bf16, B, S, P, elem_stride(logits, 0), elem_stride(logits, 1),
                                    elem_stride(logits, 2), static_cast<const float*>(x.data()), elem_stride(x, 0),
                                    elem_stride(x, 1), out.mutable_data(), v);
  return out;
}

}  // namespace

void register_cuda(py::module_& m) {
  m.def("_assign_cuda", &assign_cuda, py::arg("u_ptr"), py::arg("dtype"), py::arg("G"), py::arg("n"), py::arg("S"),
        py::arg("stride_g"), py::arg("stride_i"), py::arg("stride_k"), py::arg("lam"), py::arg("labels_ptr"),
        py::arg("prices_ptr"), py::arg("device"), py::arg("stream"),
        R"doc(Launches the exact assignment of G problems (n x S) on a CUDA device; returns at once.

Low level: use cascadevae.kernels.assign, which validates torch tensors and calls this. u_ptr: device
address of u (dtype "float32" or "float64"), element (g, i, k) at u[g*stride_g + i*stride_i +
k*stride_k]; labels_ptr: int64 (G, n) contiguous output; prices_ptr: float64 (G, S) output or 0;
stream: a cudaStream_t as an integer (torch.cuda.current_stream().cuda_stream). One warp per
problem with its state in shared memory; ValueError when _assign_shared_bytes(n, S) exceeds
_cuda_max_shared_bytes(device). Scores are not checked for finiteness (that would need a host
sync): a NaN counts as the worst score, +-inf as +-2^900.)doc");
  m.def("_bernoulli_loglik_cuda", &loglik_cuda, py::arg("logits_ptr"), py::arg("dtype"), py::arg("B"), py::arg("S"),
        py::arg("P"), py::arg("stride_b"), py::arg("stride_s"), py::arg("x_ptr"), py::arg("x_stride_b"),
        py::arg("out_ptr"), py::arg("variant"), py::arg("device"), py::arg("stream"),
        R"doc(Launches the fused Bernoulli log-likelihood on a CUDA device; returns at once.

Low level: use cascadevae.kernels.bernoulli_loglik. logits (dtype "float32" or "bfloat16") element
(b, s, p) at logits[b*stride_b + s*stride_s + p] (unit pixel stride); x float32, element (b, p)
at x[b*x_stride_b + p]; out float32 (B, S) contiguous. variant: "fast" (hardware exp2/log2) or
"precise" (the CPU kernel's float32 routines).)doc");
  m.def(
      "_cuda_max_shared_bytes", [](int device) { return cuda::max_shared_bytes(device); }, py::arg("device"),
      "Largest dynamic shared memory per block on this CUDA device (opt-in maximum), in bytes.");
  m.def(
      "_assign_shared_bytes", [](int64_t n, int64_t S) { return core::CoreWorkspace::bytes(n, S); }, py::arg("n"),
      py::arg("S"), "Shared memory the CUDA assign needs per problem of n items and S classes, in bytes.");
  m.def("_bernoulli_loglik_device_reference", &loglik_device_reference, py::arg("logits"), py::arg("x"),
        py::arg("variant"),
        "The CUDA log-likelihood kernel's per-pixel accumulation run on the host (serial float32 sums): "
        "logits float32 or uint16 bfloat16 bits (B, S, P), x float32 (B, P); variant 'fast' or 'precise'.");
}

}  // namespace cvae::bind
