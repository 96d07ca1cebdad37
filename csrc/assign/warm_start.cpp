// Warm-started SSP (method "warm"): price the classes first, put every item in its
// cheapest class at those prices, then repair the difference exactly.
//
// 1. Price estimate. For large n, solve a random quarter of the items (recursively, the
//    same way) with the penalty step mu scaled by 4, so a class's price, ~ mu * its size,
//    means the same thing. For small n, flat prices mu floor(n/S) (equal classes). Then
//    shift all prices by one constant so that the sink flows they imply add up to n.
// 2. Start. Every item goes to a class minimising c_il + lambda_l, so every item arc has
//    reduced cost >= 0 and the prices are valid potentials. The sink arcs need each class's
//    sink flow t_k to agree with its price, mu (t_k - 1) <= lambda_k <= mu t_k. Two ways:
//    "price-driven" t_k = ceil(lambda_k / mu) keeps the prices (right for strong penalties,
//    where sizes follow prices closely), "count-driven" t_k = the class's size, with each
//    price clamped into its size's interval and the items reassigned (right for weak
//    penalties, where a small price change moves few items but t_k = lambda_k / mu would
//    swing wildly). Both are measured; the one leaving fewer units out of place is used.
// 3. Repair. What is left is a pseudoflow: classes with more (or fewer) items than sink
//    flow, and the sink. Successive shortest paths from surplus to deficit nodes on the
//    condensed (S + 1)-node graph fix it exactly, in primal-dual phases (below).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "assign/assign.hpp"
#include "assign/condensed_graph.hpp"
#include "assign/dense_kernels.hpp"

