// The assignment solver of the GPU path, written once for host and device ("device_core").
//
// Successive shortest paths on the condensed class graph, as in ssp.cpp (see the header of
// condensed_graph.hpp for the graph): items enter one at a time, each along a shortest path
// from the item to the sink over the S class nodes (Dijkstra on reduced costs), and the moves
// along the path are applied. Kept per problem: the labels, a member list per class, the
// cheapest-move matrix M[k][l] = min over members j of k of (c_jl - c_jk) with its minimiser,
// and the node potentials (the sink's is always 0). Unlike the CPU solver there are no
// candidate lists: a removal that takes away the minimiser of some M[k][l] rescans class k
// for those columns. That keeps the state small enough for on-chip shared memory.
//
// Parallelism: every step is "each class l does something" followed by a reduction, so the
// code is written for a Team of lanes (a CUDA warp on the device, one lane on the host). Lane
// t owns classes t, t + size, t + 2 size, ... (their dist, pred, open, potential and column l
// of every M row); shared scalars are written by the leader between team syncs. Reductions
// break ties towards the smaller class index, so the host and device runs take the same
// decisions and, on data where double arithmetic is exact (dyadic scores), the same labels.
//
// Inputs are not checked here. A non-finite score becomes a cost clamped to +-2^900 (NaN
// counts as the worst score), which keeps every sum finite, so the solve always ends with
// valid labels (not optimal ones where a score was clamped). The CPU bindings reject
// non-finite scores and |u| > 2^512 (kMaxMagnitude, assign.hpp) before calling this, so on
// the CPU the clamp never changes a score; the CUDA entry point does not check (that would
// need a host sync).
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>

#include "common/host_device.hpp"

namespace cvae::core {

constexpr double kCoreInf = std::numeric_limits<double>::infinity();
constexpr double kCostClamp = 0x1p900;  // |cost| bound: path sums stay far below DBL_MAX
constexpr int32_t kNoIndex = std::numeric_limits<int32_t>::max();

// Element (i, k) of one n x S score matrix at data[i * ld_i + k * ld_k] (element strides).
template <typename T>
struct StridedScores {
  const T* data;
  int64_t ld_i;
  int64_t ld_k;
  // c_ik = -u_ik, with non-finite values clamped (see above).
  CVAE_HD double cost(int32_t i, int32_t k) const {
    double c = -static_cast<double>(data[static_cast<int64_t>(i) * ld_i + static_cast<int64_t>(k) * ld_k]);
    if (!(c <= kCostClamp)) c = kCostClamp;  // +inf and NaN
    if (c < -kCostClamp) c = -kCostClamp;
    return c;
  }
};

// The costs of one problem, already converted (cost() of StridedScores), n x S row-major: a
// copy in fast memory, filled once by the team, when it fits beside the workspace. Every
// insertion reads a row of costs and every rescan a class's rows; from shared memory those
// reads take tens of cycles instead of a trip to L2 or DRAM.
struct CostTable {
  const double* c;
  int32_t S;
  CVAE_HD double cost(int32_t i, int32_t k) const { return c[static_cast<int64_t>(i) * S + k]; }

  CVAE_HD static size_t bytes(int64_t n, int64_t S) { return static_cast<size_t>(n * S) * sizeof(double); }
  // Fills table (n x S doubles) from u, the lanes striding over the elements (coalesced reads
  // where u is row-major). The caller syncs the team before the table is read.
  template <typename Team, typename Scores>
  CVAE_HD static void fill(const Team& team, const Scores& u, int32_t n, int32_t S, double* table) {
    const int64_t total = static_cast<int64_t>(n) * S;
    for (int64_t q = team.lane(); q < total; q += team.size())
      table[q] = u.cost(static_cast<int32_t>(q / S), static_cast<int32_t>(q % S));
  }
};

// The per-problem state: pointers into one block of memory (shared memory on the device).
struct CoreWorkspace {
  double* move;     // S x S, row-major: M[k][l]
  double* pot;      // S class potentials (the sink's is 0)
  double* dist;     // S + 1 (the sink last)
  int32_t* mover;   // S x S: the member of k that realises M[k][l], -1 if none
  int32_t* pred;    // S + 1: predecessor on the shortest-path tree, -1 at the item
  int32_t* open;    // S + 1: not yet settled by the current search
  int32_t* rescan;  // S: column l of the row being repaired needs a rescan
  int32_t* count;   // S: class sizes
  int32_t* head;    // S: first member of each class, -1 if empty
  int32_t* label;   // n
  int32_t* next;    // n: member lists, doubly linked
  int32_t* prev;    // n

