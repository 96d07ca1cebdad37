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
// Exact integer costs. LEMON requires integer costs ("all input data must be integer"), and
// with doubles NetworkSimplex can cycle: its termination rests on strongly feasible spanning
// trees (the leaving arc is the last blocking arc of the cycle; Cunningham 1976, Ahuja,
// Magnanti & Orlin 1993, sec. 11.5), under which every degenerate pivot strictly changes the
// sum of the potentials, so no tree repeats -- in exact arithmetic. Rounded potentials break
// that (tied integer scores with lambda' = 0.05 pivoted forever), and rounding can also make
// the result non-optimal (scores far below 1 vanish next to the big-M's "+ 1"). So the costs
// are made integers without changing the problem:
// * Every finite double is an integer times a power of two. Let 2^-E be the coarsest power
//   of two that divides every score and mu (E = max over them of -(exponent of the lowest set
//   bit)). Then U_ik = 2^E u_ik and M = 2^E mu are integers, computed exactly, and the flow
//   costs (row-shifted item arcs max_l U_il - U_ik, sink arcs M t) are integers too. For any
//   labelling d, 2^E F(d) = sum_i U_{i d_i} - M sum_k n_k (n_k - 1) / 2 with F the objective
//   (in the form  sum_i u_{i d_i} - mu sum_k (0 + 1 + ... + (n_k - 1))), so the scaled problem
//   has exactly the same optimal labellings as the real one, ties included; nothing is rounded.
// * The costs live in an integer fixed-point type (ScaledCost below: 64 bits where they fit,
//   else 128) in which the integer 1 stands for 2^E, so LEMON's own big-M, (max cost + 1) *
//   nodes, is the value the double code used; wherever that code's arithmetic was exact
//   (dyadic data of moderate range) both take the same pivots and return the same labels.
//   Potentials stay within 5 (max cost + 1) * nodes (the root's is 0; a node's is a sum along
//   its tree path of one big-M or zero arc and fewer than `nodes` real arcs; a reduced cost or
//   a pivot's step adds at most two of these and a cost; the final normalisation doubles the
//   bound), so requiring (max cost + 1) * nodes <= 2^123 (2^59 for 64 bits) keeps every
//   intermediate below 5 * 2^123 < 2^127 (5 * 2^59 < 2^63): no overflow.
// * When 2^E is too large to stand for 1 (E > 123), 1 stands for 1 instead (the big-M is then
//   (max cost + 1) * nodes in integer units: still above every path cost, which is all the
//   method needs). When E < 0 (every value a multiple of 2, e.g. huge scores) the plain values
//   are tried first, then the values divided by 2^-E.
// * If no choice fits in 123 bits -- the scores span more than about 2^(123 - log2 nodes)
//   between their largest value and their finest bit, e.g. 1e3 beside 1e-30 -- the problem is
//   refused with std::invalid_argument (ValueError in Python) that says so and what to do
//   (round u to a coarser grid, or use "ssp" / "warm"): never solved approximately.
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
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "assign/assign.hpp"

#ifdef CASCADEVAE_HAVE_LEMON
#include <lemon/network_simplex.h>
#include <lemon/static_graph.h>

namespace cvae::lemon_cost {

__extension__ typedef __int128 Int128;
__extension__ typedef unsigned __int128 UInt128;

// LEMON's Cost type: an exact integer `raw` (int64_t where the problem fits, else 128 bits)
// standing for raw * 2^-E. LEMON only ever adds, subtracts, compares, multiplies by a small
// int (+-1, the node count) and writes the literals 0 and 1; a literal v means v * `one` raw
// units, where `one` (2^E, or 1 when 2^E does not fit) is set for the solving thread before
// the solver is built.
template <typename Raw>
struct ScaledCost {
  // Bits that (max cost + one) * nodes may use: 5 times it must stay below the type's range
  // (header comment).
  static constexpr int kBits = sizeof(Raw) == 8 ? 59 : 123;
  Raw raw = 0;
  static inline thread_local Raw one = 1;

