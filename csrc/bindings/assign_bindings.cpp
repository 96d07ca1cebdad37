// Python bindings of the assignment solver and its certificate: argument checks and
// conversion only; the algorithms live in csrc/assign/.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "assign/assign.hpp"
#include "bindings/convert.hpp"
#include "common/parallel.hpp"

namespace cvae::bind {
namespace {

// A validated (G, n, S) view of u (G = 1 for 2-D input).
struct ScoresView {
  py::array array;  // keeps the buffer alive
  DType dtype;
  bool batched;
  int64_t G, n, S, stride_g, stride_i;

  template <typename T>
  Scores<T> problem(int64_t g) const {
    return Scores<T>{static_cast<const T*>(array.data()) + g * stride_g, n, S, stride_i};
  }
};

// The shortest decimal that reads back as x (e.g. 1e+300).
std::string shortest(double x) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// Why a magnitude past kMaxMagnitude is refused, and the rescaling that brings `value` to
// about 1.
std::string magnitude_advice(double value) {
  const std::string k = std::to_string(std::ilogb(value) + 1);
  return "exceeds 2^512 (about 1.34e154), the largest magnitude cascadevae_ext accepts: past it sums of scores "
         "and penalties could overflow double and give wrong labels. The optimal labels do not change when u and "
         "lam are multiplied by the same positive factor: rescale both, e.g. assign(u * 2.0**-" + k +
         ", lam * 2.0**-" + k + ") brings this value to about 1 (a power of two keeps every value exact)";
}

// Finite and |x| <= kMaxMagnitude. A finite float32 is below 2^128, so for float32 this is
// the finiteness test alone.
template <typename T>
inline bool in_range(T x) {
  if constexpr (sizeof(T) == sizeof(float)) return std::isfinite(x);
  else return std::fabs(x) <= kMaxMagnitude;
}

// Every score finite and within kMaxMagnitude; the first one that is not is named.
template <typename T>
void require_in_range(const ScoresView& v) {
  const T* base = static_cast<const T*>(v.array.data());
  for (int64_t g = 0; g < v.G; ++g)
    for (int64_t i = 0; i < v.n; ++i) {
      const T* row = base + g * v.stride_g + i * v.stride_i;
      bool ok = true;
      for (int64_t k = 0; k < v.S; ++k) ok &= in_range(row[k]);
      if (ok) continue;
      for (int64_t k = 0; k < v.S; ++k)
        if (!in_range(row[k])) {
          std::string where = v.batched ? "u[" + std::to_string(g) + ", " + std::to_string(i) + ", " + std::to_string(k) + "]"
                                        : "u[" + std::to_string(i) + ", " + std::to_string(k) + "]";
          if (std::isfinite(row[k]))
            throw py::value_error(where + " = " + shortest(static_cast<double>(row[k])) + " " +
                                  magnitude_advice(static_cast<double>(row[k])));
          std::string what = std::isnan(row[k]) ? "nan" : (row[k] > 0 ? "inf" : "-inf");
          throw py::value_error("u must be finite, but " + where + " is " + what);
        }
    }
}

// lam * n, the scale of the penalty's marginal costs, within kMaxMagnitude.
void require_penalty_in_range(double lam, int64_t n) {
  const double scale = lam * static_cast<double>(n);
  if (scale <= kMaxMagnitude) return;
  throw py::value_error("lam * n = " + shortest(scale) + " (lam = " + shortest(lam) + ", n = " + std::to_string(n) +
                        " items) " + magnitude_advice(scale));
}

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

// The checks every function makes on u (O(G n S), done without the GIL for large inputs).
void check_scores(const ScoresView& v) {
  if (v.dtype == DType::Float32) require_in_range<float>(v); else require_in_range<double>(v);
}

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

std::string gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

// Picks LEMON for "auto" when S is too large for the condensed-graph solvers; refuses those
// solvers by name with the reason.
Method fit_method_to_classes(Method m, int64_t S) {
  if (S <= kMaxCondensedClasses) return m;
  std::string why = "u has S = " + std::to_string(S) + " classes; the condensed-graph solvers keep S x S tables (about " +
                    gib(50.0 * static_cast<double>(S) * static_cast<double>(S)) + " per thread), so they stop at S = " +
                    std::to_string(kMaxCondensedClasses);
  if (m == Method::Auto) {
    if (lemon_available()) return Method::Lemon;
    throw py::value_error(why + ", and this build has no LEMON for larger S (apt-get install liblemon-dev, then reinstall)");
  }
  if (m == Method::SSP || m == Method::Warm || m == Method::DeviceCore) throw py::value_error(why + ": use method=\"lemon\"");
  return m;
}

void require_certifiable(int64_t S) {
  if (S > kMaxCertifyClasses)
    throw py::value_error("u has S = " + std::to_string(S) + " classes: the negative-cycle test is O(S^3) and would take "
                          "minutes past S = " + std::to_string(kMaxCertifyClasses) +
                          "; certify with check_prices(u, lam, labels, prices) instead, O(nS), using the prices "
                          "from assign(..., return_prices=True)");
}

Method method_arg(const std::string& name) {
  try {
    return parse_method(name);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

template <typename T>
void solve_all(const ScoresView& v, double lam, Method m, int64_t* labels, double* prices, int threads) {
  // Starting a thread costs tens of microseconds here: a batch of tiny problems (say 16 of
  // 64 x 3, a few microseconds each) is faster on the calling thread alone.
  if (threads == 0 && v.G * v.n * v.S < 32768) threads = 1;
  parallel_for(v.G, threads, [&](int64_t g) {
    solve<T>(v.problem<T>(g), lam, m, Output{labels + g * v.n, prices ? prices + g * v.S : nullptr});
  });
}

py::object assign(py::handle u_obj, py::handle lam_obj, const std::string& method, bool return_prices, int num_threads) {
  ScoresView v = scores_view(u_obj, true);
  double lam = as_nonnegative_real(lam_obj, "lam");
  Method m = fit_method_to_classes(method_arg(method), v.S);
  if (m == Method::Lemon && !lemon_available())
    throw py::value_error(
        "method=\"lemon\" needs the LEMON graph library, which this build of cascadevae_ext was compiled "
        "without: install it (Debian/Ubuntu: apt-get install liblemon-dev) and reinstall cascadevae");
  if (num_threads < 0) throw py::value_error("num_threads = " + std::to_string(num_threads) + " must be >= 0 (0: all cores)");
  require_penalty_in_range(lam, v.n);
  std::vector<py::ssize_t> lshape = v.batched ? std::vector<py::ssize_t>{v.G, v.n} : std::vector<py::ssize_t>{v.n};
  std::vector<py::ssize_t> pshape = v.batched ? std::vector<py::ssize_t>{v.G, v.S} : std::vector<py::ssize_t>{v.S};
  py::array_t<int64_t> labels(lshape);
  py::array_t<double> prices;
  if (return_prices) prices = py::array_t<double>(pshape);
  int64_t* lp = labels.mutable_data();
  double* pp = return_prices ? prices.mutable_data() : nullptr;
  auto run = [&]() {
    check_scores(v);
    if (v.n == 0) {
      if (pp) std::fill(pp, pp + v.G * v.S, 0.0);  // no items: every class empty, price 0 certifies
      return;
    }
    if (v.dtype == DType::Float32) solve_all<float>(v, lam, m, lp, pp, num_threads);
    else solve_all<double>(v, lam, m, lp, pp, num_threads);
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

template <typename Fn>
auto with_problem(py::handle u_obj, double lam, Fn&& fn) {
  ScoresView v = scores_view(u_obj, false);
  require_penalty_in_range(lam, v.n);
  {
    py::gil_scoped_release release;
    check_scores(v);
  }
  if (v.dtype == DType::Float32) return fn(v, v.problem<float>(0));
  return fn(v, v.problem<double>(0));
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
        return with_problem(u_obj, lam, [&](const ScoresView& v, auto p) -> std::string {
          Method m = fit_method_to_classes(requested, v.S);
          if (m != Method::Auto) return method_name(m);
          if (v.n == 0) return method_name(Method::SSP);
          return method_name(choose_method(p, lam));
        });
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
          require_certifiable(v.S);
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
          require_certifiable(v.S);
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