  // Bytes for an n x S problem (doubles first, so one 8-byte aligned block serves).
  CVAE_HD static size_t bytes(int64_t n, int64_t S) {
    size_t doubles = static_cast<size_t>(S * S + S + (S + 1));
    size_t ints = static_cast<size_t>(S * S + 2 * (S + 1) + 3 * S + 3 * n);
    return doubles * sizeof(double) + ints * sizeof(int32_t);
  }
  CVAE_HD static CoreWorkspace carve(void* base, int64_t n, int64_t S) {
    CoreWorkspace w;
    double* d = static_cast<double*>(base);
    w.move = d;
    w.pot = w.move + S * S;
    w.dist = w.pot + S;
    int32_t* p = reinterpret_cast<int32_t*>(w.dist + (S + 1));
    w.mover = p;
    w.pred = w.mover + S * S;
    w.open = w.pred + (S + 1);
    w.rescan = w.open + (S + 1);
    w.count = w.rescan + S;
    w.head = w.count + S;
    w.label = w.head + S;
    w.next = w.label + n;
    w.prev = w.next + n;
    return w;
  }
};

// Smallest value and its index, with the second-smallest value (ties: smaller index first).
struct Top2 {
  double b1;
  int32_t k1;
  double b2;
};
CVAE_HD inline bool before(double a, int32_t ia, double b, int32_t ib) { return a < b || (a == b && ia < ib); }
CVAE_HD inline Top2 combine(const Top2& x, const Top2& y) {
  if (before(y.b1, y.k1, x.b1, x.k1)) return Top2{y.b1, y.k1, y.b2 < x.b1 ? y.b2 : x.b1};
  return Top2{x.b1, x.k1, x.b2 < y.b1 ? x.b2 : y.b1};
}

// The host's team: one lane that owns every class; syncs and reductions are no-ops.
struct SerialTeam {
  CVAE_HD int lane() const { return 0; }
  CVAE_HD int size() const { return 1; }
  CVAE_HD bool leader() const { return true; }
  CVAE_HD void sync() const {}
  CVAE_HD double min(double v) const { return v; }
  CVAE_HD bool any(bool v) const { return v; }
  CVAE_HD void argmin(double& v, int32_t& i) const {}
  CVAE_HD Top2 top2(const Top2& t) const { return t; }
};

// One problem, solved by one team. Team must provide lane(), size(), leader(), sync() and the
// reductions min, any, argmin (value, index) and top2, each returning the same result on
// every lane. Scores is StridedScores<T> or CostTable (anything with cost(i, k)).
template <typename Scores, typename Team>
class SspCore {
 public:
  CVAE_HD SspCore(const Team& team, const Scores& u, int32_t n, int32_t S, double mu, const CoreWorkspace& ws)
      : tm_(team), u_(u), n_(n), S_(S), mu_(mu), w_(ws) {}

  // Labels every item (labels[i] in [0, S)) and, if prices != nullptr, writes the dual class
  // prices lambda_k = -p_k (the sink's potential is 0), which certify the labelling.
  CVAE_HD void solve(int64_t* labels, double* prices) {
    init();
    for (int32_t i = 0; i < n_; ++i) insert(i);
    tm_.sync();
    for (int32_t j = tm_.lane(); j < n_; j += tm_.size()) labels[j] = w_.label[j];
    if (prices)
      for (int32_t k = tm_.lane(); k < S_; k += tm_.size()) prices[k] = 0.0 - w_.pot[k];
  }

