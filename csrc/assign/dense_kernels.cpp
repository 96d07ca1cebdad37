// Definitions of dense_kernels.hpp. The loops are written so that GCC vectorises them:
// selects instead of branches, and min reductions allowed to reorder (the values are never
// NaN, and signed zeros do not matter for a minimum's value).
#include "assign/dense_kernels.hpp"

#include <limits>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define CVAE_CLONES __attribute__((target_clones("avx2", "default")))
#define CVAE_MIN_REDUCTION __attribute__((optimize("no-signed-zeros", "finite-math-only")))
#else
#define CVAE_CLONES
#define CVAE_MIN_REDUCTION
#endif

namespace cvae::kernels {
namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
// Sentinel for the reductions compiled with finite-math-only: never compare against inf there.
constexpr double kHuge = std::numeric_limits<double>::max();

CVAE_CLONES CVAE_MIN_REDUCTION double min_open_value(const double* __restrict dist, const char* __restrict open,
                                                     int64_t S) {
  double best = kHuge;
  for (int64_t l = 0; l < S; ++l) {
    double x = open[l] ? dist[l] : kHuge;
    best = x < best ? x : best;
  }
  return best;
}

CVAE_CLONES CVAE_MIN_REDUCTION double min_value(const double* __restrict x, int64_t S) {
  double best = kHuge;
  for (int64_t l = 0; l < S; ++l) best = x[l] < best ? x[l] : best;
  return best;
}

CVAE_CLONES void price_minus(const float* __restrict u, const double* __restrict price, double* __restrict out,
                             int64_t S) {
  for (int64_t l = 0; l < S; ++l) out[l] = price[l] - static_cast<double>(u[l]);
}
CVAE_CLONES void price_minus(const double* __restrict u, const double* __restrict price, double* __restrict out,
                             int64_t S) {
  for (int64_t l = 0; l < S; ++l) out[l] = price[l] - u[l];
}

template <typename T>
int64_t cheapest_class_impl(const T* u, const double* price, double* scratch, int64_t S) {
  if (S < 16) {  // too short for the vector passes to pay
    int64_t best = 0;
    double best_cost = price[0] - static_cast<double>(u[0]);
    for (int64_t l = 1; l < S; ++l) {
      double c = price[l] - static_cast<double>(u[l]);
      if (c < best_cost) { best_cost = c; best = l; }
    }
    return best;
  }
  price_minus(u, price, scratch, S);
  double best = min_value(scratch, S);
  for (int64_t l = 0; l < S; ++l)
    if (scratch[l] == best) return l;
  return 0;
}
}  // namespace

CVAE_CLONES void relax_row(const double* __restrict m, const double* __restrict pot, double base,
                           const char* __restrict open, double* __restrict dist, int64_t* __restrict pred,
                           int64_t v, int64_t S) {
  for (int64_t l = 0; l < S; ++l) {
    double d = base + m[l] - pot[l];
    bool take = (d < dist[l]) & (open[l] != 0);
    dist[l] = take ? d : dist[l];
    pred[l] = take ? v : pred[l];
  }
}

int64_t argmin_open(const double* dist, const char* open, int64_t S) {
  double best = min_open_value(dist, open, S);
  if (!(best < kInf) || best == kHuge) return -1;
  for (int64_t l = 0; l < S; ++l)
    if (open[l] && dist[l] == best) return l;
  return -1;
}

CVAE_CLONES CVAE_MIN_REDUCTION double min_difference(const double* __restrict m, const double* __restrict pot,
                                                     int64_t S) {
  double best = kHuge;
  for (int64_t l = 0; l < S; ++l) {
    double x = m[l] - pot[l];
    best = x < best ? x : best;
  }
  return best;
}

CVAE_CLONES void entry_costs(const float* __restrict u, const double* __restrict pot, double* __restrict out,
                             int64_t S) {
  for (int64_t l = 0; l < S; ++l) out[l] = -static_cast<double>(u[l]) - pot[l];
}
CVAE_CLONES void entry_costs(const double* __restrict u, const double* __restrict pot, double* __restrict out,
                             int64_t S) {
  for (int64_t l = 0; l < S; ++l) out[l] = -u[l] - pot[l];
}

CVAE_CLONES void offer_row(const float* __restrict u, double ck, double* __restrict m, int64_t* __restrict a,
                           double* __restrict v, int64_t j, int64_t S) {
  for (int64_t l = 0; l < S; ++l) {
    double x = -static_cast<double>(u[l]) - ck;
    v[l] = x;
    bool take = x < m[l];
    m[l] = take ? x : m[l];
    a[l] = take ? j : a[l];
  }
}
CVAE_CLONES void offer_row(const double* __restrict u, double ck, double* __restrict m, int64_t* __restrict a,
                           double* __restrict v, int64_t j, int64_t S) {
  for (int64_t l = 0; l < S; ++l) {
    double x = -u[l] - ck;
    v[l] = x;
    bool take = x < m[l];
    m[l] = take ? x : m[l];
    a[l] = take ? j : a[l];
  }
}

int64_t cheapest_class(const float* u, const double* price, double* scratch, int64_t S) {
  return cheapest_class_impl(u, price, scratch, S);
}
int64_t cheapest_class(const double* u, const double* price, double* scratch, int64_t S) {
  return cheapest_class_impl(u, price, scratch, S);
}

}  // namespace cvae::kernels
