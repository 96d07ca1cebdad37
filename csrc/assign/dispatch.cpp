// The checked entry points (assign, resolve_method, check_problem): their preconditions, the
// method for the shape (auto's choice, LEMON past kMaxCondensedClasses), a batch solved on
// threads. Method names. Everything a caller needs beyond the solvers themselves, so that
// C++ callers get exactly what Python gets.
#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

#include "assign/assign.hpp"
#include "common/parallel.hpp"

namespace cvae {

Method parse_method(const std::string& name) {
  if (name == "auto") return Method::Auto;
  if (name == "ssp") return Method::SSP;
  if (name == "warm") return Method::Warm;
  if (name == "lemon") return Method::Lemon;
  if (name == "device_core") return Method::DeviceCore;
  throw std::invalid_argument("method = '" + name + "' is not one of 'auto', 'ssp', 'warm', 'lemon', 'device_core'");
}

const char* method_name(Method m) {
  switch (m) {
    case Method::Auto: return "auto";
    case Method::SSP: return "ssp";
    case Method::Warm: return "warm";
    case Method::Lemon: return "lemon";
    case Method::DeviceCore: return "device_core";
  }
  return "?";
}

namespace {

// ---- preconditions -------------------------------------------------------------------------

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

void check_shape(int64_t G, int64_t n, int64_t S) {
  if (S < 1) throw std::invalid_argument("u has S = " + std::to_string(S) + " classes; S must be at least 1");
  if (n < 0 || G < 0)
    throw std::invalid_argument("u has " + std::to_string(n) + " items in " + std::to_string(G) +
                                " problems; both counts must be >= 0");
}

void check_lam(double lam) {
  if (std::isnan(lam)) throw std::invalid_argument("lam is NaN; it must be a finite number >= 0");
  if (lam < 0) throw std::invalid_argument("lam = " + shortest(lam) + " is negative; it must be >= 0");
  if (std::isinf(lam)) throw std::invalid_argument("lam is infinite; it must be a finite number >= 0");
}

// lam * n, the scale of the penalty's marginal costs, within kMaxMagnitude.
void check_penalty_in_range(double lam, int64_t n) {
  const double scale = lam * static_cast<double>(n);
  if (scale <= kMaxMagnitude) return;
  throw std::invalid_argument("lam * n = " + shortest(scale) + " (lam = " + shortest(lam) + ", n = " +
                              std::to_string(n) + " items) " + magnitude_advice(scale));
}

// Finite and |x| <= kMaxMagnitude. A finite float32 is below 2^128, so for float32 this is
// the finiteness test alone.
template <typename T>
inline bool in_range(T x) {
  if constexpr (sizeof(T) == sizeof(float)) return std::isfinite(x);
  else return std::fabs(x) <= kMaxMagnitude;
}

// Every score finite and within kMaxMagnitude; the first one that is not is named, as
// u[g, i, k] for a batch, else u[i, k].
template <typename T>
void check_scores(const ScoreBatch<T>& u) {
  for (int64_t g = 0; g < u.G; ++g)
    for (int64_t i = 0; i < u.n; ++i) {
      const T* row = u.data + g * u.ld_g + i * u.ld;
      bool ok = true;
      for (int64_t k = 0; k < u.S; ++k) ok &= in_range(row[k]);  // branch-free: vectorises
      if (ok) continue;
      for (int64_t k = 0; k < u.S; ++k)
        if (!in_range(row[k])) {
          std::string where = u.batched ? "u[" + std::to_string(g) + ", " + std::to_string(i) + ", " + std::to_string(k) + "]"
                                      : "u[" + std::to_string(i) + ", " + std::to_string(k) + "]";
          if (std::isfinite(row[k]))
            throw std::invalid_argument(where + " = " + shortest(static_cast<double>(row[k])) + " " +
                                        magnitude_advice(static_cast<double>(row[k])));
          std::string what = std::isnan(row[k]) ? "nan" : (row[k] > 0 ? "inf" : "-inf");
          throw std::invalid_argument("u must be finite, but " + where + " is " + what);
        }
    }
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
    throw std::invalid_argument(why + ", and this build has no LEMON for larger S (apt-get install liblemon-dev, then "
                                "reinstall)");
  }
  if (m == Method::SSP || m == Method::Warm || m == Method::DeviceCore)
    throw std::invalid_argument(why + ": use method=\"lemon\"");
  return m;
}

// Every precondition of assign, in the order the errors are reported.
template <typename T>
Method checked_method(const ScoreBatch<T>& u, double lam, Method method, int num_threads) {
  check_shape(u.G, u.n, u.S);
  check_lam(lam);
  const Method m = fit_method_to_classes(method, u.S);
  if (m == Method::Lemon && !lemon_available())
    throw std::invalid_argument(
        "method=\"lemon\" needs the LEMON graph library, which this build of cascadevae_ext was compiled "
        "without: install it (Debian/Ubuntu: apt-get install liblemon-dev) and reinstall cascadevae");
  if (num_threads < 0)
    throw std::invalid_argument("num_threads = " + std::to_string(num_threads) + " must be >= 0 (0: all cores)");
  check_penalty_in_range(lam, u.n);
  check_scores(u);
  return m;
}

template <typename T>
void solve_batch(const ScoreBatch<T>& u, double lam, Method m, Output out, int threads) {
  if (u.n == 0) {  // no items: every class empty, price 0 certifies
    if (out.prices) std::fill(out.prices, out.prices + u.G * u.S, 0.0);
    return;
  }
  // Starting a thread costs tens of microseconds here: a batch of tiny problems (say 16 of
  // 64 x 3, a few microseconds each) is faster on the calling thread alone.
  if (threads == 0 && u.G * u.n * u.S < 32768) threads = 1;
  parallel_for(u.G, threads, [&](int64_t g) {
    solve<T>(u.problem(g), lam, m, Output{out.labels + g * u.n, out.prices ? out.prices + g * u.S : nullptr});
  });
}

template <typename T>
ScoreBatch<T> as_batch(const Scores<T>& u) {
  return ScoreBatch<T>{u.data, 1, u.n, u.S, 0, u.ld, false};
}

}  // namespace

