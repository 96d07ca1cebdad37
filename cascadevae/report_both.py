"""The results tables: ``python -m cascadevae.report RUN_DIR... --selection both``.

One table per dataset and headline metric (disentanglement score, unsupervised accuracy), each
row a group of runs (model, m, S, iterations) with, side by side and labelled:

* our final checkpoint (eval.json), mean (std) and best over seeds;
* the official code's label-based selection, the best kept checkpoint by the ground-truth
  metric (eval_best_by_label.json, from ``evaluate --best-by-label``), which the paper's tables
  used;
* the paper's numbers for that model, m and hyperparameter (:mod:`cascadevae.paper_tables`; 10
  seeds, the paper's budget and data);

and, in every unsupervised-accuracy table, a k-means row (:func:`cascadevae.metrics.
kmeans_accuracy`: raw pixels, k = the number of classes, 3 seeds), computed once per dataset
and cached in the output folder. Written to OUT/report_both.md and .json, and, for every table
whose runs kept checkpoints evaluated by ``evaluate --all-checkpoints``, a figure of the metric
over training (OUT/history_DATASET_METRIC.png: each run's evaluated checkpoints, the paper's mean and
the k-means mean as lines), which shows what the label-based selection picks from. The two selections'
own reports (``--selection final`` / ``best-by-label``) carry the per-run values and the other
metrics.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import data as data_mod
from .paper_tables import ACCURACY, DISENTANGLEMENT, paper_row
from .report import (SELECTIONS, STD_NOTE, ReportError, _budget_line, _protocol_line, _row,
                     build_report, default_out_dir, find_run_dirs, load_runs)
from .run_dir import atomic_write_bytes, atomic_write_json

HEADLINES = ((DISENTANGLEMENT, "disentanglement score"), (ACCURACY, "unsupervised accuracy (%)"))
KMEANS_FILE = "kmeans.json"


def _stats(group: Optional[Dict[str, Any]], key: str) -> Optional[Dict[str, Any]]:
    return None if group is None else group["metrics"].get(key)


def _fmt(stats: Optional[Dict[str, Any]]) -> List[str]:
    if not stats or stats.get("mean") is None:
        return ["", ""]
    std = "n/a" if stats.get("std") is None else f"{stats['std']:.2f}"
    n = f" [n={stats['n']}]" if "n" in stats else ""
    best = "" if stats.get("best") is None else f"{stats['best']:.2f}"
    return [f"{stats['mean']:.2f} ({std}){n}", best]


def kmeans_baseline(info: Dict[str, Any], num_images: int, cache: Path) -> Optional[Dict[str, Any]]:
    """k-means accuracy for the dataset of run.json ``info`` on its evaluation images (cached
    in ``cache`` by dataset and number of images)."""
    from .evaluate import load_eval_data
    from .metrics import kmeans_accuracy
    key = f"{info['dataset']}/{num_images}"
    store = json.loads(cache.read_text()) if cache.is_file() else {}
    if key in store:
        return store[key]
    ds, idx, labels, split, target = load_eval_data(info, None, num_images, 0)
    if labels is None:
        return None
    test = ds.images(idx)
    if str(info["dataset"]).startswith("dsprites"):
        rng = np.random.default_rng(1)
        train = ds.images(np.sort(rng.choice(len(ds), size=min(10_000, len(ds)), replace=False)))
        k = 3
    else:
        train_ds = data_mod.load(info["dataset"], data_dir=info.get("data_dir"), split="train")
        train = train_ds.images(np.arange(len(train_ds)))
        k = int(ds.num_classes or int(labels.max()) + 1)
    print(f"k-means baseline on {key} ({len(train)} training images, k={k}) ...", file=sys.stderr)
    res = kmeans_accuracy(train, test, labels, k)
    res.update(target=target, split=split)
    store[key] = res
    atomic_write_json(cache, store)
    return res


def build_both(paths: Sequence, title: Optional[str] = None, kmeans: bool = True,
               out_dir=None) -> Dict[str, Any]:
    run_dirs = find_run_dirs(paths)
    reports = {}
    for option in ("final", "best-by-label"):
        runs, skipped = load_runs(run_dirs, SELECTIONS[option])
        reports[option] = build_report(runs, SELECTIONS[option], skipped) if runs else None
    if reports["final"] is None:
        raise ReportError("no run has eval.json (the final checkpoint's evaluation) to report")
    out = Path(out_dir) if out_dir is not None else default_out_dir(paths[0])
    out.mkdir(parents=True, exist_ok=True)
    best_groups = {}
    if reports["best-by-label"] is not None:
        for table in reports["best-by-label"]["tables"]:
            for g in table["groups"]:
                best_groups[(table["dataset"], g["model"], g["m"], g["S"], g["iterations"])] = g
    tables = []
    for table in reports["final"]["tables"]:
        for key, name in HEADLINES:
            groups = [g for g in table["groups"] if key in g["metrics"]]
            if not groups:
                continue
            rows = []
            for g in groups:
                b = best_groups.get((table["dataset"], g["model"], g["m"], g["S"], g["iterations"]))
                p = paper_row(key, table["config_dataset"], g["model"], g["m"], g["beta"])
                rows.append({"model": g["model_name"], "beta": g["beta"], "m": g["m"],
                             "S": g["S"], "iterations": g["iterations"], "seeds": g["num_runs"],
                             "final": _stats(g, key), "best_by_label": _stats(b, key),
                             "best_by_label_seeds": None if b is None else b["num_runs"],
                             "run_dirs": [str(r["run_dir"]) for r in g["runs"]],
                             "paper": None if p is None else {"mean": p.mean, "std": p.std,
                                                              "best": p.best, "table": p.table}})
            entry = {"dataset": table["dataset"], "config_dataset": table["config_dataset"],
                     "metric": key, "metric_name": name, "budget": _budget_line(table),
                     "protocol": _protocol_line(table), "rows": rows, "kmeans": None,
                     "warnings": [w for g in groups for w in g["warnings"]]}
            if key == ACCURACY and kmeans:
                first = groups[0]["runs"][0]["run_dir"]
                info = json.loads((Path(first) / "run.json").read_text())
                n = json.loads((Path(first) / "eval.json").read_text()).get("eval_num_images")
                entry["kmeans"] = kmeans_baseline(info, n, out / KMEANS_FILE)
            tables.append(entry)
    return {"title": title, "tables": tables, "std_note": STD_NOTE, "out": str(out)}


def history_figure(table: Dict[str, Any], path: Path) -> bool:
    """Draw the table's metric over training for every run: each entry of its
    eval_history.json (the checkpoints on the run's ``--checkpoint-every`` grid and its latest
    one, see :func:`cascadevae.evaluate.history_targets`), with the paper's mean and the k-means
    mean as horizontal lines. False when no run has a history."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    key = table["metric"]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    drawn = False
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(table["rows"]):
        colour = colours[i % len(colours)]
        for j, rd in enumerate(row["run_dirs"]):
            hist = Path(rd) / "eval_history.json"
            if not hist.is_file():
                continue
            points = sorted((e["t"], e[key]) for e in json.loads(hist.read_text()) if key in e)
            if not points:
                continue
            t, v = zip(*points)
            ax.plot(t, v, "-o", ms=3, color=colour, alpha=0.8,
                    label=f"{row['model']} (m={row['m']})" if j == 0 else None)
            drawn = True
        paper = row["paper"]
        if paper is not None:
            ax.axhline(paper["mean"], color=colour, ls="--", lw=1,
                       label=f"{row['model']}, paper mean ({paper['table']})")
    if table.get("kmeans"):
        ax.axhline(table["kmeans"]["kmeans_mean"], color="grey", ls=":", lw=1.5,
                   label="k-means on pixels")
    if drawn:
        ax.set_xlabel("iteration (updates done)")
        ax.set_ylabel(table["metric_name"])
        ax.set_title(f"{table['dataset']}: {table['metric_name']} over training")
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return drawn


