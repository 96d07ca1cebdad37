// The GPU path's solver core (device_core.hpp) run on the host by a one-lane team: method
// "device_core" of cascadevae_ext.assign. It exists so that the exact algorithm the CUDA kernel
// runs is tested on every machine, against the other exact solvers.
#include <stdexcept>
#include <string>
#include <vector>

#include "assign/assign.hpp"
#include "assign/device_core.hpp"

namespace cvae {
namespace {
constexpr size_t kDeviceCoreTableBudget = 48 * 1024;
}  // namespace

template <typename T>
void solve_device_core(const Scores<T>& u, double lam, Output out) {
  if (u.n > INT32_MAX || u.S > INT32_MAX)
    throw std::invalid_argument("device_core indexes items and classes with 32-bit integers: n = " + std::to_string(u.n) +
                                ", S = " + std::to_string(u.S) + " is too large");
  const int32_t n = static_cast<int32_t>(u.n), S = static_cast<int32_t>(u.S);
  const double mu = marginal_step(lam);  // the core's flow step, as the CUDA kernel forms it
  // The kernel copies the costs into shared memory when they fit beside its state; here the
  // same choice is made against the 48 KiB every GPU block may use, so that tests run both
  // paths (small problems with the table, larger ones reading u in place).
  const size_t state = core::CoreWorkspace::bytes(n, S);
  const bool table = state + core::CostTable::bytes(n, S) <= kDeviceCoreTableBudget;
  const size_t bytes = state + (table ? core::CostTable::bytes(n, S) : 0);
  // One block per thread, reused across solves (no malloc for repeated small problems).
  static thread_local std::vector<double> block;
  if (block.size() * sizeof(double) < bytes) block.resize((bytes + sizeof(double) - 1) / sizeof(double));
  core::SerialTeam team;
  core::StridedScores<T> scores{u.data, u.ld, 1};
  if (table) {
    double* costs = block.data();
    core::CostTable::fill(team, scores, n, S, costs);
    core::CoreWorkspace ws = core::CoreWorkspace::carve(costs + static_cast<int64_t>(n) * S, n, S);
    core::SspCore<core::CostTable, core::SerialTeam>(team, core::CostTable{costs, S}, n, S, mu, ws)
        .solve(out.labels, out.prices);
  } else {
    core::CoreWorkspace ws = core::CoreWorkspace::carve(block.data(), n, S);
    core::SspCore<core::StridedScores<T>, core::SerialTeam>(team, scores, n, S, mu, ws).solve(out.labels, out.prices);
  }
}

template void solve_device_core<float>(const Scores<float>&, double, Output);
template void solve_device_core<double>(const Scores<double>&, double, Output);

}  // namespace cvae
