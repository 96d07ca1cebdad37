"""Figures written at each checkpoint of a training run (PNG, matplotlib Agg, no pyplot).

Files, in ``RUN_DIR/figures/`` (``TTTTTT`` is the number of updates done, zero-padded to 6):

* ``recon_tTTTTTT.png``: a fixed set of images (top row) and their reconstructions
  ``sigmoid(decode(mu, d))`` (bottom row), d the one-hot evaluation code
  (``model.evaluation_codes``: CascadeVAE's argmax likelihood with z = mu, JointVAE's argmax
  logits; empty for models without a code).
* ``traversal_tTTTTTT.png``: for one fixed image, each continuous dim j varied over
  ``traversal_limit(image_size)`` (+-1.2 for 64x64 images, the paper's dSprites/chairs range;
  +-2.0 for 32x32, the paper's MNIST range), the other dims at the image's mu and the discrete
  code at its evaluation code. Rows are sorted by the dim's mean KL over the fixed KL set
  (highest first), labelled ``z_j  KL=...``.
* ``discrete_tTTTTTT.png`` (models with a discrete code only): one row per code k, the same
  few images' mu decoded with code k.

Each file also has an undated copy (``recon.png``, ``traversal.png``, ``discrete.png``) that
is overwritten at every checkpoint. The images are picked by a numpy generator seeded with
``FIGURE_SEED`` (the same images in every checkpoint of every run on one dataset); nothing here
draws from a random state that training uses. The model is put in eval mode under
``torch.no_grad()`` and its training mode restored afterwards.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

FIGURE_SEED = 2019
NUM_RECON = 12          # images in the reconstruction figure
NUM_KL = 64             # images whose mean KL per dim orders the traversal rows
NUM_DISCRETE = 8        # images (columns) in the discrete traversal
TRAVERSAL_STEPS = 9     # columns of the continuous traversal


def traversal_limit(image_size: int) -> float:
    """The traversal range +-limit: 1.2 for 64x64 images (the paper's dSprites range), 2.0
    for 32x32 (the paper's MNIST range)."""
    return 1.2 if int(image_size) >= 64 else 2.0


def figure_indices(num_images: int, count: int, seed: int = FIGURE_SEED) -> np.ndarray:
    """``count`` distinct dataset indices from a private numpy generator (fixed per seed)."""
    rng = np.random.default_rng(seed)
    count = min(count, num_images)
    return rng.choice(num_images, size=count, replace=False)  # unsorted: any prefix is random


class _EvalMode:
    """model.eval() under no_grad; restores the previous training flag."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.was_training = self.model.training
        self._ng = torch.no_grad()
        self._ng.__enter__()
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)
        self._ng.__exit__(*exc)
        return False


def _codes(model, x: torch.Tensor, mu: torch.Tensor,
           t: Optional[int] = None) -> Optional[torch.Tensor]:
    """The code the decoder gets for x at update t (``model.decoder_code``, evaluation codes;
    t None: a trained model): one-hot (B, S), zeros before the discrete warm-up ends, or None
    for a model without a code."""
    if not model.has_discrete_code:
        return None
    return model.decoder_code(x, mu, t, train=False, mu=mu)


def reconstructions(model, x: torch.Tensor, t: Optional[int] = None) -> np.ndarray:
    """sigmoid(decode(mu, the code at update t)) as numpy (B, H, W)."""
    with _EvalMode(model):
        mu, _ = model.encode(x)
        out = torch.sigmoid(model.decode(mu, _codes(model, x, mu, t)))
    return out[:, 0].float().cpu().numpy()


def mean_kl_per_dim(model, x: torch.Tensor) -> np.ndarray:
    """Mean over the batch of KL(q(z_j | x) || N(0, 1)), (m,)."""
    with _EvalMode(model):
        mu, scale = model.encode(x)
        kl = model.kl_per_item_dim(mu, scale).mean(dim=0)
    return kl.float().cpu().numpy()


class Traversal(NamedTuple):
    images: np.ndarray   # (m, steps, H, W): row j varies dim j (dim order, not sorted)
    values: np.ndarray   # (steps,) the values z_j takes
    order: np.ndarray    # dims sorted by kl, highest first (the figure's row order)
    kl: Optional[np.ndarray]  # (m,) mean KL per dim, or None


def continuous_traversal(model, x_one: torch.Tensor, limit: float,
                         steps: int = TRAVERSAL_STEPS,
                         kl: Optional[np.ndarray] = None,
                         t: Optional[int] = None) -> Traversal:
    """Traverse every continuous dim of one image (x_one (1, 1, H, W)) over
    linspace(-limit, limit, steps), other dims at its mu, the code at its evaluation code. All
    m * steps images are decoded in one decoder call."""
    m = model.latent_dim
    with _EvalMode(model):
        mu, _ = model.encode(x_one)                                   # (1, m)
        values = torch.linspace(-limit, limit, steps, device=mu.device, dtype=mu.dtype)
        z = mu.expand(m * steps, m).clone().reshape(m, steps, m)
        idx = torch.arange(m, device=mu.device)
        z[idx, :, idx] = values                                       # row j: z_j = values
        z = z.reshape(m * steps, m)
        d = _codes(model, x_one, mu, t)
        if d is not None:
            d = d.expand(m * steps, -1)
        out = torch.sigmoid(model.decode(z, d))
    images = out[:, 0].float().cpu().numpy().reshape(m, steps, *out.shape[-2:])
    order = np.arange(m) if kl is None else np.argsort(-np.asarray(kl), kind="stable")
    return Traversal(images, values.cpu().numpy(), order, kl)


def discrete_traversal(model, x: torch.Tensor) -> np.ndarray:
    """(S, B, H, W): row k decodes every image's mu with code k."""
    if not model.has_discrete_code:
        raise ValueError(f"model {model.name!r} has no discrete code")
    S = model.num_classes
    with _EvalMode(model):
        mu, _ = model.encode(x)
        b = mu.shape[0]
        z = mu.repeat(S, 1)                                           # (S*B, m), k-major
        codes = torch.eye(S, device=mu.device, dtype=mu.dtype).repeat_interleave(b, dim=0)
        out = torch.sigmoid(model.decode(z, codes))
    return out[:, 0].float().cpu().numpy().reshape(S, b, *out.shape[-2:])


# ---- drawing ------------------------------------------------------------------------------

def _montage(rows: np.ndarray, pad: int = 1) -> np.ndarray:
    """(R, C, H, W) -> one (R*(H+pad)+pad, C*(W+pad)+pad) image with a grey grid."""
    r, c, h, w = rows.shape
    out = np.full((r * (h + pad) + pad, c * (w + pad) + pad), 0.5, dtype=np.float32)
    for i in range(r):
        for j in range(c):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y:y + h, x:x + w] = rows[i, j]
    return out


def _save_grid(path: Path, grid: np.ndarray, title: str, row_labels: Sequence[str],
               col_labels: Optional[Sequence[str]] = None, cell_inches: float = 0.6) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r, c, h, w = grid.shape
    label_w = 0.12 * max((len(s) for s in row_labels), default=0) + 0.3
    fig = Figure(figsize=(label_w + c * cell_inches + 0.3, r * cell_inches + 0.9))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(_montage(grid), cmap="gray", vmin=0.0, vmax=1.0, interpolation="none")
    ax.set_yticks([1 + i * (h + 1) + h / 2 - 0.5 for i in range(r)])
    ax.set_yticklabels(row_labels, fontsize=8)
    if col_labels is not None:
        ax.set_xticks([1 + j * (w + 1) + w / 2 - 0.5 for j in range(c)])
        ax.set_xticklabels(col_labels, fontsize=7)
    else:
        ax.set_xticks([])
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=100)
    os.replace(tmp, path)


