"""Evaluate a trained run: ``python -m cascadevae.evaluate RUN_DIR``.

Loads RUN_DIR/checkpoint.pt (the final checkpoint: the last one the run wrote) and the run's
dataset (from run.json), and writes RUN_DIR/eval.json (atomically) with:

* ``kl_per_dim`` / ``kl_total``: the per-dim mean KL(q(z_j|x) || N(0, 1)) over the evaluation
  images;
* ``mi_*`` (per-dim I(x; z_j)) and ``tc_*`` (total correlation) of the posteriors of the
  evaluation images, with ``dataset_size`` = the number of evaluation images (at most
  ``--max-images``, default 10000);
* models with a discrete code: the evaluation-time codes (``model.evaluation_codes``:
  CascadeVAE's z = mu and argmax of the per-code likelihood, no pairwise term; JointVAE's
  argmax of the categorical logits) and ``accuracy_*``: for labelled sets (MNIST, MNIST-5k,
  FashionMNIST) the unsupervised accuracy (0-100) against the class labels, for dSprites
  against the shape factor;
* dSprites: ``disentanglement_*``, the paper's (appendix C) disentanglement score, with
  continuous dims pruned by the per-dim mean KL above and the discrete code as an extra dim.

Evaluation images: MNIST / MNIST-5k / FashionMNIST: the test split (the paper's held-out
images), the first ``max_images`` of it; dSprites: ``max_images`` images drawn uniformly without
replacement from the whole grid (seeded; the score samples its own images); Chairs (unlabelled,
no test split): ``max_images`` images drawn from the whole set.

Checkpoint selection: the final checkpoint is reported (``selection: "final checkpoint"``).
Choosing the best checkpoint by label-based accuracy is not offered here: it would use the
labels that the unsupervised metrics are meant to be blind to.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from . import data as data_mod
from .metrics import (disentanglement_score, mutual_information, total_correlation,
                      unsupervised_accuracy)
from .models import ModelConfig, build_model
from .run_dir import RunDir, atomic_write_json

EVAL_FILE = "eval.json"
LABELLED = ("mnist", "mnist5k", "fashion-mnist")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_model(run: RunDir, device: torch.device):
    """(model in eval mode on ``device``, checkpoint dict) from RUN_DIR/checkpoint.pt."""
    ckpt = run.load_checkpoint(map_location=device)
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, ckpt


def _canonical(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def load_eval_data(info: Dict[str, Any], data_dir, max_images: int, seed: int):
    """(dataset, evaluation indices, labels or None, split name, description)."""
    name = _canonical(info["dataset"])
    data_dir = data_dir if data_dir is not None else info.get("data_dir")
    rng = np.random.default_rng(seed)
    if name.startswith("dsprites"):
        options = {"lazy": True} if info.get("lazy_data") and name != "dsprites-real" else {}
        ds = data_mod.load(name, data_dir=data_dir, **options)
        n = min(int(max_images), len(ds))
        idx = np.sort(rng.choice(len(ds), size=n, replace=False))
        shape = ds.factors_from_index(idx)[:, 0].astype(np.int64)
        return ds, idx, shape, "full grid", "shape factor"
    if name in LABELLED:
        ds = data_mod.load(name, data_dir=data_dir, split="test")
        n = min(int(max_images), len(ds))
        return ds, np.arange(n), ds.labels[:n], "test", "class labels"
    ds = data_mod.load(name, data_dir=data_dir, split="train")
    n = min(int(max_images), len(ds))
    idx = np.sort(rng.choice(len(ds), size=n, replace=False))
    return ds, idx, None, "train (unlabelled, no test split)", None


@torch.no_grad()
def encode_all(model, images_fn, indices: np.ndarray, batch: int, device: torch.device,
               progress: bool = True) -> Dict[str, np.ndarray]:
    """Encode ``images_fn(indices[chunk])`` in batches: mu, std, per-item-dim KL, and the
    evaluation codes for a model with a discrete code."""
    from tqdm.auto import tqdm

    mus, stds, kls, codes = [], [], [], []
    starts = range(0, len(indices), int(batch))
    for s in tqdm(starts, desc="encoding", unit="batch", disable=not progress):
        x = torch.as_tensor(images_fn(indices[s:s + int(batch)]), device=device)
        mu, scale = model.encode(x)
        mus.append(mu.double().cpu().numpy())
        stds.append(model.posterior_std(scale).double().cpu().numpy())
        kls.append(model.kl_per_item_dim(mu, scale).double().cpu().numpy())
        if model.has_discrete_code:
            codes.append(model.evaluation_codes(x).cpu().numpy())
    return {"mu": np.concatenate(mus), "std": np.concatenate(stds), "kl": np.concatenate(kls),
            "codes": np.concatenate(codes).astype(np.int64) if codes else None}


def make_represent(model, device: torch.device, chunk: int = 500):
    """represent(images) -> posterior means (n, m), or (means, evaluation codes) for a model
    with a discrete code; images are processed ``chunk`` at a time."""
    @torch.no_grad()
    def represent(images):
        zs, cs = [], []
        for s in range(0, len(images), chunk):
            x = torch.as_tensor(np.asarray(images[s:s + chunk], dtype=np.float32), device=device)
            zs.append(model.encode(x)[0].double().cpu().numpy())
            if model.has_discrete_code:
                cs.append(model.evaluation_codes(x).cpu().numpy())
        z = np.concatenate(zs)
        return (z, np.concatenate(cs).astype(np.int64)) if model.has_discrete_code else z
    return represent


def evaluate_run(run_dir, *, data_dir=None, seed: int = 0, num_votes: int = 800,
                 batch: int = 100, max_images: int = 10000, device="cpu",
                 num_variance_samples: int = 10000, progress: bool = True) -> Dict[str, Any]:
    """Evaluate RUN_DIR's final checkpoint; returns the eval.json dict (see module doc).

    ``batch`` is both the encoding batch and the disentanglement score's L (items per vote).
    ``num_variance_samples``: images the score uses for each dim's data variance (paper: the
    full data; 10000 drawn uniformly by default)."""
    run = RunDir(run_dir)
    if not run.has_checkpoint():
        raise FileNotFoundError(f"no checkpoint.pt in {str(run.path)!r}: nothing to evaluate "
                                "(train the run first: python -m cascadevae.train --out RUN_DIR)")
    if int(max_images) < 2:
        raise ValueError(f"max_images must be >= 2, got {max_images}")
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    info = run.read_json("run.json")
    model, ckpt = load_model(run, device)
    ds, idx, targets, split, target_name = load_eval_data(info, data_dir, max_images, seed)
    size = int(ckpt["model_config"]["image_size"])
    if tuple(ds.image_shape[-2:]) != (size, size):
        raise ValueError(f"dataset images are {ds.image_shape}, the model expects {size}x{size}")

    enc = encode_all(model, ds.images, idx, batch, device, progress=progress)
    n = int(len(idx))
    kl_mean = enc["kl"].mean(axis=0)
    out: Dict[str, Any] = {
        "t": int(ckpt["t"]), "dataset": info["dataset"], "dataset_source": ds.source,
        "model": ckpt["model_config"].get("model"), "protocol": "paper",
        "selection": "final checkpoint",
        "selection_note": "the final checkpoint is reported; label-based best-checkpoint "
                          "selection is not offered",
        "eval_split": split, "eval_num_images": n, "seed": int(seed), "device": str(device),
        "kl_per_dim": kl_mean.tolist(), "kl_total": float(kl_mean.sum()),
        "kl_num_images": n,
    }
    # MI / TC: the evaluation images are treated as the whole dataset (dataset_size = n).
    out.update(mutual_information(enc["mu"], enc["std"], n, seed=seed))
    out.update(total_correlation(enc["mu"], enc["std"], dataset_size=n, seed=seed))
    if enc["codes"] is not None:
        S = int(model.num_classes)
        out["code_counts"] = np.bincount(enc["codes"], minlength=S).tolist()
        if targets is not None:
            K = 3 if target_name == "shape factor" else (
                ds.num_classes or int(np.max(targets)) + 1)
            out.update(unsupervised_accuracy(targets, enc["codes"], num_classes=K, num_codes=S))
            out["accuracy_target"] = target_name
    if isinstance(ds, data_mod.GroundTruthData):
        out.update(disentanglement_score(
            ds, make_represent(model, device), protocol="paper", num_votes=num_votes,
            batch=batch, seed=seed, continuous_kl=kl_mean,
            num_variance_samples=num_variance_samples))
        out["disentanglement_discrete_dim"] = bool(model.has_discrete_code)
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cascadevae.evaluate",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data-dir", default=None, help="data directory (default: run.json's, "
                   "then $CASCADEVAE_DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--max-images", type=int, default=10000, metavar="N",
                   help="evaluation images for KL / MI / TC / accuracy (default 10000)")
    p.add_argument("--votes", type=int, default=800, metavar="M",
                   help="disentanglement score votes (dSprites; default 800)")
    p.add_argument("--batch", type=int, default=100, metavar="L",
                   help="encoding batch and items per vote (default 100)")
    p.add_argument("--variance-samples", type=int, default=10000, metavar="N",
                   help="images for the score's per-dim data variance (default 10000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _fmt(x) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    run_path = Path(args.run_dir)
    if not (run_path / "checkpoint.pt").exists():
        raise SystemExit(f"error: no checkpoint.pt in {str(run_path)!r}: nothing to evaluate "
                         "(train it first with python -m cascadevae.train --out RUN_DIR)")
    res = evaluate_run(run_path, data_dir=args.data_dir, seed=args.seed, num_votes=args.votes,
                       batch=args.batch, max_images=args.max_images, device=args.device,
                       num_variance_samples=args.variance_samples,
                       progress=not args.no_progress)
    atomic_write_json(run_path / EVAL_FILE, res)
    lines = [f"{res['model']} on {res['dataset']} ({res['eval_split']}, "
             f"{res['eval_num_images']} images), final checkpoint t={res['t']}",
             f"  mean KL total {_fmt(res['kl_total'])}  MI total {_fmt(res['mi_total'])}  "
             f"TC {_fmt(res['tc_estimate'])} (nats, dataset_size={res['tc_dataset_size']})"]
    if "accuracy_unsupervised" in res:
        lines.append(f"  unsupervised accuracy vs {res['accuracy_target']}: "
                     f"{res['accuracy_unsupervised']:.2f}%")
    if "disentanglement_score" in res:
        lines.append(f"  disentanglement score (paper protocol, "
                     f"{res['disentanglement_num_votes']} votes): "
                     f"{res['disentanglement_score']:.2f}")
    lines.append(f"  wrote {run_path / EVAL_FILE}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
