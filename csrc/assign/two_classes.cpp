// S = 2 in O(n log n): with m items in class 0 the best choice is the m items with the
// smallest c_i0 - c_i1, and the total cost is convex in m, so one sorted sweep finds the
// optimum. Prices come from the generic certificate (Bellman-Ford on 3 nodes).
#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "assign/assign.hpp"

namespace cvae {

template <typename T>
void solve_two_classes(const Scores<T>& u, double lam, Output out) {
  const int64_t n = u.n;
  std::vector<double> delta(n);
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) {
    const T* row = u.row(i);
    delta[i] = static_cast<double>(row[1]) - static_cast<double>(row[0]);  // c_i0 - c_i1
  }
  std::iota(order.begin(), order.end(), int64_t{0});
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return delta[a] < delta[b]; });
  // cost(m) - sum_i c_i1 = prefix(m) + lambda' [m (m-1) + (n-m)(n-m-1)]
  double prefix = 0.0;
  auto pairs = [&](int64_t m) {
    double a = static_cast<double>(m), b = static_cast<double>(n - m);
    return lam * (a * (a - 1.0) + b * (b - 1.0));
  };
  double best = pairs(0);
  int64_t best_m = 0;
  for (int64_t m = 1; m <= n; ++m) {
    prefix += delta[order[m - 1]];
    double c = prefix + pairs(m);
    if (c < best) { best = c; best_m = m; }
  }
  for (int64_t r = 0; r < n; ++r) out.labels[order[r]] = r < best_m ? 0 : 1;
  if (out.prices) {
    Certificate c = certify(u, lam, out.labels, default_tolerance(u, lam), out.prices);
    if (!c.optimal) throw std::logic_error("cascadevae: S = 2 solution failed its own certificate");
  }
}

template void solve_two_classes<float>(const Scores<float>&, double, Output);
template void solve_two_classes<double>(const Scores<double>&, double, Output);

}  // namespace cvae
