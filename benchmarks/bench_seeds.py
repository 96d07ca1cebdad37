"""Benchmark: G seeds trained together in one process (``train --seeds``) against G separate
processes, as whole commands, updates per second of the machine.

    python benchmarks/bench_seeds.py --groups 1 2 4 --iters 100 --setting mnist

For each G: one ``--seeds 1-G`` command with ``--threads T`` (default: all usable cores), then G
single-seed commands run at once with ``T / G`` threads each (at least 1), the scaled preset
with the discrete step on from t = 0 and no figures, monitor or evaluation. Startup and the
dataset load are included in both (the same once per process). Prints a Markdown table and
writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import machine_info  # noqa: E402

SETTINGS = {"mnist": ["--preset", "mnist", "--dataset", "mnist5k"],
            "dsprites": ["--preset", "dsprites", "--dataset", "dsprites"]}


def command(setting, iters, threads, out, seeds=None, seed=None):
    cmd = [sys.executable, "-m", "cascadevae.train", *SETTINGS[setting], "--iters", str(iters),
           "--set", "discrete_warmup=0", "--no-eval", "--no-figures", "--mi-every", "0",
           "--no-progress", "--threads", str(threads), "--out", out]
    if seeds is not None:
        cmd += ["--seeds", seeds]
    if seed is not None:
        cmd += ["--seed", str(seed)]
    return cmd


def timed(cmds, env):
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL) for c in cmds]
    for p in procs:
        if p.wait() != 0:
            raise RuntimeError("a training command failed: " + " ".join(p.args))
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--groups", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--setting", choices=list(SETTINGS), default="mnist")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "seeds.json"))
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, CASCADEVAE_CACHE=os.path.join(tmp, "cache"))
        timed([command(args.setting, 2, 1, os.path.join(tmp, "warm"))], env)  # fill the cache
        for g in args.groups:
            group = timed([command(args.setting, args.iters, args.threads,
                                   os.path.join(tmp, f"group{g}"), seeds=f"1-{g}")], env)
            per = max(1, args.threads // g)
            sep = timed([command(args.setting, args.iters, per, os.path.join(tmp, f"sep{g}-{k}"),
                                 seed=k) for k in range(1, g + 1)], env)
            rows.append({"G": g, "group_s": group, "separate_s": sep,
                         "group_updates_per_s": g * args.iters / group,
                         "separate_updates_per_s": g * args.iters / sep,
                         "separate_threads_each": per})
            print(f"G={g}: group {group:.1f} s, {g} processes {sep:.1f} s", flush=True)
    lines = [f"{args.setting}, {args.iters} updates per seed, {args.threads} threads in all:", "",
             "| G seeds | one process (--seeds) s | updates/s | G processes s | updates/s | "
             "processes / group |", "|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['G']} | {r['group_s']:.1f} | {r['group_updates_per_s']:.1f} | "
                     f"{r['separate_s']:.1f} ({r['separate_threads_each']} thread each) | "
                     f"{r['separate_updates_per_s']:.1f} | "
                     f"{r['separate_updates_per_s'] / r['group_updates_per_s']:.2f}x |")
    table = "\n".join(lines)
    print("\n" + table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"machine": machine_info(), "args": vars(args),
                                           "rows": rows, "table": table}, indent=1, default=str))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
