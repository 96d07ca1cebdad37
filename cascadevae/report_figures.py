"""The report's figure (PNG, matplotlib Agg, no pyplot): the paper's Figure 2, TC(z) against
the disentanglement score, one point per run, one colour and marker per model."""
from __future__ import annotations

import io
import os
from typing import List, NamedTuple, Sequence, Tuple

from .run_dir import atomic_write_bytes

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


class Series(NamedTuple):
    """One legend entry: the points (tc, score) of one group of runs."""
    label: str
    model: str
    points: List[Tuple[float, float]]


def tc_vs_score_png(series: Sequence[Series], path: "os.PathLike[str] | str",
                    title: str) -> None:
    """Scatter TC (x, nats) against the disentanglement score (y, 0-100) and write the PNG
    atomically. Series of one model share its colour; each series has its own marker."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.0, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    models = list(dict.fromkeys(s.model for s in series))
    colours = [f"C{i % 10}" for i in range(len(models))]
    for i, s in enumerate(series):
        x, y = zip(*s.points)
        ax.scatter(x, y, s=36, marker=MARKERS[i % len(MARKERS)],
                   color=colours[models.index(s.model)], alpha=0.85,
                   label=f"{s.label} ({len(s.points)} run{'s' if len(s.points) != 1 else ''})")
    ys = [p[1] for s in series for p in s.points]
    pad = max(2.0, 0.1 * (max(ys) - min(ys)))
    ax.set_ylim(max(0.0, min(ys) - pad), min(100.0, max(ys) + pad))
    ax.set_xlabel("TC(z) estimate (nats)")
    ax.set_ylabel("disentanglement score (0-100)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
