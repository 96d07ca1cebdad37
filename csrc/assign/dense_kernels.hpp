// Vector kernels for the dense loops of the condensed-graph solvers (rows of S doubles).
// Each is compiled for AVX2 and for the baseline ISA and picked at load time (GCC
// target_clones), so a portable wheel still runs the wide version where the CPU has it.
#pragma once
#include <cstdint>

namespace cvae::kernels {

// Dijkstra relaxation from node v over a row of arc costs m (kInf = no arc):
// for every open l, d = base + m[l] - pot[l]; if d < dist[l], take it (dist, pred).
void relax_row(const double* m, const double* pot, double base, const char* open, double* dist,
               int64_t* pred, int64_t v, int64_t S);

// Index of the smallest dist[l] over open l (first on ties), or -1 if none is finite.
int64_t argmin_open(const double* dist, const char* open, int64_t S);

// min over l of (m[l] - pot[l]).
double min_difference(const double* m, const double* pot, int64_t S);

// out[l] = -u[l] - pot[l] (reduced cost of entering each class from a virtual source).
void entry_costs(const float* u, const double* pot, double* out, int64_t S);
void entry_costs(const double* u, const double* pot, double* out, int64_t S);

// Index of the class minimising price[l] - u[l] (first on ties). scratch: S doubles.
int64_t cheapest_class(const float* u, const double* price, double* scratch, int64_t S);
int64_t cheapest_class(const double* u, const double* price, double* scratch, int64_t S);

// Offering member j of class k to row k of the cheapest-move matrix: v[l] = -u[l] - ck
// (cost of moving j to l), and where v[l] < m[l], m[l] = v[l] and a[l] = j.
void offer_row(const float* u, double ck, double* m, int64_t* a, double* v, int64_t j, int64_t S);
void offer_row(const double* u, double ck, double* m, int64_t* a, double* v, int64_t j, int64_t S);

}  // namespace cvae::kernels
