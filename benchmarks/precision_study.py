"""Does bfloat16 change the science? fp32 against bf16 on the same seeds: training runs of
2,000 updates on MNIST-5k and procedural dSprites (scaled presets ``mnist`` and ``dsprites``,
the discrete step on for the last two thirds of the dSprites run), their loss curves and final
metrics, and the agreement of the discrete step's labels when the same parameters score the
same batches in fp32 and in bf16.

    python benchmarks/precision_study.py --seeds 1 2 --iters 2000 --out /tmp/precision

Each run is ``python -m cascadevae.train`` in a subprocess (one thread; ``--jobs`` at a time)
into ``--out``; finished runs are reused, so the script can be rerun to redo only the report.
Writes ``docs/performance/precision.json`` and ``docs/performance/precision_loss.png``.

Label agreement: for every fp32 run, at its final checkpoint and at the initial parameters,
``--batches`` batches of 64 training images with one z each (seeded) are scored by
``cascadevae.models.discrete.code_loglik`` once in float32 and once under bfloat16 autocast,
and each u is solved exactly (``assign`` with the run's lambda'); reported: the fraction of
items whose label agrees, and the fraction whose label agrees up to a relabelling that the
objective cannot tell apart (the same partition), plus the largest |u_bf16 - u_fp32|.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cascadevae import data as data_mod  # noqa: E402
from cascadevae import kernels  # noqa: E402
from cascadevae.evaluate import load_model  # noqa: E402
from cascadevae.models import build_model  # noqa: E402
from cascadevae.models.discrete import code_loglik  # noqa: E402
from cascadevae.run_dir import RunDir  # noqa: E402
from _common import machine_info  # noqa: E402

DATASETS = {"mnist5k": "mnist", "dsprites": "dsprites"}   # --dataset -> --preset
METRIC = {"mnist5k": "unsupervised_accuracy", "dsprites": "disentanglement_score"}
OUT_DIR = ROOT / "docs" / "performance"


def run_name(dataset: str, precision: str, seed: int) -> str:
    return f"{dataset}-{precision}-s{seed}"


def train_one(out: Path, dataset: str, precision: str, seed: int, iters: int) -> Path:
    run = out / run_name(dataset, precision, seed)
    summary = run / "summary.json"
    if summary.exists() and json.loads(summary.read_text()).get("status") == "finished":
        return run
    cmd = [sys.executable, "-m", "cascadevae.train", "--preset", DATASETS[dataset],
           "--dataset", dataset, "--iters", str(iters), "--seed", str(seed),
           "--precision", precision, "--no-compile", "--threads", "1", "--no-progress",
           "--no-figures", "--log-every", "20", "--mi-every", "0", "--eval-max-images", "5000",
           "--out", str(run)]
    if run.exists():
        cmd = [sys.executable, "-m", "cascadevae.train", "--resume", str(run), "--no-progress",
               "--no-figures", "--eval-max-images", "5000"]
    with open(out / f"{run.name}.log", "a") as log:
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=log, stderr=subprocess.STDOUT)
    return run


def label_agreement(run: Path, batches: int, seed: int, initial: bool) -> dict:
    """Labels of the exact assignment on fp32 and bf16 scores of the same batches."""
    rd = RunDir(run)
    model, state = load_model(rd, torch.device("cpu"))
    if initial:  # the same architecture at the run's initial parameters
        torch.manual_seed(state["config"]["seed"])
        model = build_model(model.config, model.image_size)
    model.eval()
    info = rd.read_json("run.json")
    ds = data_mod.load(info["dataset"])
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    lam = model.config.pairwise_lambda
    same = same_partition = total = 0
    max_du = 0.0
    for _ in range(batches):
        x = torch.from_numpy(np.ascontiguousarray(ds.sample_batch(64, rng)[0]))
        with torch.no_grad():
            z = model.posterior(x, generator=gen).z
            u32 = code_loglik(model, x, z)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                u16 = code_loglik(model, x, z)
        d32 = kernels.assign(u32.double().numpy(), lam)
        d16 = kernels.assign(u16.double().numpy(), lam)
        same += int((d32 == d16).sum())
        # the same partition under some relabelling of the classes
        pairs = {}
        for a, b in zip(d32.tolist(), d16.tolist()):
            pairs.setdefault(a, {}).setdefault(b, 0)
            pairs[a][b] += 1
        same_partition += sum(max(v.values()) for v in pairs.values())
        total += len(d32)
        max_du = max(max_du, float((u16 - u32).abs().max()))
    return {"items": total, "agree": same / total, "agree_up_to_relabelling": same_partition / total,
            "max_abs_u_difference": max_du, "lambda_ordered": lam}


def loss_figure(runs: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    datasets = sorted({k[0] for k in runs})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    colours = {"fp32": "tab:blue", "bf16": "tab:orange"}
    for ax, dataset in zip(axes[0], datasets):
        for (ds, precision, seed), run in sorted(runs.items()):
            if ds != dataset:
                continue
            recs = RunDir(run).read_metrics()
            t = [r["t"] for r in recs]
            ax.plot(t, [r["loss"] for r in recs], color=colours[precision], alpha=0.8,
                    lw=1.2, ls="-" if seed == min(k[2] for k in runs) else "--",
                    label=f"{precision}, seed {seed}")
        ax.set_title(f"{dataset}: training loss (recon + weighted KL)")
        ax.set_xlabel("update t")
        ax.set_ylabel("loss (nats per image)")
        ax.set_yscale("log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--iters", type=int, default=2000)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--jobs", type=int, default=1, help="training runs at a time (one thread each)")
    p.add_argument("--batches", type=int, default=50, help="batches for the label agreement")
    p.add_argument("--out", default="/tmp/cascadevae-precision")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(d, prec, s) for d in args.datasets for s in args.seeds for prec in ("fp32", "bf16")]
    with ThreadPoolExecutor(args.jobs) as pool:
        paths = list(pool.map(lambda j: train_one(out, *j, args.iters), jobs))
    runs = dict(zip(jobs, paths))
    results = {"command": "python " + " ".join([os.path.relpath(__file__, ROOT)] +
                                                list(sys.argv[1:] if argv is None else argv)),
               "machine": machine_info(), "iters": args.iters, "runs": {}, "agreement": {},
               "summary": {}}
    for key, run in runs.items():
        summ = json.loads((run / "summary.json").read_text())
        results["runs"]["/".join(map(str, key))] = {
            "metric": (summ.get("metrics") or {}).get(METRIC[key[0]]),
            "final_loss": summ["final"]["loss"], "final_recon": summ["final"]["recon"],
            "wall_seconds": summ["wall_seconds"]}
    for (dataset, precision, seed), run in runs.items():
        if precision != "fp32":
            continue
        for initial in (True, False):
            tag = f"{dataset}/s{seed}/{'initial' if initial else 'final'}"
            results["agreement"][tag] = label_agreement(run, args.batches, 1000 + seed, initial)
    lines = ["| dataset | precision | metric | mean (sample std) over seeds | per seed | final loss "
             "(mean) | seconds per run (mean) |", "|---|---|---|---:|---|---:|---:|"]
    for dataset in args.datasets:
        for precision in ("fp32", "bf16"):
            rows = [results["runs"][f"{dataset}/{precision}/{s}"] for s in args.seeds]
            vals = [r["metric"] for r in rows if r["metric"] is not None]
            mean = float(np.mean(vals)) if vals else float("nan")
            std = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
            results["summary"][f"{dataset}/{precision}"] = {"mean": mean, "std": std, "values": vals}
            lines.append(f"| {dataset} | {precision} | {METRIC[dataset]} | {mean:.2f} ({std:.2f}) | "
                         + ", ".join(f"{v:.2f}" for v in vals)
                         + f" | {np.mean([r['final_loss'] for r in rows]):.1f} | "
                         f"{np.mean([r['wall_seconds'] for r in rows]):.0f} |")
    lines += ["", "| run, parameters | items | labels agree | same partition | max abs(u_bf16 - u_fp32) |",
              "|---|---:|---:|---:|---:|"]
    for tag, a in results["agreement"].items():
        lines.append(f"| {tag} | {a['items']} | {100 * a['agree']:.2f} % | "
                     f"{100 * a['agree_up_to_relabelling']:.2f} % | {a['max_abs_u_difference']:.3f} |")
    table = "\n".join(lines)
    results["table"] = table
    print(table)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    loss_figure(runs, OUT_DIR / "precision_loss.png")
    with open(OUT_DIR / "precision.json", "w") as f:
        json.dump(results, f, indent=1, default=str)
    print(f"wrote {OUT_DIR / 'precision.json'} and {OUT_DIR / 'precision_loss.png'}")


if __name__ == "__main__":
    main()