  ScaledCost() = default;
  ScaledCost(int v) : raw(static_cast<Raw>(v) * one) {}  // implicit: LEMON writes Cost c = 0
  static ScaledCost of_raw(Raw r) {
    ScaledCost c;
    c.raw = r;
    return c;
  }
  ScaledCost& operator+=(const ScaledCost& o) { raw += o.raw; return *this; }
  ScaledCost& operator-=(const ScaledCost& o) { raw -= o.raw; return *this; }
  friend ScaledCost operator+(const ScaledCost& a, const ScaledCost& b) { return of_raw(a.raw + b.raw); }
  friend ScaledCost operator-(const ScaledCost& a, const ScaledCost& b) { return of_raw(a.raw - b.raw); }
  friend ScaledCost operator-(const ScaledCost& a) { return of_raw(-a.raw); }
  friend ScaledCost operator*(int k, const ScaledCost& a) { return of_raw(static_cast<Raw>(k) * a.raw); }
  friend ScaledCost operator*(const ScaledCost& a, int k) { return of_raw(a.raw * static_cast<Raw>(k)); }
  friend ScaledCost operator/(const ScaledCost& a, int k) { return of_raw(a.raw / static_cast<Raw>(k)); }
  friend bool operator==(const ScaledCost& a, const ScaledCost& b) { return a.raw == b.raw; }
  friend bool operator!=(const ScaledCost& a, const ScaledCost& b) { return a.raw != b.raw; }
  friend bool operator<(const ScaledCost& a, const ScaledCost& b) { return a.raw < b.raw; }
  friend bool operator<=(const ScaledCost& a, const ScaledCost& b) { return a.raw <= b.raw; }
  friend bool operator>(const ScaledCost& a, const ScaledCost& b) { return a.raw > b.raw; }
  friend bool operator>=(const ScaledCost& a, const ScaledCost& b) { return a.raw >= b.raw; }
};

template <typename Raw>
constexpr Raw raw_max() {
  if constexpr (sizeof(Raw) == 8) return std::numeric_limits<int64_t>::max();
  else return static_cast<Int128>(~UInt128{0} >> 1);
}

}  // namespace cvae::lemon_cost

// is_exact = false on purpose: LEMON then computes its big-M as (max cost + 1) * nodes, as it
// did for the double costs, instead of max() / 2 + 1, which would leave no headroom for the
// potentials.
namespace std {
template <typename Raw>
struct numeric_limits<cvae::lemon_cost::ScaledCost<Raw>> {
  using C = cvae::lemon_cost::ScaledCost<Raw>;
  static constexpr bool is_specialized = true;
  static constexpr bool is_signed = true;
  static constexpr bool is_integer = false;
  static constexpr bool is_exact = false;
  static constexpr bool has_infinity = false;
  static C max() { return C::of_raw(cvae::lemon_cost::raw_max<Raw>()); }
  static C lowest() { return C::of_raw(-cvae::lemon_cost::raw_max<Raw>()); }
  static C min() { return lowest(); }
  static C infinity() { return max(); }
};
}  // namespace std
#endif  // CASCADEVAE_HAVE_LEMON

