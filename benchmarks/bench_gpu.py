#!/usr/bin/env python
"""Benchmark of the GPU path (issue 7) on one CUDA device; prints Markdown tables and writes JSON.

1. assign: the CUDA kernel (cascadevae.kernels.assign, method="device") at (64, 3), (64, 10)
   and a batch of 16 such problems, families A (strong penalty) and B (CascadeVAE-like; the
   instances of bench_assign.py, _common.assign_problem), against
   the CPU solver plus its copies (u.cpu(), cascadevae_ext.assign, labels back to the device).
   Per call: "GPU" is the device time of back-to-back launches (CUDA events over --reps calls);
   "call+wait" is host wall time of one call followed by torch.cuda.synchronize() (launch
   latency included); the CPU path is always call+wait, its copies synchronise anyway. The
   objectives of both are compared (they must be equal).
2. likelihood: the CUDA kernel (fast and precise variants) against torch eager
   (kernels.bernoulli_loglik_torch on float32 logits) at (64, 10, 1024), (4096, 3, 4096) and
   (64, 3, 4096), float32 and bfloat16 logits. Inputs rotate through enough copies to exceed
   the L2 cache, so the bandwidth is DRAM bandwidth: bytes = logits + x + out, per kernel time
   (CUDA events over back-to-back launches). Reported against the device's nominal bandwidth
   (table below, by name) and against a measured device-to-device copy.
3. training iteration (dSprites CascadeVAE: 64x64, batch 64, m = 6, S = 3, lambda'_official
   0.001, discrete step on from t = 0), ms per update, host batch sampling and upload included,
   timed over --iters updates after warm-up with a synchronize at both ends:
     eager-torch-cpu    Trainer.step, u by the torch formula, CPU solver (the path before issue 7)
     eager-cpu-solver   Trainer.step, u by the CUDA kernel, CPU solver (u copied to the host)
     eager-device       Trainer.step, u and labels on the device (Trainer still reads the loss
                        every update: one sync per update)
     step-eager         DeviceStep(use_graphs=False): no sync per update
     step-graph         DeviceStep(use_graphs=True): one CUDA graph replay per update
   Goals: step-graph <= 2 ms/iteration and >= 3x faster than eager with the CPU solver.

    python benchmarks/bench_gpu.py                 # everything, about 1-2 minutes on an H100
    python benchmarks/bench_gpu.py --quick         # fewer repetitions
Exits with a message (status 0) when there is no CUDA device or no CUDA kernels in the build.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from _common import REPO, assign_objective, assign_problem, machine_info
import cascadevae_ext as ce
from cascadevae import kernels

DEFAULT_JSON = REPO / "benchmarks" / "results" / "gpu.json"
# Nominal DRAM bandwidth (GB/s) by device-name substring, first match wins.
NOMINAL_GBPS = [("H200", 4800), ("H100 NVL", 3900), ("H100 PCIe", 2000), ("H100", 3350),
                ("A100-SXM4-80GB", 2039), ("A100 80GB PCIe", 1935), ("A100", 1555),
                ("L40S", 864), ("A10G", 600), ("RTX 4090", 1008)]


def nominal_gbps(name: str):
    for key, value in NOMINAL_GBPS:
        if key in name:
            return value
    return None


def gpu_time_per_call(fn, reps):
    """Device milliseconds per call of back-to-back launches (CUDA events)."""
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / reps


def wall_per_call(fn, reps):
    """Host milliseconds of one call plus a synchronize (median over reps)."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def fmt_ms(ms):
    return f"{ms * 1e3:.1f} µs" if ms < 1 else f"{ms:.3f} ms"


# ---- 1. assign -----------------------------------------------------------------------------------

