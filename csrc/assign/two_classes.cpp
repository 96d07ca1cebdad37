// placeholder
#include "assign/assign.hpp"
namespace cvae {
template <typename T> void solve_two_classes(const Scores<T>& u, double mu, Output out) { solve_ssp(u, mu, out); }
template void solve_two_classes<float>(const Scores<float>&, double, Output);
template void solve_two_classes<double>(const Scores<double>&, double, Output);
}