def write_figures(model, dataset, out_dir: Union[str, os.PathLike], t: int,
                  image_size: Optional[int] = None, device=None, model_name: str = "",
                  seed: int = FIGURE_SEED,
                  sort_by: Optional[np.ndarray] = None, sort_name: str = "KL",
                  prefix: str = "", dated: bool = True) -> List[Path]:
    """Write the checkpoint figures for iteration t into out_dir (created), each also copied
    to its undated name, t being the number of updates done. Returns the written paths. Codes
    are ``model.decoder_code`` at the last update made: before the discrete warm-up ended the
    decoder gets all-zero codes, as in training, and the discrete traversal is skipped.

    ``sort_by`` (m,): the values that order the traversal rows (highest first) and label them
    as ``sort_name``, e.g. the evaluated I(x; z_j); None: the mean KL over the fixed images.
    ``prefix`` is put before each file name; ``dated=False`` writes only the undated names."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if device is None:
        device = next(model.parameters()).device
    if image_size is None:
        image_size = int(dataset.image_shape[-1])
    name = model_name or getattr(model, "name", type(model).__name__)
    idx = figure_indices(len(dataset), max(NUM_KL, NUM_RECON), seed)
    x_all = torch.from_numpy(np.ascontiguousarray(dataset.images(idx))).to(device)
    x_all = x_all.to(next(model.parameters()).dtype)
    x_rec = x_all[:NUM_RECON]
    written: List[Path] = []

    def save(stem, grid, title, rows, cols=None):
        stem = prefix + stem
        if not dated:
            path = out / f"{stem}.png"
            _save_grid(path, grid, title, rows, cols)
        else:
            path = out / f"{stem}_t{t:06d}.png"
            _save_grid(path, grid, title, rows, cols)
            shutil.copyfile(path, out / f"{stem}.png")
        written.append(path)

    last = max(int(t) - 1, 0)  # the last update made
    rec = reconstructions(model, x_rec, last)
    save("recon", np.stack([x_rec[:, 0].cpu().numpy(), rec]),
         f"{name} reconstructions, t={t} (top: data, bottom: sigmoid(decode(mu, d)))",
         ["data", "recon"])

    if sort_by is None:
        key = mean_kl_per_dim(model, x_all)
        how = f"rows by mean KL over {len(x_all)} images"
    else:
        key = np.asarray(sort_by, dtype=np.float64)
        if key.shape != (model.latent_dim,):
            raise ValueError(f"sort_by must have shape ({model.latent_dim},), got {key.shape}")
        how = f"rows by {sort_name}, highest first"
    limit = traversal_limit(image_size)
    trav = continuous_traversal(model, x_all[:1], limit, kl=key, t=last)
    save("traversal", trav.images[trav.order],
         f"{name} traversals z_j in [-{limit:g}, {limit:g}], t={t} ({how})",
         [f"z{j}  {sort_name}={key[j]:.2f}" for j in trav.order],
         [f"{v:+.1f}" for v in trav.values])

    if model.code_active(last):
        x_d = x_all[:NUM_DISCRETE]
        grid = discrete_traversal(model, x_d)
        save("discrete", np.concatenate([x_d[None, :, 0].cpu().numpy(), grid]),
             f"{name} discrete code k, z = mu of each image, t={t} (top row: data)",
             ["data"] + [f"d={k}" for k in range(model.num_classes)])
    return written


def information_curves(records: Sequence[dict], schedule, path: Union[str, os.PathLike],
                       title: str = "") -> Optional[Path]:
    """I(x; z_j) over iterations, one curve per continuous dim (the paper's Figures 5, 9 and
    11), from the ``mi_per_dim`` entries the training loop's information monitor logged into
    metrics.jsonl; I(x; d) as a dashed black curve when logged. Each dim's relief iteration
    (from ``schedule.relief_iterations()``) is a dotted vertical line in the dim's colour, and
    t_d (the discrete step's start) a grey one. Returns the path, or None when no record has
    ``mi_per_dim``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    recs = [r for r in records if "mi_per_dim" in r]
    if not recs:
        return None
    # updates done at the measurement: a record of update t is logged after it, at t + 1
    t = np.array([r["t"] + 1 for r in recs])
    mi = np.array([r["mi_per_dim"] for r in recs])
    fig = Figure(figsize=(7.5, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    colours = [f"C{j % 10}" for j in range(mi.shape[1])]
    for j in range(mi.shape[1]):
        ax.plot(t, mi[:, j], color=colours[j], lw=1.4, label=f"z{j}")
    reliefs = tuple(getattr(schedule, "relief_iterations", lambda: ())())
    for j, at in enumerate(reliefs):
        if at is not None and at <= t.max() and j < len(colours):
            ax.axvline(at, color=colours[j], ls=":", lw=1.0)
    disc = [(ti, r["mi_discrete"]) for ti, r in zip(t, recs) if "mi_discrete" in r]
    if disc:
        ax.plot(*zip(*disc), color="black", ls="--", lw=1.4, label="d")
    t_d = getattr(schedule, "discrete_warmup", None)
    if t_d is not None and t_d <= t.max():
        ax.axvline(t_d, color="0.5", ls="-.", lw=1.0, label="t_d")
    ax.set_xlabel("iteration (updates done)")
    ax.set_ylabel("I(x; z_j) estimate (nats)")
    ax.set_ylim(bottom=0.0)
    ax.set_title((title + ": " if title else "") + "information per latent dim "
                 "(dotted: that dim's relief)", fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=100)
    os.replace(tmp, path)
    return path