namespace cvae {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Below this size a subsample would say little about the prices.
bool small_enough(int64_t n, int64_t S) { return n <= std::max<int64_t>(1024, 8 * S); }

// Labels every item with a class minimising c_il + lambda_l; returns the class sizes.
template <typename T>
std::vector<int64_t> assign_at_prices(const Scores<T>& u, const std::vector<double>& prices, int64_t* labels) {
  std::vector<int64_t> count(u.S, 0);
  std::vector<double> scratch(u.S);
  for (int64_t i = 0; i < u.n; ++i) {
    int64_t best = kernels::cheapest_class(u.row(i), prices.data(), scratch.data(), u.S);
    labels[i] = best;
    ++count[best];
  }
  return count;
}

// Sink flow t with mu (t - 1) <= price <= mu t, in [0, n].
int64_t flow_for_price(double price, double mu, int64_t n) {
  if (price <= 0) return 0;
  int64_t t = static_cast<int64_t>(std::ceil(price / mu));
  while (mu * static_cast<double>(t) < price) ++t;
  while (t >= 1 && mu * static_cast<double>(t - 1) > price) --t;
  return std::min(t, n);
}

// Units out of place: total positive excess over the classes and the sink.
int64_t surplus_of(const std::vector<int64_t>& count, const std::vector<int64_t>& flow, int64_t n) {
  int64_t surplus = 0, sink_flow = 0;
  for (size_t k = 0; k < count.size(); ++k) {
    surplus += std::max<int64_t>(0, count[k] - flow[k]);
    sink_flow += flow[k];
  }
  return surplus + std::max<int64_t>(0, sink_flow - n);
}

// Adds one constant to every price so that the sink flows they ask for add up to n, as
// close as the steps allow. A common shift moves no item (each still has the same cheapest
// class), but it decides whether the sink starts balanced: left unbalanced, the sink is a
// surplus or deficit node of hundreds of units that every repair phase can serve only once
// (65536 x 1000, strong penalty: a sink deficit of 1240 units, most of the phases).
void level_prices(std::vector<double>& prices, double mu, int64_t n) {
  auto total_flow = [&](double c) {
    int64_t sum = 0;
    for (double p : prices) sum += flow_for_price(p + c, mu, n);
    return sum;
  };
  double lo = -*std::max_element(prices.begin(), prices.end()) - mu;   // every flow 0
  double hi = mu * static_cast<double>(n) - *std::min_element(prices.begin(), prices.end());  // every flow n
  for (int it = 0; it < 100 && hi - lo > 1e-12 * (std::fabs(lo) + std::fabs(hi)); ++it) {
    double mid = 0.5 * (lo + hi);
    int64_t total = total_flow(mid);
    if (total == n) {  // balanced exactly
      for (double& p : prices) p += mid;
      return;
    }
    (total < n ? lo : hi) = mid;
  }
  int64_t below = total_flow(lo), above = total_flow(hi);
  double c = (n - below <= above - n) ? lo : hi;
  for (double& p : prices) p += c;
}

template <typename T>
void warm(const Scores<T>& u, double mu, Output out, uint64_t seed);

template <typename T>
std::vector<double> subsample_prices(const Scores<T>& u, double mu, uint64_t seed) {
  const int64_t n = u.n, S = u.S, m = n / 4;
  std::vector<int64_t> pick(n);
  std::iota(pick.begin(), pick.end(), int64_t{0});
  uint64_t state = seed;
  for (int64_t r = 0; r < m; ++r)
    std::swap(pick[r], pick[r + static_cast<int64_t>(splitmix64(state) % static_cast<uint64_t>(n - r))]);
  std::sort(pick.begin(), pick.begin() + m);  // so that the copy streams through memory
  std::vector<T> sub(static_cast<size_t>(m * S));
  for (int64_t r = 0; r < m; ++r) std::memcpy(&sub[r * S], u.row(pick[r]), sizeof(T) * S);
  std::vector<int64_t> sub_labels(m);
  std::vector<double> prices(S);
  warm(Scores<T>{sub.data(), m, S, S}, mu * (static_cast<double>(n) / static_cast<double>(m)),
       Output{sub_labels.data(), prices.data()}, seed + 1);
  return prices;
}

// The warm-started solve for S >= 3 in terms of the flow step mu: the subsample's problem
// scales mu itself (by n / m), so the recursion stays in mu and no step is ever halved back.
template <typename T>
void warm(const Scores<T>& u, double mu, Output out, uint64_t seed) {
  const int64_t n = u.n, S = u.S;
  if (mu == 0) {  // no penalty: every item simply takes its best class
    std::vector<double> zero(S, 0.0);
    assign_at_prices(u, zero, out.labels);
    if (out.prices) std::fill(out.prices, out.prices + S, 0.0);
    return;
  }

  // 1. Price estimate; a price above mu * n asks for more than n items and never is optimal.
  // (Flat prices need no levelling: mu floor(n/S) already asks for the nearest total.)
  std::vector<double> prices;
  if (small_enough(n, S)) {
    prices.assign(S, mu * static_cast<double>(n / S));
  } else {
    prices = subsample_prices(u, mu, seed);
    level_prices(prices, mu, n);
  }
  for (double& p : prices) p = std::min(p, mu * static_cast<double>(n));

  // 2. Start: price-driven or count-driven, whichever leaves fewer units to repair.
  std::vector<int64_t> flow(S);
  std::vector<int64_t> count = assign_at_prices(u, prices, out.labels);
  for (int64_t k = 0; k < S; ++k) flow[k] = flow_for_price(prices[k], mu, n);
  int64_t surplus = surplus_of(count, flow, n);
  if (surplus > 0) {
    std::vector<double> clamped(S);
    for (int64_t k = 0; k < S; ++k) {
      double hi = mu * static_cast<double>(count[k]);
      double lo = count[k] >= 1 ? mu * static_cast<double>(count[k] - 1) : -kInf;
      clamped[k] = std::min(std::max(prices[k], lo), hi);
    }
    std::vector<int64_t> labels2(n);
    std::vector<int64_t> count2 = assign_at_prices(u, clamped, labels2.data());
    int64_t surplus2 = surplus_of(count2, count, n);
    if (surplus2 < surplus) {
      std::copy(labels2.begin(), labels2.end(), out.labels);
      prices.swap(clamped);
      flow.swap(count);
      surplus = surplus2;
    }
  }

  CondensedGraph<T> g(u, mu, out.labels);
  for (int64_t i = 0; i < n; ++i) g.add(i, out.labels[i]);
  const int64_t sink = g.sink();
  std::vector<int64_t> excess(S + 1, 0);
  int64_t sink_flow = 0;
  for (int64_t k = 0; k < S; ++k) {
    g.set_potential(k, -prices[k]);
    g.set_flow(k, flow[k]);
    excess[k] = g.count(k) - flow[k];
    sink_flow += flow[k];
  }
  g.set_potential(sink, 0.0);
  excess[sink] = sink_flow - n;

  // 3. Repair in primal-dual phases: Dijkstra from every surplus node until it has settled
  // as many deficit nodes as there are surplus nodes (or every node it can reach); the
  // potentials absorb the settled distances (capped at the last one), which makes every
  // tree path to a settled node tight; then augment along the tree paths to the settled
  // deficit nodes, nearest first, as long as each is still tight (path_unchanged). One
  // O(S * settled) search thus serves many units.
  std::vector<double>& dist = g.dist();
  std::vector<int64_t>& pred = g.pred();
  std::vector<int64_t> deficits;
  while (surplus > 0) {
    int64_t sources = 0, sinks = 0;
    for (int64_t v = 0; v <= S; ++v) {
      dist[v] = excess[v] > 0 ? 0.0 : kInf;
      pred[v] = -1;
      sources += excess[v] > 0;
      sinks += excess[v] < 0;
    }
    const int64_t wanted = std::min(sources, sinks);
    int64_t found = 0;
    int64_t last = g.shortest_path([&](int64_t v) { return excess[v] < 0 && ++found >= wanted; },
                                   /*expand_sink=*/true);
    deficits.clear();
    double L = 0.0;
    for (int64_t v = 0; v <= S; ++v) {
      if (!g.settled(v)) continue;
      L = std::max(L, dist[v]);
      if (excess[v] < 0) deficits.push_back(v);
    }
    if (last >= 0) L = dist[last];
    if (deficits.empty()) throw std::logic_error("cascadevae: warm-start repair found no augmenting path");
    g.update_potentials_capped(L);
    g.record_tree_arcs();
    std::sort(deficits.begin(), deficits.end(), [&](int64_t a, int64_t b) { return dist[a] < dist[b]; });
    for (int64_t target : deficits) {
      // A deficit node can take several units, each along the same path while it stays tight.
      while (excess[target] < 0 && surplus > 0) {
        int64_t root = target;
        while (pred[root] >= 0) root = pred[root];
        if (excess[root] <= 0 || !g.path_unchanged(target)) break;
        g.augment(target);
        --excess[root];
        ++excess[target];
        --surplus;
      }
      if (surplus == 0) break;
    }
  }
  if (out.prices) g.write_prices(out.prices);
}

}  // namespace

template <typename T>
void solve_warm(const Scores<T>& u, double lam, Output out, uint64_t seed) {
  if (u.S <= 2) {
    solve_ssp(u, lam, out);
    return;
  }
  warm(u, marginal_step(lam), out, seed);
}

template void solve_warm<float>(const Scores<float>&, double, Output, uint64_t);
template void solve_warm<double>(const Scores<double>&, double, Output, uint64_t);

}  // namespace cvae
