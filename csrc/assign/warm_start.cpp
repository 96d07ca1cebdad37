// placeholder
#include "assign/assign.hpp"
namespace cvae {
template <typename T> void solve_warm(const Scores<T>& u, double mu, Output out, uint64_t) { solve_ssp(u, mu, out); }
template void solve_warm<float>(const Scores<float>&, double, Output, uint64_t);
template void solve_warm<double>(const Scores<double>&, double, Output, uint64_t);
}
