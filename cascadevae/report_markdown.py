"""The report's Markdown: one table per dataset (groups of runs with mean (std) and best over
seeds), the per-run values, and the best setting per model of a sweep
(:func:`cascadevae.report.build_report` makes the dict this renders)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

from .presets import PRESETS


def _cell(stats: Optional[Dict[str, Any]], digits: int, num_runs: int) -> Tuple[str, str]:
    """('mean (std)', 'best') cells; n is shown when fewer runs than the group's have it."""
    if not stats:
        return "", ""
    std = "n/a" if stats["std"] is None else f"{stats['std']:.{digits}f}"
    text = f"{stats['mean']:.{digits}f} ({std})"
    if stats["n"] < num_runs:
        text += f" [n={stats['n']}]"
    best = "" if stats.get("best") is None else f"{stats['best']:.{digits}f}"
    return text, best


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _budget_line(table: Dict[str, Any]) -> str:
    parts = []
    for it, preset, scale in sorted({(g["iterations"], r["preset"], r["budget_scale"])
                                     for g in table["groups"] for r in g["runs"]},
                                    key=lambda e: (e[0], str(e[1]), e[2])):
        text = str(it)
        if scale != 1.0:
            base = PRESETS[preset].iterations if preset in PRESETS else None
            text += (f" (preset {preset} scaled by budget_scale {scale:.4g}"
                     + (f" from its {base}" if base is not None else "")
                     + ", r and t_d with it: not the paper's schedule)")
        parts.append(text)
    text = f"Iterations per run: {', '.join(dict.fromkeys(parts))}"
    if table["paper_iterations"] is not None:
        text += (f". The paper's budget on {table['config_dataset']}: "
                 f"{table['paper_iterations']} iterations (appendix B)")
    return text + "."


def _protocol_line(table: Dict[str, Any]) -> str:
    parts = [f"{f}={' / '.join(str(x) for x in v)}" for f, v in table["protocol"].items()]
    return "Protocol: " + ("; ".join(parts) if parts else "(not recorded)") + "."


def render_markdown(report: Dict[str, Any], runs_table: bool = True) -> str:
    sel = report["selection"]
    lines = [f"# {report['title'] or 'CascadeVAE report'} ({sel})", "",
             f"- Checkpoint selection: {sel} (each run's {report['eval_file']})"
             + ("; label-based: the checkpoint was chosen with the ground-truth labels, as the "
                "official code does, so these are not unsupervised results"
                if report["selection_option"] == "best-by-label" else "") + ".",
             f"- Mean (std) over seeds; {report['std_note']}. Best: {report['best']}. TC, KL "
             "and MI in nats; disentanglement score and accuracy in 0-100."]
    for msg in report["skipped"]:
        lines.append(f"- Skipped: {msg}")
    from .report import METRICS
    for table in report["tables"]:
        mets = [mt for mt in METRICS if mt.key in table["metrics"]]
        lines += ["", f"## {table['dataset']}", "", _budget_line(table), "",
                  _protocol_line(table)]
        warnings = [w for g in table["groups"] for w in g["warnings"]]
        if warnings:
            lines.append("")
            lines += [f"- **Warning**: {w}" for w in warnings]
        settings = any(g.get("setting") for g in table["groups"])
        head = ["model", "beta", "m", "S", "iterations", "seeds"] + (["setting"] if settings else [])
        for mt in mets:
            head += [f"{mt.column} mean (std)"] + ([f"{mt.column} best"] if mt.best else [])
        lines += ["", _row(head), _row(["---"] * len(head))]
        for g in table["groups"]:
            cells = [g["model_name"], g["beta"], g["m"], g["S"], g["iterations"], g["num_runs"]]
            if settings:
                cells.append(g.get("setting", ""))
            for mt in mets:
                mean_std, best = _cell(g["metrics"].get(mt.key), mt.digits, g["num_runs"])
                cells += [mean_std] + ([best] if mt.best else [])
            lines.append(_row(cells))
        if runs_table:
            head = ["run", "model", "m", "S", "seed", "t"] + [mt.column for mt in mets]
            lines += ["", f"### {table['dataset']}: runs", "", _row(head),
                      _row(["---"] * len(head))]
            for g in table["groups"]:
                for r in g["runs"]:
                    lines.append(_row([r["run_dir"], g["model_name"], g["m"], g["S"], r["seed"],
                                       r["t"]] + ["" if r[mt.key] is None
                                                  else f"{r[mt.key]:.{mt.digits}f}"
                                                  for mt in mets]))
    if report.get("best_settings"):
        lines += ["", "## Best setting per model", "",
                  "Chosen by the highest mean over seeds of the metric named, as the paper chose "
                  "FactorVAE's beta and gamma; this selection looks at the ground-truth score "
                  "of every setting.", "",
                  _row(["dataset", "model", "m", "S", "iterations", "metric", "best setting",
                        "mean (std)", "seeds", "settings compared"]), _row(["---"] * 10)]
        for b in report["best_settings"]:
            std = "n/a" if b["std"] is None else f"{b['std']:.2f}"
            lines.append(_row([b["dataset"], b["model"], b["m"], b["S"], b["iterations"],
                               b["metric"], b["setting"] or "(one setting)",
                               f"{b['mean']:.2f} ({std})", b["seeds"], b["settings_compared"]]))
    if report["figures"]:
        lines += ["", "Figures: " + ", ".join(report["figures"])]
    return "\n".join(lines) + "\n"
