// Python bindings of the decoders' CPU layers (csrc/layers/): argument checks and conversion.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "bindings/convert.hpp"
#include "layers/transposed_conv_1ch.hpp"

namespace cvae::bind {
namespace {

py::array_t<float> transposed_conv_1ch_py(py::handle h_obj, py::handle w_obj, double bias, int num_threads) {
  if (num_threads < 0)
    throw py::value_error("num_threads = " + std::to_string(num_threads) + " is negative; use 0 for all cores");
  const bool bf16 = is_bfloat16_tensor(h_obj);
  py::array h = bf16 ? bfloat16_bits(h_obj, "h") : as_array(h_obj, "h");
  if (!bf16 && dtype_of(h) != DType::Float32)
    throw py::type_error("h has dtype " + py::str(h.dtype()).cast<std::string>() +
                         "; expected float32 or a torch.bfloat16 tensor");
  if (h.ndim() != 4)
    throw py::value_error("h must have shape (N, H, W, C) (channels last), got shape " + shape_str(h));
  if (!(h.flags() & py::array::c_style))
    throw py::value_error("h must be C-contiguous as (N, H, W, C): pass x.permute(0, 2, 3, 1).contiguous()");
  py::array w = as_array(w_obj, "weight");
  if (dtype_of(w) != DType::Float32 || w.ndim() != 2 || w.shape(1) != 16 || !(w.flags() & py::array::c_style))
    throw py::value_error("weight must be a C-contiguous float32 (C, 16) array (the (C, 1, 4, 4) kernel "
                          "reshaped), got shape " + shape_str(w));
  const int64_t N = h.shape(0), H = h.shape(1), W = h.shape(2), C = h.shape(3);
  if (w.shape(0) != C)
    throw py::value_error("weight has " + std::to_string(w.shape(0)) + " rows but h has C = " + std::to_string(C) +
                          " channels");
  py::array_t<float> out({static_cast<py::ssize_t>(N), static_cast<py::ssize_t>(2 * H), static_cast<py::ssize_t>(2 * W)});
  const float* wp = static_cast<const float*>(w.data());
  float* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    if (bf16)
      transposed_conv_1ch_bf16(static_cast<const uint16_t*>(h.data()), N, H, W, C, wp, static_cast<float>(bias), op,
                               num_threads);
    else
      transposed_conv_1ch(static_cast<const float*>(h.data()), N, H, W, C, wp, static_cast<float>(bias), op,
                          num_threads);
  }
  return out;
}

}  // namespace

void register_layers(py::module_& m) {
  m.def("transposed_conv_1ch", &transposed_conv_1ch_py, py::arg("h"), py::arg("weight"), py::arg("bias"),
        py::kw_only(), py::arg("num_threads") = 0,
        R"doc(A 4x4 transposed convolution, stride 2, padding 1, with one output channel.

    out[n, y, x] = bias + sum_{i, j, c} h[n, i, j, c] * weight[c, 4 ky + kx],
                   y = 2i - 1 + ky, x = 2j - 1 + kx

the same as torch's conv_transpose2d(h_nchw, weight.view(C, 1, 4, 4), bias, stride=2,
padding=1), for the decoders' last layer on the CPU, where oneDNN runs this shape several
times slower. h: (N, H, W, C) C-contiguous float32, or a CPU torch.bfloat16 tensor (widened
exactly); a channels-last (N, C, H, W) tensor gives it as x.permute(0, 2, 3, 1) without a
copy. weight: (C, 16) float32. Returns float32 (N, 2H, 2W). Float32 sums in a fixed order:
the result does not depend on num_threads (0: all cores). No gradient.)doc");
}

}  // namespace cvae::bind
