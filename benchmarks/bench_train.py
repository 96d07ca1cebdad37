"""Benchmark: the training update of every model, in the ways it can run, side by side in one
run, plus a whole-command timing of ``python -m cascadevae.train``.

Settings (the paper's networks, batch 64):

    dsprites: 64x64 networks, m = 6, S = 3, lambda'_official = 0.001
    mnist:    32x32 networks, m = 10, S = 10, lambda'_official = 0.1

Models: beta-VAE, CascadeVAE-C, CascadeVAE-D, CascadeVAE, JointVAE, FactorVAE, beta-TCVAE (the
same m per setting; -D and CascadeVAE with the discrete step on, discrete_warmup = 0). Every
column is ``Trainer.step()`` of cascadevae.train on a pool of pre-generated random binary
images (the data loader is not timed):

    previous       fp32, the networks' plain module arithmetic (default memory layout, torch's
                   transposed convolutions, the B*S scoring pass on concatenated inputs): the
                   step as it was before the fast-CPU work, rebuilt here by
                   :func:`previous_networks`
    fp32           the default arithmetic (cascadevae.models.conv_layout), float32
    bf16           the same under bfloat16 autocast (--precision bf16)
    bf16+compile   bf16 with torch.compile'd networks (--precision bf16 --compile)
    fp32+compile   (with --variants) float32 with torch.compile
    official-style (with ortools) a port of the official recipe, on previous arithmetic: S
                   decoder passes, an OR-Tools graph built in Python, the forward pass repeated

Timing: per thread count and setting, all trainers are built and warmed up (compilation happens
there, and is reported), then run round-robin in blocks so machine noise hits every column
alike; medians over all timed iterations. Then: the whole training command at two iteration
counts, whose difference is the steady-state update with data, logging and bookkeeping; a
profile of the default CascadeVAE step; a FLOP lower bound; and (``--layers``) the per-layer
layout table behind cascadevae.models.conv_layout.

    python benchmarks/bench_train.py --threads 2 --iters 20
"""
# About 640 lines: the 'previous' step rebuilt for the comparison, four timed columns per model,
# the profile, the per-layer layout table and the whole-command and throughput timings, all in
# one run so that their ratios come from the same machine state.
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cascadevae_ext  # noqa: E402
from cascadevae import acceleration  # noqa: E402
from cascadevae.models import discrete as discrete_mod  # noqa: E402
from cascadevae.models.vae import Posterior  # noqa: E402
from cascadevae.presets import get_preset  # noqa: E402
from cascadevae.training import Trainer  # noqa: E402
from _common import machine_info  # noqa: E402

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
#: column -> (precision, compile, previous arithmetic)
VARIANTS = {"previous": ("fp32", False, True), "fp32": ("fp32", False, False),
            "bf16": ("bf16", False, False), "bf16+compile": ("bf16", True, False),
            "fp32+compile": ("fp32", True, False)}
DEFAULT_VARIANTS = ["previous", "fp32", "bf16", "bf16+compile"]
#: targets on the CPU this was written for (2 threads): ms per update
TARGETS = {"dsprites": 40.0, "mnist": 15.0}
RATIO_TARGET = 1.6   # CascadeVAE / beta-VAE at S = 3, same precision


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
    """One update of the official recipe on the trainer's networks, optimizer and data (run
    it under :func:`previous_networks`, the plain module arithmetic)."""
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
# the previous arithmetic

@contextlib.contextmanager
def previous_networks(model):
    """The model's networks computed as before the fast-CPU work: the plain nn.Sequential
    modules (default layout, torch's own transposed convolutions) and the scoring pass as one
    decoder call on B*S concatenated (z, e_k) inputs. Same parameters, same function."""
    enc, dec = model.encoder, model.decoder

    def score_all_codes(z):
        with torch.no_grad():
            z_rep, codes = discrete_mod.all_code_inputs(z, dec.num_classes)
            return dec.deconvs(dec.fc(torch.cat([z_rep, codes], 1))).reshape(
                z.shape[0], dec.num_classes, -1)

    enc.forward = lambda x: enc.fc(enc.convs(x))
    dec.forward = lambda inputs: dec.deconvs(dec.fc(inputs))
    dec.score_all_codes = score_all_codes
    try:
        yield
    finally:
        del enc.forward, dec.forward, dec.score_all_codes