 private:
  CVAE_HD int64_t at(int32_t k, int32_t l) const { return static_cast<int64_t>(k) * S_ + l; }

  CVAE_HD void init() {
    const int32_t step = tm_.size();
    for (int64_t q = tm_.lane(); q < static_cast<int64_t>(S_) * S_; q += step) {
      w_.move[q] = kCoreInf;
      w_.mover[q] = -1;
    }
    for (int32_t k = tm_.lane(); k < S_; k += step) {
      w_.pot[k] = 0.0;
      w_.count[k] = 0;
      w_.head[k] = -1;
      w_.rescan[k] = 0;
    }
    for (int32_t j = tm_.lane(); j < n_; j += step) w_.label[j] = -1;
    tm_.sync();
  }

  // Item i (in no class) enters along a shortest path  i -> k1 -> ... -> km -> sink.
  CVAE_HD void insert(int32_t i) {
    const int32_t S = S_, step = tm_.size();
    // Seed: the item reaches every class k directly, at reduced cost c_ik - p_k.
    Top2 t{kCoreInf, kNoIndex, kCoreInf};
    for (int32_t k = tm_.lane(); k < S; k += step) {
      double d = u_.cost(i, k) - w_.pot[k];
      w_.dist[k] = d;
      w_.pred[k] = -1;
      w_.open[k] = 1;
      t = combine(t, Top2{d, k, kCoreInf});
    }
    t = tm_.top2(t);
    if (tm_.leader()) {
      w_.dist[S] = kCoreInf;
      w_.pred[S] = -1;
      w_.open[S] = 1;
    }
    tm_.sync();
    // The common case (weak penalty): the path is i -> best class -> sink. Dijkstra would
    // settle k1 first, then the sink, if nothing it reaches from k1 or directly is cheaper.
    const int32_t k1 = t.k1;
    const double reach_sink = t.b1 + w_.pot[k1] + mu_ * static_cast<double>(w_.count[k1]);
    double via_moves = kCoreInf;
    if (w_.count[k1] > 0) {
      double lo = kCoreInf;
      for (int32_t l = tm_.lane(); l < S; l += step) {
        double v = w_.move[at(k1, l)] - w_.pot[l];
        lo = v < lo ? v : lo;
      }
      via_moves = t.b1 + w_.pot[k1] + tm_.min(lo);
    }
    if (t.b2 >= reach_sink && via_moves >= reach_sink) {
      tm_.sync();
      if (tm_.leader()) w_.pot[k1] += t.b1 - reach_sink;  // p_v += min(d_v, L) - L
      tm_.sync();
      add(i, k1);
      return;
    }
    shortest_path();
    // Potentials: p_v += min(d_v, L) - L keeps every reduced cost >= 0, makes the path tight
    // and keeps the sink's potential at 0.
    const double L = w_.dist[S];
    for (int32_t k = tm_.lane(); k < S; k += step) {
      double d = w_.dist[k];
      w_.pot[k] += (d < L ? d : L) - L;
    }
    tm_.sync();
    augment(i);
  }