def history_name(table: Dict[str, Any]) -> str:
    return f"history_{table['dataset']}_{table['metric']}.png"


def render_both(report: Dict[str, Any]) -> str:
    lines = [f"# {report['title'] or 'Results'}", "",
             "- **final**: each run's last checkpoint (eval.json), our default and the only "
             "unsupervised selection.",
             "- **best by label**: the checkpoint with the best ground-truth score among those "
             "kept on the run's checkpoint grid and its last one "
             "(eval_best_by_label.json), as the official code selected and the paper's tables "
             "report; it uses the labels the metric is blind to.",
             "- **paper**: the paper's Tables 1-4 (10 seeds, its budget and data).",
             f"- Mean (std) over seeds; {report['std_note']}. Best: the highest seed."]
    for t in report["tables"]:
        paper_data = t["config_dataset"]
        note = ""
        if t["dataset"] != paper_data:
            note = (f" The paper's rows are for {paper_data}, not {t['dataset']}."
                    if t["dataset"] != "mnist5k" else
                    " The paper's rows are for full MNIST (50,000 training images); these "
                    "runs use MNIST-5k (4,000).")
        lines += ["", f"## {t['dataset']}: {t['metric_name']}", "", t["budget"] + note, "",
                  t["protocol"]]
        if t["warnings"]:
            lines += [""] + [f"- **Warning**: {w}" for w in t["warnings"]]
        head = ["model", "beta", "m", "S", "iterations", "seeds", "final mean (std)",
                "final best", "best by label mean (std)", "best by label best",
                "paper mean (std)", "paper best"]
        lines += ["", _row(head), _row(["---"] * 6 + ["---:"] * 6)]
        for r in t["rows"]:
            paper = r["paper"]
            pcells = ["", ""] if paper is None else [f"{paper['mean']:.2f} ({paper['std']:.2f})",
                                                      f"{paper['best']:.2f}"]
            lines.append(_row([r["model"], r["beta"], r["m"], r["S"], r["iterations"],
                               r["seeds"]] + _fmt(r["final"]) + _fmt(r["best_by_label"]) + pcells))
        km = t["kmeans"]
        if km:
            std = "n/a" if km["kmeans_std"] is None else f"{km['kmeans_std']:.2f}"
            lines.append(_row([f"k-means (pixels, k={km['kmeans_num_clusters']})", "", "", "",
                               "", len(km["kmeans_accuracy"]),
                               f"{km['kmeans_mean']:.2f} ({std})", f"{km['kmeans_best']:.2f}",
                               "", "", "", ""]))
            lines += ["", f"k-means: fitted on {km['kmeans_num_train']} training images, scored "
                      f"on the {km['kmeans_num_test']} evaluation images against the "
                      f"{km['target']}, clusters matched one-to-one; seeds "
                      f"{km['kmeans_seeds']} ({km['kmeans_n_init']} restarts each)."]
        if t.get("history_figure"):
            lines += ["", f"![{t['metric_name']} over training]({t['history_figure']})"]
    return "\n".join(lines) + "\n"


def write_both(paths: Sequence, title: Optional[str] = None, kmeans: bool = True,
               out_dir=None):
    report = build_both(paths, title, kmeans, out_dir)
    out = Path(report["out"])
    figures = []
    for t in report["tables"]:
        if history_figure(t, out / history_name(t)):
            t["history_figure"] = history_name(t)
            figures.append(out / history_name(t))
    text = render_both(report)
    atomic_write_bytes(out / "report_both.md", text.encode("utf-8"))
    atomic_write_json(out / "report_both.json", report)
    return report, text, [out / "report_both.md", out / "report_both.json"] + figures
