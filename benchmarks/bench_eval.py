"""Benchmark: the cost of evaluating a dSprites run, and what the default subsample does to the
disentanglement score.

The issue's target is the whole of dSprites (737,280 images: an encoder pass, plus S decoder
passes for each image's discrete code) within 5 minutes on the 2-core CPU. This script

1. measures the throughput of that pass (encode + evaluation codes, ``ENCODE_BATCH`` images
   per call, ``--throughput-images`` images of the grid) and extrapolates it to the full grid;
2. optionally (``--time-default``) times the default evaluation
   (``cascadevae.evaluate.evaluate_run`` with its defaults);
3. measures the effect of the subsample on the paper-protocol score with everything else held
   fixed: one seeded pool of ``max(--sizes)`` images (mu, evaluation codes, per-item KL) and one
   seeded set of M = 800 votes (L = 100; each vote's per-dim variances computed once); for each
   N in ``--sizes`` the score is recomputed with the KL pruning and the per-dim data variance
   taken from the first N images of the pool. The votes' own noise is shown by a bootstrap
   over the 800 votes at the default N = 10,000.

    python benchmarks/bench_eval.py --run RUN_DIR --threads 2
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import cpu_model  # first: puts the checkout on sys.path (runs uninstalled)
from cascadevae import evaluate as ev
from cascadevae.run_dir import RunDir

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


def subsample_effect(model, ds, sizes, num_votes: int, batch: int, seed: int,
                     bootstrap: int = 200) -> dict:
    """Scores with identical votes and KL / variance estimates from nested subsamples."""
    from cascadevae.metrics.disentanglement import _call, _variances

    rng = np.random.default_rng(seed)
    pool_n = max(sizes)
    factors = ds.sample_factors(pool_n, rng)
    represent = ev.make_represent(model, "cpu", chunk=ev.ENCODE_BATCH)
    z_pool, codes_pool = _call(represent, ds.images_from_factors(factors))
    with torch.no_grad():
        kl_pool = []
        for s in range(0, pool_n, ev.ENCODE_BATCH):
            x = torch.as_tensor(ds.images_from_factors(factors[s:s + ev.ENCODE_BATCH]))
            mu, scale = model.encode(x)
            kl_pool.append(model.kl_per_item_dim(mu, scale).double().numpy())
    kl_pool = np.concatenate(kl_pool)
    K = ds.num_factors
    ks = np.arange(num_votes) % K
    vote_var = []
    for i, k in enumerate(ks):
        f = ds.sample_factors(batch, rng)
        f[:, k] = f[0, k]
        z, c = _call(represent, ds.images_from_factors(f))
        vote_var.append(_variances(z, c))
    vote_var = np.array(vote_var)
    m = z_pool.shape[1]

    def score(n, votes=None):
        votes = np.arange(num_votes) if votes is None else votes
        g = _variances(z_pool[:n], None if codes_pool is None else codes_pool[:n])
        active = g > 0
        active[:m] &= kl_pool[:n].mean(axis=0) >= 0.1
        idx = np.flatnonzero(active)
        dims = idx[np.argmin(vote_var[votes][:, idx] / g[idx], axis=1)]
        V = np.zeros((g.size, K), dtype=np.int64)
        np.add.at(V, (dims, ks[votes]), 1)
        return 100.0 * V.max(axis=1).sum() / len(votes), idx.tolist()

    rows = [dict(zip(("score", "active_dims"), score(n)), subsample=n) for n in sizes]
    boot_rng = np.random.default_rng(seed + 1)
    ref = 10000 if 10000 in sizes else sizes[0]
    boot = [score(ref, boot_rng.integers(0, num_votes, num_votes))[0] for _ in range(bootstrap)]
    return {"rows": rows, "bootstrap_n": ref, "bootstrap_std": float(np.std(boot, ddof=1)),
            "num_votes": num_votes, "batch": batch, "seed": seed}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a trained dSprites run directory")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--throughput-images", type=int, default=3000)
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 10000, 50000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--votes", type=int, default=800)
    p.add_argument("--time-default", action="store_true",
                   help="also time the default evaluation (evaluate_run)")
    p.add_argument("--throughput-only", action="store_true",
                   help="only the throughput measurement (step 1)")
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
           "command": "python benchmarks/bench_eval.py " + " ".join(sys.argv[1:]),
           "run": str(args.run), "model": model.name, "t": int(ckpt["t"]),
           "S": int(model.num_classes)}  # from the model: checkpoints nest its config since issue 15

    tp = throughput(model, ds, args.throughput_images)
    out["throughput"] = tp
    print(f"encode + codes (S={out['S']}): {tp['images_per_second']:.0f} images/s -> full grid "
          f"({FULL_GRID} images) ~{tp['full_grid_seconds_extrapolated'] / 60:.1f} min")

    if args.time_default:
        start = time.perf_counter()
        res = ev.evaluate_run(args.run, device="cpu", progress=False)
        out["default_evaluation"] = {"seconds": time.perf_counter() - start,
                                     "score": res.get("disentanglement_score"),
                                     "accuracy": res.get("accuracy_unsupervised")}
        print(f"default evaluation: {out['default_evaluation']['seconds']:.0f} s, score "
              f"{res.get('disentanglement_score')}")

    if args.throughput_only:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"wrote {args.json}")
        return 0
    start = time.perf_counter()
    eff = subsample_effect(model, ds, sorted(args.sizes), args.votes, 100, args.seed)
    eff["seconds"] = time.perf_counter() - start
    out["subsample_effect"] = eff
    print(f"\nsame {args.votes} votes (L = 100), KL pruning and data variance from the first N "
          f"images of one seeded pool ({eff['seconds']:.0f} s):\n")
    print("| N (KL and variance images) | score | active dims |")
    print("|---|---|---|")
    for r in eff["rows"]:
        print(f"| {r['subsample']} | {r['score']:.2f} | {r['active_dims']} |")
    print(f"\nvote noise: bootstrap std over the {args.votes} votes at N = "
          f"{eff['bootstrap_n']}: {eff['bootstrap_std']:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