class Runner:
    """One column's trainer and its step function."""

    def __init__(self, model: str, variant: str, setting: dict, data, seed: int):
        precision, compiled, previous = VARIANTS[variant]
        cfg = make_config(model, setting).replace(precision=precision, compile=compiled,
                                                  seed=seed)
        self.trainer = Trainer(cfg, data, setting["image_size"], torch.device("cpu"))
        self.previous = previous
        self.compile_seconds = None
        if previous:
            self._ctx = previous_networks(self.trainer.model)
            self._ctx.__enter__()

    def step(self):
        first = self.trainer._compiled is not None and self.trainer.compile_seconds is None
        self.trainer.step()
        if first:
            self.compile_seconds = self.trainer.compile_seconds


class OfficialRunner(Runner):
    def __init__(self, setting: dict, data, seed: int):
        super().__init__("cascade", "previous", setting, data, seed)
        self.lam = setting["lam_official"]

    def step(self):
        official_style_step(self.trainer, self.lam)


def time_setting(setting_name, models, variants, threads, iters, warmup, block, seed):
    torch.set_num_threads(threads)
    setting = SETTINGS[setting_name]
    data = RandomBinaryPool(1024, setting["image_size"], seed=seed)
    runners = {}
    for model in models:
        for variant in variants:
            runners[(model, variant)] = Runner(model, variant, setting, data, seed)
    if _mcf is not None and "cascade" in models:
        runners[("official", "previous")] = OfficialRunner(setting, data, seed)
    compile_s = {}
    for key, r in runners.items():
        t0 = time.perf_counter()
        for _ in range(warmup):
            r.step()
        if r.compile_seconds is not None:
            compile_s["/".join(key)] = r.compile_seconds
            print(f"    compiled {key[0]} {key[1]}: {r.compile_seconds:.1f} s "
                  f"(warm-up {time.perf_counter() - t0:.1f} s)", flush=True)
    times = {k: [] for k in runners}
    while min(len(v) for v in times.values()) < iters:
        for k, r in runners.items():
            for _ in range(block):
                t0 = time.perf_counter()
                r.step()
                times[k].append(time.perf_counter() - t0)
    out = {"/".join(k): {"median_ms": 1e3 * statistics.median(v), "min_ms": 1e3 * min(v),
                         "p90_ms": 1e3 * float(np.percentile(v, 90)), "n": len(v)}
           for k, v in times.items()}
    return out, compile_s


# ---------------------------------------------------------------------------------------------
# the whole command

def command_update_ms(setting_name: str, threads: int, counts=(40, 240), extra=()):
    """Steady-state update of ``python -m cascadevae.train`` from two iteration counts (the
    scaled preset with the discrete step on from t = 0, no figures, monitor or evaluation)."""
    walls = {}
    with tempfile.TemporaryDirectory() as tmp:
        # a first, discarded run fills the dataset cache, so both timed runs load it alike
        for n in (2, *counts):
            cmd = _command(setting_name, threads, n, os.path.join(tmp, f"run{n}")) + list(extra)
            env = dict(os.environ, CASCADEVAE_CACHE=os.path.join(tmp, "cache"))
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
            walls[n] = time.perf_counter() - t0
    lo, hi = counts
    return {"walls_s": walls, "update_ms": 1e3 * (walls[hi] - walls[lo]) / (hi - lo),
            "command": " ".join(cmd[1:]).replace(str(hi), "N")}


def _command(setting_name: str, threads: int, iters: int, out: str):
    preset = SETTINGS[setting_name]["cascade_preset"]
    dataset = {"dsprites": "dsprites", "mnist": "mnist5k"}[setting_name]
    return [sys.executable, "-m", "cascadevae.train", "--preset", preset, "--dataset", dataset,
            "--iters", str(iters), "--set", "discrete_warmup=0", "--no-eval", "--no-figures",
            "--mi-every", "0", "--no-progress", "--threads", str(threads), "--out", out]


