"""A grid of settings x seeds: ``python -m cascadevae.sweep``.

    python -m cascadevae.sweep --preset factor-vae --grid "tc_weight=10,20,35,50" \\
        --grid "beta=1,2" --seeds 1-10 --iters 20000 --jobs 2 --out sweeps/factor

Every point (one setting, one seed) is an ordinary run directory,
``OUT/<key=value,...>/seed-<k>``, trained by ``python -m cascadevae.train`` with those
``--set`` values; OUT/manifest.json lists the grid, the command of every point and its status.
Points run ``--jobs`` at a time as processes on this machine (one thread each by default);
``--print-commands`` prints one command per point instead, for a cluster launcher (a SLURM job
array, submitit: see docs/scaling.md). Rerunning a sweep skips finished points and resumes
interrupted ones, so it can be continued after a stop.

``python -m cascadevae.report OUT --best-setting`` then aggregates the sweep and picks, per
model, the setting with the best mean score over seeds, as the paper did for FactorVAE.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .presets import get_preset, preset_names
from .run_dir import atomic_write_json
from .training.cli import parse_value

MANIFEST = "manifest.json"


def parse_grid(items: Sequence[str]) -> List[Tuple[str, List[Any]]]:
    """``["tc_weight=10,20", "beta=1,2"]`` -> [("tc_weight", [10, 20]), ("beta", [1, 2])]."""
    grid = []
    for item in items:
        if "=" not in item:
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,...")
        key, values = item.split("=", 1)
        vals = [parse_value(v) for v in values.split(",") if v.strip()]
        if not key.strip() or not vals:
            raise ValueError(f"--grid {item!r}: expected KEY=V1,V2,...")
        grid.append((key.strip(), vals))
    keys = [k for k, _ in grid]
    if len(set(keys)) != len(keys):
        raise ValueError(f"--grid names a key twice: {keys}")
    return grid


def parse_seeds(text: str) -> List[int]:
    """``"1-10"``, ``"1,2,5"`` or ``"1-3,7"`` -> the seeds."""
    seeds: List[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            lo, hi = part.split("-", 1)
            seeds += list(range(int(lo), int(hi) + 1))
        elif part:
            seeds.append(int(part))
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds {text!r}: expected distinct seeds >= 0, e.g. 1-10 or 1,2,5")
    return seeds


def setting_name(setting: Dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in setting.items()) or "default"


def points(preset: str, grid, seeds, iters: Optional[int], extra: Sequence[str],
           out: Path, threads: int) -> List[Dict[str, Any]]:
    """Every (setting, seed) of the grid with its run directory and command; each setting is
    checked against the preset first, so a bad key or value fails before anything runs."""
    keys = [k for k, _ in grid]
    todo = []
    for values in itertools.product(*[vals for _, vals in grid]) if grid else [()]:
        setting = dict(zip(keys, values))
        get_preset(preset, **setting)   # validates the setting (ValueError names it)
        for seed in seeds:
            run_dir = out / setting_name(setting) / f"seed-{seed}"
            cmd = [sys.executable, "-m", "cascadevae.train", "--preset", preset, "--seed",
                   str(seed), "--threads", str(threads), "--no-progress", "--out", str(run_dir)]
            if iters is not None:
                cmd += ["--iters", str(iters)]
            for k, v in setting.items():
                cmd += ["--set", f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"]
            cmd += list(extra)
            todo.append({"setting": setting, "name": setting_name(setting), "seed": seed,
                         "run_dir": str(run_dir), "command": cmd})
    return todo


def _status(run_dir: str) -> str:
    summary = Path(run_dir) / "summary.json"
    if summary.is_file():
        try:
            return json.loads(summary.read_text()).get("status", "unknown")
        except (OSError, json.JSONDecodeError):
            return "unknown"
    return "started" if (Path(run_dir) / "config.json").exists() else "pending"


def run_point(point: Dict[str, Any]) -> int:
    """Train one point (resume it if it was started), its output in RUN_DIR/train.log."""
    run_dir = Path(point["run_dir"])
    status = _status(point["run_dir"])
    if status == "finished":
        return 0
    cmd = point["command"]
    if status != "pending":
        cmd = [sys.executable, "-m", "cascadevae.train", "--resume", str(run_dir), "--no-progress"]
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "train.log", "a") as log:
        return subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode


def write_manifest(out: Path, preset: str, grid, seeds, todo, started: float) -> None:
    atomic_write_json(out / MANIFEST, {
        "preset": preset, "grid": [[k, v] for k, v in grid], "seeds": seeds,
        "points": [dict(p, command=shlex.join(p["command"]), status=_status(p["run_dir"]))
                   for p in todo],
        "wall_seconds": round(time.time() - started, 1)})


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cascadevae.sweep",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", required=True, choices=preset_names())
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a field and its values (repeatable; the grid is their product)")
    p.add_argument("--seeds", default="0", help="seeds, e.g. 1-10 or 1,2,5 (default 0)")
    p.add_argument("--iters", type=int, help="updates per run (as train --iters)")
    p.add_argument("--out", required=True, help="the sweep folder")
    p.add_argument("--jobs", type=int, default=1, help="points trained at a time (default 1)")
    p.add_argument("--threads", type=int, default=1, help="threads per point (default 1)")
    p.add_argument("--print-commands", action="store_true",
                   help="print one train command per point (for a cluster launcher) and exit")
    p.add_argument("train_args", nargs=argparse.REMAINDER,
                   help="after --: more arguments for every train command")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    extra = [a for a in args.train_args if a != "--"]
    try:
        grid, seeds = parse_grid(args.grid), parse_seeds(args.seeds)
        out = Path(args.out)
        todo = points(args.preset, grid, seeds, args.iters, extra, out, args.threads)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be >= 1")
    if args.print_commands:
        for pnt in todo:
            print(shlex.join(pnt["command"]))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    write_manifest(out, args.preset, grid, seeds, todo, started)
    print(f"sweep: {len(todo)} runs ({len(todo) // len(seeds)} settings x {len(seeds)} seeds), "
          f"{args.jobs} at a time, into {out}", flush=True)
    failed = 0
    with ThreadPoolExecutor(args.jobs) as pool:
        for pnt, code in zip(todo, pool.map(run_point, todo)):
            status = _status(pnt["run_dir"])
            print(f"  {pnt['name']} seed {pnt['seed']}: {status}"
                  + ("" if code == 0 else f" (exit {code}, see {pnt['run_dir']}/train.log)"),
                  flush=True)
            failed += code != 0
            write_manifest(out, args.preset, grid, seeds, todo, started)
    print(f"done in {time.time() - started:.0f} s; {failed} failed; manifest: {out / MANIFEST}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