  // Dijkstra over the class nodes until the sink is settled (it is never expanded).
  CVAE_HD void shortest_path() {
    const int32_t S = S_, step = tm_.size();
    for (;;) {
      double best = kCoreInf;
      int32_t v = kNoIndex;
      for (int32_t k = tm_.lane(); k < S; k += step)
        if (w_.open[k] && before(w_.dist[k], k, best, v)) {
          best = w_.dist[k];
          v = k;
        }
      tm_.argmin(best, v);
      if (v == kNoIndex) v = -1;
      // Prefer the sink on ties: the shorter path, and it ends the search.
      const double dT = w_.dist[S];
      if (w_.open[S] && dT < kCoreInf && (v < 0 || dT <= best)) v = S;
      if (v < 0) return;  // unreachable: every class is seeded with a finite distance
      const double base = v == S ? 0.0 : w_.dist[v] + w_.pot[v];
      tm_.sync();
      if (tm_.leader()) w_.open[v] = 0;
      if (v == S) {
        tm_.sync();
        return;
      }
      if (tm_.leader()) {
        double d = base + mu_ * static_cast<double>(w_.count[v]);
        if (w_.open[S] && d < w_.dist[S]) {
          w_.dist[S] = d;
          w_.pred[S] = v;
        }
      }
      if (w_.count[v] > 0) {
        for (int32_t l = tm_.lane(); l < S; l += step) {
          if (l == v) continue;  // (the leader is closing v right now)
          double d = base + w_.move[at(v, l)] - w_.pot[l];
          if (w_.open[l] && d < w_.dist[l]) {
            w_.dist[l] = d;
            w_.pred[l] = v;
          }
        }
      }
      tm_.sync();
    }
  }

  // Applies the moves of the tree path from the sink back to its root, then puts item i in
  // the root class. A shortest path is simple, so walking it backwards, each arc's class row
  // is still untouched when its mover is read.
  CVAE_HD void augment(int32_t i) {
    int32_t b = S_;
    for (;;) {
      const int32_t a = w_.pred[b];
      if (a < 0) break;
      if (b != S_) {
        const int32_t j = w_.mover[at(a, b)];
        tm_.sync();
        remove(j);
        add(j, b);
      }
      b = a;
    }
    add(i, b);
  }

  // Puts item j (in no class) into class k and offers it to row k of the move matrix.
  CVAE_HD void add(int32_t j, int32_t k) {
    if (tm_.leader()) {
      w_.label[j] = k;
      w_.prev[j] = -1;
      w_.next[j] = w_.head[k];
      if (w_.head[k] >= 0) w_.prev[w_.head[k]] = j;
      w_.head[k] = j;
      ++w_.count[k];
    }
    const double ck = u_.cost(j, k);
    for (int32_t l = tm_.lane(); l < S_; l += tm_.size()) {
      if (l == k) continue;
      double v = u_.cost(j, l) - ck;
      if (v < w_.move[at(k, l)]) {
        w_.move[at(k, l)] = v;
        w_.mover[at(k, l)] = j;
      }
    }
    tm_.sync();
  }

  // Takes item j out of its class k; the columns of row k whose cheapest mover was j are
  // recomputed from the remaining members.
  CVAE_HD void remove(int32_t j) {
    const int32_t k = w_.label[j];
    tm_.sync();
    if (tm_.leader()) {
      if (w_.prev[j] >= 0) w_.next[w_.prev[j]] = w_.next[j];
      else w_.head[k] = w_.next[j];
      if (w_.next[j] >= 0) w_.prev[w_.next[j]] = w_.prev[j];
      w_.label[j] = -1;
      --w_.count[k];
    }
    bool need = false;
    for (int32_t l = tm_.lane(); l < S_; l += tm_.size()) {
      const bool r = w_.mover[at(k, l)] == j;
      w_.rescan[l] = r;
      if (r) {
        w_.move[at(k, l)] = kCoreInf;
        w_.mover[at(k, l)] = -1;
      }
      need = need || r;
    }
    tm_.sync();
    if (!tm_.any(need)) return;
    for (int32_t r = w_.head[k]; r >= 0; r = w_.next[r]) {
      const double cr = u_.cost(r, k);
      for (int32_t l = tm_.lane(); l < S_; l += tm_.size()) {
        if (!w_.rescan[l]) continue;
        double v = u_.cost(r, l) - cr;
        if (v < w_.move[at(k, l)]) {
          w_.move[at(k, l)] = v;
          w_.mover[at(k, l)] = r;
        }
      }
    }
    tm_.sync();
  }

  const Team& tm_;
  Scores u_;
  const int32_t n_, S_;
  const double mu_;
  CoreWorkspace w_;
};

}  // namespace cvae::core
