// Optimality certificates for any labelling, whichever solver produced it.
//  - certify:      no negative cycle in the condensed residual graph (Floyd-Warshall on the
//                  S classes and the sink, after an O(nS) pass that builds the graph);
//                  optimal labellings also get certifying prices from the shortest paths.
//  - check_prices: complementary slackness of given prices, O(nS).
#include <algorithm>
#include <cmath>
#include <vector>

#include "assign/assign.hpp"

namespace cvae {
namespace {

std::vector<int64_t> class_sizes(int64_t n, int64_t S, const int64_t* labels) {
  std::vector<int64_t> count(S, 0);
  for (int64_t i = 0; i < n; ++i) ++count[labels[i]];
  return count;
}

}  // namespace

template <typename T>
double objective(const Scores<T>& u, double lam, const int64_t* labels) {
  double total = 0.0;
  for (int64_t i = 0; i < u.n; ++i) total += static_cast<double>(u.row(i)[labels[i]]);
  for (int64_t c : class_sizes(u.n, u.S, labels)) total -= lam * static_cast<double>(c) * static_cast<double>(c - 1);
  return total;
}

template <typename T>
double default_tolerance(const Scores<T>& u, double lam) {
  double umax = 0.0;
  for (int64_t i = 0; i < u.n; ++i) {
    const T* row = u.row(i);
    for (int64_t k = 0; k < u.S; ++k) umax = std::max(umax, std::fabs(static_cast<double>(row[k])));
  }
  return 1e-9 * (umax + lam * static_cast<double>(u.n) + 1.0);
}

template <typename T>
Certificate certify(const Scores<T>& u, double lam, const int64_t* labels, double atol, double* prices) {
  const int64_t S = u.S, V = S + 1, sink = S;
  const double mu = marginal_step(lam);
  std::vector<int64_t> count = class_sizes(u.n, S, labels);
  // d starts as the arc costs (condensed graph) and becomes all-pairs shortest walks.
  std::vector<double> d(V * V, kInf);
  for (int64_t i = 0; i < u.n; ++i) {
    const T* row = u.row(i);
    int64_t k = labels[i];
    double ck = -static_cast<double>(row[k]);
    double* dk = &d[k * V];
    for (int64_t l = 0; l < S; ++l) dk[l] = std::min(dk[l], -static_cast<double>(row[l]) - ck);
  }
  for (int64_t k = 0; k < S; ++k) {
    d[k * V + k] = 0.0;
    d[k * V + sink] = mu * static_cast<double>(count[k]);
    if (count[k] >= 1) d[sink * V + k] = -mu * static_cast<double>(count[k] - 1);
  }
  d[sink * V + sink] = 0.0;
  for (int64_t m = 0; m < V; ++m) {
    const double* dm = &d[m * V];
    for (int64_t i = 0; i < V; ++i) {
      double dim = d[i * V + m];
      if (dim == kInf) continue;
      double* di = &d[i * V];
      for (int64_t j = 0; j < V; ++j) di[j] = std::min(di[j], dim + dm[j]);
    }
  }
  double worst = 0.0;
  for (int64_t v = 0; v < V; ++v) worst = std::min(worst, d[v * V + v]);
  if (worst < -atol) return Certificate{false, worst};
  if (prices) {
    // Potentials p[v] = shortest distance from a virtual root joined to every node at cost 0.
    std::vector<double> p(V, 0.0);
    for (int64_t i = 0; i < V; ++i)
      for (int64_t v = 0; v < V; ++v) p[v] = std::min(p[v], d[i * V + v]);
    for (int64_t k = 0; k < S; ++k) prices[k] = p[sink] - p[k];
  }
  return Certificate{true, 0.0};
}

template <typename T>
bool check_prices(const Scores<T>& u, double lam, const int64_t* labels, const double* prices, double atol) {
  const double mu = marginal_step(lam);
  for (int64_t k = 0; k < u.S; ++k)
    if (!std::isfinite(prices[k])) return false;
  std::vector<int64_t> count = class_sizes(u.n, u.S, labels);
  for (int64_t k = 0; k < u.S; ++k) {
    double c = static_cast<double>(count[k]);
    if (prices[k] > mu * c + atol) return false;
    if (count[k] >= 1 && prices[k] < mu * (c - 1.0) - atol) return false;
  }
  for (int64_t i = 0; i < u.n; ++i) {
    const T* row = u.row(i);
    double best = kInf;
    for (int64_t l = 0; l < u.S; ++l) best = std::min(best, prices[l] - static_cast<double>(row[l]));
    if (prices[labels[i]] - static_cast<double>(row[labels[i]]) > best + atol) return false;
  }
  return true;
}

#define CVAE_INSTANTIATE(T)                                                                   \
  template double objective<T>(const Scores<T>&, double, const int64_t*);                     \
  template double default_tolerance<T>(const Scores<T>&, double);                             \
  template Certificate certify<T>(const Scores<T>&, double, const int64_t*, double, double*); \
  template bool check_prices<T>(const Scores<T>&, double, const int64_t*, const double*, double);
CVAE_INSTANTIATE(float)
CVAE_INSTANTIATE(double)
#undef CVAE_INSTANTIATE

}  // namespace cvae
