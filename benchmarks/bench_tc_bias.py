"""Bias of the TC(z) estimators on aggregates with a known answer (docs/evaluation.md).

Cases (posterior means mu_i drawn from the aggregate's distribution, every posterior std sd,
one z sample per point):

* independent: mu ~ N(0, I_m), true TC of the aggregate = 0;
* correlated: mu ~ N(0, Sigma) with pairs of dims at correlation rho; the aggregate is
  N(0, Sigma + sd^2 I), TC = 0.5 (sum_j log C_jj - log det C).

Estimators: ``ksg`` (the default of cascadevae.evaluate) and ``minibatch_importance`` with the
dataset size N = 737,280 (dSprites) and with N = n (what evaluate passed before).

    python benchmarks/bench_tc_bias.py --points 4000 10000
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cascadevae.metrics import total_correlation  # noqa: E402

CASES = [("independent", 4, 0.0, 0.1), ("independent", 6, 0.0, 0.1),
         ("independent", 6, 0.0, 0.03), ("independent", 10, 0.0, 0.03),
         ("correlated", 4, 0.5, 0.1), ("correlated", 6, 0.8, 0.03),
         ("correlated", 10, 0.3, 0.03)]


def case(kind, m, rho, sd, n, rng):
    cov = np.eye(m)
    if kind == "correlated":
        for a in range(0, m - 1, 2):
            cov[a, a + 1] = cov[a + 1, a] = rho
    mu = rng.multivariate_normal(np.zeros(m), cov, size=n)
    c = cov + sd ** 2 * np.eye(m)
    true = 0.5 * (np.sum(np.log(np.diag(c))) - np.linalg.slogdet(c)[1])
    return mu, np.full((n, m), sd), float(true)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--points", type=int, nargs="+", default=[4000, 10000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kernel-max-points", type=int, default=4000,
                   help="skip the O(n^2 m) kernel estimator above this many points")
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "tc_bias.json"))
    args = p.parse_args(argv)
    rows = []
    lines = ["| case | m | rho | posterior std | points n | true TC | ksg | kernel, N = 737,280 | "
             "kernel, N = n |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in args.points:
        for kind, m, rho, sd in CASES:
            rng = np.random.default_rng(args.seed + m)
            mu, std, true = case(kind, m, rho, sd, n, rng)
            t0 = time.time()
            ksg = total_correlation(mu, std, dataset_size=737280, seed=1)["tc_estimate"]
            row = {"case": kind, "m": m, "rho": rho, "sd": sd, "n": n, "true": true, "ksg": ksg,
                   "ksg_seconds": time.time() - t0}
            if n <= args.kernel_max_points:
                row["kernel_N_dataset"] = total_correlation(
                    mu, std, dataset_size=737280, estimator="minibatch_importance")["tc_estimate"]
                row["kernel_N_points"] = total_correlation(
                    mu, std, dataset_size=n, estimator="minibatch_importance")["tc_estimate"]
            rows.append(row)
            fmt = lambda k: f"{row[k]:.2f}" if k in row else "-"  # noqa: E731
            lines.append(f"| {kind} | {m} | {rho:g} | {sd:g} | {n} | {true:.3f} | {ksg:.3f} | "
                         f"{fmt('kernel_N_dataset')} | {fmt('kernel_N_points')} |")
    table = "\n".join(lines)
    print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"rows": rows, "table": table}, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
