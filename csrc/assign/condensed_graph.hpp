// The condensed residual graph of the assignment flow: S class nodes plus the sink T.
// (About 440 lines: the graph, its cached cheapest-move tables and their incremental updates
// belong together, since every solver step touches all three.)
//
// The full flow graph (source -> items -> classes -> sink) has item nodes whose only
// residual arcs are "leave my class k" (cost -c_jk) and "enter class l" (cost c_jl), so
// every path through an item collapses to a class-to-class arc
//     k -> l   cost  min over members j of k of (c_jl - c_jk)     (move one member)
// and the sink arcs of class k, whose t-th unit costs mu (t - 1), give
//     k -> T   cost  mu t_k          (one more unit to the sink)
//     T -> k   cost  -mu (t_k - 1)   (one unit fewer), when t_k >= 1,
// where t_k is the flow from k to the sink. In a feasible assignment t_k = n_k (the class
// size); the warm start lets them differ for a while and repairs the difference.
//
// The cheapest-move matrix M[k][l] (and its minimiser A[k][l]) is cached; adding a member
// updates row k in O(S). Behind an entry can sit a short sorted list of the K cheapest movers
// of the pair (k, l) (K <= 32, fewer when S is large so the S^2 K entries stay near 1 MB):
// removing a member deletes it from the lists it is in, and only a list that runs empty
// rescans its class. Without lists, every removal of a minimiser would rescan the class,
// which dominates when classes are large. With large classes (n >= 128 S) every list is kept
// from the start; with small ones a pair gets its list the first time its minimiser leaves.
// Shortest paths use Dijkstra on reduced costs with node potentials p
// (dense, O(S) per settled node: the graph is complete), normalised so that p[T] = 0.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "assign/assign.hpp"
#include "assign/dense_kernels.hpp"

namespace cvae {

template <typename T>
class CondensedGraph {
 public:
  CondensedGraph(const Scores<T>& u, double mu, int64_t* labels)
      : u_(u), S_(u.S), T_(u.S), mu_(mu), labels_(labels),
        K_(list_capacity(u.n, u.S)), ws_(workspace()),
        count_(ws_.count), flow_(ws_.flow), head_(ws_.head), next_(ws_.next), prev_(ws_.prev),
        move_(ws_.move), mover_(ws_.mover), pot_(ws_.pot), dist_(ws_.dist), pred_(ws_.pred),
        open_(ws_.open), refill_(ws_.refill), path_(ws_.path), movers_(ws_.movers),
        cand_(ws_.cand), len_(ws_.len), complete_(ws_.complete), accept_(ws_.accept),
        arc_cost_(ws_.arc_cost), built_(ws_.built), built_in_row_(ws_.built_in_row),
        scratch_(ws_.scratch) {
    // assign() reuses capacity: repeated small solves on one thread never touch malloc.
    count_.assign(S_, 0);
    flow_.assign(S_, 0);
    head_.assign(S_, -1);
    next_.assign(u.n, -1);
    prev_.assign(u.n, -1);
    move_.assign(S_ * S_, kInf);
    mover_.assign(S_ * S_, -1);
    pot_.assign(S_ + 1, 0.0);
    dist_.assign(S_ + 1, kInf);
    pred_.assign(S_ + 1, -1);
    open_.assign(S_ + 1, 1);
    refill_.assign(S_, 0);
    cand_.resize(S_ * S_ * K_);
    len_.assign(S_ * S_, 0);
    complete_.assign(S_ * S_, 1);  // empty classes: the (empty) lists hold every member
    accept_.assign(S_ * S_, kInf);
    arc_cost_.assign(S_ + 1, kInf);
    // Large classes (n/S >= 128): build every list up front, as items arrive; a first
    // rebuild of a list would rescan a class of hundreds (A 65536 x 100: 2x slower lazily).
    // Small classes: build a list only when its pair first needs its next mover. (Eager
    // marks the diagonal built too, so built_in_row_ == S means "every list exists".)
    const bool eager = u.n >= 128 * S_;
    built_.assign(S_ * S_, eager ? 1 : 0);
    built_in_row_.assign(S_, eager ? S_ : 0);
    scratch_.assign(S_, 0.0);
  }
  // Up to 32 entries, fewer when S^2 lists would leave the cache or classes are tiny
  // (a list longer than its class only costs insertion-sort shifts).
  static int64_t list_capacity(int64_t n, int64_t S) {
    int64_t k = std::min<int64_t>({32, (int64_t{1} << 16) / (S * S), n / (4 * S)});
    return std::max<int64_t>(1, k);
  }
  CondensedGraph(const CondensedGraph&) = delete;
  CondensedGraph& operator=(const CondensedGraph&) = delete;

