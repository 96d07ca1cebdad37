#!/usr/bin/env python
"""Benchmark of the exact CascadeVAE assignment: cascadevae_ext.assign against generic
min-cost-flow solvers, side by side in one run.

Families (both float32, as the scores come out of a float32 model; _common.assign_problem):
  A  u uniform [0, 1),            lam = S / (2n)   (strong penalty)
  B  u = -(100 + 10 N(0, 1)),     lam = 2^-11      (weak penalty, CascadeVAE-like)

Timed, per problem:
  auto, ssp, warm   cascadevae_ext.assign(u, lam, method) per call, INCLUDING the Python call
                    (argument checks, finiteness scan, output allocation);
  lemon             the same call with method="lemon": LEMON NetworkSimplex on the full flow
                    graph (graph build + solve), per call;
  ortools           OR-Tools SimpleMinCostFlow, solve() only: the graph (source -> item cap 1,
                    item -> class cap 1, class -> sink unit arcs costing mu t) is built
                    beforehand. OR-Tools needs integer costs, so it solves the problem with
                    costs rounded to multiples of 2^-20 (int64); its objective is evaluated on
                    the real scores and its gap is reported separately.
Each time is the median over --repeat repeats; a repeat runs the call in a loop long enough
(--min-time) to measure microsecond calls (timeit-style). The slow baselines (lemon, ortools)
are skipped, with the reason in the table, when the time estimated from the previous size of
the same family exceeds --max-seconds, or when their graph would not fit in memory.

Usage:
  python benchmarks/bench_assign.py                       # all sizes, all methods
  python benchmarks/bench_assign.py --quick               # small sizes, a few seconds
  python benchmarks/bench_assign.py --sizes 1024x10,4096x100 --methods auto,lemon,ortools
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from _common import ASSIGN_FAMILIES, REPO, assign_objective, assign_problem, machine_info
import cascadevae_ext as ce

DEFAULT_SIZES = "64x3,64x10,1024x10,4096x100,65536x10,65536x100,65536x1000"
QUICK_SIZES = "64x3,64x10,1024x10"
ALL_METHODS = ("auto", "ssp", "warm", "lemon", "ortools")
OURS = ("auto", "ssp", "warm")
EXACT = ("auto", "ssp", "warm", "lemon")  # solve the float problem itself
COST_SCALE = 2**20  # OR-Tools: integer costs in units of 2^-20
WRONG_GAP = 1e-9  # an exact method whose objective falls further behind is flagged
BYTES_PER_ARC = {"lemon": 120, "ortools": 120}  # rough peak memory per arc of the flow graph


# ---- timing ------------------------------------------------------------------------------------

def measure(fn, repeat: int, min_time: float, budget: float):
    """Median seconds per call of fn(). A repeat loops fn until it has run >= min_time; a call
    slower than min_time is its own repeat (the first one counts). Stops repeating once more
    than `budget` seconds went by (at least one repeat). Returns (result, samples, loops)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        result = fn()
        first = time.perf_counter() - start
        samples, loops = [], 1
        if first >= min_time:
            samples.append(first)
        else:  # calibrate the loop count (timeit.autorange style)
            loops = max(1, int(min_time / max(first, 1e-7)))
            while True:
                t0 = time.perf_counter()
                for _ in range(loops):
                    fn()
                elapsed = time.perf_counter() - t0
                if elapsed >= min_time:
                    break
                loops = max(loops + 1, int(loops * 1.2 * min_time / max(elapsed, 1e-9)))
        while len(samples) < repeat:
            if samples and time.perf_counter() - start > budget:
                break
            t0 = time.perf_counter()
            for _ in range(loops):
                fn()
            samples.append((time.perf_counter() - t0) / loops)
        return result, samples, loops
    finally:
        if gc_was_enabled:
            gc.enable()


# ---- baselines -----------------------------------------------------------------------------------

def ortools_module():
    try:
        from ortools.graph.python import min_cost_flow
    except ImportError as e:  # optional dependency (pip install cascadevae[bench])
        return None, f"OR-Tools not importable ({e}); pip install ortools"
    return min_cost_flow, None


