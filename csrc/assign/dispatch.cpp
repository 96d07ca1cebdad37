// Method names, the choice `auto` makes, and the one entry point every caller uses.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "assign/assign.hpp"

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

template <typename T>
Method choose_method(const Scores<T>& u, double lam) {
  // Plain SSP inserts items one at a time; when the penalty is weak almost every insertion
  // is "item -> its best class -> sink", recognised in O(S), so the whole solve is O(nS).
  // A strong penalty makes most insertions reshuffle the classes, and then pricing the
  // classes first and repairing (method "warm") wins, at every size (64 x 10: 3x; 65536 x
  // 100: 25x). "Strong" compares the price of an average class, mu * n / S, with how far
  // apart an item's best and second-best scores typically are (median over <= 64 rows).
  if (u.S <= 2) return Method::SSP;
  double mu = 2.0 * lam;
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
  double mu = 2.0 * lam;
  if (method == Method::Auto) method = choose_method(u, lam);
  switch (method) {
    case Method::Lemon: solve_lemon(u, mu, out); return;
    case Method::Warm: solve_warm(u, mu, out); return;
    case Method::DeviceCore: solve_device_core(u, mu, out); return;
    default: solve_ssp(u, mu, out); return;
  }
}

template Method choose_method<float>(const Scores<float>&, double);
template Method choose_method<double>(const Scores<double>&, double);
template void solve<float>(const Scores<float>&, double, Method, Output);
template void solve<double>(const Scores<double>&, double, Method, Output);

}  // namespace cvae