  int64_t S() const { return S_; }
  int64_t sink() const { return T_; }
  int64_t count(int64_t k) const { return count_[k]; }
  int64_t flow(int64_t k) const { return flow_[k]; }
  double potential(int64_t v) const { return pot_[v]; }
  void set_potential(int64_t v, double p) { pot_[v] = p; }
  void set_flow(int64_t k, int64_t t) { flow_[k] = t; }

  // Dual price of class k relative to the sink: lambda_k = p[T] - p[k].
  void write_prices(double* prices) const {
    for (int64_t k = 0; k < S_; ++k) prices[k] = pot_[T_] - pot_[k];
  }

  // Puts item j into class k (j must be in no class).
  void add(int64_t j, int64_t k) {
    place(j, k);
    offer(j, k);
  }

  // Takes item j out of its class, restoring the cheapest moves it was part of.
  void remove(int64_t j) {
    int64_t k = labels_[j];
    unlink(j, k);
    labels_[j] = -1;
    const T* row = u_.row(j);
    double ck = -static_cast<double>(row[k]);
    int64_t nrefill = 0;
    const int64_t* a = &mover_[k * S_];
    for (int64_t l = 0; l < S_; ++l) {
      if (l == k) continue;
      int64_t q = k * S_ + l;
      if (!built_[q]) {
        if (a[l] == j) refill_[nrefill++] = l;  // first time this pair needs its next mover
        continue;
      }
      int32_t& len = len_[q];
      if (len == 0) continue;
      Cand* c = &cand_[q * K_];
      double v = -static_cast<double>(row[l]) - ck;
      if (v > c[len - 1].value) continue;  // not in the list
      for (int32_t r = 0; r < len; ++r)
        if (c[r].item == j) {
          for (int32_t s = r + 1; s < len; ++s) c[s - 1] = c[s];
          --len;
          update_accept(q);
          if (r == 0) set_front(q);
          break;
        }
      if (len == 0 && !complete_[q]) refill_[nrefill++] = l;
    }
    if (nrefill == 0) return;
    // (Re)build the lists that need it from the class's members, in one pass over them.
    for (int64_t r = 0; r < nrefill; ++r) {
      int64_t q = k * S_ + refill_[r];
      if (!built_[q]) { built_[q] = 1; ++built_in_row_[k]; }
      len_[q] = 0;
      complete_[q] = 1;
      update_accept(q);
    }
    for (int64_t r = head_[k]; r >= 0; r = next_[r]) {
      const T* rr = u_.row(r);
      double rk = -static_cast<double>(rr[k]);
      for (int64_t q = 0; q < nrefill; ++q) {
        int64_t l = refill_[q];
        double v = -static_cast<double>(rr[l]) - rk;
        if (v < accept_[k * S_ + l]) insert(k * S_ + l, v, r);
      }
    }
    for (int64_t r = 0; r < nrefill; ++r) set_front(k * S_ + refill_[r]);
  }

  // Puts item j in class k's member list only.
  void place(int64_t j, int64_t k) {
    labels_[j] = k;
    prev_[j] = -1;
    next_[j] = head_[k];
    if (head_[k] >= 0) prev_[head_[k]] = j;
    head_[k] = j;
    ++count_[k];
  }