// ---- the checked entry points ----------------------------------------------------------------

template <typename T>
void assign(const Scores<T>& u, double lam, Method method, Output out) {
  assign(as_batch(u), lam, method, out, 1);
}

template <typename T>
void assign(const ScoreBatch<T>& u, double lam, Method method, Output out, int num_threads) {
  solve_batch(u, lam, checked_method(u, lam, method, num_threads), out, num_threads);
}

template <typename T>
void check_problem(const Scores<T>& u, double lam) {
  check_shape(1, u.n, u.S);
  check_lam(lam);
  check_penalty_in_range(lam, u.n);
  check_scores(as_batch(u));
}

template <typename T>
Method resolve_method(const Scores<T>& u, double lam, Method method) {
  check_problem(u, lam);
  const Method m = fit_method_to_classes(method, u.S);
  if (m != Method::Auto) return m;
  if (u.n == 0) return Method::SSP;
  return choose_method(u, lam);
}

void check_certifiable(int64_t S) {
  if (S > kMaxCertifyClasses)
    throw std::invalid_argument("u has S = " + std::to_string(S) + " classes: the negative-cycle test is O(S^3) and would "
                                "take minutes past S = " + std::to_string(kMaxCertifyClasses) +
                                "; certify with check_prices(u, lam, labels, prices) instead, O(nS), using the prices "
                                "from assign(..., return_prices=True)");
}

// ---- unchecked --------------------------------------------------------------------------------

template <typename T>
Method choose_method(const Scores<T>& u, double lam) {
  // Plain SSP inserts items one at a time; when the penalty is weak almost every insertion
  // is "item -> its best class -> sink", recognised in O(S), so the whole solve is O(nS).
  // A strong penalty makes most insertions reshuffle the classes, and then pricing the
  // classes first and repairing (method "warm") wins, at every size (64 x 10: 3x; 65536 x
  // 100: 25x). "Strong" compares the price of an average class, mu * n / S, with how far
  // apart an item's best and second-best scores typically are (median over <= 64 rows).
  if (u.S <= 2) return Method::SSP;
  const double mu = marginal_step(lam);
  int64_t rows = std::min<int64_t>(u.n, 64);
  std::array<double, 64> gaps;  // on the stack: this runs before every microsecond-sized solve
  for (int64_t r = 0; r < rows; ++r) {
    int64_t i = r * (u.n / rows);
    const T* row = u.row(i);
    double best = -kInf, second = -kInf;
    for (int64_t k = 0; k < u.S; ++k) {
      double v = static_cast<double>(row[k]);
      if (v > best) { second = best; best = v; } else if (v > second) second = v;
    }
    gaps[r] = best - second;
  }
  std::nth_element(gaps.begin(), gaps.begin() + rows / 2, gaps.begin() + rows);
  double typical_gap = gaps[rows / 2];
  double class_price = mu * static_cast<double>(u.n) / static_cast<double>(u.S);
  if (class_price > 0.25 * typical_gap * static_cast<double>(u.S)) return Method::Warm;
  // Weak penalty: SSP, except with few, large classes (n/S >= 64, S <= 16), where keeping
  // each insertion's move lists costs more than the warm start's near-empty repair
  // (65536 x 10: 13 ms against 20 ms; 1024 x 10: 0.20 against 0.23 ms).
  return (u.S <= 16 && u.n >= 64 * u.S) ? Method::Warm : Method::SSP;
}

template <typename T>
void solve(const Scores<T>& u, double lam, Method method, Output out) {
  if (u.n == 0) {
    if (out.prices) std::fill(out.prices, out.prices + u.S, 0.0);
    return;
  }
  if (method == Method::Auto) method = choose_method(u, lam);
  switch (method) {
    case Method::Lemon: solve_lemon(u, lam, out); return;
    case Method::Warm: solve_warm(u, lam, out); return;
    case Method::DeviceCore: solve_device_core(u, lam, out); return;
    default: solve_ssp(u, lam, out); return;
  }
}

#define CVAE_INSTANTIATE(T)                                                              \
  template void assign<T>(const Scores<T>&, double, Method, Output);                     \
  template void assign<T>(const ScoreBatch<T>&, double, Method, Output, int);            \
  template void check_problem<T>(const Scores<T>&, double);                              \
  template Method resolve_method<T>(const Scores<T>&, double, Method);                   \
  template Method choose_method<T>(const Scores<T>&, double);                            \
  template void solve<T>(const Scores<T>&, double, Method, Output);
CVAE_INSTANTIATE(float)
CVAE_INSTANTIATE(double)
#undef CVAE_INSTANTIATE

}  // namespace cvae