namespace cvae {

#ifdef CASCADEVAE_HAVE_LEMON

bool lemon_available() { return true; }

namespace {

using lemon_cost::Int128;
using lemon_cost::ScaledCost;
constexpr int kCostBits = ScaledCost<Int128>::kBits;

// The binary exponents of a nonzero finite double x = m 2^low (m odd): low, and top with
// |x| < 2^top.
struct BinaryExponents {
  int low;
  int top;
};
BinaryExponents binary_exponents(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const int biased = static_cast<int>((bits >> 52) & 0x7ff);
  uint64_t mantissa = bits & ((uint64_t{1} << 52) - 1);
  int scale = -1074;  // subnormal: mantissa * 2^-1074
  if (biased != 0) {
    mantissa |= uint64_t{1} << 52;
    scale = biased - 1075;
  }
  return {scale + __builtin_ctzll(mantissa), scale + 64 - __builtin_clzll(mantissa)};
}

// x 2^E as an integer; exact when x 2^E is an integer below 2^127 (the callers make sure).
Int128 scaled(double x, int E) { return static_cast<Int128>(std::ldexp(x, E)); }

Int128 pow2(int e) { return static_cast<Int128>(1) << e; }

// How the problem is scaled to integers: 2^E, what LEMON's 1 stands for, the number of unit
// sink arcs per class, the sink arcs' cost step M = 2^E mu, and (max cost + one) * nodes.
struct Scaling {
  int E;
  Int128 one;
  int64_t per_class;
  Int128 mu;
  Int128 span;
};

// The sink arcs per class (header comment), computed exactly on the scaled integers: at most
// floor(n / S) + 2 + floor(R / mu) with R the largest row range, and never more than n + 1.
int64_t sink_arcs_per_class(int64_t n, int64_t S, Int128 range, Int128 mu) {
  const Int128 bound = static_cast<Int128>(n / S) + 2 + range / mu;
  if (bound >= static_cast<Int128>(n + 1)) return n + 1;
  return std::max<int64_t>(1, static_cast<int64_t>(bound));
}

// The first scaling (of at most two candidates, see the header comment) whose costs fit in
// kCostBits bits with the node count; throws std::invalid_argument when none does.
template <typename T>
Scaling choose_scaling(const Scores<T>& u, double mu, const std::vector<double>& hi, const std::vector<double>& lo) {
  const int64_t n = u.n, S = u.S, nodes = n + S + 1;
  const bool merged = !(mu > 0.0);
  int low = std::numeric_limits<int>::max(), top = std::numeric_limits<int>::min();
  auto see = [&](double x) {
    if (x == 0.0) return;
    BinaryExponents b = binary_exponents(x);
    low = std::min(low, b.low);
    top = std::max(top, b.top);
  };
  for (int64_t i = 0; i < n; ++i) {
    const T* row = u.row(i);
    for (int64_t k = 0; k < S; ++k) see(static_cast<double>(row[k]));
  }
  if (!merged) see(mu);
  if (low == std::numeric_limits<int>::max()) low = top = 0;  // all zero
  const int need = -low;  // the smallest E making every value an integer

  std::vector<std::pair<int, Int128>> candidates;
  if (need >= 0) {
    if (need <= kCostBits) candidates.emplace_back(need, pow2(need));
    candidates.emplace_back(need, Int128{1});
  } else {
    candidates.emplace_back(0, Int128{1});
    candidates.emplace_back(need, Int128{1});
  }
  const Int128 limit = pow2(kCostBits) / nodes;  // (max cost + one) may not exceed this
  for (auto [E, one] : candidates) {
    if (top + E > kCostBits - 2) continue;  // every |value| 2^E < 2^121, differences < 2^122
    Int128 range = 0;
    for (int64_t i = 0; i < n; ++i) range = std::max(range, scaled(hi[i], E) - scaled(lo[i], E));
    Scaling s{E, one, 1, 0, 0};
    Int128 max_cost = range;
    if (!merged) {
      s.mu = scaled(mu, E);
      s.per_class = sink_arcs_per_class(n, S, range, s.mu);
      const int64_t steps = std::max<int64_t>(1, s.per_class - 1);
      if (s.mu > limit / steps) continue;
      max_cost = std::max(max_cost, s.mu * (s.per_class - 1));
    }
    if (max_cost <= limit - one) {
      s.span = (max_cost + one) * nodes;
      return s;
    }
  }
  const int bits = top + 1 + need + static_cast<int>(std::ceil(std::log2(static_cast<double>(nodes))));
  throw std::invalid_argument(
      "method='lemon' solves with exact integer costs: u and 2 lam are scaled by one power of two until every value "
      "is an integer, and (largest cost + 1) * (n + S + 1) must fit in " + std::to_string(kCostBits) +
      " bits. Here the finest binary digit of u and 2 lam is 2^" + std::to_string(low) + " and the largest value "
      "is below 2^" + std::to_string(top) + ", so the costs would need about " +
      std::to_string(bits) + " bits: the scores span too many binary orders of magnitude. Round u to a coarser grid "
      "(e.g. numpy.round(u * 2**30) / 2**30, whose optimum LEMON then finds exactly) or use method='ssp' or "
      "'warm' (S <= " + std::to_string(kMaxCondensedClasses) + ")");
}

// Sets what LEMON's integer 1 stands for on this thread, for the lifetime of one solve.
template <typename Raw>
struct OneGuard {
  explicit OneGuard(Raw one) { ScaledCost<Raw>::one = one; }
  ~OneGuard() { ScaledCost<Raw>::one = 1; }
  OneGuard(const OneGuard&) = delete;
  OneGuard& operator=(const OneGuard&) = delete;
};

// The solve on costs of type ScaledCost<Raw>; the integers, hence LEMON's pivots and the
// result, are the same for either width.
template <typename Raw, typename T>
void solve_scaled(const Scores<T>& u, bool merged, const Scaling& scaling, const std::vector<double>& hi, Output out) {
  using Graph = lemon::StaticDigraph;
  using Cost = ScaledCost<Raw>;
  using Solver = lemon::NetworkSimplex<Graph, int, Cost>;
  const int64_t n = u.n, S = u.S;
  const int E = scaling.E;
  const int64_t per_class = merged ? 1 : scaling.per_class;
  const int64_t item_arcs = n * S;
  const int64_t arcs = item_arcs + S * per_class;
  const int64_t nodes = n + S + 1;
  constexpr int64_t kMaxIndex = std::numeric_limits<int>::max() / 2;
  if (arcs > kMaxIndex || nodes > kMaxIndex)
    throw std::length_error("method='lemon': the flow graph of a problem with n = " + std::to_string(n) +
                            " items and S = " + std::to_string(S) + " classes needs " + std::to_string(arcs) +
                            " arcs, more than LEMON's int indices allow; use method='auto'");
  const int sink = static_cast<int>(n + S);
  OneGuard<Raw> guard(static_cast<Raw>(scaling.one));

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

  Graph::ArcMap<Cost> cost(g);
  Graph::ArcMap<int> upper(g);
  Graph::NodeMap<int> supply(g, 0);
  for (int64_t i = 0; i < n; ++i) {
    const T* row = u.row(i);
    const Int128 best = scaled(hi[i], E);
    for (int64_t k = 0; k < S; ++k) {
      Graph::Arc a = g.arc(static_cast<int>(i * S + k));
      cost[a] = Cost::of_raw(static_cast<Raw>(best - scaled(static_cast<double>(row[k]), E)));  // c_ik - min_l c_il
      upper[a] = 1;
    }
    supply[g.node(static_cast<int>(i))] = 1;
  }
  for (int64_t k = 0; k < S; ++k)
    for (int64_t t = 0; t < per_class; ++t) {
      Graph::Arc a = g.arc(static_cast<int>(item_arcs + k * per_class + t));
      cost[a] = Cost::of_raw(static_cast<Raw>(merged ? Int128{0} : scaling.mu * t));
      upper[a] = merged ? static_cast<int>(n + 1) : 1;
    }
  supply[g.node(sink)] = -static_cast<int>(n);

  Solver ns(g);
  ns.costMap(cost).upperMap(upper).supplyMap(supply);
  const auto status = ns.run();
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
    // exact in the integers, then one rounding to double
    const Raw pi_sink = ns.potential(g.node(sink)).raw;
    for (int64_t k = 0; k < S; ++k) {
      const Raw price = pi_sink - ns.potential(g.node(static_cast<int>(n + k))).raw;
      out.prices[k] = std::ldexp(static_cast<double>(price), -E);
    }
  }
}

}  // namespace

template <typename T>
void solve_lemon(const Scores<T>& u, double lam, Output out) {
  const int64_t n = u.n, S = u.S;
  const double mu = marginal_step(lam);
  if (n == 0) {
    if (out.prices) std::fill(out.prices, out.prices + S, 0.0);
    return;
  }
  const bool merged = !(mu > 0.0);  // mu = 0: one zero-cost arc of capacity n + 1 per class
  std::vector<double> hi(static_cast<size_t>(n)), lo(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const T* row = u.row(i);
    double a = static_cast<double>(row[0]), b = a;
    for (int64_t k = 1; k < S; ++k) {
      double v = static_cast<double>(row[k]);
      a = std::min(a, v);
      b = std::max(b, v);
    }
    lo[i] = a;
    hi[i] = b;
  }
  const Scaling scaling = choose_scaling(u, mu, hi, lo);
  // 64-bit arithmetic is about 1.5x faster; it serves whenever the same integers fit.
  if (scaling.span <= pow2(ScaledCost<int64_t>::kBits)) solve_scaled<int64_t>(u, merged, scaling, hi, out);
  else solve_scaled<Int128>(u, merged, scaling, hi, out);
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