  // SSP step: item i (in no class yet) enters along a shortest path from a virtual source
  // (arcs source -> k of cost c_ik) to the sink. The common case, i -> best class -> T,
  // is recognised with two vectorisable passes and an O(1) potential update; anything
  // else runs the full Dijkstra.
  void insert_item(int64_t i) {
    const T* row = u_.row(i);
    double* d = dist_.data();
    if (S_ >= kVectorMin) kernels::entry_costs(row, pot_.data(), d, S_);
    else for (int64_t k = 0; k < S_; ++k) d[k] = -static_cast<double>(row[k]) - pot_[k];
    int64_t k1 = 0;
    double b1 = d[0], b2 = kInf;
    for (int64_t k = 1; k < S_; ++k) {
      if (d[k] < b2) {
        if (d[k] < b1) { b2 = b1; b1 = d[k]; k1 = k; } else { b2 = d[k]; }
      }
    }
    double reach_sink = b1 + pot_[k1] + mu_ * static_cast<double>(flow_[k1]) - pot_[T_];
    double via_moves = kInf;
    if (count_[k1] > 0) {
      const double* m = &move_[k1 * S_];
      double lo = kInf;
      if (S_ >= kVectorMin) lo = kernels::min_difference(m, pot_.data(), S_);
      else for (int64_t l = 0; l < S_; ++l) lo = std::min(lo, m[l] - pot_[l]);
      via_moves = b1 + pot_[k1] + lo;
    }
    if (b2 >= reach_sink && via_moves >= reach_sink) {
      pot_[k1] += b1 - reach_sink;  // p[v] += min(d_v, L) - L; only k1 has d_v < L
      ++flow_[k1];
      add(i, k1);
      return;
    }
    std::fill(pred_.begin(), pred_.end(), -1);  // dist_ already holds the entry costs
    dist_[T_] = kInf;
    int64_t target = shortest_path([this](int64_t v) { return v == T_; }, /*expand_sink=*/false);
    update_potentials(target);
    int64_t first = augment(target);
    add(i, first);
  }

  // Dijkstra over reduced costs from the nodes the caller seeded in dist() (others kInf),
  // until a node with is_target(v) is settled; T is expanded only when expand_sink.
  // Returns the target reached, or -1. pred() holds the shortest-path tree (-1 at roots).
  template <typename IsTarget>
  int64_t shortest_path(IsTarget&& is_target, bool expand_sink) {
    std::fill(open_.begin(), open_.end(), 1);
    for (;;) {
      int64_t v = -1;
      if (S_ >= kVectorMin) {
        v = kernels::argmin_open(dist_.data(), open_.data(), S_);
      } else {
        double best = kInf;
        for (int64_t k = 0; k < S_; ++k)
          if (open_[k] && dist_[k] < best) { best = dist_[k]; v = k; }
      }
      // Prefer the sink on ties: the shorter path, and in SSP it ends the search.
      if (open_[T_] && dist_[T_] < kInf && (v < 0 || dist_[T_] <= dist_[v])) v = T_;
      if (v < 0) return -1;
      open_[v] = 0;
      if (is_target(v)) return v;
      if (v == T_) {
        if (!expand_sink) continue;
        double base = dist_[T_] + pot_[T_];
        for (int64_t l = 0; l < S_; ++l) {
          if (!open_[l] || flow_[l] < 1) continue;
          double c = -mu_ * static_cast<double>(flow_[l] - 1);
          double d = base + c - pot_[l];
          if (d < dist_[l]) { dist_[l] = d; pred_[l] = T_; }
        }
        continue;
      }
      double base = dist_[v] + pot_[v];
      if (open_[T_]) {
        double c = mu_ * static_cast<double>(flow_[v]);
        double d = base + c - pot_[T_];
        if (d < dist_[T_]) { dist_[T_] = d; pred_[T_] = v; }
      }
      if (count_[v] == 0) continue;
      const double* m = &move_[v * S_];
      if (S_ >= kVectorMin) {
        kernels::relax_row(m, pot_.data(), base, open_.data(), dist_.data(), pred_.data(), v, S_);
      } else {
        for (int64_t l = 0; l < S_; ++l) {
          double d = base + m[l] - pot_[l];
          if (open_[l] && d < dist_[l]) { dist_[l] = d; pred_[l] = v; }
        }
      }
    }
  }

