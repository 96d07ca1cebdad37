// Argument conversion shared by the bindings: numpy arrays and CPU torch tensors become
// numpy views (no copy where the layout allows), and anything else is refused with a
// message that names the argument and the offending value.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace cvae::bind {
namespace py = pybind11;

enum class DType { Float32, Float64, Other };

inline std::string type_name(py::handle obj) {
  return py::str(py::type::handle_of(obj).attr("__qualname__")).cast<std::string>();
}

// torch's Tensor type and its two float dtypes, looked up once torch has been imported
// (if it has not, nothing passed in can be a tensor). Leaked on purpose: static py::objects
// would be destroyed after the interpreter.
struct TorchTypes {
  PyObject* tensor = nullptr;
  PyObject* float32 = nullptr;
  PyObject* float64 = nullptr;
};
inline const TorchTypes* torch_types() {
  static TorchTypes types;
  if (types.tensor) return &types;
  PyObject* modules = PyImport_GetModuleDict();
  PyObject* torch = PyDict_GetItemString(modules, "torch");  // borrowed; no import
  if (!torch) return nullptr;
  py::handle t(torch);
  if (!py::hasattr(t, "Tensor") || !py::hasattr(t, "float32")) return nullptr;  // half-initialised
  types.float32 = py::object(t.attr("float32")).release().ptr();
  types.float64 = py::object(t.attr("float64")).release().ptr();
  types.tensor = py::object(t.attr("Tensor")).release().ptr();
  return &types;
}

inline bool is_torch_tensor(py::handle obj) {
  const TorchTypes* t = torch_types();
  return t && PyObject_IsInstance(obj.ptr(), t->tensor) == 1;
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    if (d) s += ", ";
    s += std::to_string(a.shape(d));
  }
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

// numpy view of `obj`; raises TypeError for anything that is not an array or CPU tensor.
inline py::array as_array(py::handle obj, const char* name) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  if (is_torch_tensor(obj)) {
    const TorchTypes* t = torch_types();
    if (!obj.attr("is_cpu").cast<bool>())
      throw py::type_error(std::string(name) + " is a torch tensor on device '" +
                           py::str(obj.attr("device")).cast<std::string>() +
                           "', but this function runs on the CPU: pass " + name +
                           ".cpu(), or call cascadevae.kernels, which runs CUDA tensors on the GPU");
    py::object dtype = obj.attr("dtype");
    if (!dtype.is(py::handle(t->float32)) && !dtype.is(py::handle(t->float64)))
      throw py::type_error(std::string(name) + " has dtype " + py::str(dtype).cast<std::string>() +
                           "; expected torch.float32 or torch.float64");
    // .numpy() refuses tensors that require grad; detach() first (the view shares memory).
    py::object plain = obj.attr("requires_grad").cast<bool>() ? obj.attr("detach")() : py::reinterpret_borrow<py::object>(obj);
    return plain.attr("numpy")().cast<py::array>();
  }
  throw py::type_error(std::string(name) + " must be a numpy array or a CPU torch tensor, got " +
                       type_name(obj));
}

// A CPU torch.bfloat16 tensor has no numpy dtype: the kernels read its bits through an int16 view.
inline bool is_bfloat16_tensor(py::handle obj) {
  if (!is_torch_tensor(obj)) return false;
  py::module_ torch = py::module_::import("torch");  // already imported: a dict lookup
  return obj.attr("dtype").is(torch.attr("bfloat16"));
}

// The int16 numpy view of a CPU bfloat16 tensor's bits (same shape and strides, no copy).
inline py::array bfloat16_bits(py::handle obj, const char* name) {
  if (!obj.attr("is_cpu").cast<bool>())
    throw py::type_error(std::string(name) + " is a torch tensor on device '" +
                         py::str(obj.attr("device")).cast<std::string>() + "', but this function runs on the CPU: pass " +
                         name + ".cpu(), or call cascadevae.kernels, which runs CUDA tensors on the GPU");
  py::module_ torch = py::module_::import("torch");
  return obj.attr("detach")().attr("view")(torch.attr("int16")).attr("numpy")().cast<py::array>();
}

inline DType dtype_of(const py::array& a) {
  // Type numbers, not dtype objects: this runs on every microsecond-sized call.
  const auto* descr = py::detail::array_descriptor_proxy(py::detail::array_proxy(a.ptr())->descr);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  constexpr char native = '>';
#else
  constexpr char native = '<';
#endif
  if (descr->byteorder != '=' && descr->byteorder != '|' && descr->byteorder != native) return DType::Other;
  if (descr->type_num == py::detail::npy_api::NPY_FLOAT_) return DType::Float32;
  if (descr->type_num == py::detail::npy_api::NPY_DOUBLE_) return DType::Float64;
  return DType::Other;
}

inline DType require_float(const py::array& a, const char* name) {
  DType d = dtype_of(a);
  if (d == DType::Other)
    throw py::type_error(std::string(name) + " has dtype " + py::str(a.dtype()).cast<std::string>() +
                         "; expected float32 or float64");
  return d;
}

// Same array with a unit stride on the last axis (copying only when it is not).
inline py::array with_unit_last_stride(const py::array& a) {
  if (a.ndim() == 0) return a;
  py::ssize_t last = a.ndim() - 1;
  bool ok = a.shape(last) <= 1 || a.strides(last) == a.itemsize();
  for (py::ssize_t d = 0; d < a.ndim(); ++d) ok = ok && (a.strides(d) % a.itemsize() == 0);
  if (ok) return a;
  // Leaked on purpose: a static py::object would be destroyed after the interpreter.
  static py::handle ascontiguous = py::object(py::module_::import("numpy").attr("ascontiguousarray")).release();
  return ascontiguous(a).cast<py::array>();
}

// Stride of axis d in elements (arrays handed here always have element-aligned strides).
inline int64_t elem_stride(const py::array& a, py::ssize_t d) {
  return static_cast<int64_t>(a.strides(d) / a.itemsize());
}

// A finite, non-negative real number (Python float/int, numpy scalar, 0-d tensor).
inline double as_nonnegative_real(py::handle obj, const char* name) {
  if (py::isinstance<py::bool_>(obj) || PyComplex_Check(obj.ptr()) || py::isinstance<py::str>(obj))
    throw py::type_error(std::string(name) + " must be a real number, got " + type_name(obj));
  double v = PyFloat_AsDouble(obj.ptr());
  if (v == -1.0 && PyErr_Occurred()) {
    PyErr_Clear();
    throw py::type_error(std::string(name) + " must be a real number, got " + type_name(obj));
  }
  if (std::isnan(v)) throw py::value_error(std::string(name) + " is NaN; it must be a finite number >= 0");
  if (v < 0) throw py::value_error(std::string(name) + " = " + py::repr(obj).cast<std::string>() + " is negative; it must be >= 0");
  if (std::isinf(v)) throw py::value_error(std::string(name) + " is infinite; it must be a finite number >= 0");
  return v;
}

}  // namespace cvae::bind
