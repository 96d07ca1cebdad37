"""Tabulate evaluated runs as the paper's tables do: ``python -m cascadevae.report RUN_DIR...``.

Each RUN_DIR holds config.json, run.json and the evaluation file of one checkpoint selection
(``--selection``): ``eval.json`` for ``final`` (the default), ``eval_best_by_label.json`` for
``best-by-label``. Only that file is read, and a file whose ``selection`` field says otherwise is
refused: one report never mixes selections. A RUN_DIR without config.json stands for every run
directory below it (``python -m cascadevae.report runs/demo``). A run without the evaluation
file is skipped with a warning (``--strict``: an error).

Runs are grouped by (dataset as in run.json, model, m, S, iterations); each group gets the number
of seeds and, per metric present, mean (std) over seeds, plus the best seed's value for the
disentanglement score and the unsupervised accuracy. std is the *sample* standard deviation
(n - 1 denominator): the paper's tables do not say which they report. There is one table per
dataset, with a metric's columns only when some run of that dataset has the metric. The header
gives the selection, the evaluation protocol and the iterations against the paper's budget; runs
of one group that were evaluated differently (votes, images, ...) are flagged there, and refused
with ``--strict``.

Written to OUT (``--out``; default: the first RUN_DIR when it is a directory of runs, else its
parent directory):

* ``report.md`` (also printed) and ``report.json`` (header, groups, per-run values);
* ``tc_vs_score.png``, the paper's Figure 2 (TC(z) against the disentanglement score, one point
  per run, one colour per model), when at least two runs of a dataset have both values; with
  several such datasets, one ``tc_vs_score_<dataset>.png`` each.

For ``best-by-label`` the names get a ``_best_by_label`` suffix (``report_best_by_label.md``, ...)
so that the two selections' reports of the same runs can sit side by side. ``--selection both``
writes the results tables of :mod:`cascadevae.report_both`: both selections, the paper's numbers
and a k-means row, side by side.
"""
# One concept, grouping and tabulating evaluated runs, at about 500 lines: its Markdown
# rendering lives in report_markdown.py, the paper's numbers in paper_tables.py, the two-selection
# report in report_both.py.
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .evaluate import BEST_BY_LABEL_FILE, EVAL_FILE, SELECTION_BEST, SELECTION_FINAL
from .config import TrainConfig
from .models import MODELS
from .presets import PRESETS
from .report_markdown import _budget_line, _protocol_line, _row, render_markdown  # noqa: F401
from .run_dir import CONFIG_FILE, RUN_FILE, SUMMARY_FILE, atomic_write_bytes, atomic_write_json

STD_DDOF = 1
STD_NOTE = ("std = sample standard deviation over seeds (n - 1 denominator; the paper's tables "
            "do not say which they use: the population std is sqrt((n-1)/n) of it, 0.949x for "
            "10 seeds)")


class Selection(NamedTuple):
    option: str       # the --selection value
    eval_file: str    # the file in each run directory
    label: str        # its "selection" field, as evaluate writes it
    suffix: str       # added to this report's file names


SELECTIONS = {
    "final": Selection("final", EVAL_FILE, SELECTION_FINAL, ""),
    "best-by-label": Selection("best-by-label", BEST_BY_LABEL_FILE, SELECTION_BEST,
                               "_best_by_label"),
}


class Metric(NamedTuple):
    key: str          # eval.json key
    column: str       # table column stem
    digits: int
    best: bool        # report the highest seed's value too


METRICS = (
    Metric("disentanglement_score", "disent. score", 2, True),
    Metric("accuracy_unsupervised", "accuracy %", 2, True),
    Metric("tc_estimate", "TC nats", 3, False),
    Metric("kl_total", "KL nats", 3, False),
    Metric("mi_total", "MI nats", 3, False),
)
TC, SCORE = "tc_estimate", "disentanglement_score"

# eval.json fields that must agree for numbers to be averaged or compared.
PROTOCOL_FIELDS = (
    "protocol", "disentanglement_protocol", "disentanglement_num_votes", "disentanglement_batch",
    "disentanglement_kl_pruning", "disentanglement_num_variance_samples", "accuracy_mapping",
    "accuracy_target", "eval_split", "eval_num_images", "tc_estimator", "tc_num_samples",
    "mi_num_samples", "tc_dataset_size", "disentanglement_collapsed_code",
)
# config fields that may differ inside a group (seed is what a group averages over).
FREE_CONFIG_FIELDS = ("seed", "name", "source")

