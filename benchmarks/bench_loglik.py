"""Benchmark: fused cascadevae_ext.bernoulli_loglik vs torch eager binary_cross_entropy_with_logits.

For each shape (B, S, P) and thread count t, times (median of --repeat runs after
--warmup runs; by default in blocks, fused then torch, twice, so that noise on a shared
machine hits both; --interleave alternates call by call)

    fused:  torch.from_numpy(cascadevae_ext.bernoulli_loglik(logits, x, num_threads=t))
    torch:  -F.binary_cross_entropy_with_logits(logits, x[:, None, :].expand_as(logits),
                                                 reduction="none").sum(-1)
            with torch.set_num_threads(t)

on CPU torch tensors (logits ~ 3 N(0, 1), x Bernoulli(0.5) or uniform), and reports the
speedup torch / fused, the max abs / rel difference between the two, and each one's max
relative error against a float64 reference. Prints a Markdown table and writes JSON.

With --interleave and t > 1, each fused call starts right after a torch op, while
torch's OpenMP workers may still be spin-waiting on the other cores; the fused kernel's
own threads then compete with them (OMP_WAIT_POLICY=PASSIVE avoids that).

    PYTHONPATH=/tmp/build-loglik python benchmarks/bench_loglik.py --threads 1 2
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from _common import machine_info
import cascadevae_ext

DEFAULT_SHAPES = ["64x3x4096", "64x10x1024", "256x10x4096"]
DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "loglik.json"


def parse_shape(text):
    try:
        B, S, P = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must look like 64x3x4096, got {text!r}")
    return B, S, P


def torch_loglik(logits, x):
    return -F.binary_cross_entropy_with_logits(logits, x[:, None, :].expand_as(logits), reduction="none").sum(-1)


def fused_loglik(logits, x, threads):
    return torch.from_numpy(cascadevae_ext.bernoulli_loglik(logits, x, num_threads=threads))


def reference64(logits, x):
    l64, x64 = logits.double(), x.double()[:, None, :]
    # cancellation-free: (x - [l > 0]) * l - log1p(exp(-|l|))
    return ((x64 - (l64 > 0).double()) * l64 - torch.log1p(torch.exp(-l64.abs()))).sum(-1)


def max_rel(a, ref):
    a, ref = a.double(), ref.double()
    return float(((a - ref).abs() / ref.abs().clamp_min(1e-30)).max()) if ref.numel() else 0.0


def timed(fn, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def bench_case(shape, threads, repeat, warmup, x_kind, seed, interleave):
    B, S, P = shape
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, S, P, generator=g) * 3.0
    x = (torch.rand(B, P, generator=g) < 0.5).float() if x_kind == "binary" else torch.rand(B, P, generator=g)

    torch.set_num_threads(threads)
    with torch.no_grad():
        for _ in range(warmup):
            fused_loglik(logits, x, threads)
            torch_loglik(logits, x)
        t_fused, t_torch = [], []
        if interleave:
            for _ in range(repeat):
                t0 = time.perf_counter()
                fused_loglik(logits, x, threads)
                t1 = time.perf_counter()
                torch_loglik(logits, x)
                t2 = time.perf_counter()
                t_fused.append(t1 - t0)
                t_torch.append(t2 - t1)
        else:
            for half in (repeat - repeat // 2, repeat // 2):
                t_fused += timed(lambda: fused_loglik(logits, x, threads), half)
                t_torch += timed(lambda: torch_loglik(logits, x), half)
        out_fused = fused_loglik(logits, x, threads)
        out_torch = torch_loglik(logits, x)
        ref = reference64(logits, x)

    diff = (out_fused.double() - out_torch.double()).abs()
    med_f, med_t = statistics.median(t_fused), statistics.median(t_torch)
    return {
        "shape": [B, S, P],
        "threads": threads,
        "x_kind": x_kind,
        "interleave": interleave,
        "repeat": repeat,
        "warmup": warmup,
        "fused_median_s": med_f,
        "torch_median_s": med_t,
        "fused_min_s": min(t_fused),
        "torch_min_s": min(t_torch),
        "fused_times_s": t_fused,
        "torch_times_s": t_torch,
        "speedup": med_t / med_f,
        "fused_ns_per_elem": med_f * 1e9 / max(1, B * S * P),
        "max_abs_diff_vs_torch": float(diff.max()) if diff.numel() else 0.0,
        "max_rel_diff_vs_torch": max_rel(out_fused, out_torch),
        "fused_max_rel_err_vs_fp64": max_rel(out_fused, ref),
        "torch_max_rel_err_vs_fp64": max_rel(out_torch, ref),
    }


def markdown(results):
    lines = [
        "| shape (B, S, P) | threads | fused ms | torch ms | speedup | max abs diff | max rel diff | fused rel err vs fp64 | torch rel err vs fp64 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        B, S, P = r["shape"]
        lines.append(
            f"| ({B}, {S}, {P}) | {r['threads']} | {r['fused_median_s'] * 1e3:.3f} | {r['torch_median_s'] * 1e3:.3f} "
            f"| {r['speedup']:.2f}x | {r['max_abs_diff_vs_torch']:.2e} | {r['max_rel_diff_vs_torch']:.2e} "
            f"| {r['fused_max_rel_err_vs_fp64']:.2e} | {r['torch_max_rel_err_vs_fp64']:.2e} |"
        )
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="thread counts to run (same for torch and the fused kernel); default: 1 and all cores")
    p.add_argument("--repeat", type=int, default=50, help="timed runs per case (median reported); default 50")
    p.add_argument("--warmup", type=int, default=5, help="untimed runs per case; default 5")
    p.add_argument("--shapes", type=parse_shape, nargs="+", default=[parse_shape(s) for s in DEFAULT_SHAPES],
                   help="shapes BxSxP; default: " + " ".join(DEFAULT_SHAPES))
    p.add_argument("--x-kind", choices=["binary", "fractional"], default="binary", help="targets; default binary")
    p.add_argument("--interleave", action="store_true",
                   help="alternate fused and torch call by call (each fused call then starts while torch's "
                        "OpenMP workers may still spin); default: blocks of calls, fused then torch, twice")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"output JSON; default {DEFAULT_JSON}")
    args = p.parse_args(argv)
    threads = args.threads or sorted({1, os.cpu_count() or 1})
    if any(t < 1 for t in threads) or args.repeat < 1 or args.warmup < 0:
        p.error("--threads and --repeat must be >= 1, --warmup >= 0")

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = []
    for t in threads:
        for shape in args.shapes:
            r = bench_case(shape, t, args.repeat, args.warmup, args.x_kind, args.seed, args.interleave)
            results.append(r)
            print(f"  {tuple(shape)} threads={t}: fused {r['fused_median_s'] * 1e3:.3f} ms, "
                  f"torch {r['torch_median_s'] * 1e3:.3f} ms, {r['speedup']:.2f}x", file=sys.stderr, flush=True)

    # "cpu_model", "logical_cores": this script's keys before _common
    info = machine_info("ext", keys={"cpu_model": "cpu", "logical_cores": "logical_cpus"})
    print(f"\nCPU: {info['cpu']} ({info['logical_cpus']} logical cores), torch {info['torch']}, "
          f"kernel variant {info['loglik_simd']['selected']}, x {args.x_kind}, median of {args.repeat}"
          + (" interleaved calls" if args.interleave else "")
          + (f", 1-min load average {load_before[0]:.2f} before / {os.getloadavg()[0]:.2f} after" if load_before else "")
          + "\n")
    print(markdown(results))

    payload = {
        "benchmark": "bernoulli_loglik",
        "command": [sys.executable] + sys.argv if argv is None else ["bench_loglik.py"] + list(argv),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "threads": threads,
        "loadavg_before": load_before,  # other processes on the machine skew the timings
        "loadavg_after": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=1) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
