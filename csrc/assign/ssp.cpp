// Successive shortest paths on the condensed class graph (method "ssp").
//
// Items enter one at a time. Before item i enters, the labelling of items 0..i-1 is optimal
// for them (no negative cycle in the residual graph, certified by the potentials). Item i has
// no residual arcs into it, so it cannot close a cycle: the new optimum is the old one
// augmented along a shortest path  i -> k1 -> k2 -> ... -> km -> T  (i joins k1, the cheapest
// member of k1 moves to k2, ..., class km grows by one). With a weak penalty the path is
// almost always i -> best class -> T and the search stops after two settled nodes: O(S)
// per item.
#include <algorithm>

#include "assign/assign.hpp"
#include "assign/condensed_graph.hpp"

namespace cvae {

template <typename T>
void solve_ssp(const Scores<T>& u, double lam, Output out) {
  const double mu = marginal_step(lam);
  if (u.S == 1) {
    std::fill(out.labels, out.labels + u.n, int64_t{0});
    if (out.prices) out.prices[0] = mu * static_cast<double>(u.n - 1);
    return;
  }
  if (u.S == 2) {
    solve_two_classes(u, lam, out);
    return;
  }
  CondensedGraph<T> g(u, mu, out.labels);
  for (int64_t i = 0; i < u.n; ++i) g.insert_item(i);
  if (out.prices) g.write_prices(out.prices);
}

template void solve_ssp<float>(const Scores<float>&, double, Output);
template void solve_ssp<double>(const Scores<double>&, double, Output);

}  // namespace cvae
