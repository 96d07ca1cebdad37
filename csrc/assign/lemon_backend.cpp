// LEMON NetworkSimplex on the full flow graph: the general-purpose reference method.
//
// Graph (a lemon::StaticDigraph, built in one pass from an arc list sorted by source):
//   nodes  0 .. n-1        items, supply +1
//          n .. n+S-1      classes, supply 0
//          n+S             the sink, supply -n
//   arcs   item i -> class k, capacity 1, cost c'_ik = max_l u_il - u_ik (>= 0)
//          class k -> sink, `cap` parallel unit arcs with costs 0, mu, 2 mu, ..., mu (cap-1)
//          (when mu = 0 they all cost 0 and are merged into one arc of capacity n + 1).
// There is no source node: the item supplies play its part.
//
// Two equivalent reductions keep this a plain min-cost flow with the same optimal labellings
// and the same class prices:
// * Row shift. Each item sends exactly one unit over exactly one of its arcs, so subtracting
//   min_l c_il = -max_l u_il from all arcs of item i changes every feasible flow's cost by the
//   same constant and only shifts the potential of node i. The shifted costs are >= 0, which
//   keeps LEMON's artificial big-M cost for floating-point costs ((max cost + 1) * nodes) above
//   every path cost.
// * Fewer class -> sink arcs. In an optimal labelling no single item can move profitably from
//   class k to the smallest other class j (n_j <= floor(n / S)):
//       (c_ij + mu n_j) - (c_ik + mu (n_k - 1)) >= 0   =>   n_k <= 1 + floor(n / S) + R / mu,
//   R = max_i (max_l u_il - min_l u_il). So with cap = min(n + 1, floor(n / S) + 2 + floor(R / mu))
//   unit arcs per class every optimal labelling of the uncapped problem stays feasible (and is
//   optimal here), and the arc for the (n_k + 1)-th member (cost mu n_k) always exists, so the
//   potentials still bound the price from above. For strong penalties (mu ~ S / n, R ~ 1) this
//   cuts the S n sink arcs to about 2 n + S.
//
// Costs are doubles (NetworkSimplex<StaticDigraph, int, double>). LEMON documents integer costs;
// we keep the user's values rather than truncate them. Every pivot decision compares reduced
// costs with 0, so the result is exact when the arithmetic is (dyadic data: scores integer
// multiples of a power of two, mu a power of two, moderate ranges), and in general optimal up
// to round-off: this is a reference method, not the fast path.
//
// Prices. LEMON's reduced cost of arc (v, w) is cost + pi(v) - pi(w), and an optimal flow has
// reduced cost <= 0 on arcs with flow and >= 0 on arcs below capacity. With
//     lambda_k = pi(sink) - pi(class k)      (so the sink's price is 0):
// * item i in class k (flow 1) and an empty arc i -> l give
//   c'_ik + pi(i) - pi(k) <= 0 <= c'_il + pi(i) - pi(l), i.e. c_ik + lambda_k <= c_il + lambda_l;
// * the used sink arcs t = 0 .. n_k - 1 give mu t - lambda_k <= 0, so mu (n_k - 1) <= lambda_k,
//   and the unused arc t = n_k gives mu n_k - lambda_k >= 0, so lambda_k <= mu n_k.
// These are exactly the conditions check_prices verifies.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "assign/assign.hpp"

#ifdef CASCADEVAE_HAVE_LEMON
#include <lemon/network_simplex.h>
#include <lemon/static_graph.h>
#endif

