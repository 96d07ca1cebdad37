// The per-batch discrete assignment of CascadeVAE (inner maximisation of eq. 6):
//   maximise  sum_i u[i, d_i]  -  lambda' * sum_k n_k (n_k - 1)
// over labels d_i in {0..S-1}, where n_k counts the items labelled k. The penalty counts
// ordered pairs (the paper's sum over i != j of d_i^T d_j); the official code penalised
// unordered pairs, i.e. lambda'_official * n_k (n_k - 1) / 2, so lambda' = lambda'_official / 2.
//
// Internally every solver minimises costs c_ik = -u_ik with a convex per-class count cost
// whose marginal for the t-th member is mu (t - 1), mu = 2 lambda' (Jeong & Song, 2018, Thm 1:
// a minimum-cost flow). Arithmetic is in double; the user's scores are never rounded.
#pragma once
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

namespace cvae {

// A read-only n x S score matrix: element (i, k) at data[i * ld + k]. ld may be any
// stride (also negative); the column stride is 1 (the bindings copy when it is not).
template <typename T>
struct Scores {
  const T* data;
  int64_t n;
  int64_t S;
  int64_t ld;
  const T* row(int64_t i) const { return data + i * ld; }
  // Cost of putting item i in class k: c_ik = -u_ik.
  double cost(int64_t i, int64_t k) const { return -static_cast<double>(data[i * ld + k]); }
};

enum class Method {
  Auto,   // the fastest exact method for the shape and penalty
  SSP,    // successive shortest paths on the condensed (S + 1)-node graph, one item at a time
  Warm,   // SSP repair of a warm start priced on nested random subsamples (strong penalties)
  Lemon,  // LEMON NetworkSimplex on the full flow graph (general reference)
  DeviceCore,  // the CUDA kernel's solver (device_core.hpp) run on the host by one lane
};

Method parse_method(const std::string& name);  // throws std::invalid_argument
const char* method_name(Method m);
bool lemon_available();

// Output of one solve. prices (optional, length S) are the dual class prices lambda_k,
// normalised so that the sink's price is 0: every item sits in a class minimising
// c_il + lambda_l, and mu (n_k - 1) <= lambda_k <= mu n_k (the lower bound where n_k >= 1).
struct Output {
  int64_t* labels;  // length n
  double* prices;   // length S, or nullptr
};

// Solves one problem. `lam` is lambda' (paper convention). Inputs must be finite, with
// |u| <= kMaxMagnitude and lam * n <= kMaxMagnitude (the bindings check both).
template <typename T>
void solve(const Scores<T>& u, double lam, Method method, Output out);

// The method `auto` picks for this problem (never Auto).
template <typename T>
Method choose_method(const Scores<T>& u, double lam);

// ---- the individual solvers (mu = 2 lambda') ----
template <typename T>
void solve_ssp(const Scores<T>& u, double mu, Output out);
template <typename T>
void solve_warm(const Scores<T>& u, double mu, Output out, uint64_t seed = 0x5eed);
template <typename T>
void solve_two_classes(const Scores<T>& u, double mu, Output out);
template <typename T>
void solve_lemon(const Scores<T>& u, double mu, Output out);
template <typename T>
void solve_device_core(const Scores<T>& u, double mu, Output out);

// ---- certificate ----
// Objective sum_i u[i, d_i] - lambda' sum_k n_k (n_k - 1), accumulated in double.
template <typename T>
double objective(const Scores<T>& u, double lam, const int64_t* labels);

// Default absolute tolerance of the checks below: 1e-9 * (max |u| + lambda' n + 1).
template <typename T>
double default_tolerance(const Scores<T>& u, double lam);

// Result of the negative-cycle test on the condensed residual graph.
struct Certificate {
  bool optimal;
  double cycle_cost;  // cost of a negative cycle found (0 when optimal): how much the
                      // labelling can be improved by one exchange along it
};

// O(nS + S^3): the labelling is optimal iff the condensed residual graph (S classes and
// the sink) has no cycle of cost below -atol. When optimal and prices != nullptr, writes
// certifying prices (from Bellman-Ford potentials).
template <typename T>
Certificate certify(const Scores<T>& u, double lam, const int64_t* labels, double atol, double* prices);

// O(nS): do these prices certify the labelling? (conditions above, each up to atol)
template <typename T>
bool check_prices(const Scores<T>& u, double lam, const int64_t* labels, const double* prices, double atol);

constexpr double kInf = std::numeric_limits<double>::infinity();

// The largest |u| and lam * n accepted (2^512, about 1.34e154), for every method and check.
// Below it every sum the solvers and certificates form (at most ~2^64 terms, each a score, a
// price or mu times a count) stays below 2^580, far from overflow, and the GPU solver's cost
// clamp (2^900, device_core.hpp) never bites. Past it they could overflow and return wrong
// labels, so the bindings refuse; the optimum is invariant under scaling u and lam by one
// positive factor, so such input can always be rescaled.
constexpr double kMaxMagnitude = 0x1p512;

// The condensed-graph solvers keep a few S x S tables (about 50 S^2 bytes per thread): past
// this many classes that is gigabytes, so "ssp" and "warm" refuse and "auto" uses LEMON.
constexpr int64_t kMaxCondensedClasses = 6000;
// is_optimal / dual_prices run Floyd-Warshall, O(S^3): past this many classes it would take
// minutes; check_prices (O(nS)) is the certificate to use there.
constexpr int64_t kMaxCertifyClasses = 4096;

}  // namespace cvae