def throughput(setting_name: str, iters: int = 300):
    """Updates per second of the machine: one 2-thread run against two 1-thread runs side by
    side (the question of how to spend 2 cores on many runs)."""
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, CASCADEVAE_CACHE=os.path.join(tmp, "cache"))
        subprocess.run(_command(setting_name, 1, 2, os.path.join(tmp, "warm")), cwd=ROOT, env=env,
                       check=True, stdout=subprocess.DEVNULL)
        for label, threads, jobs in (("one run, 2 threads", 2, 1), ("two runs, 1 thread each", 1, 2)):
            t0 = time.perf_counter()
            procs = [subprocess.Popen(_command(setting_name, threads, iters,
                                               os.path.join(tmp, f"{threads}-{j}")),
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
                     for j in range(jobs)]
            for proc in procs:
                if proc.wait() != 0:
                    raise RuntimeError(f"training command failed ({label})")
            wall = time.perf_counter() - t0
            res[label] = {"updates": iters * jobs, "wall_s": wall,
                          "updates_per_s": iters * jobs / wall}
    return res


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
                 score=model.decoder.score_all_codes,
                 ll=cascadevae_ext.bernoulli_loglik, assign=cascadevae_ext.assign,
                 backward=torch.Tensor.backward, opt=tr.optimizer.step,
                 loss=model.loss_terms)
    model.encoder.forward = timed("encoder fwd", saved["enc"])
    model.decoder.forward = timed("decoder fwd (training, B)", saved["dec"])
    model.decoder.score_all_codes = timed("scoring pass (B*S, no grad)", saved["score"])
    cascadevae_ext.bernoulli_loglik = timed("likelihood kernel", saved["ll"])
    cascadevae_ext.assign = timed("assign (exact)", saved["assign"])
    torch.Tensor.backward = timed("backward", saved["backward"])
    tr.optimizer.step = timed("optimizer (Adam)", saved["opt"])
    model.loss_terms = timed("loss_terms (incl. decoder fwd)", saved["loss"])
    try:
        yield
    finally:
        del model.encoder.forward, model.decoder.forward, model.decoder.score_all_codes
        del tr.optimizer.step, model.loss_terms
        cascadevae_ext.bernoulli_loglik = saved["ll"]
        cascadevae_ext.assign = saved["assign"]
        torch.Tensor.backward = saved["backward"]


def profile_cascade(setting_name, threads, steps, seed, precision="fp32"):
    torch.set_num_threads(threads)
    setting = SETTINGS[setting_name]
    data = RandomBinaryPool(1024, setting["image_size"], seed=seed)
    tr = Trainer(make_config("cascade", setting).replace(precision=precision, compile=False),
                 data, setting["image_size"], torch.device("cpu"))
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
    tr = Trainer(make_config("cascade", setting).replace(precision="fp32", compile=False),
                 data, setting["image_size"], torch.device("cpu"))
    model = tr.model
    x = torch.from_numpy(data.pool[:64].copy())
    with previous_networks(model):  # torch ops only, so the counter sees every product
        with FlopCounterMode(display=False) as fc:
            post = model.posterior(x)
            d = torch.zeros(64, model.num_classes)
            terms = model.loss_terms(x, d, tr.schedule.betas(0), posterior=post)
        fwd = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            terms["loss"].backward()
        bwd = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc, torch.no_grad():
            model.decoder.score_all_codes(post.z.detach())
        score = fc.get_total_flops()
    return {"train_fwd": fwd, "train_bwd": bwd, "scoring_fwd": score,
            "total": fwd + bwd + score}


def matmul_gflops(threads, dtype=torch.float32, n=2048, reps=10):
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        ts.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(ts) / 1e9


# ---------------------------------------------------------------------------------------------
# per-layer layouts (the table in cascadevae.models.conv_layout)

