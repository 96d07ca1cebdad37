"""Benchmark: training iteration time of beta-VAE, CascadeVAE-C, CascadeVAE-D and CascadeVAE,
and of the baselines JointVAE, FactorVAE and beta-TCVAE, side by side in one run, against a
straightforward port of the official training step.

Two settings (the paper's networks, batch 64):

    dsprites: 64x64 networks, m = 6, S = 3, lambda'_official = 0.001
    mnist:    32x32 networks, m = 10, S = 10, lambda'_official = 0.1

The same m for every model of a setting; -D and CascadeVAE with the discrete step ON
(discrete_warmup = 0 via overrides, i.e. t >= t_d); JointVAE with one S-way categorical code
(its presets joint-vae-dsprites / joint-vae-mnist); FactorVAE with its preset's discriminator
(6 layers of 1000; one discriminator step, and a second batch encoded, per update);
beta-TCVAE with its preset's estimator (mws, N = the pool size). Each column is
``Trainer.step()`` of cascadevae.train (data from a pool of pre-generated random binary
images, so the data loader is not timed; ``sample_batch`` only indexes the pool), except
``official-style``, which is :func:`official_style_step` below on the CascadeVAE trainer's
networks, optimizer and batches:

    1. scoring: encoder forward, one z, then S separate decoder passes (one per code, the same
       z), each item's Bernoulli NLL to numpy;
    2. an OR-Tools SimpleMinCostFlow graph built arc by arc in Python (source -> items cap 1;
       item -> class cap 1, cost int(1e4 * NLL); class -> sink through B unit arcs of cost
       0, p, 2p, ... with p = int(1e4 * lambda'_official)) and solved;
    3. the training pass repeats the forward pass (encoder + decoder, same epsilon), then
       backward and the optimizer step.

Timing: per thread count, per setting, all trainers are built and warmed up, then run in
round-robin blocks (so machine noise hits every column alike); the median per-iteration
time over all timed iterations is reported. Then a profile of CascadeVAE steps (wall time
by phase through wrappers, plus torch.profiler's top ops), and a FLOP-based lower bound
(torch.utils.flop_counter on forward + backward + the B*S scoring pass, divided by the
measured dense float32 matmul throughput at the same thread count).

    python benchmarks/bench_train.py --threads 2 1 --iters 30
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cascadevae_ext  # noqa: E402
from cascadevae.models import discrete as discrete_mod  # noqa: E402
from cascadevae.models.vae import Posterior  # noqa: E402
from cascadevae.presets import get_preset  # noqa: E402
from cascadevae.train import Trainer  # noqa: E402
from _common import cpu_model  # noqa: E402

try:
    from ortools.graph.python import min_cost_flow as _mcf
    import ortools
    ORTOOLS_VERSION = ortools.__version__
except ImportError:  # optional dependency
    _mcf = None
    ORTOOLS_VERSION = None

DEFAULT_JSON = ROOT / "benchmarks" / "results" / "train.json"

SETTINGS = {
    "dsprites": dict(image_size=64, m=6, S=3, lam_official=0.001, dataset="dsprites",
                     cascade_preset="dsprites"),
    "mnist": dict(image_size=32, m=10, S=10, lam_official=0.1, dataset="mnist",
                  cascade_preset="mnist"),
}
MODELS = ["beta-vae", "cascade-c", "cascade-d", "cascade", "joint-vae", "factor-vae",
          "beta-tcvae"]
LABELS = {"beta-vae": "beta-VAE", "cascade-c": "CascadeVAE-C", "cascade-d": "CascadeVAE-D",
          "cascade": "CascadeVAE", "joint-vae": "JointVAE", "factor-vae": "FactorVAE",
          "beta-tcvae": "beta-TCVAE", "official": "official-style"}


class RandomBinaryPool:
    """A stand-in dataset: ``n`` pre-generated binary images; ``sample_batch`` indexes them."""

    def __init__(self, n: int, image_size: int, seed: int = 0, p: float = 0.2):
        rng = np.random.default_rng(seed)
        self.pool = (rng.random((n, 1, image_size, image_size)) < p).astype(np.float32)
        self.image_shape = self.pool.shape[1:]
        self.source = "random binary pool"

    def __len__(self):
        return len(self.pool)

    def sample_batch(self, batch_size, rng):
        idx = rng.integers(0, len(self.pool), size=batch_size, dtype=np.int64)
        return self.pool[idx], idx


def make_config(model: str, setting: dict):
    m, S = setting["m"], setting["S"]
    if model == "cascade":
        return get_preset(setting["cascade_preset"], latent_dim=m, num_classes=S,
                          discrete_warmup=0)
    if model == "joint-vae":
        return get_preset(f"joint-vae-{setting['dataset']}", latent_dim=m, num_classes=S)
    over = dict(dataset=setting["dataset"], latent_dim=m)
    if model == "cascade-d":
        over.update(num_classes=S, discrete_warmup=0,
                    pairwise_lambda_official=setting["lam_official"])
    return get_preset(model, **over)


# ---------------------------------------------------------------------------------------------
# the baseline: a straightforward port of the official step

def ortools_assign(nll: np.ndarray, lam_official: float) -> np.ndarray:
    """The official solve: graph rebuilt arc by arc in Python, costs truncated to int."""
    B, S = nll.shape
    p = int(1e4 * lam_official)
    smcf = _mcf.SimpleMinCostFlow()
    source, sink = 0, B + S + 1
    for i in range(B):
        smcf.add_arc_with_capacity_and_unit_cost(source, 1 + i, 1, 0)
    item_arcs = np.empty((B, S), dtype=np.int64)
    for i in range(B):
        for k in range(S):
            item_arcs[i, k] = smcf.add_arc_with_capacity_and_unit_cost(
                1 + i, 1 + B + k, 1, int(1e4 * nll[i, k]))
    for k in range(S):
        for j in range(B):
            smcf.add_arc_with_capacity_and_unit_cost(1 + B + k, sink, 1, j * p)
    smcf.set_node_supply(source, B)
    smcf.set_node_supply(sink, -B)
    status = smcf.solve()
    if status != smcf.OPTIMAL:
        raise RuntimeError(f"min-cost flow status {status}")
    labels = np.empty(B, dtype=np.int64)
    for i in range(B):
        for k in range(S):
            if smcf.flow(int(item_arcs[i, k])) > 0:
                labels[i] = k
                break
    return labels


def official_style_step(tr: Trainer, lam_official: float) -> None:
    """One update of the official recipe on the trainer's networks, optimizer and data."""
    cfg, model = tr.cfg, tr.model
    images, _ = tr.dataset.sample_batch(cfg.batch_size, tr.data_rng)
    x = torch.from_numpy(np.ascontiguousarray(images))
    B, S = x.shape[0], model.num_classes
    model.train()
    # 1. scoring pass: encoder, one epsilon, S decoder passes with the same z
    with torch.no_grad():
        mu, scale = model.encode(x)
        eps = torch.randn(mu.shape, generator=tr.z_gen)
        z = mu + model.posterior_std(scale) * eps
        nll = np.empty((B, S), dtype=np.float32)
        for k in range(S):
            d = torch.zeros(B, S)
            d[:, k] = 1.0
            logits = model.decode(z, d)
            nll[:, k] = F.binary_cross_entropy_with_logits(
                logits, x, reduction="none").reshape(B, -1).sum(1).numpy()
    # 2. min-cost flow built in Python and solved
    labels = ortools_assign(nll, lam_official)
    d = F.one_hot(torch.from_numpy(labels), S).float()
    # 3. training pass: the forward pass again (same epsilon), backward, optimizer
    mu, scale = model.encode(x)
    z = mu + model.posterior_std(scale) * eps
    terms = model.loss_terms(x, d, tr.schedule.betas(tr.t),
                             posterior=Posterior(mu, scale, z))
    tr.optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    tr.optimizer.step()
    tr.t += 1