  // Is every arc of the tree path to `target` still as cheap as when the search used it?
  // Then the path is still tight (zero reduced cost) under the updated potentials and can
  // be augmented without a new search; arc costs only change when an augmentation
  // touched the class (its cheapest mover, or its sink flow).
  // (record_tree_arcs() must have run right after the search.)
  bool path_unchanged(int64_t target) const {
    for (int64_t b = target; pred_[b] >= 0; b = pred_[b])
      if (arc_cost(pred_[b], b) != arc_cost_[b]) return false;
    return true;
  }

  // Notes the current cost of every tree arc, before any augmentation changes the graph.
  void record_tree_arcs() {
    for (int64_t b = 0; b <= S_; ++b)
      if (pred_[b] >= 0) arc_cost_[b] = arc_cost(pred_[b], b);
  }

  // Cost of the residual arc a -> b (kInf where there is none).
  double arc_cost(int64_t a, int64_t b) const {
    if (b == T_) return mu_ * static_cast<double>(flow_[a]);
    if (a == T_) return flow_[b] >= 1 ? -mu_ * static_cast<double>(flow_[b] - 1) : kInf;
    return move_[a * S_ + b];
  }

  // After shortest_path reached `target` at distance L: p[v] += min(dist[v], L), which keeps
  // every residual arc's reduced cost >= 0 and makes the tree path's arcs tight; then shift
  // all potentials so that p[T] = 0 (shifts change no reduced cost and keep magnitudes small).
  void update_potentials(int64_t target) { update_potentials_capped(dist_[target]); }
  void update_potentials_capped(double L) {
    for (int64_t v = 0; v <= S_; ++v) pot_[v] += std::min(dist_[v], L);
    double shift = pot_[T_];
    for (int64_t v = 0; v <= S_; ++v) pot_[v] -= shift;
  }

  // Pushes one unit along the tree path to `target`: each class -> class arc moves that
  // arc's cheapest member; arcs to or from the sink change the class's sink flow.
  // Returns the first node of the path (its root).
  int64_t augment(int64_t target) {
    path_.clear();
    for (int64_t v = target; v >= 0; v = pred_[v]) path_.push_back(v);
    std::reverse(path_.begin(), path_.end());
    movers_.clear();
    for (size_t s = 0; s + 1 < path_.size(); ++s) {
      int64_t a = path_[s], b = path_[s + 1];
      if (a != T_ && b != T_) movers_.push_back(mover_[a * S_ + b]);  // read before any change
    }
    size_t next = 0;
    for (size_t s = 0; s + 1 < path_.size(); ++s) {
      int64_t a = path_[s], b = path_[s + 1];
      if (b == T_) {
        ++flow_[a];
      } else if (a == T_) {
        --flow_[b];
      } else {
        int64_t j = movers_[next++];
        remove(j);
        add(j, b);
      }
    }
    return path_.front();
  }

  std::vector<double>& dist() { return dist_; }
  bool settled(int64_t v) const { return open_[v] == 0; }
  std::vector<int64_t>& pred() { return pred_; }

 private:
  // Below this many classes the inline scalar loops beat a call into the vector kernels.
  static constexpr int64_t kVectorMin = 8;

  struct Cand {
    double value;  // c_jl - c_jk: cost of moving member j from k to l
    int64_t item;
  };

  // Per-thread storage, reused across solves. At most one CondensedGraph is alive per
  // thread at a time (the warm start finishes its subsample solve before building its own).
  struct Workspace {
    std::vector<int64_t> count, flow, head, next, prev, mover, pred, refill, path, movers;
    std::vector<double> move, pot, dist;
    std::vector<char> open, complete;
    std::vector<double> accept, arc_cost, scratch;
    std::vector<char> built;
    std::vector<int64_t> built_in_row;
    std::vector<Cand> cand;
    std::vector<int32_t> len;
  };
  static Workspace& workspace() {
    static thread_local Workspace ws;
    return ws;
  }

  // Inserts (v, j) into the sorted list q; the caller checked v < accept_[q]. A full list
  // drops its last entry and stops claiming to hold every member of the class.
  void insert(int64_t q, double v, int64_t j) {
    int32_t& len = len_[q];
    Cand* c = &cand_[q * K_];
    if (len == K_) --len;
    int32_t r = len;
    while (r > 0 && v < c[r - 1].value) { c[r] = c[r - 1]; --r; }
    c[r] = Cand{v, j};
    ++len;
    if (len == K_) complete_[q] = 0;
    update_accept(q);
    if (r == 0) { move_[q] = v; mover_[q] = j; }
  }

