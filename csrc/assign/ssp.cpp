// placeholder
#include "assign/assign.hpp"
namespace cvae {
template <typename T> void solve_ssp(const Scores<T>& u, double, Output out) { for (int64_t i = 0; i < u.n; ++i) out.labels[i] = 0; }
template void solve_ssp<float>(const Scores<float>&, double, Output);
template void solve_ssp<double>(const Scores<double>&, double, Output);
}
