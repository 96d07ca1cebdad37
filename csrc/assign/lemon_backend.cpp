// placeholder: LEMON NetworkSimplex backend
#include "assign/assign.hpp"
namespace cvae {
bool lemon_available() { return false; }
template <typename T> void solve_lemon(const Scores<T>&, double, Output) { throw std::runtime_error("lemon backend not built"); }
template void solve_lemon<float>(const Scores<float>&, double, Output);
template void solve_lemon<double>(const Scores<double>&, double, Output);
}