def sink_arcs_per_class(int_costs: np.ndarray, int_mu: int, n: int, S: int) -> int:
    """Unit class -> sink arcs per class that keep every optimal flow (same bound as the LEMON
    backend, on the integer problem): n_k <= 1 + floor(n/S) + R / mu, R = max row range."""
    if int_mu <= 0:
        return 1  # all marginal costs are 0: one arc of capacity n + 1
    rng_max = int(np.max(int_costs.max(axis=1) - int_costs.min(axis=1))) if n else 0
    return int(min(n + 1, n // S + 2 + rng_max // int_mu))


def build_ortools(mcf, u: np.ndarray, lam: float, full_sink_arcs: bool):
    """SimpleMinCostFlow for the rounded problem: node 0 source, 1..n items, n+1..n+S classes,
    n+S+1 sink. Returns (solver, index of the first item -> class arc, arcs)."""
    n, S = u.shape
    costs = np.rint(-u.astype(np.float64) * COST_SCALE).astype(np.int64)
    int_mu = int(round(2.0 * lam * COST_SCALE))
    per_class = n if full_sink_arcs else sink_arcs_per_class(costs, int_mu, n, S)
    merged = int_mu == 0 and not full_sink_arcs
    items = np.arange(1, n + 1, dtype=np.int32)
    classes = np.arange(n + 1, n + S + 1, dtype=np.int32)
    sink = n + S + 1
    t = np.arange(per_class, dtype=np.int64)
    tails = np.concatenate([np.zeros(n, np.int32), np.repeat(items, S), np.repeat(classes, per_class)])
    heads = np.concatenate([items, np.tile(classes, n), np.full(S * per_class, sink, np.int32)])
    caps = np.ones(len(tails), np.int64)
    if merged:
        caps[-S:] = n + 1
    sink_costs = np.tile(int_mu * t, S)
    unit_costs = np.concatenate([np.zeros(n, np.int64), costs.ravel(), sink_costs])
    solver = mcf.SimpleMinCostFlow()
    solver.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, unit_costs)
    solver.set_nodes_supplies(np.array([0, sink], np.int32), np.array([n, -n], np.int64))
    return solver, n, len(tails)


def ortools_labels(solver, first_arc: int, n: int, S: int) -> np.ndarray:
    flows = solver.flows(np.arange(first_arc, first_arc + n * S, dtype=np.int32)).reshape(n, S)
    return np.argmax(flows, axis=1).astype(np.int64)


def estimate_seconds(method: str, prev, n: int, S: int):
    """Time estimated from the largest case of the same family already measured, or None.
    LEMON's network simplex grows about like n^2.5 S^0.5 on these graphs; OR-Tools' cost scaling
    roughly like (n S)^1.3."""
    if prev is None:
        return None
    pn, pS, pt = prev
    if method == "lemon":
        return pt * (n / pn) ** 2.5 * max(S / pS, 0.1) ** 0.5
    return pt * max(n * S / (pn * pS), 0.1) ** 1.3


def mem_available_bytes():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ---- reporting -------------------------------------------------------------------------------

def fmt_time(s):
    if s is None:
        return "-"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def fmt_speedup(base, ours):
    if base is None or ours is None or ours <= 0:
        return "-"
    return f"{base / ours:.1f}x"


# ---- main ------------------------------------------------------------------------------------

def parse_sizes(text):
    sizes = []
    for item in text.split(","):
        item = item.strip().lower().replace(" ", "")
        if not item:
            continue
        try:
            n, S = (int(v) for v in item.split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"size {item!r} is not NxS, e.g. 1024x10")
        if n < 1 or S < 1:
            raise argparse.ArgumentTypeError(f"size {item!r}: n and S must be >= 1")
        sizes.append((n, S))
    return sizes


def parse_list(allowed):
    def parse(text):
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if t not in allowed]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(allowed)}")
        return items
    return parse