def bench_assign(reps):
    rows = []
    for G, n, S in [(1, 64, 3), (1, 64, 10), (16, 64, 3), (16, 64, 10)]:
        for family in ("A", "B"):
            u_host, lam = assign_problem(family, n, S, seed=0, G=None if G == 1 else G)
            u = torch.from_numpy(u_host).cuda()

            def device():
                return kernels.assign(u, lam, "device")

            def host_path():
                labels = ce.assign(u.cpu(), lam)
                return torch.from_numpy(labels).to(u.device)

            def host_solve_only():
                return ce.assign(u_host, lam)

            gpu_ms = gpu_time_per_call(device, reps)
            dev_wall = wall_per_call(device, reps)
            cpu_wall = wall_per_call(host_path, reps)
            solve_ms = wall_per_call(host_solve_only, reps)
            obj_dev = assign_objective(u_host, lam, device().cpu().numpy())
            obj_cpu = assign_objective(u_host, lam, host_path().cpu().numpy())
            rows.append({"G": G, "n": n, "S": S, "family": family, "device_gpu_ms": gpu_ms,
                         "device_call_wait_ms": dev_wall, "cpu_with_copies_ms": cpu_wall,
                         "cpu_solve_only_ms": solve_ms, "speedup_call_wait": cpu_wall / dev_wall,
                         "objective_equal": obj_dev == obj_cpu,
                         "objective_gap": abs(obj_dev - obj_cpu) / max(1.0, abs(obj_cpu))})
    print("\n## assign: CUDA kernel vs CPU solver + copies\n")
    print("| problem | family | device, GPU time/call | device, call+wait | CPU + copies, call+wait | "
          "CPU solve only | call+wait speedup | same objective |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        shape = f"{r['n']} x {r['S']}" if r["G"] == 1 else f"{r['G']} x ({r['n']} x {r['S']})"
        print(f"| {shape} | {r['family']} | {fmt_ms(r['device_gpu_ms'])} | {fmt_ms(r['device_call_wait_ms'])} | "
              f"{fmt_ms(r['cpu_with_copies_ms'])} | {fmt_ms(r['cpu_solve_only_ms'])} | "
              f"{r['speedup_call_wait']:.2f}x | {'yes' if r['objective_equal'] else 'NO (gap %.1e)' % r['objective_gap']} |")
    return rows


# ---- 2. likelihood -------------------------------------------------------------------------------

def copy_bandwidth_gbps():
    n = 256 * 2**20 // 4
    a = torch.empty(n, device="cuda")
    b = torch.empty_like(a)
    ms = gpu_time_per_call(lambda: b.copy_(a), 20)
    return 2 * a.numel() * 4 / (ms * 1e-3) / 1e9


def bench_loglik(reps, nominal, copy_gbps):
    bernoulli_loglik_torch = kernels.bernoulli_loglik_torch
    rows = []
    for B, S, P in [(64, 10, 1024), (4096, 3, 4096), (64, 3, 4096)]:
        for dtype in (torch.float32, torch.bfloat16):
            elem = torch.tensor([], dtype=dtype).element_size()
            nbytes = B * S * P * elem + B * P * 4 + B * S * 4
            copies = max(2, math.ceil(256 * 2**20 / nbytes))  # > 2x a 50 MB L2
            g = torch.Generator(device="cuda").manual_seed(B + S + P)
            inputs = [((torch.randn(B, S, P, generator=g, device="cuda") * 3).to(dtype),
                       (torch.rand(B, P, generator=g, device="cuda") < 0.4).float()) for _ in range(copies)]
            counter = [0]

            def rotating(fn):
                def call():
                    logits, x = inputs[counter[0] % copies]
                    counter[0] += 1
                    return fn(logits, x)
                return call

            row = {"B": B, "S": S, "P": P, "dtype": str(dtype).replace("torch.", ""), "bytes": nbytes,
                   "buffers": copies}
            for variant in kernels.LOGLIK_VARIANTS:
                ms = gpu_time_per_call(rotating(functools.partial(kernels.bernoulli_loglik, variant=variant)), reps)
                row[f"{variant}_ms"] = ms
                row[f"{variant}_gbps"] = nbytes / (ms * 1e-3) / 1e9
            ms = gpu_time_per_call(rotating(lambda l, x: bernoulli_loglik_torch(l.float(), x)), max(3, reps // 10))
            row["torch_ms"] = ms
            row["torch_gbps"] = nbytes / (ms * 1e-3) / 1e9
            logits, x = inputs[0]
            ref = bernoulli_loglik_torch(logits.double(), x.double())
            for variant in kernels.LOGLIK_VARIANTS:
                out = kernels.bernoulli_loglik(logits, x, variant=variant).double()
                row[f"{variant}_max_rel_err"] = float(((out - ref).abs() / ref.abs().clamp_min(1.0)).max())
            inputs.clear()  # free this shape's buffers before the next
            rows.append(row)
    print("\n## likelihood kernel: achieved DRAM bandwidth (bytes = logits + x + out per call)\n")
    nom = f"{nominal} GB/s nominal" if nominal else "nominal unknown"
    print(f"Device-to-device copy: {copy_gbps:.0f} GB/s (read + write); {nom}.\n")
    print("| shape (B, S, P) | logits | fast | fast GB/s | fast % nominal | fast % copy | precise | precise GB/s | "
          "torch eager | torch GB/s | fast vs torch | fast max rel err | precise max rel err |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        pct = f"{100 * r['fast_gbps'] / nominal:.0f} %" if nominal else "-"
        print(f"| ({r['B']}, {r['S']}, {r['P']}) | {r['dtype']} | {fmt_ms(r['fast_ms'])} | {r['fast_gbps']:.0f} | {pct} | "
              f"{100 * r['fast_gbps'] / copy_gbps:.0f} % | {fmt_ms(r['precise_ms'])} | {r['precise_gbps']:.0f} | "
              f"{fmt_ms(r['torch_ms'])} | {r['torch_gbps']:.0f} | {r['torch_ms'] / r['fast_ms']:.1f}x | "
              f"{r['fast_max_rel_err']:.1e} | {r['precise_max_rel_err']:.1e} |")
    return rows


# ---- 3. training iteration ------------------------------------------------------------------------

def random_binary_images(n, size, seed=0):
    """Stand-in data: n random binary images in the package's in-memory image dataset (host
    numpy; sample_batch indexes and converts them, as a real dataset would)."""
    from cascadevae.data import ArrayImageDataset
    pixels = (np.random.default_rng(seed).random((n, size, size)) < 0.2).astype(np.uint8) * 255
    return ArrayImageDataset(pixels, name="random", source="random binary images")


def bench_train(iters, warmup):
    from cascadevae.device_step import DeviceStep
    from cascadevae.models import discrete as discrete_mod
    from cascadevae.presets import get_preset
    from cascadevae.training import Trainer

    data = random_binary_images(2048, 64)
    cfg = get_preset("dsprites", discrete_warmup=0)

    def trainer():
        return Trainer(cfg, data, 64, torch.device("cuda"))

    real_codes, real_flag = discrete_mod.discrete_step, kernels.HAVE_CUDA_KERNELS

    def on_cpu(*args, **kwargs):  # the discrete step with the CPU solver (copies u to the host)
        return real_codes(*args, **dict(kwargs, method="cpu"))

    def patched(cpu_solver, torch_loglik):
        def apply():
            discrete_mod.discrete_step = on_cpu if cpu_solver else real_codes
            kernels.HAVE_CUDA_KERNELS = real_flag and not torch_loglik
        return apply

    def restore():
        discrete_mod.discrete_step = real_codes
        kernels.HAVE_CUDA_KERNELS = real_flag

    def trainer_mode(cpu_solver, torch_loglik):
        tr = trainer()
        return tr, (lambda: tr.step()), patched(cpu_solver, torch_loglik)

    def step_mode(graphs):
        tr = trainer()
        step = DeviceStep.from_trainer(tr, use_graphs=graphs)
        counter = [0]

        def run():
            images, _ = tr.dataset.sample_batch(cfg.batch_size, tr.data_rng)
            step.step(counter[0], images)
            counter[0] += 1
        return tr, run, restore

    modes = {"eager-torch-cpu": trainer_mode(True, True), "eager-cpu-solver": trainer_mode(True, False),
             "eager-device": trainer_mode(False, False), "step-eager": step_mode(False),
             "step-graph": step_mode(True)}
    results = {}
    for name, (_, run, setup) in modes.items():
        setup()
        try:
            for _ in range(warmup):
                run()
            torch.cuda.synchronize()
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(iters):
                    run()
                torch.cuda.synchronize()
                times.append((time.perf_counter() - t0) / iters * 1e3)
            results[name] = {"ms_per_iter": statistics.median(times), "runs_ms": times}
        finally:
            restore()
    base = results["eager-cpu-solver"]["ms_per_iter"]
    before = results["eager-torch-cpu"]["ms_per_iter"]
    graph = results["step-graph"]["ms_per_iter"]
    print("\n## dSprites CascadeVAE iteration (batch 64, 64x64, m = 6, S = 3), ms per update\n")
    print("| mode | ms / update | vs eager-cpu-solver | vs eager-torch-cpu |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['ms_per_iter']:.3f} | {base / r['ms_per_iter']:.2f}x | {before / r['ms_per_iter']:.2f}x |")
    goals = {"graph_ms_le_2": graph <= 2.0, "graph_3x_faster_than_eager_cpu_solver": base / graph >= 3.0,
             "graph_3x_faster_than_eager_torch_cpu": before / graph >= 3.0}
    print(f"\nGoals: step-graph {graph:.3f} ms <= 2 ms: {'met' if goals['graph_ms_le_2'] else 'MISSED'}; "
          f">= 3x eager with the CPU solver: {base / graph:.2f}x ({'met' if goals['graph_3x_faster_than_eager_cpu_solver'] else 'MISSED'}); "
          f"against the pre-issue path (torch likelihood + CPU solver): {before / graph:.2f}x")
    return {"modes": results, "goals": goals}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--sections", default="assign,loglik,train", help="comma-separated subset")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device visible to torch (torch", torch.__version__, "); nothing to measure")
        return 0
    if not kernels.HAVE_CUDA_KERNELS:
        print("bench_gpu:", kernels.NO_CUDA_MESSAGE, f"({ce.__file__}); rebuild with a CUDA toolkit")
        return 0
    sections = set(args.sections.split(","))
    info = machine_info("gpu", "ext", "git")
    info["commit"] = (info["git_commit"] or "")[:12] or None  # this script's key before _common
    nominal = nominal_gbps(info["device"])
    print(f"# GPU benchmark: {info['device']} (sm_{''.join(map(str, info['capability']))}, {info['sms']} SMs), "
          f"driver {info['driver']}, torch {info['torch']} (CUDA {info['torch_cuda']}), commit {info['commit']}")
    out = {"command": " ".join([Path(sys.argv[0]).name] + (argv if argv is not None else sys.argv[1:])),
           "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": info}
    t0 = time.time()
    if "assign" in sections:
        out["assign"] = bench_assign(reps=100 if args.quick else 500)
    if "loglik" in sections:
        copy_gbps = copy_bandwidth_gbps()
        out["copy_gbps"], out["nominal_gbps"] = copy_gbps, nominal
        out["loglik"] = bench_loglik(reps=50 if args.quick else 200, nominal=nominal, copy_gbps=copy_gbps)
    if "train" in sections:
        out["train"] = bench_train(iters=50 if args.quick else 200, warmup=10 if args.quick else 20)
    out["seconds"] = time.time() - t0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {args.json} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