# ---------------------------------------------------------------------------------------------

def build_runners(setting_name: str, seed: int):
    setting = SETTINGS[setting_name]
    data = RandomBinaryPool(1024, setting["image_size"], seed=seed)
    runners = {}
    for name in MODELS:
        tr = Trainer(make_config(name, setting), data, setting["image_size"],
                     torch.device("cpu"))
        runners[name] = (tr, tr.step)
    if _mcf is not None:
        tr = Trainer(make_config("cascade", setting), data, setting["image_size"],
                     torch.device("cpu"))
        runners["official"] = (tr, lambda tr=tr: official_style_step(tr, setting["lam_official"]))
    return runners


def time_setting(setting_name, threads, iters, warmup, block, seed):
    torch.set_num_threads(threads)
    runners = build_runners(setting_name, seed)
    for _, fn in runners.values():
        for _ in range(warmup):
            fn()
    times = {k: [] for k in runners}
    while min(len(v) for v in times.values()) < iters:
        for k, (_, fn) in runners.items():
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
    return {k: {"median_ms": 1e3 * statistics.median(v), "min_ms": 1e3 * min(v),
                "p90_ms": 1e3 * float(np.percentile(v, 90)), "n": len(v)}
            for k, v in times.items()}


# ---------------------------------------------------------------------------------------------
# profile: wall time by phase, through wrappers (no file is edited)