def run_case(family, n, S, args, methods, prev, mcf, mcf_reason):
    u, lam = assign_problem(family, n, S, args.seed)
    budget = args.max_seconds if args.max_seconds > 0 else math.inf
    results, labels = {}, {}
    for m in methods:
        r = {"status": "ok"}
        if m in OURS or m == "lemon":
            if m == "lemon" and not ce.build_info()["lemon"]:
                results[m] = {"status": "unavailable", "reason": "cascadevae_ext built without LEMON"}
                continue
            if m == "lemon":
                skip = baseline_skip(m, prev.get((family, m)), n, S, n * S + S * n, args)
                if skip:
                    results[m] = {"status": "skipped", "reason": skip}
                    continue
            out, samples, loops = measure(lambda: ce.assign(u, lam, m), args.repeat, args.min_time, budget)
            labels[m] = out
        else:  # ortools
            if mcf is None:
                results[m] = {"status": "unavailable", "reason": mcf_reason}
                continue
            skip = baseline_skip(m, prev.get((family, m)), n, S, n + n * S + S * n, args)
            if skip:
                results[m] = {"status": "skipped", "reason": skip}
                continue
            t0 = time.perf_counter()
            solver, first_arc, arcs = build_ortools(mcf, u, lam, args.ortools_full_graph)
            r["build_s"] = time.perf_counter() - t0
            r["arcs"] = arcs
            status, samples, loops = measure(solver.solve, args.repeat, args.min_time, budget)
            if status != solver.OPTIMAL:
                results[m] = {"status": "failed", "reason": f"SimpleMinCostFlow status {status}"}
                continue
            labels[m] = ortools_labels(solver, first_arc, n, S)
            del solver
        r.update(median_s=statistics.median(samples), samples_s=samples, loops=loops, repeats=len(samples))
        results[m] = r
        if m in ("lemon", "ortools"):
            prev[(family, m)] = (n, S, r["median_s"])
    # Objectives on the real scores, and each method's shortfall from the best one found. No
    # labelling beats the optimum, so the best is a lower bound on it: an exact method's gap
    # must be ~0 (OR-Tools' may be positive, from the rounding of its costs).
    for m, d in labels.items():
        results[m]["objective"] = assign_objective(u, lam, d)
    best = max((results[m]["objective"] for m in labels), default=None)
    gaps = {}
    for m in labels:
        gaps[m] = (best - results[m]["objective"]) / max(1.0, abs(best))
        results[m]["rel_gap"] = gaps[m]
    case = {
        "family": family, "n": n, "S": S, "lam": lam, "dtype": str(u.dtype),
        "results": results,
        "best_objective": best,
        "max_rel_gap_exact": max((gaps[m] for m in gaps if m in EXACT), default=None),
        "ortools_rel_gap": gaps.get("ortools"),
        "speedups": {},
    }
    for m in OURS:
        t = results.get(m, {}).get("median_s")
        case["speedups"][m] = {
            "vs_lemon": (results.get("lemon", {}).get("median_s") / t) if t and results.get("lemon", {}).get("median_s") else None,
            "vs_ortools": (results.get("ortools", {}).get("median_s") / t) if t and results.get("ortools", {}).get("median_s") else None,
        }
    del u
    return case


def baseline_skip(method, prev, n, S, arcs, args):
    """Reason to skip a slow baseline, or None."""
    avail = mem_available_bytes()
    need = arcs * BYTES_PER_ARC[method]
    if avail is not None and need > 0.6 * avail:
        return f"graph of ~{arcs / 1e6:.0f}M arcs needs ~{need / 2**30:.1f} GiB, {avail / 2**30:.1f} GiB available"
    if args.max_seconds <= 0:
        return None
    est = estimate_seconds(method, prev, n, S)
    if est is None:
        if n * S > 4096 * 100:
            return "no smaller size of this family measured in this run to estimate its time from"
        return None
    if est > args.max_seconds:
        return f"estimated {est:.0f} s per call > --max-seconds {args.max_seconds:g}"
    return None