def layer_table(threads, batch=64, reps=10):
    from cascadevae.models import conv_layout
    torch.set_num_threads(threads)
    cl = torch.channels_last

    def t(fn):
        for _ in range(2):
            fn()
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return 1e3 * statistics.median(ts)

    rows = []
    shapes = [("transposed", 64, 64, 4), ("transposed", 64, 32, 8), ("transposed", 32, 32, 16),
              ("transposed", 32, 1, 32), ("transposed", 32, 1, 16), ("conv", 1, 32, 64),
              ("conv", 32, 32, 32), ("conv", 32, 64, 16), ("conv", 64, 64, 8)]
    for kind, cin, cout, h in shapes:
        transposed = kind == "transposed"
        x = torch.rand(batch, cin, h, h)
        w = torch.randn(*((cin, cout) if transposed else (cout, cin)), 4, 4) * 0.1
        b = torch.randn(cout)
        ho = 2 * h if transposed else h // 2
        g = torch.randn(batch, cout, ho, ho)
        op = F.conv_transpose2d if transposed else F.conv2d
        mask = [cin > 1, True, True]
        row = {"layer": f"{kind} {cin}->{cout}, {h}x{h} -> {ho}x{ho}"}
        for name, fmt in (("nchw", torch.contiguous_format), ("cl", cl)):
            xf, gf = x.contiguous(memory_format=fmt), g.contiguous(memory_format=fmt)
            with torch.no_grad():
                row[f"fwd_{name}"] = t(lambda: op(xf, w, b, stride=2, padding=1))
            row[f"bwd_{name}"] = t(lambda: torch.ops.aten.convolution_backward(
                gf, xf, w, [cout], [2, 2], [1, 1], [1, 1], transposed, [0, 0], 1, mask))
        if transposed and cout == 1:
            xl = x.contiguous(memory_format=cl)
            row["fwd_native"] = t(lambda: conv_layout.transposed_conv_1ch(xl, w, b))
        rows.append(row)
    lines = ["| layer | fwd NCHW | fwd CL | fwd native | bwd NCHW | bwd CL |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        nat = f"{r['fwd_native']:.2f}" if "fwd_native" in r else ""
        lines.append(f"| {r['layer']} | {r['fwd_nchw']:.2f} | {r['fwd_cl']:.2f} | {nat} | "
                     f"{r['bwd_nchw']:.2f} | {r['bwd_cl']:.2f} |")
    return rows, "\n".join(lines)


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    p.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=list(VARIANTS))
    p.add_argument("--iters", type=int, default=20, help="timed iterations per column")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--block", type=int, default=4, help="iterations per round-robin block")
    p.add_argument("--profile-steps", type=int, default=15)
    p.add_argument("--no-command", action="store_true", help="skip the whole-command timing")
    p.add_argument("--layers", action="store_true", help="also time every layer in each layout")
    p.add_argument("--throughput-only", action="store_true",
                   help="only compare one 2-thread run with two 1-thread runs side by side")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=str(DEFAULT_JSON))
    args = p.parse_args(argv)

    info = machine_info()
    info.update(ortools=ORTOOLS_VERSION, native_bf16_cpu=acceleration.native_bf16("cpu"),
                auto_precision=acceleration.resolve_precision("auto", "cpu"))
    print(f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, flags "
          f"{' '.join(info['cpu_flags_of_note']) or '-'}, torch {info['torch']}; "
          f"precision auto -> {info['auto_precision']}")
    out = {"command": "python " + " ".join([os.path.relpath(__file__, ROOT)] +
                                            list(sys.argv[1:] if argv is None else argv)),
           "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": info,
           "settings": SETTINGS, "iters": args.iters, "warmup": args.warmup,
           "timing": {}, "compile_seconds": {}, "command_update": {}, "profile": {},
           "flops": {}, "targets": {"update_ms": TARGETS, "cascade_over_beta_vae": RATIO_TARGET}}
    if args.throughput_only:
        lines = ["| setting | way | updates | wall s | updates / s |", "|---|---|---:|---:|---:|"]
        out["throughput"] = {}
        for s in args.settings:
            res = throughput(s)
            out["throughput"][s] = res
            for label, r in res.items():
                lines.append(f"| {s} | {label} | {r['updates']} | {r['wall_s']:.1f} | "
                             f"{r['updates_per_s']:.2f} |")
        table = "\n".join(lines)
        out["tables"] = {"throughput": table}
        print(table)
        path = Path(args.json).with_name(Path(args.json).stem + "_throughput.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1, default=str))
        print(f"wrote {path}")
        return
    tables = []
    for th in args.threads:
        for s in args.settings:
            t0 = time.time()
            res, comp = time_setting(s, args.models, args.variants, th, args.iters,
                                     args.warmup, args.block, args.seed)
            out["timing"][f"{s}/t{th}"] = res
            out["compile_seconds"][f"{s}/t{th}"] = comp
            print(f"  timed {s} threads={th} in {time.time() - t0:.1f} s", flush=True)
            lines = [f"{s} ({SETTINGS[s]['image_size']}x{SETTINGS[s]['image_size']}, "
                     f"m={SETTINGS[s]['m']}, S={SETTINGS[s]['S']}), {th} threads, median ms "
                     "per update:", "",
                     "| model | " + " | ".join(args.variants) + " | previous / fp32 |",
                     "|---|" + "---:|" * (len(args.variants) + 1)]
            for m in args.models:
                cells = [res[f"{m}/{v}"]["median_ms"] for v in args.variants]
                ratio = ""
                if "previous" in args.variants and "fp32" in args.variants:
                    ratio = f"{res[m + '/previous']['median_ms'] / res[m + '/fp32']['median_ms']:.2f}x"
                lines.append(f"| {LABELS[m]} | " + " | ".join(f"{c:.1f}" for c in cells)
                             + f" | {ratio} |")
            if "official/previous" in res:
                lines.append(f"| official-style | {res['official/previous']['median_ms']:.1f} |"
                             + " |" * len(args.variants))
            if "cascade" in args.models and "beta-vae" in args.models:
                ratios = ", ".join(
                    f"{v} {res['cascade/' + v]['median_ms'] / res['beta-vae/' + v]['median_ms']:.2f}x"
                    for v in args.variants)
                lines.append("")
                lines.append(f"CascadeVAE / beta-VAE (target <= {RATIO_TARGET}x at S = 3): "
                             + ratios)
            table = "\n".join(lines)
            tables.append(table)
            print("\n" + table + "\n", flush=True)

    th = args.threads[0]
    if not args.no_command:
        for s in args.settings:
            r = command_update_ms(s, th)
            out["command_update"][f"{s}/t{th}"] = r
            print(f"whole command, {s}, {th} threads: {r['update_ms']:.1f} ms per update "
                  f"(walls {r['walls_s']}; {r['command']})", flush=True)

    prof_lines = []
    for s in args.settings:
        pr = profile_cascade(s, th, args.profile_steps, args.seed)
        out["profile"][s] = pr
        prof_lines.append(f"\nCascadeVAE {s}, fp32, {th} threads, {pr['steps']} steps, "
                          f"{pr['step_ms']:.2f} ms/step (wrapped):")
        prof_lines.append("| phase | ms / step | share |\n|---|---:|---:|")
        for k, v in pr["phases"].items():
            prof_lines.append(f"| {k} | {v['ms_per_step']:.2f} | {100 * v['share']:.1f}% |")
        prof_lines.append("\ntorch.profiler top ops (self CPU):\n| op | self ms / step | "
                          "calls / step |\n|---|---:|---:|")
        for o in pr["top_ops"]:
            prof_lines.append(f"| {o['op']} | {o['self_ms_per_step']:.3f} | "
                              f"{o['calls_per_step']:.0f} |")
    print("\n".join(prof_lines))

    gflops = {str(t): {"fp32": matmul_gflops(t), "bf16": matmul_gflops(t, torch.bfloat16)}
              for t in sorted(set(args.threads))}
    out["matmul_gflops_2048"] = gflops
    bound_lines = ["| setting | train fwd GFLOP | train bwd GFLOP | scoring (B*S) GFLOP | total "
                   "GFLOP | threads | fp32 / bf16 matmul GFLOP/s | fp32 bound ms | measured "
                   "fp32 ms |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in args.settings:
        fl = count_flops(s, args.seed)
        out["flops"][s] = fl
        for t in sorted(set(args.threads)):
            g = gflops[str(t)]
            bound = fl["total"] / (g["fp32"] * 1e9) * 1e3
            meas = out["timing"][f"{s}/t{t}"].get("cascade/fp32", {}).get("median_ms", float("nan"))
            bound_lines.append(
                f"| {s} | {fl['train_fwd'] / 1e9:.3f} | {fl['train_bwd'] / 1e9:.3f} | "
                f"{fl['scoring_fwd'] / 1e9:.3f} | {fl['total'] / 1e9:.3f} | {t} | "
                f"{g['fp32']:.0f} / {g['bf16']:.0f} | {bound:.1f} | {meas:.1f} |")
    print("\nFLOP lower bound:\n" + "\n".join(bound_lines))
    out["tables"] = {"timing": tables, "profile": "\n".join(prof_lines),
                     "bound": "\n".join(bound_lines)}
    if args.layers:
        rows, table = layer_table(th)
        out["layers"] = rows
        out["tables"]["layers"] = table
        print(f"\nper layer, batch 64, {th} threads, ms:\n" + table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
