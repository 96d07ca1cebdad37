"""Benchmark: the cost of evaluating a dSprites run, and what the default subsample does to the
disentanglement score.

The issue's target is the whole of dSprites (737,280 images: an encoder pass, plus S decoder
passes for each image's discrete code) within 5 minutes on the 2-core CPU. This script

1. measures the throughput of that pass (encode + evaluation codes, ``ENCODE_BATCH`` images
   per call, ``--throughput-images`` images of the grid) and extrapolates it to the full grid;
2. times the default evaluation (``cascadevae.evaluate.evaluate_run`` with its defaults:
   10,000 seeded images for KL / MI / TC / accuracy, 10,000 for the score's data variance,
   800 votes of L = 100);
3. measures the effect of the subsample on the score: for each ``--sizes`` N (the images used
   for the KL pruning and for the per-dim data variance) and each ``--seeds`` seed, the
   paper-protocol score; seed-to-seed spread at one N against the shift between N's.

    python benchmarks/bench_eval.py --run RUN_DIR --threads 2 --sizes 10000 50000 --seeds 0 1
"""
from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cascadevae import evaluate as ev  # noqa: E402
from cascadevae.metrics import disentanglement_score  # noqa: E402
from cascadevae.run_dir import RunDir  # noqa: E402
from _common import cpu_model  # noqa: E402

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "eval.json"
FULL_GRID = 737280


def throughput(model, ds, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds), size=n, replace=False))
    ev.encode_all(model, ds.images, idx[:ev.ENCODE_BATCH], ev.ENCODE_BATCH, "cpu",
                  progress=False)  # warm-up
    start = time.perf_counter()
    ev.encode_all(model, ds.images, idx, ev.ENCODE_BATCH, "cpu", progress=False)
    sec = time.perf_counter() - start
    return {"images": n, "seconds": sec, "images_per_second": n / sec,
            "full_grid_seconds_extrapolated": FULL_GRID * sec / n}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a trained dSprites run directory")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--throughput-images", type=int, default=5000)
    p.add_argument("--sizes", type=int, nargs="+", default=[10000, 50000])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--votes", type=int, default=800)
    p.add_argument("--skip-default", action="store_true", help="skip timing the default "
                   "evaluation")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    run = RunDir(args.run)
    info = run.read_json("run.json")
    if not str(info["dataset"]).startswith("dsprites"):
        raise SystemExit(f"--run must be a dSprites run, got dataset {info['dataset']!r}")
    model, ckpt = ev.load_model(run, torch.device("cpu"))
    ds = ev.load_eval_data(info, None, 2, 0)[0]
    out = {"machine": cpu_model(), "threads": args.threads, "torch": torch.__version__,
           "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "run": str(args.run), "model": ckpt["model_config"]["model"], "t": int(ckpt["t"]),
           "S": int(ckpt["model_config"].get("num_classes", 0))}

    tp = throughput(model, ds, args.throughput_images)
    out["throughput"] = tp
    print(f"encode + codes (S={out['S']}): {tp['images_per_second']:.0f} images/s -> full grid "
          f"({FULL_GRID} images) ~{tp['full_grid_seconds_extrapolated'] / 60:.1f} min")

    if not args.skip_default:
        start = time.perf_counter()
        res = ev.evaluate_run(args.run, device="cpu", progress=False)
        out["default_evaluation"] = {"seconds": time.perf_counter() - start,
                                     "score": res.get("disentanglement_score"),
                                     "accuracy": res.get("accuracy_unsupervised")}
        print(f"default evaluation: {out['default_evaluation']['seconds']:.0f} s, score "
              f"{res.get('disentanglement_score')}")

    rows = []
    for n in args.sizes:
        for seed in args.seeds:
            start = time.perf_counter()
            rng = np.random.default_rng(1000 + seed)
            idx = np.sort(rng.choice(len(ds), size=n, replace=False))
            kl = ev.encode_all(model, ds.images, idx, ev.ENCODE_BATCH, "cpu",
                               progress=False)["kl"].mean(axis=0)
            r = disentanglement_score(ds, ev.make_represent(model, "cpu"), protocol="paper",
                                      num_votes=args.votes, seed=seed, continuous_kl=kl,
                                      num_variance_samples=n)
            rows.append({"subsample": n, "seed": seed, "score": r["disentanglement_score"],
                         "active_dims": r["disentanglement_active_dims"],
                         "seconds": time.perf_counter() - start})
            print(f"N={n:6d} seed={seed}: score {r['disentanglement_score']:.2f} active "
                  f"{r['disentanglement_active_dims']} ({rows[-1]['seconds']:.0f} s)")
    out["subsample_effect"] = rows
    print("\n| N (KL and variance images) | seeds | score mean | score std | active dims |")
    print("|---|---|---|---|---|")
    summary = []
    for n in args.sizes:
        s = [r["score"] for r in rows if r["subsample"] == n]
        dims = sorted({tuple(r["active_dims"]) for r in rows if r["subsample"] == n})
        std = statistics.stdev(s) if len(s) > 1 else float("nan")
        summary.append({"subsample": n, "mean": statistics.mean(s), "std": std})
        print(f"| {n} | {len(s)} | {statistics.mean(s):.2f} | {std:.2f} | {dims} |")
    out["subsample_summary"] = summary
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