namespace cvae {

#ifdef CASCADEVAE_HAVE_LEMON

bool lemon_available() { return true; }

namespace {

// Number of unit class -> sink arcs per class (see the header comment); mu > 0.
template <typename T>
int64_t sink_arcs_per_class(const Scores<T>& u, double mu) {
  const int64_t full = u.n + 1;
  double range = 0.0;
  for (int64_t i = 0; i < u.n; ++i) {
    const T* row = u.row(i);
    double lo = static_cast<double>(row[0]), hi = lo;
    for (int64_t k = 1; k < u.S; ++k) {
      double v = static_cast<double>(row[k]);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    range = std::max(range, hi - lo);
  }
  double bound = static_cast<double>(u.n / u.S) + 2.0 + std::floor(range / mu);
  if (!(bound < static_cast<double>(full))) return full;  // also catches range / mu = inf
  return std::max<int64_t>(1, static_cast<int64_t>(bound));
}

}  // namespace

template <typename T>
void solve_lemon(const Scores<T>& u, double mu, Output out) {
  using Graph = lemon::StaticDigraph;
  using Solver = lemon::NetworkSimplex<Graph, int, double>;
  const int64_t n = u.n, S = u.S;
  if (n == 0) {
    if (out.prices) std::fill(out.prices, out.prices + S, 0.0);
    return;
  }
  const bool merged = !(mu > 0.0);  // mu = 0: one zero-cost arc of capacity n + 1 per class
  const int64_t per_class = merged ? 1 : sink_arcs_per_class(u, mu);
  const int64_t item_arcs = n * S;
  const int64_t arcs = item_arcs + S * per_class;
  const int64_t nodes = n + S + 1;
  constexpr int64_t kMaxIndex = std::numeric_limits<int>::max() / 2;
  if (arcs > kMaxIndex || nodes > kMaxIndex)
    throw std::length_error("method='lemon': the flow graph of a problem with n = " + std::to_string(n) +
                            " items and S = " + std::to_string(S) + " classes needs " + std::to_string(arcs) +
                            " arcs, more than LEMON's int indices allow; use method='auto'");
  const int sink = static_cast<int>(n + S);

  // Arc list sorted by source: item arcs (i, k) at index i S + k, then the sink arcs of
  // class k at item_arcs + k per_class + t.
  Graph g;
  {
    std::vector<std::pair<int, int>> list;
    list.reserve(static_cast<size_t>(arcs));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < S; ++k) list.emplace_back(static_cast<int>(i), static_cast<int>(n + k));
    for (int64_t k = 0; k < S; ++k)
      for (int64_t t = 0; t < per_class; ++t) list.emplace_back(static_cast<int>(n + k), sink);
    g.build(static_cast<int>(nodes), list.begin(), list.end());
  }

  Graph::ArcMap<double> cost(g);
  Graph::ArcMap<int> upper(g);
  Graph::NodeMap<int> supply(g, 0);
  for (int64_t i = 0; i < n; ++i) {
    const T* row = u.row(i);
    double best = static_cast<double>(row[0]);
    for (int64_t k = 1; k < S; ++k) best = std::max(best, static_cast<double>(row[k]));
    for (int64_t k = 0; k < S; ++k) {
      Graph::Arc a = g.arc(static_cast<int>(i * S + k));
      cost[a] = best - static_cast<double>(row[k]);  // c_ik - min_l c_il
      upper[a] = 1;
    }
    supply[g.node(static_cast<int>(i))] = 1;
  }
  for (int64_t k = 0; k < S; ++k)
    for (int64_t t = 0; t < per_class; ++t) {
      Graph::Arc a = g.arc(static_cast<int>(item_arcs + k * per_class + t));
      cost[a] = merged ? 0.0 : mu * static_cast<double>(t);
      upper[a] = merged ? static_cast<int>(n + 1) : 1;
    }
  supply[g.node(sink)] = -static_cast<int>(n);

  Solver ns(g);
  ns.costMap(cost).upperMap(upper).supplyMap(supply);
  Solver::ProblemType status = ns.run();
  if (status != Solver::OPTIMAL)
    throw std::logic_error(std::string("LEMON NetworkSimplex reported the assignment flow problem ") +
                           (status == Solver::INFEASIBLE ? "infeasible" : "unbounded") +
                           ", which cannot happen for finite scores (a bug)");

  for (int64_t i = 0; i < n; ++i) {
    int64_t label = -1;
    for (int64_t k = 0; k < S; ++k)
      if (ns.flow(g.arc(static_cast<int>(i * S + k))) != 0) {
        if (label >= 0) label = -2;
        else label = k;
      }
    if (label < 0)
      throw std::logic_error("LEMON NetworkSimplex returned a flow that does not assign item " + std::to_string(i) +
                             " to exactly one class (a bug)");
    out.labels[i] = label;
  }
  if (out.prices) {
    const double pi_sink = ns.potential(g.node(sink));
    for (int64_t k = 0; k < S; ++k) out.prices[k] = pi_sink - ns.potential(g.node(static_cast<int>(n + k)));
  }
}

#else  // !CASCADEVAE_HAVE_LEMON

bool lemon_available() { return false; }

template <typename T>
void solve_lemon(const Scores<T>&, double, Output) {
  throw std::runtime_error(
      "method='lemon' needs the LEMON graph library, which this build of cascadevae_ext was compiled without: "
      "install it (Debian/Ubuntu: apt-get install liblemon-dev) and rebuild cascadevae");
}

#endif  // CASCADEVAE_HAVE_LEMON

template void solve_lemon<float>(const Scores<float>&, double, Output);
template void solve_lemon<double>(const Scores<double>&, double, Output);

}  // namespace cvae