@contextlib.contextmanager
def phase_wrappers(tr: Trainer, acc: dict):
    def timed(label_fn, fn):
        def wrapper(*a, **k):
            label = label_fn() if callable(label_fn) else label_fn
            t0 = time.perf_counter()
            with torch.profiler.record_function(label):
                out = fn(*a, **k)
            acc[label] = acc.get(label, 0.0) + time.perf_counter() - t0
            return out
        return wrapper

    model = tr.model
    saved = dict(enc=model.encoder.forward, dec=model.decoder.forward,
                 ll=cascadevae_ext.bernoulli_loglik, assign=cascadevae_ext.assign,
                 backward=torch.Tensor.backward, opt=tr.optimizer.step,
                 loss=model.loss_terms)
    model.encoder.forward = timed("encoder fwd", saved["enc"])
    model.decoder.forward = timed(
        lambda: "decoder fwd (training, B)" if torch.is_grad_enabled()
        else "decoder fwd (scoring, B*S)", saved["dec"])
    cascadevae_ext.bernoulli_loglik = timed("likelihood kernel", saved["ll"])
    cascadevae_ext.assign = timed("assign (exact)", saved["assign"])
    torch.Tensor.backward = timed("backward", saved["backward"])
    tr.optimizer.step = timed("optimizer (Adam)", saved["opt"])
    model.loss_terms = timed("loss_terms (incl. decoder fwd)", saved["loss"])
    try:
        yield
    finally:
        del model.encoder.forward, model.decoder.forward, tr.optimizer.step, model.loss_terms
        cascadevae_ext.bernoulli_loglik = saved["ll"]
        cascadevae_ext.assign = saved["assign"]
        torch.Tensor.backward = saved["backward"]


def profile_cascade(setting_name, threads, steps, seed):
    torch.set_num_threads(threads)
    setting = SETTINGS[setting_name]
    data = RandomBinaryPool(1024, setting["image_size"], seed=seed)
    tr = Trainer(make_config("cascade", setting), data, setting["image_size"],
                 torch.device("cpu"))
    for _ in range(5):
        tr.step()
    acc_run: dict = {}
    total = 0.0
    with phase_wrappers(tr, acc_run):
        for _ in range(steps):
            t0 = time.perf_counter()
            tr.step()
            total += time.perf_counter() - t0
        acc = dict(acc_run)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                tr.step()
    # loss_terms contains the training decoder forward: report its own remainder separately
    dec_train = acc.get("decoder fwd (training, B)", 0.0)
    acc["loss terms (BCE, KL; excl. decoder)"] = acc.pop("loss_terms (incl. decoder fwd)",
                                                         0.0) - dec_train
    acc["other (data, z sampling, one-hot, bookkeeping)"] = total - sum(acc.values())
    phases = {k: {"ms_per_step": 1e3 * v / steps, "share": v / total}
              for k, v in sorted(acc.items(), key=lambda kv: -kv[1])}
    ops = []
    for ev in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:12]:
        ops.append({"op": ev.key, "self_ms_per_step": ev.self_cpu_time_total / 1e3 / steps,
                    "calls_per_step": ev.count / steps})
    return {"setting": setting_name, "threads": threads, "steps": steps,
            "step_ms": 1e3 * total / steps, "phases": phases, "top_ops": ops}


# ---------------------------------------------------------------------------------------------
# FLOP lower bound

def count_flops(setting_name, seed):
    from torch.utils.flop_counter import FlopCounterMode
    setting = SETTINGS[setting_name]
    data = RandomBinaryPool(64, setting["image_size"], seed=seed)
    tr = Trainer(make_config("cascade", setting), data, setting["image_size"],
                 torch.device("cpu"))
    model = tr.model
    x = torch.from_numpy(data.pool[:64].copy())
    with FlopCounterMode(display=False) as fc:
        post = model.posterior(x)
        d = torch.zeros(64, model.num_classes)
        terms = model.loss_terms(x, d, tr.schedule.betas(0), posterior=post)
    fwd = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc:
        terms["loss"].backward()
    bwd = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        z_rep, codes = discrete_mod.all_code_inputs(post.z.detach(), model.num_classes)
        model.decode(z_rep, codes)
    score = fc.get_total_flops()
    return {"train_fwd": fwd, "train_bwd": bwd, "scoring_fwd": score,
            "total": fwd + bwd + score}


def matmul_gflops(threads, n=2048, reps=10):
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


# ---------------------------------------------------------------------------------------------