def print_table(cases, methods):
    names = {"auto": "auto", "ssp": "ssp", "warm": "warm", "lemon": "LEMON", "ortools": "OR-Tools"}
    head = ["case", "family"] + [names[m] for m in methods]
    ours_shown = [m for m in OURS if m in methods]
    if "lemon" in methods:
        head += [f"{m} vs LEMON" for m in ours_shown]
    if "ortools" in methods:
        head += [f"{m} vs OR-Tools" for m in ours_shown]
    head += ["max rel gap (exact)", "OR-Tools gap"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    skipped = []
    for c in cases:
        row = [f"{c['n']} x {c['S']}", c["family"]]
        for m in methods:
            r = c["results"][m]
            if r["status"] == "ok":
                wrong = m in EXACT and r.get("rel_gap", 0.0) > WRONG_GAP
                row.append(fmt_time(r["median_s"]) + (" (not optimal!)" if wrong else ""))
                if wrong:
                    skipped.append(f"{c['family']} {c['n']} x {c['S']} {names[m]}: NOT OPTIMAL, objective "
                                   f"{r['objective']:.10g} is {r['rel_gap']:.2e} (relative) below the best; "
                                   "its speedups are meaningless")
            else:
                row.append(f"- ({r['status']})")
                skipped.append(f"{c['family']} {c['n']} x {c['S']} {names[m]}: {r['status']}: {r['reason']}")
        t = {m: c["results"][m].get("median_s") for m in methods}
        if "lemon" in methods:
            row += [fmt_speedup(t["lemon"], t[m]) for m in ours_shown]
        if "ortools" in methods:
            row += [fmt_speedup(t["ortools"], t[m]) for m in ours_shown]
        g = c["max_rel_gap_exact"]
        row.append("-" if g is None else f"{g:.1e}")
        g = c["ortools_rel_gap"]
        row.append("-" if g is None else f"{g:.1e}")
        print("| " + " | ".join(row) + " |")
    return skipped


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=parse_sizes, default=None, help=f"comma-separated NxS (default {DEFAULT_SIZES})")
    p.add_argument("--families", type=parse_list(tuple(ASSIGN_FAMILIES)), default=list(ASSIGN_FAMILIES),
                   help="A,B (default both)")
    p.add_argument("--methods", type=parse_list(ALL_METHODS), default=list(ALL_METHODS),
                   help=f"comma-separated subset of {','.join(ALL_METHODS)} (default all)")
    p.add_argument("--repeat", type=int, default=None, help="timed repeats per method and case; median reported (default 5, quick 3)")
    p.add_argument("--min-time", type=float, default=None,
                   help="seconds each repeat loops the call for (default 0.05, quick 0.01)")
    p.add_argument("--max-seconds", type=float, default=60.0,
                   help="per case: skip a slow baseline (lemon, ortools) whose estimated time per call exceeds this, "
                        "and stop repeating any method after this many seconds; 0: no limit (default 60)")
    p.add_argument("--quick", action="store_true", help=f"smoke run: sizes {QUICK_SIZES}, few repeats")
    p.add_argument("--json", type=Path, default=None,
                   help="write results here (default benchmarks/results/assign.json, quick: assign_quick.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ortools-full-graph", action="store_true",
                   help="give OR-Tools n unit sink arcs per class instead of the pruned set (see build_ortools)")
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = parse_sizes(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.min_time is None:
        args.min_time = 0.01 if args.quick else 0.05
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    if args.json is None:
        args.json = REPO / "benchmarks" / "results" / ("assign_quick.json" if args.quick else "assign.json")

    methods = [m for m in ALL_METHODS if m in args.methods]
    mcf, mcf_reason = ortools_module() if "ortools" in methods else (None, None)
    # "cores", "cores_usable", "cascadevae_ext", "build_info": this script's keys before _common
    info = machine_info("ext", "git", "ortools", "invocation",
                        keys={"cores": "logical_cpus", "cores_usable": "usable_cores",
                              "cascadevae_ext": "ext_file", "build_info": "ext_build"})
    print(f"# cascadevae_ext.assign benchmark\n\n{info['cpu']}, {info['cores']} cores, Python {info['python']}, "
          f"numpy {info['numpy']}, OR-Tools {info['ortools'] or 'not installed'}, commit {(info['git_commit'] or '?')[:12]}"
          f"{' (dirty)' if info['git_dirty'] else ''}\n", flush=True)

    cases, prev = [], {}
    for n, S in sorted(args.sizes, key=lambda s: (s[0] * s[1], s[0])):
        for family in args.families:
            t0 = time.perf_counter()
            case = run_case(family, n, S, args, methods, prev, mcf, mcf_reason)
            case["wall_s"] = time.perf_counter() - t0
            cases.append(case)
            print(f"  {family} {n} x {S}: " + ", ".join(
                f"{m} {fmt_time(case['results'][m].get('median_s'))}" for m in methods) +
                f"  ({case['wall_s']:.1f} s)", file=sys.stderr, flush=True)

    print()
    skipped = print_table(cases, methods)
    print("\nTimes: median per call. auto/ssp/warm/LEMON include the Python call (argument checks, "
          "finiteness scan, output); LEMON builds its graph in every call. OR-Tools: solve() only, "
          f"on costs rounded to multiples of 2^-{int(math.log2(COST_SCALE))} (it solves the rounded problem; "
          "'OR-Tools gap' is its objective's shortfall on the real scores). "
          "'max rel gap (exact)': largest (best - objective) / max(1, |best|) among the exact methods, "
          "best = the highest objective any method found.")
    if not args.ortools_full_graph and "ortools" in methods:
        print("OR-Tools gets the same pruned class -> sink arcs as the LEMON backend "
              "(min(n + 1, n/S + 2 + R/mu) per class; no optimal flow uses more).")
    if skipped:
        print("\nNot measured, or not optimal:")
        for s in skipped:
            print(f"- {s}")

    out = {"machine": info, "settings": {
        "sizes": [list(s) for s in args.sizes], "families": args.families, "methods": methods,
        "repeat": args.repeat, "min_time_s": args.min_time, "max_seconds": args.max_seconds, "seed": args.seed,
        "quick": args.quick, "ortools_cost_scale": COST_SCALE, "ortools_full_graph": args.ortools_full_graph,
        "dtype": "float32"}, "cases": cases}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
