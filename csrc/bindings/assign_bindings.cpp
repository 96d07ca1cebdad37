// Python bindings of the assignment solver and its certificate: argument conversion and the
// checks of Python objects (types, ndim, S = 0, lam as a number, labels) only; the checks of
// the problem itself (scores, magnitudes, the method for S, num_threads), the batch's threads
// and the algorithms live in csrc/assign/ (cvae::assign, resolve_method, check_problem).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "assign/assign.hpp"
#include "bindings/convert.hpp"

namespace cvae::bind {
namespace {

// A (G, n, S) view of u (G = 1 for 2-D input), its type and shape checked.
struct ScoresView {
  py::array array;  // keeps the buffer alive
  DType dtype;
  bool batched;
  int64_t G, n, S, stride_g, stride_i;

  template <typename T>
  Scores<T> problem(int64_t g) const {
    return Scores<T>{static_cast<const T*>(array.data()) + g * stride_g, n, S, stride_i};
  }
  template <typename T>
  ScoreBatch<T> batch() const {
    return ScoreBatch<T>{static_cast<const T*>(array.data()), G, n, S, stride_g, stride_i, batched};
  }
};

ScoresView scores_view(py::handle u_obj, bool allow_batch) {
  py::array a = as_array(u_obj, "u");
  DType dt = require_float(a, "u");
  if (a.ndim() != 2 && !(allow_batch && a.ndim() == 3))
    throw py::value_error(std::string("u must have shape (n, S)") + (allow_batch ? " or (G, n, S)" : "") +
                          ", got " + std::to_string(a.ndim()) + " dimensions, shape " + shape_str(a));
  int64_t S = a.shape(a.ndim() - 1);
  if (S == 0) throw py::value_error("u has S = 0 classes (shape " + shape_str(a) + "); S must be at least 1");
  a = with_unit_last_stride(a);
  ScoresView v{a, dt, a.ndim() == 3, 1, a.shape(a.ndim() - 2), S, 0, 0};
  if (v.batched) {
    v.G = a.shape(0);
    v.stride_g = elem_stride(a, 0);
    v.stride_i = elem_stride(a, 1);
  } else {
    v.stride_i = elem_stride(a, 0);
  }
  return v;
}

// Large inputs are checked and solved without the GIL; tiny ones keep it, since releasing
// and re-taking it costs about as much as solving a 64 x 3 problem.
bool worth_releasing_gil(const ScoresView& v) { return v.G * v.n * v.S >= 16384; }

// Labels as a contiguous int64 array of length n, every value in [0, S).
py::array_t<int64_t> labels_view(py::handle obj, int64_t n, int64_t S) {
  py::array a;
  if (py::isinstance<py::array>(obj)) {
    a = py::reinterpret_borrow<py::array>(obj);
  } else if (is_torch_tensor(obj)) {
    a = obj.attr("detach")().attr("cpu")().attr("numpy")().cast<py::array>();
  } else {
    throw py::type_error("labels must be a numpy array or a torch tensor of integers, got " + type_name(obj));
  }
  char kind = a.dtype().kind();
  if (kind != 'i' && kind != 'u')
    throw py::type_error("labels has dtype " + py::str(a.dtype()).cast<std::string>() + "; expected integers");
  if (a.ndim() != 1 || a.shape(0) != n)
    throw py::value_error("labels must have shape (" + std::to_string(n) + ",) to match u, got " + shape_str(a));
  auto l = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
  const int64_t* d = l.data();
  for (int64_t i = 0; i < n; ++i)
    if (d[i] < 0 || d[i] >= S)
      throw py::value_error("labels[" + std::to_string(i) + "] = " + std::to_string(d[i]) +
                            " is not a class index in [0, " + std::to_string(S) + ")");
  return l;
}

Method method_arg(const std::string& name) {
  try {
    return parse_method(name);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

// cvae::assign checks everything else (scores, lam * n, the method for S, num_threads) and
// solves a batch on threads.
py::object assign(py::handle u_obj, py::handle lam_obj, const std::string& method, bool return_prices, int num_threads) {
  ScoresView v = scores_view(u_obj, true);
  double lam = as_nonnegative_real(lam_obj, "lam");
  Method m = method_arg(method);
  std::vector<py::ssize_t> lshape = v.batched ? std::vector<py::ssize_t>{v.G, v.n} : std::vector<py::ssize_t>{v.n};
  std::vector<py::ssize_t> pshape = v.batched ? std::vector<py::ssize_t>{v.G, v.S} : std::vector<py::ssize_t>{v.S};
  py::array_t<int64_t> labels(lshape);
  py::array_t<double> prices;
  if (return_prices) prices = py::array_t<double>(pshape);
  Output out{labels.mutable_data(), return_prices ? prices.mutable_data() : nullptr};
  auto run = [&]() {
    if (v.dtype == DType::Float32) cvae::assign(v.batch<float>(), lam, m, out, num_threads);
    else cvae::assign(v.batch<double>(), lam, m, out, num_threads);
  };
  if (worth_releasing_gil(v)) {
    py::gil_scoped_release release;
    run();
  } else {
    run();
  }
  if (return_prices) return py::make_tuple(labels, prices);
  return std::move(labels);
}

// One (n, S) problem, checked by cvae::check_problem (without the GIL), handed to fn.
template <typename Fn>
auto with_problem(py::handle u_obj, double lam, Fn&& fn) {
  ScoresView v = scores_view(u_obj, false);
  auto checked = [&](auto p) {
    {
      py::gil_scoped_release release;
      check_problem(p, lam);
    }
    return fn(v, p);
  };
  if (v.dtype == DType::Float32) return checked(v.problem<float>(0));
  return checked(v.problem<double>(0));
}

double atol_arg(py::handle atol, double fallback) {
  if (atol.is_none()) return fallback;
  return as_nonnegative_real(atol, "atol");
}

}  // namespace

void register_assign(py::module_& m) {
  m.def("assign", &assign, py::arg("u"), py::arg("lam"), py::arg("method") = "auto", py::kw_only(),
        py::arg("return_prices") = false, py::arg("num_threads") = 0,
        R"doc(Exact discrete assignment of CascadeVAE (inner maximisation of eq. 6).

Returns int64 labels d maximising  sum_i u[i, d_i] - lam * sum_k n_k (n_k - 1),
where n_k is the number of items labelled k (ordered pairs, as the paper writes it;
the official code's lambda' counts unordered pairs and equals 2 * lam).

u: (n, S) or a batch (G, n, S), float32 or float64, any strides, all finite and
   |u| <= 2^512 (numpy array or CPU torch tensor). A batch is solved in parallel threads.
lam: lambda' >= 0, with lam * n <= 2^512. Larger magnitudes raise ValueError (sums could
   overflow double); the labels do not change when u and lam are scaled by one factor.
method: "auto" (fastest exact method for the shape), "ssp" (successive shortest paths on
   the condensed class graph), "warm" (SSP repair of a subsample-priced warm start; fastest
   for strong penalties), "lemon" (LEMON NetworkSimplex on the full flow graph), or
   "device_core" (the CUDA kernel's successive-shortest-path solver run here on one thread;
   for testing the GPU path on the CPU).
return_prices: also return the dual class prices (S,) or (G, S) that certify optimality
   (see check_prices).
num_threads: threads for a batch (0: all cores, or one thread when the whole batch has fewer
   than 32768 scores, where starting threads would cost more than it saves). Inputs of
   16384 scores or more are checked and solved with the GIL released.)doc");

  m.def(
      "resolve_method",
      [](py::handle u_obj, py::handle lam_obj, const std::string& method) {
        double lam = as_nonnegative_real(lam_obj, "lam");
        Method requested = method_arg(method);
        ScoresView v = scores_view(u_obj, false);
        py::gil_scoped_release release;
        if (v.dtype == DType::Float32) return std::string(method_name(cvae::resolve_method(v.problem<float>(0), lam, requested)));
        return std::string(method_name(cvae::resolve_method(v.problem<double>(0), lam, requested)));
      },
      py::arg("u"), py::arg("lam"), py::arg("method") = "auto",
      "The concrete method assign(u, lam, method) runs (resolves \"auto\").");

  m.def(
      "objective",
      [](py::handle u_obj, py::handle lam_obj, py::handle labels_obj) {
        double lam = as_nonnegative_real(lam_obj, "lam");
        return with_problem(u_obj, lam, [&](const ScoresView& v, auto p) {
          auto l = labels_view(labels_obj, v.n, v.S);
          return objective(p, lam, l.data());
        });
      },
      py::arg("u"), py::arg("lam"), py::arg("labels"),
      "sum_i u[i, labels_i] - lam * sum_k n_k (n_k - 1), accumulated in double.");

  m.def(
      "is_optimal",
      [](py::handle u_obj, py::handle lam_obj, py::handle labels_obj, py::handle atol_obj) {
        double lam = as_nonnegative_real(lam_obj, "lam");
        return with_problem(u_obj, lam, [&](const ScoresView& v, auto p) {
          check_certifiable(v.S);
          auto l = labels_view(labels_obj, v.n, v.S);
          double atol = atol_arg(atol_obj, default_tolerance(p, lam));
          py::gil_scoped_release release;
          return certify(p, lam, l.data(), atol, nullptr).optimal;
        });
      },
      py::arg("u"), py::arg("lam"), py::arg("labels"), py::arg("atol") = py::none(),
      R"doc(Is this labelling optimal? Checks, in O(nS + S^3), that the condensed residual graph of
the flow problem (the S classes and the sink) has no negative cycle, i.e. no exchange of
items along a cycle of classes improves the objective by more than atol
(default 1e-9 * (max|u| + lam * n + 1)). Works for labellings from any solver.)doc");

  m.def(
      "dual_prices",
      [](py::handle u_obj, py::handle lam_obj, py::handle labels_obj, py::handle atol_obj) {
        double lam = as_nonnegative_real(lam_obj, "lam");
        return with_problem(u_obj, lam, [&](const ScoresView& v, auto p) {
          check_certifiable(v.S);
          auto l = labels_view(labels_obj, v.n, v.S);
          double atol = atol_arg(atol_obj, default_tolerance(p, lam));
          py::array_t<double> prices(v.S);
          Certificate c;
          {
            py::gil_scoped_release release;
            c = certify(p, lam, l.data(), atol, prices.mutable_data());
          }
          if (!c.optimal)
            throw py::value_error("labels are not optimal: an exchange along a cycle of classes improves the objective by " +
                                  std::to_string(-c.cycle_cost) + ", so no certifying prices exist");
          return prices;
        });
      },
      py::arg("u"), py::arg("lam"), py::arg("labels"), py::arg("atol") = py::none(),
      "Dual class prices (S,) certifying an optimal labelling (see check_prices); ValueError if it is not optimal.");

  m.def(
      "check_prices",
      [](py::handle u_obj, py::handle lam_obj, py::handle labels_obj, py::handle prices_obj, py::handle atol_obj) {
        double lam = as_nonnegative_real(lam_obj, "lam");
        return with_problem(u_obj, lam, [&](const ScoresView& v, auto p) {
          auto l = labels_view(labels_obj, v.n, v.S);
          py::array pa = as_array(prices_obj, "prices");
          if (pa.ndim() != 1 || pa.shape(0) != v.S)
            throw py::value_error("prices must have shape (" + std::to_string(v.S) + ",), got " + shape_str(pa));
          auto pr = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(pa);
          double atol = atol_arg(atol_obj, default_tolerance(p, lam));
          py::gil_scoped_release release;
          return check_prices(p, lam, l.data(), pr.data(), atol);
        });
      },
      py::arg("u"), py::arg("lam"), py::arg("labels"), py::arg("prices"), py::arg("atol") = py::none(),
      R"doc(O(nS) optimality certificate. True when, up to atol, (i) every item i sits in a class
minimising -u[i, l] + prices[l], and (ii) 2 lam (n_k - 1) <= prices[k] <= 2 lam n_k for every class
(the lower bound where n_k >= 1). Prices from assign(..., return_prices=True) or dual_prices.)doc");
}

}  // namespace cvae::bind