MODEL_NAMES = {name: cls.label for name, cls in MODELS.items()}


class ReportError(ValueError):
    """The runs cannot be reported as asked (the message says why and what to do)."""


def evaluate_command(selection: Selection) -> str:
    cmd = "python -m cascadevae.evaluate RUN_DIR"
    return cmd if selection.option == "final" else f"{cmd} --best-by-label"


# ---- finding and reading runs ---------------------------------------------------------------

def find_run_dirs(paths: Sequence["os.PathLike[str] | str"]) -> List[Path]:
    """Run directories (holding config.json) named by ``paths``: a path with config.json is a
    run; any other directory stands for the run directories below it (sorted; run directories
    are not searched further). Each run once, in argument order."""
    found: List[Path] = []
    for arg in paths:
        root = Path(arg)
        if not root.is_dir():
            raise ReportError(f"{str(root)!r} is not a directory: expected a run directory or "
                              "a directory of runs")
        if (root / CONFIG_FILE).is_file():
            found.append(root)
            continue
        below = []
        for dirpath, dirnames, filenames in os.walk(root):
            if CONFIG_FILE in filenames:
                below.append(Path(dirpath))
                dirnames.clear()
            else:
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if not below:
            raise ReportError(f"no run directories (with {CONFIG_FILE}) in {str(root)!r}")
        found.extend(sorted(below))
    seen, unique = set(), []
    for p in found:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {str(path)!r}: {exc}") from None


class Run(NamedTuple):
    path: Path
    config: TrainConfig
    info: Dict[str, Any]         # run.json
    evaluation: Dict[str, Any]   # the selection's eval file
    summary: Optional[Dict[str, Any]]

    @property
    def dataset(self) -> str:
        return str(self.info.get("dataset", self.config.dataset))

    @property
    def key(self) -> Tuple[str, str, int, int, int]:
        c = self.config
        return (self.dataset, c.model_name, c.model.latent_dim,
                getattr(c.model, "num_classes", 0), c.iterations)

    def value(self, key: str) -> Optional[float]:
        """A finite metric value, or None when the evaluation has none."""
        v = self.evaluation.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return None
        return float(v)


def load_runs(run_dirs: Sequence[Path], selection: Selection,
              strict: bool = False) -> Tuple[List[Run], List[str]]:
    """(runs with the selection's evaluation file, warnings for those skipped without one)."""
    runs, skipped = [], []
    for path in run_dirs:
        eval_path = path / selection.eval_file
        if not eval_path.is_file():
            summary = path / "summary.json"
            status = _read_json(summary).get("status") if summary.is_file() else None
            if status in (None, "interrupted", "stopped"):   # not trained to the end yet
                msg = (f"{path}: still training (summary status {status or 'absent'}); "
                       f"continue it with python -m cascadevae.train --resume {path}")
            else:
                msg = (f"{path}: no {selection.eval_file} ({selection.label}); make it with "
                       f"{evaluate_command(selection).replace('RUN_DIR', str(path))}")
            if strict:
                raise ReportError(msg)
            skipped.append(msg)
            continue
        evaluation = _read_json(eval_path)
        if evaluation.get("selection") != selection.label:
            raise ReportError(
                f"{eval_path}: its selection is {evaluation.get('selection')!r}, but "
                f"--selection {selection.option} reports {selection.label!r} only; one report "
                "never mixes checkpoint selections")
        if not (path / RUN_FILE).is_file():
            raise ReportError(f"{path}: no {RUN_FILE} (written by python -m cascadevae.train)")
        try:
            config = TrainConfig.load(path)
        except (OSError, ValueError, TypeError) as exc:
            raise ReportError(f"{path / CONFIG_FILE}: not a valid TrainConfig: {exc}") from None
        summary = _read_json(path / SUMMARY_FILE) if (path / SUMMARY_FILE).is_file() else None
        runs.append(Run(path, config, _read_json(path / RUN_FILE), evaluation, summary))
    return runs, skipped


# ---- statistics -----------------------------------------------------------------------------

def summarize(values: Sequence[float], best: bool) -> Dict[str, Any]:
    """n, mean, sample std (None for one value) and, if ``best``, the highest value."""
    x = np.asarray(values, dtype=np.float64)
    out: Dict[str, Any] = {"n": int(x.size), "mean": float(x.mean()) if x.size else None,
                           "std": float(x.std(ddof=STD_DDOF)) if x.size > STD_DDOF else None}
    if best:
        out["best"] = float(x.max()) if x.size else None
    return out


