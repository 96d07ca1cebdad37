// The per-batch discrete assignment of CascadeVAE (inner maximisation of eq. 6):
//   maximise  sum_i u[i, d_i]  -  lambda' * sum_k n_k (n_k - 1)
// over labels d_i in {0..S-1}, where n_k counts the items labelled k. The penalty counts
// ordered pairs (the paper's sum over i != j of d_i^T d_j); the official code penalised
// unordered pairs, i.e. lambda'_official * n_k (n_k - 1) / 2, so lambda' = lambda'_official / 2.
//
// The penalty convention, for everything declared here: every function takes lambda' itself,
// as `lam` (what Python passes). Internally every solver minimises costs c_ik = -u_ik with a
// convex per-class count cost whose marginal for the t-th member is mu (t - 1), where
// mu = marginal_step(lam) = 2 lambda' (Jeong & Song, 2018, Thm 1: a minimum-cost flow); mu is
// the flow graphs' own quantity (condensed_graph.hpp, device_core.hpp, the LEMON graph) and is
// formed from lam in one place per solver, never passed across this header. 2 lambda' is exact
// in double, so both forms describe the same problem bit for bit. Arithmetic is in double; the
// user's scores are never rounded.
//
// Entry points: assign() (one problem or a batch; checks every precondition, picks LEMON past
// kMaxCondensedClasses, solves a batch on threads), resolve_method(), check_problem() for the
// certificate functions. solve() and the solve_* functions below it assume valid input.
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

// G score matrices of n x S: element (g, i, k) at data[g * ld_g + i * ld + k] (any strides,
// unit column stride, as for Scores). `batched` = false marks one (n, S) problem (G = 1),
// whose scores error messages name u[i, k] rather than u[0, i, k].
template <typename T>
struct ScoreBatch {
  const T* data;
  int64_t G;
  int64_t n;
  int64_t S;
  int64_t ld_g;
  int64_t ld;
  bool batched = true;
  Scores<T> problem(int64_t g) const { return Scores<T>{data + g * ld_g, n, S, ld}; }
};

// The flow's marginal cost step mu = 2 lambda' (see the top of this file): the t-th member of
// a class costs mu (t - 1). Exact in double.
constexpr double marginal_step(double lam) { return 2.0 * lam; }

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
// c_il + lambda_l, and 2 lam (n_k - 1) <= lambda_k <= 2 lam n_k (the lower bound where n_k >= 1).
// For a batch: labels G * n and prices G * S, problem g's at labels + g n, prices + g S.
struct Output {
  int64_t* labels;  // length n (G * n)
  double* prices;   // length S (G * S), or nullptr
};

// ---- checked entry points ----
// Each throws std::invalid_argument (ValueError in Python) naming what is wrong and what to do:
// S < 1 or n < 0; lam negative, NaN or infinite; a score that is not finite or exceeds
// kMaxMagnitude (the first one, as u[i, k], or u[g, i, k] for a batch); lam * n above
// kMaxMagnitude; num_threads < 0; a method that cannot take S classes (ssp, warm and
// device_core stop at kMaxCondensedClasses), or "lemon" in a build without LEMON.

// Exact labels of one problem (out.labels: n) or of each problem of a batch (out.labels: G n),
// with the certifying prices when out.prices is set. "auto" picks a method per problem, and
// LEMON past kMaxCondensedClasses. A batch is solved on up to num_threads threads (0: all
// cores, or the calling thread alone when the whole batch has fewer than 32768 scores, where
// starting threads costs more than it saves); the labels do not depend on the thread count.
template <typename T>
void assign(const Scores<T>& u, double lam, Method method, Output out);
template <typename T>
void assign(const ScoreBatch<T>& u, double lam, Method method, Output out, int num_threads = 0);

// The concrete method assign(u, lam, method) runs for this problem (never Auto). Checks u and lam.
template <typename T>
Method resolve_method(const Scores<T>& u, double lam, Method method);

// The preconditions of objective, default_tolerance, certify and check_prices: finite u within
// kMaxMagnitude, lam * n within kMaxMagnitude, lam finite and >= 0, S >= 1.
template <typename T>
void check_problem(const Scores<T>& u, double lam);
// certify runs Floyd-Warshall, O(S^3): refused past kMaxCertifyClasses (use check_prices).
void check_certifiable(int64_t S);

// ---- unchecked: valid input only ----
// Solves one problem (any n >= 0) with `method`; Auto resolves through choose_method.
template <typename T>
void solve(const Scores<T>& u, double lam, Method method, Output out);

// The method `auto` picks for this problem (never Auto; n >= 1, S <= kMaxCondensedClasses).
template <typename T>
Method choose_method(const Scores<T>& u, double lam);

// ---- the individual solvers (n >= 1) ----
template <typename T>
void solve_ssp(const Scores<T>& u, double lam, Output out);
template <typename T>
void solve_warm(const Scores<T>& u, double lam, Output out, uint64_t seed = 0x5eed);
template <typename T>
void solve_two_classes(const Scores<T>& u, double lam, Output out);
template <typename T>
void solve_lemon(const Scores<T>& u, double lam, Output out);
template <typename T>
void solve_device_core(const Scores<T>& u, double lam, Output out);

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
// labels, so the checked entry points refuse; the optimum is invariant under scaling u and lam
// by one positive factor, so such input can always be rescaled.
constexpr double kMaxMagnitude = 0x1p512;

// The condensed-graph solvers keep a few S x S tables (about 50 S^2 bytes per thread): past
// this many classes that is gigabytes, so "ssp" and "warm" refuse and "auto" uses LEMON.
constexpr int64_t kMaxCondensedClasses = 6000;
// is_optimal / dual_prices run Floyd-Warshall, O(S^3): past this many classes it would take
// minutes; check_prices (O(nS)) is the certificate to use there.
constexpr int64_t kMaxCertifyClasses = 4096;

}  // namespace cvae