def machine_info():
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "ortools": ORTOOLS_VERSION,
            "torch_parallel": torch.__config__.parallel_info().splitlines()[:4]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--iters", type=int, default=30, help="timed iterations per column")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--block", type=int, default=5, help="iterations per round-robin block")
    p.add_argument("--profile-steps", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=str(DEFAULT_JSON))
    args = p.parse_args(argv)

    info = machine_info()
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, torch "
          f"{info['torch']}, ortools {info['ortools']}")
    if _mcf is None:
        print("ortools is not installed: the official-style column is skipped")
    out = {"command": "python " + " ".join([os.path.relpath(__file__, ROOT)] +
                                            list(sys.argv[1:] if argv is None else argv)),
           "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": info,
           "settings": SETTINGS, "iters": args.iters, "warmup": args.warmup,
           "timing": {}, "ratios": {}, "profile": {}, "flops": {}}
    targets = {"dsprites": 1.4, "mnist": 1.8}

    rows = []
    for th in args.threads:
        for s in args.settings:
            t0 = time.time()
            res = time_setting(s, th, args.iters, args.warmup, args.block, args.seed)
            out["timing"][f"{s}/t{th}"] = res
            base = res["beta-vae"]["median_ms"]
            casc = res["cascade"]["median_ms"]
            r = {"cascade_over_beta_vae": casc / base, "target": targets[s],
                 "met": casc / base <= targets[s]}
            if "official" in res:
                r["official_over_cascade"] = res["official"]["median_ms"] / casc
                r["official_goal_2x_met"] = r["official_over_cascade"] >= 2.0
            out["ratios"][f"{s}/t{th}"] = r
            rows.append((s, th, res, r))
            print(f"  timed {s} threads={th} in {time.time() - t0:.1f} s", flush=True)

    cols = MODELS + (["official"] if _mcf is not None else [])
    hdr = ("| setting | threads | " + " | ".join(LABELS[c] + " ms" for c in cols) +
           " | CascadeVAE / beta-VAE (target) | official / CascadeVAE (goal >= 2) |")
    lines = [hdr, "|" + "---|" * 2 + "---:|" * (len(cols) + 2)]
    for s, th, res, r in rows:
        st = SETTINGS[s]
        name = f"{s} ({st['image_size']}x{st['image_size']}, m={st['m']}, S={st['S']})"
        cells = " | ".join(f"{res[c]['median_ms']:.2f}" for c in cols)
        ratio = (f"{r['cascade_over_beta_vae']:.2f}x (<= {r['target']}: "
                 f"{'met' if r['met'] else 'MISSED'})")
        off = (f"{r['official_over_cascade']:.2f}x ({'met' if r['official_goal_2x_met'] else 'MISSED'})"
               if "official_over_cascade" in r else "skipped (no ortools)")
        lines.append(f"| {name} | {th} | {cells} | {ratio} | {off} |")
    table = "\n".join(lines)
    print("\nMedian iteration time (ms), batch 64:\n" + table)

    # profile and FLOP bound at the first thread count
    th = args.threads[0]
    prof_lines = []
    for s in args.settings:
        pr = profile_cascade(s, th, args.profile_steps, args.seed)
        out["profile"][s] = pr
        prof_lines.append(f"\nCascadeVAE {s}, {th} threads, {pr['steps']} steps, "
                          f"{pr['step_ms']:.2f} ms/step (wrapped):")
        prof_lines.append("| phase | ms / step | share |\n|---|---:|---:|")
        for k, v in pr["phases"].items():
            prof_lines.append(f"| {k} | {v['ms_per_step']:.2f} | {100 * v['share']:.1f}% |")
        prof_lines.append("\ntorch.profiler top ops (self CPU):\n| op | self ms / step | calls / step |"
                          "\n|---|---:|---:|")
        for o in pr["top_ops"]:
            prof_lines.append(f"| {o['op']} | {o['self_ms_per_step']:.3f} | "
                              f"{o['calls_per_step']:.0f} |")
    print("\n".join(prof_lines))

    gflops = {t: matmul_gflops(t) for t in sorted(set(args.threads))}
    out["matmul_gflops_2048"] = gflops
    bound_lines = ["| setting | train fwd GFLOP | train bwd GFLOP | scoring fwd (B*S) GFLOP | "
                   "total GFLOP | threads | matmul GFLOP/s | bound ms | measured CascadeVAE ms | "
                   "measured / bound |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in args.settings:
        fl = count_flops(s, args.seed)
        out["flops"][s] = fl
        for t in sorted(set(args.threads)):
            bound = fl["total"] / (gflops[t] * 1e9) * 1e3
            meas = out["timing"][f"{s}/t{t}"]["cascade"]["median_ms"]
            fl.setdefault("bound_ms", {})[t] = bound
            fl.setdefault("measured_over_bound", {})[t] = meas / bound
            bound_lines.append(
                f"| {s} | {fl['train_fwd'] / 1e9:.3f} | {fl['train_bwd'] / 1e9:.3f} | "
                f"{fl['scoring_fwd'] / 1e9:.3f} | {fl['total'] / 1e9:.3f} | {t} | "
                f"{gflops[t]:.1f} | {bound:.2f} | {meas:.2f} | {meas / bound:.1f}x |")
    print("\nFLOP lower bound:\n" + "\n".join(bound_lines))
    out["tables"] = {"timing": table, "profile": "\n".join(prof_lines),
                     "bound": "\n".join(bound_lines)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
