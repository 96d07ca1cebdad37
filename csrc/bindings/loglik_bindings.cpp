// Python bindings of the fused Bernoulli log-likelihood: argument checks and conversion
// only; the kernel lives in csrc/loglik/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <charconv>
#include <cmath>
#include <string>

#include "bindings/convert.hpp"
#include "loglik/bernoulli_loglik.hpp"

namespace cvae::bind {
namespace {

std::string dtype_str(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// The kernel takes any element strides (a non-unit pixel stride is gathered row by row,
// without a full copy); only byte strides that are not whole elements need a copy.
py::array with_element_strides(const py::array& a) {
  for (py::ssize_t d = 0; d < a.ndim(); ++d)
    if (a.strides(d) % a.itemsize() != 0)  // rare: no cached function object (a static
      // py::object would be released after the interpreter is finalised)
      return py::module_::import("numpy").attr("ascontiguousarray")(a).cast<py::array>();
  return a;
}

std::string shortest(float v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

LoglikIsa simd_arg(const std::string& name) {
  for (LoglikIsa isa : {LoglikIsa::Auto, LoglikIsa::Generic, LoglikIsa::Avx2, LoglikIsa::Avx512})
    if (name == loglik_isa_name(isa)) {
      if (!loglik_isa_supported(isa))
        throw py::value_error("simd variant '" + name + "' is not supported by this CPU or build");
      return isa;
    }
  throw py::value_error("unknown simd variant '" + name + "'; expected auto, generic, avx2 or avx512");
}

py::array_t<float> loglik(py::handle logits_obj, py::handle x_obj, int num_threads, LoglikIsa isa) {
  if (num_threads < 0)
    throw py::value_error("num_threads = " + std::to_string(num_threads) + " is negative; use 0 for all cores");

  // A CPU torch.bfloat16 tensor has no numpy dtype: read its bits through an int16 view.
  const bool bf16 = is_bfloat16_tensor(logits_obj);
  py::array l = bf16 ? bfloat16_bits(logits_obj, "logits") : as_array(logits_obj, "logits");
  if (!bf16 && dtype_of(l) != DType::Float32)
    throw py::type_error("logits has dtype " + dtype_str(l) +
                         "; expected float32 or a torch.bfloat16 tensor (convert with logits.float() or "
                         "logits.astype(numpy.float32))");
  if (l.ndim() != 3)
    throw py::value_error("logits must have shape (B, S, P), got " + std::to_string(l.ndim()) +
                          " dimensions, shape " + shape_str(l));

  py::array x = as_array(x_obj, "x");
  DType xd = require_float(x, "x");
  if (x.ndim() != 2)
    throw py::value_error("x must have shape (B, P), got " + std::to_string(x.ndim()) + " dimensions, shape " +
                          shape_str(x));
  const int64_t B = l.shape(0), S = l.shape(1), P = l.shape(2);
  if (x.shape(0) != B || x.shape(1) != P)
    throw py::value_error("x has shape " + shape_str(x) + " but logits has shape " + shape_str(l) +
                          ", so x must have shape (B, P) = (" + std::to_string(B) + ", " + std::to_string(P) + ")");
  if (xd == DType::Float64) x = x.attr("astype")(py::dtype::of<float>()).cast<py::array>();

  l = with_element_strides(l);
  x = with_element_strides(x);
  py::array_t<float> out({static_cast<py::ssize_t>(B), static_cast<py::ssize_t>(S)});
  const float* xp = static_cast<const float*>(x.data());
  float* op = out.mutable_data();
  const int64_t sb = elem_stride(l, 0), ss = elem_stride(l, 1), sp = elem_stride(l, 2);
  const int64_t xb = elem_stride(x, 0), xpp = elem_stride(x, 1);
  int64_t bad_x = -1, bad_logit = -1;
  {
    py::gil_scoped_release release;
    // Targets first (one pass over B x P, a few percent of the kernel's time); NaN logits
    // afterwards from the rows they turn NaN (one pass over B x S on valid input).
    bad_x = first_target_outside_unit_interval(xp, B, P, xb, xpp);
    if (bad_x < 0) {
      if (bf16) {
        const auto* lp = static_cast<const uint16_t*>(l.data());
        bernoulli_loglik_bf16(lp, B, S, P, sb, ss, sp, xp, xb, xpp, op, num_threads, isa);
        bad_logit = first_nan_logit_bf16(lp, B, S, P, sb, ss, sp, op);
      } else {
        const auto* lp = static_cast<const float*>(l.data());
        bernoulli_loglik(lp, B, S, P, sb, ss, sp, xp, xb, xpp, op, num_threads, isa);
        bad_logit = first_nan_logit(lp, B, S, P, sb, ss, sp, op);
      }
    }
  }
  if (bad_x >= 0) {
    const int64_t b = bad_x / P, p = bad_x % P;
    const float v = xp[b * xb + p * xpp];
    throw py::value_error("x[" + std::to_string(b) + ", " + std::to_string(p) + "] " +
                          (std::isnan(v) ? std::string("is nan") : "= " + shortest(v) + " is outside [0, 1]") +
                          ": the targets are Bernoulli means (pixel intensities scaled to [0, 1])" +
                          (xd == DType::Float64 ? " (checked after rounding to float32)" : "") +
                          "; rescale or clip the images, e.g. x / 255 for uint8 pixels");
  }
  if (bad_logit >= 0) {
    const int64_t p = bad_logit % P, r = bad_logit / P, b = r / S, k = r % S;
    throw py::value_error("logits[" + std::to_string(b) + ", " + std::to_string(k) + ", " + std::to_string(p) +
                          "] is nan: the decoder's output is not a number (has the model diverged? check the loss "
                          "and the learning rate)");
  }
  return out;
}

}  // namespace

void register_loglik(py::module_& m) {
  m.def(
      "bernoulli_loglik",
      [](py::handle logits, py::handle x, int num_threads) { return loglik(logits, x, num_threads, LoglikIsa::Auto); },
      py::arg("logits"), py::arg("x"), py::kw_only(), py::arg("num_threads") = 0,
      R"doc(Bernoulli log-likelihood of each image under each discrete code, fused in one pass.

    out[b, k] = sum_p  x[b, p] * logits[b, k, p] - softplus(logits[b, k, p])

i.e. -F.binary_cross_entropy_with_logits(logits, x[:, None, :].expand_as(logits),
reduction="none").sum(-1), without materialising the (B, S, P) tensor of per-pixel
terms: memory traffic is one read of logits and x, and the result is (B, S).

logits: (B, S, P) float32, or a CPU torch.bfloat16 tensor -- decoder logits of image b
   under code k, pixels flattened. bfloat16 logits are widened to float32 exactly, so they
   give the float32 result of logits.float() without that copy.
x: (B, P) float32 targets (float64 is accepted and rounded to float32 first), in [0, 1]
   (binary or fractional). Checked: a target outside [0, 1] or NaN raises ValueError naming
   the first one, x[b, p], and its value (one pass over x: about 10 us at (64, 10, 1024) and
   40 us at (64, 3, 4096), 2-8 % of the kernel's time there).
num_threads: threads over the B*S rows (0: all cores; at most one per 131072 pixels). The
   result does not depend on it. Threads are started per call: right after a parallel
   torch op, torch's OpenMP workers may still spin on the other cores and slow these
   threads down (OMP_WAIT_POLICY=PASSIVE avoids it).
Both arrays may be numpy arrays or CPU torch tensors (requires_grad is fine: the data are
read without autograd), with any strides (transposed, sliced, broadcast), read in place;
a non-unit pixel stride is gathered one row at a time, which is slower than unit stride.
Returns a new float32 numpy array (B, S), also for torch inputs (wrap it with
torch.from_numpy if needed). No gradient is computed. The GIL is released while computing.

Numerics: softplus(l) = max(l, 0) + log1p(exp(-|l|)), so no overflow for any finite
logit (+-1e4 included); each pixel term is evaluated in float32 to within ~3 ulp with
vectorised exp/log1p (exp(-|l|) is taken as 0 when |l| > 87, an absolute error below
2e-38), and each row is summed in double, so results are at least as accurate as
torch's float32 computation. P = 0 gives zeros, B = 0 or S = 0 an empty array.
A NaN logit raises ValueError naming the first, logits[b, k, p] (found from the NaN it
leaves in its row's sum: valid input pays one pass over the (B, S) result). An infinite
logit is allowed: it gives -inf where the target disagrees with it (x < 1 for +inf,
x > 0 for -inf) and NaN where it agrees (torch gives NaN in more of these cases).
The inner loop is vectorised; the AVX-512, AVX2+FMA or baseline variant is picked at
run time for this CPU. TypeError for non-arrays and wrong dtypes, ValueError for wrong
shapes, a negative num_threads, targets outside [0, 1] and NaN logits. The CUDA kernels
(cascadevae.kernels on CUDA tensors) do not check (that would need a host sync).)doc");

  m.def(
      "_bernoulli_loglik_simd",
      [](py::handle logits, py::handle x, const std::string& simd, int num_threads) {
        return loglik(logits, x, num_threads, simd_arg(simd));
      },
      py::arg("logits"), py::arg("x"), py::arg("simd"), py::kw_only(), py::arg("num_threads") = 0,
      "bernoulli_loglik with a chosen SIMD variant (\"auto\", \"generic\", \"avx2\", \"avx512\"); for tests "
      "and benchmarks. ValueError for a variant this CPU or build lacks.");

  m.def(
      "_loglik_simd",
      []() {
        py::dict d;
        d["selected"] = loglik_isa_name(loglik_best_isa());
        py::list available;
        for (LoglikIsa isa : {LoglikIsa::Generic, LoglikIsa::Avx2, LoglikIsa::Avx512})
          if (loglik_isa_supported(isa)) available.append(loglik_isa_name(isa));
        d["available"] = available;
        return d;
      },
      "SIMD variants of bernoulli_loglik: the one 'auto' selects on this CPU, and all that can run here.");
}

}  // namespace cvae::bind