def _jsonable(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def _distinct(runs: Sequence[Run], field: str) -> Dict[str, int]:
    """JSON text of each value ``field`` takes in the runs' evaluations -> number of runs."""
    return dict(Counter(_jsonable(r.evaluation[field]) for r in runs if field in r.evaluation))


def _flat_config(cfg: TrainConfig) -> Dict[str, Any]:
    """The config's fields with the model section's as "model.<field>" (for comparisons)."""
    d = cfg.to_dict()
    section = d.pop("model")
    return dict(d, **{f"model.{k}": v for k, v in section.items()})


def beta_label(cfg: TrainConfig) -> str:
    """The group's distinguishing hyperparameter in the paper's row labels (the model class's
    ``report_label``: beta_l for cascades and AnchorVAE, beta for constant-beta models, ...)."""
    return cfg.model_class().report_label(cfg.model)


def _group(key: Tuple, runs: List[Run], selection: Selection,
           strict: bool) -> Dict[str, Any]:
    dataset, model, m, S, iterations = key[:5]
    setting = key[5] if len(key) > 5 else ""
    name = f"{model} m={m} S={S} iterations={iterations}" + (f" {setting}" if setting else "")
    warnings: List[str] = []
    for field in PROTOCOL_FIELDS:
        values = _distinct(runs, field)
        if len(values) > 1:
            msg = (f"{dataset} {name}: runs disagree on {field}: "
                   + ", ".join(f"{v} ({n} run{'s' if n > 1 else ''})"
                               for v, n in sorted(values.items()))
                   + ": their numbers are not comparable")
            if strict:
                raise ReportError(msg + " (re-evaluate them alike, or drop --strict to report "
                                  "with a warning)")
            warnings.append(msg)
    configs = [_flat_config(r.config) for r in runs]
    differing = sorted(f for f in configs[0] if f not in FREE_CONFIG_FIELDS
                       and len({_jsonable(c[f]) for c in configs}) > 1)
    if differing:
        warnings.append(f"{dataset} {name}: runs differ in config fields {differing}")
    seeds = [r.config.seed for r in runs]
    repeated = sorted(s for s, n in Counter(seeds).items() if n > 1)
    if repeated:
        warnings.append(f"{dataset} {name}: seeds {repeated} appear more than once")
    for r in runs:
        t = r.evaluation.get("t")
        if selection.option == "final" and isinstance(t, int) and t < iterations:
            warnings.append(f"{r.path}: evaluated at t={t}, before the end of training "
                            f"({iterations} iterations)")
        reached = (r.summary or {}).get("iterations")
        if selection.option == "final" and isinstance(t, int) and isinstance(reached, int) \
                and reached != t:
            warnings.append(f"{r.path}: {selection.eval_file} is of t={t} but the run reached "
                            f"t={reached}: re-run {evaluate_command(selection)}")
    per_run = []
    for r in sorted(runs, key=lambda r: (r.config.seed, str(r.path))):
        row = {"run_dir": str(r.path), "seed": r.config.seed, "t": r.evaluation.get("t"),
               "iterations": r.config.iterations, "budget_scale": r.config.budget_scale,
               "preset": r.info.get("preset"),
               "status": (r.summary or {}).get("status")}
        row.update({mt.key: r.value(mt.key) for mt in METRICS})
        per_run.append(row)
    metrics = {}
    for mt in METRICS:
        values = [v for v in (r.value(mt.key) for r in runs) if v is not None]
        if values:
            metrics[mt.key] = summarize(values, mt.best)
    betas = sorted({beta_label(r.config) for r in runs})
    return {"dataset": dataset, "model": model, "model_name": MODEL_NAMES.get(model, model),
            "m": m, "S": S, "iterations": iterations, "setting": setting,
            "beta": betas[0] if len(betas) == 1 else "mixed",
            "num_runs": len(runs), "seeds": sorted(seeds), "metrics": metrics,
            "warnings": warnings, "runs": per_run}


def _model_rank(model: str) -> Tuple[int, str]:
    names = list(MODELS)
    return (names.index(model) if model in names else len(names), model)


def _split_by_setting(by_key: Dict[Tuple, List[Run]]) -> Dict[Tuple, List[Run]]:
    """Groups split by the config fields their runs differ in (a sweep's settings): the key
    gains a label such as "tc_weight=10, beta=1"."""
    out: Dict[Tuple, List[Run]] = {}
    for key, runs in by_key.items():
        configs = [_flat_config(r.config) for r in runs]
        fields = sorted(f for f in configs[0] if f not in FREE_CONFIG_FIELDS
                        and len({_jsonable(c.get(f)) for c in configs}) > 1)
        for r, c in zip(runs, configs):
            label = ", ".join(f"{f.replace('model.', '')}={c.get(f)}" for f in fields)
            out.setdefault(key + (label,), []).append(r)
    return out


def best_settings(report: Dict[str, Any], metric: str) -> List[Dict[str, Any]]:
    """Per table and model (and m, S, iterations), the setting with the best mean ``metric``
    over seeds: the paper's way of choosing FactorVAE's beta and gamma."""
    chosen = []
    for table in report["tables"]:
        families: Dict[Tuple, List[Dict[str, Any]]] = {}
        for g in table["groups"]:
            if metric in g["metrics"]:
                families.setdefault((g["model"], g["m"], g["S"], g["iterations"]), []).append(g)
        for fam, groups in families.items():
            best = max(groups, key=lambda g: g["metrics"][metric]["mean"])
            chosen.append({"dataset": table["dataset"], "model": best["model_name"],
                           "m": best["m"], "S": best["S"], "iterations": best["iterations"],
                           "setting": best["setting"], "metric": metric,
                           "mean": best["metrics"][metric]["mean"],
                           "std": best["metrics"][metric]["std"],
                           "seeds": best["num_runs"], "settings_compared": len(groups),
                           "all": {g["setting"]: g["metrics"][metric]["mean"] for g in groups}})
    return chosen


def build_report(runs: Sequence[Run], selection: Selection, skipped: Sequence[str] = (),
                 strict: bool = False, title: Optional[str] = None,
                 split_settings: bool = False) -> Dict[str, Any]:
    """The report.json dict: header, then one table per dataset, each a list of groups."""
    if not runs:
        raise ReportError(f"no run has {selection.eval_file} ({selection.label}) to report"
                          + (f"; skipped: {'; '.join(skipped)}" if skipped else ""))
    by_key: Dict[Tuple, List[Run]] = {}
    for r in runs:
        by_key.setdefault(r.key, []).append(r)
    if split_settings:
        by_key = _split_by_setting(by_key)
    tables: Dict[str, Dict[str, Any]] = {}
    for key in sorted(by_key, key=lambda k: (k[0], _model_rank(k[1]), k[2:])):
        dataset = key[0]
        members = [r for r in runs if r.dataset == dataset]
        if dataset not in tables:
            cfg_dataset = members[0].config.dataset
            paper = PRESETS.get(cfg_dataset)
            tables[dataset] = {
                "dataset": dataset, "config_dataset": cfg_dataset,
                "paper_iterations": paper.iterations if paper is not None else None,
                "protocol": {f: [json.loads(v) for v in sorted(_distinct(members, f))]
                             for f in PROTOCOL_FIELDS if _distinct(members, f)},
                "metrics": [mt.key for mt in METRICS
                            if any(r.value(mt.key) is not None for r in members)],
                "groups": []}
        tables[dataset]["groups"].append(_group(key, by_key[key], selection, strict))
    return {"title": title, "selection": selection.label, "selection_option": selection.option,
            "eval_file": selection.eval_file, "std": "sample", "std_ddof": STD_DDOF,
            "std_note": STD_NOTE, "best": "the highest value over seeds",
            "skipped": list(skipped), "tables": list(tables.values()), "figures": []}


# ---- Markdown -------------------------------------------------------------------------------

# ---- figure ---------------------------------------------------------------------------------

def figure_series(table: Dict[str, Any]):
    """The TC-vs-score series of one table (one per group with points), or [] when fewer
    than two runs have both values."""
    from .report_figures import Series

    def varies(g, field):  # label a group by the fields that tell it from its model's others
        return len({h[field] for h in table["groups"] if h["model"] == g["model"]}) > 1

    series = []
    for g in table["groups"]:
        pts = [(r[TC], r[SCORE]) for r in g["runs"] if r[TC] is not None and r[SCORE] is not None]
        if pts:
            label = " ".join([g["model_name"]] + [f"{name}={g[f]}" for f, name in
                             (("m", "m"), ("S", "S"), ("iterations", "it")) if varies(g, f)]
                             + ([g["setting"]] if g.get("setting") else []))  # a sweep's point
            series.append(Series(label, g["model"], pts))
    return series if sum(len(s.points) for s in series) >= 2 else []


def write_figures(report: Dict[str, Any], out_dir: Path, suffix: str) -> List[str]:
    """Write tc_vs_score*.png for each table with enough points; returns the file names."""
    todo = [(t, s) for t in report["tables"] for s in [figure_series(t)] if s]
    if not todo:
        return []
    try:
        from .report_figures import tc_vs_score_png
    except ImportError as exc:  # matplotlib is an optional extra
        print(f"warning: no tc_vs_score figure: {exc} (pip install matplotlib)", file=sys.stderr)
        return []
    names = []
    for table, series in todo:
        tag = "" if len(todo) == 1 else "_" + table["dataset"]
        name = f"tc_vs_score{tag}{suffix}.png"
        title = (f"{report['title'] + ': ' if report['title'] else ''}TC(z) vs disentanglement "
                 f"score on {table['dataset']}\n{report['selection']}, one point per run (seed)")
        tc_vs_score_png(series, out_dir / name, title)
        names.append(name)
    return names


# ---- command --------------------------------------------------------------------------------

def default_out_dir(first_arg: "os.PathLike[str] | str") -> Path:
    """The first RUN_DIR argument if it is a directory of runs, else that run's parent."""
    p = Path(first_arg)
    return p.parent if (p / CONFIG_FILE).is_file() else p


def report_runs(paths: Sequence["os.PathLike[str] | str"], selection: str = "final",
                out_dir=None, title: Optional[str] = None, strict: bool = False,
                figure: bool = True, best_setting: Optional[str] = None
                ) -> Tuple[Dict[str, Any], str, List[Path]]:
    """Read, tabulate and write; returns (report dict, Markdown, files written).
    ``best_setting`` (a metric key): split groups by setting and pick the best per model."""
    sel = SELECTIONS[selection]
    runs, skipped = load_runs(find_run_dirs(paths), sel, strict)
    for msg in skipped:
        print(f"warning: skipping {msg}", file=sys.stderr)
    report = build_report(runs, sel, skipped, strict, title,
                          split_settings=best_setting is not None)
    if best_setting is not None:
        report["best_settings"] = best_settings(report, best_setting)
    out = Path(out_dir) if out_dir is not None else default_out_dir(paths[0])
    out.mkdir(parents=True, exist_ok=True)
    if figure:
        report["figures"] = write_figures(report, out, sel.suffix)
    text = render_markdown(report)
    md, js = out / f"report{sel.suffix}.md", out / f"report{sel.suffix}.json"
    atomic_write_bytes(md, text.encode("utf-8"))
    atomic_write_json(js, report)
    return report, text, [md, js] + [out / n for n in report["figures"]]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cascadevae.report",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                   help="run directories, or directories of run directories")
    p.add_argument("--selection", choices=sorted(SELECTIONS) + ["both"], default="final",
                   help="which evaluation to report: final (eval.json, the default), "
                        "best-by-label (eval_best_by_label.json), or both side by side with the "
                        "paper's numbers and a k-means row (report_both.md; cascadevae.report_both)")
    p.add_argument("--no-kmeans", action="store_true",
                   help="with --selection both: no k-means baseline row")
    p.add_argument("--out", metavar="DIR", help="output directory (default: the first RUN_DIR "
                   "if it is a directory of runs, else its parent)")
    p.add_argument("--title", help="heading of the report and its figure")
    p.add_argument("--strict", action="store_true", help="refuse runs without the evaluation "
                   "file and groups whose runs were evaluated differently")
    p.add_argument("--no-figure", action="store_true", help="do not draw tc_vs_score.png")
    p.add_argument("--best-setting", nargs="?", const="disentanglement_score", metavar="METRIC",
                   help="a sweep: one row per setting, and the best setting per model by the "
                        "mean METRIC over seeds (default disentanglement_score; e.g. "
                        "accuracy_unsupervised)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.selection == "both":
            from .report_both import write_both
            _, text, files = write_both(args.run_dirs, args.title, not args.no_kmeans, args.out)
            print(text, end="")
            print("\nwrote " + ", ".join(str(f) for f in files))
            return 0
        report, text, files = report_runs(args.run_dirs, args.selection, args.out, args.title,
                                          args.strict, figure=not args.no_figure,
                                          best_setting=args.best_setting)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_markdown(report, runs_table=False), end="")
    print("\nwrote " + ", ".join(str(f) for f in files) + " (per-run values in the .md/.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