  void set_front(int64_t q) {
    if (len_[q] > 0) { move_[q] = cand_[q * K_].value; mover_[q] = cand_[q * K_].item; }
    else { move_[q] = kInf; mover_[q] = -1; }
  }

  void update_accept(int64_t q) {
    int32_t len = len_[q];
    accept_[q] = (complete_[q] && len < K_) ? kInf : (len > 0 ? cand_[q * K_ + len - 1].value : -kInf);
  }

  // Offers member j of class k to row k: the cheapest moves (a vector min-update over the
  // whole row), then the candidate lists built so far. A pair's list is built only when its
  // cheapest mover first leaves (remove): until then M[k][l], A[k][l] alone are exact, and
  // most pairs of a large problem never need more.
  void offer(int64_t j, int64_t k) {
    const T* row = u_.row(j);
    double ck = -static_cast<double>(row[k]);
    if (built_in_row_[k] == S_) {  // every list of the row exists, and they keep M, A
      const double* acc = &accept_[k * S_];
      for (int64_t l = 0; l < S_; ++l) {
        double v = -static_cast<double>(row[l]) - ck;
        if (v < acc[l] && l != k) insert(k * S_ + l, v, j);
      }
      return;
    }
    double* v = scratch_.data();
    if (S_ >= kVectorMin) {
      kernels::offer_row(row, ck, &move_[k * S_], &mover_[k * S_], v, j, S_);
    } else {
      double* m = &move_[k * S_];
      int64_t* a = &mover_[k * S_];
      for (int64_t l = 0; l < S_; ++l) {
        v[l] = -static_cast<double>(row[l]) - ck;
        if (v[l] < m[l]) { m[l] = v[l]; a[l] = j; }
      }
    }
    move_[k * S_ + k] = kInf;  // no move from a class to itself
    mover_[k * S_ + k] = -1;
    if (built_in_row_[k] == 0) return;
    const double* acc = &accept_[k * S_];
    const char* built = &built_[k * S_];
    for (int64_t l = 0; l < S_; ++l)
      if (built[l] && v[l] < acc[l] && l != k) insert(k * S_ + l, v[l], j);
  }

  void unlink(int64_t j, int64_t k) {
    if (prev_[j] >= 0) next_[prev_[j]] = next_[j]; else head_[k] = next_[j];
    if (next_[j] >= 0) prev_[next_[j]] = prev_[j];
    --count_[k];
  }

  const Scores<T>& u_;
  const int64_t S_, T_;
  const double mu_;
  int64_t* labels_;
  const int64_t K_;  // capacity of each candidate list
  Workspace& ws_;
  std::vector<int64_t>& count_;
  std::vector<int64_t>& flow_;
  std::vector<int64_t>& head_;   // members of class k: a doubly linked list through next_/prev_
  std::vector<int64_t>& next_;
  std::vector<int64_t>& prev_;
  std::vector<double>& move_;    // M[k][l], row-major
  std::vector<int64_t>& mover_;  // A[k][l]
  std::vector<double>& pot_;     // S classes, then T
  std::vector<double>& dist_;
  std::vector<int64_t>& pred_;
  std::vector<char>& open_;       // not yet settled by the current search
  std::vector<int64_t>& refill_;
  std::vector<int64_t>& path_;
  std::vector<int64_t>& movers_;
  std::vector<Cand>& cand_;      // K cheapest movers of each pair (k, l), sorted
  std::vector<int32_t>& len_;
  std::vector<char>& complete_;  // the list of (k, l) holds every member of k
  std::vector<double>& accept_;  // a mover enters list (k, l) only if cheaper than this
  std::vector<double>& arc_cost_;  // cost of the tree arc into each node when the search ended
  std::vector<char>& built_;          // list (k, l) exists (else M, A alone track the minimum)
  std::vector<int64_t>& built_in_row_;
  std::vector<double>& scratch_;      // one row of move costs
};

}  // namespace cvae
