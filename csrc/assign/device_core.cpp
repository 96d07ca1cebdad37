// The GPU path's solver core (device_core.hpp) run on the host by a one-lane team: method
// "device_core" of cascadevae_ext.assign. It exists so that the exact algorithm the CUDA kernel
// runs is tested on every machine, against the other exact solvers.
#include <stdexcept>
#include <string>
#include <vector>

#include "assign/assign.hpp"
#include "assign/device_core.hpp"

namespace cvae {

template <typename T>
void solve_device_core(const Scores<T>& u, double mu, Output out) {
  if (u.n > INT32_MAX || u.S > INT32_MAX)
    throw std::invalid_argument("device_core indexes items and classes with 32-bit integers: n = " + std::to_string(u.n) +
                                ", S = " + std::to_string(u.S) + " is too large");
  // One block per thread, reused across solves (no malloc for repeated small problems).
  static thread_local std::vector<double> block;
  const size_t bytes = core::CoreWorkspace::bytes(u.n, u.S);
  if (block.size() * sizeof(double) < bytes) block.resize((bytes + sizeof(double) - 1) / sizeof(double));
  core::CoreWorkspace ws = core::CoreWorkspace::carve(block.data(), u.n, u.S);
  core::SerialTeam team;
  core::StridedScores<T> scores{u.data, u.ld, 1};
  core::SspCore<T, core::SerialTeam> solver(team, scores, static_cast<int32_t>(u.n), static_cast<int32_t>(u.S), mu, ws);
  solver.solve(out.labels, out.prices);
}

template void solve_device_core<float>(const Scores<float>&, double, Output);
template void solve_device_core<double>(const Scores<double>&, double, Output);

}  // namespace cvae
