"""Evaluate a trained run: ``python -m cascadevae.evaluate RUN_DIR``.

Loads RUN_DIR/checkpoint.pt (the final checkpoint: the last one the run wrote) and the run's
dataset (from run.json), and writes RUN_DIR/eval.json (atomically) with:

* ``kl_per_dim`` / ``kl_total``: the per-dim mean KL(q(z_j|x) || N(0, 1)) over the evaluation
  images;
* ``mi_*`` (per-dim I(x; z_j)) and ``tc_*`` (total correlation, KSG nearest-neighbour
  estimator by default, ``--tc-estimator``) of the aggregate posterior, from the posteriors
  of the evaluation images (at most ``--max-images``, default 10000), with the dataset size N
  of the set they were drawn from;
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

Checkpoint selection. By default the final checkpoint is reported (``selection: "final
checkpoint"``, eval.json). ``--all-checkpoints`` also evaluates the checkpoints the run kept
(``python -m cascadevae.train --keep-checkpoints``) into eval_history.json: those on the run's
checkpoint grid and the latest one, not the ones a signal or ``--stop-at`` left mid-grid
(:func:`history_targets`), so an interrupted run gets the history of an uninterrupted one. The
official code kept the checkpoint with the best ground-truth score; that label-based selection
is offered only by name, ``--best-by-label``: it picks, among those checkpoints, the one with
the best disentanglement score (dSprites) or unsupervised accuracy (labelled sets) and writes
it to eval_best_by_label.json (``selection: "best checkpoint by label"``), never to eval.json,
so ``python -m cascadevae.report`` cannot mix the two in one table. ``--keep-existing``
(``--keep-final``) keeps evaluations already made with the same options: an eval.json of the
final checkpoint (training's own end evaluation) and the entries of eval_history.json, which
is rewritten after every checkpoint, so an interrupted history continues where it stopped.

Figures (RUN_DIR/figures/, unless ``--no-figures``): ``eval_traversal.png`` (rows sorted by the
evaluated I(x; z_j), highest first), ``eval_recon.png``, ``eval_discrete.png`` and, when the
run logged the information monitor, ``information.png`` (I(x; z_j) over iterations, relief
points marked).

(About 580 lines: one evaluation (data, encoding, every metric), its history over kept
checkpoints, the label-based selection and the command line; the metrics themselves live in
:mod:`cascadevae.metrics`.)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import data as data_mod
from .metrics import (discrete_mutual_information, disentanglement_score, mutual_information,
                      total_correlation, unsupervised_accuracy)
from .config import TrainConfig
from .models import build_model
from .data.errors import DatasetError
from .run_dir import RunDir, RunDirError, atomic_write_json

EVAL_FILE = "eval.json"
HISTORY_FILE = "eval_history.json"
BEST_BY_LABEL_FILE = "eval_best_by_label.json"
SELECTION_FINAL = "final checkpoint"
SELECTION_BEST = "best checkpoint by label"
SELECTION_EACH = "each checkpoint"
#: what the disentanglement score does with a discrete code that gives all images one value:
#: "drop" it (ours: it carries no information), or "keep" it (the official code: it then
#: wins every vote, score 100/K)
COLLAPSED_CODE = ("drop", "keep")
LABELLED = ("mnist", "mnist5k", "fashion-mnist")
#: MI and TC cost O(n^2 m); above this many evaluation images a seeded subset is used for them
MI_TC_MAX_POINTS = 10000
#: images per forward pass when encoding the evaluation images (not the score's L)
ENCODE_BATCH = 500


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def model_from_checkpoint(ckpt: Dict[str, Any]):
    """The (untrained) model a checkpoint dict's weights belong to, from its config (the
    nested config, or the flat one of earlier versions with its ``model_config``)."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    size = ckpt.get("image_size") or ckpt["model_config"]["image_size"]
    return build_model(cfg.model, int(size))


def load_model(run: RunDir, device: torch.device, path=None):
    """(model in eval mode on ``device``, checkpoint dict) from RUN_DIR/checkpoint.pt or the
    checkpoint file ``path``."""
    ckpt = run.load_checkpoint(map_location=device, path=path)
    model = model_from_checkpoint(ckpt)
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
    if max_images is None:
        max_images = sys.maxsize
    if name.startswith("dsprites"):
        options = {"lazy": True} if info.get("lazy_data") and name != "dsprites-real" else {}
        ds = data_mod.load(name, data_dir=data_dir, **options)
        n = min(int(max_images), len(ds))
        if n == len(ds):
            shape = ds.factors_from_index(np.arange(n))[:, 0].astype(np.int64)
            return ds, np.arange(n), shape, "full grid", "shape factor"
        idx = np.sort(rng.choice(len(ds), size=n, replace=False))
        shape = ds.factors_from_index(idx)[:, 0].astype(np.int64)
        return ds, idx, shape, "full grid", "shape factor"
    if name in LABELLED:
        # the test split the run was trained against (holdout / t10k, recorded in run.json)
        ds = data_mod.load(name, data_dir=data_dir, split="test", **info.get("data_options", {}))
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
            codes.append(model.evaluation_codes(x, mu=mu).cpu().numpy())
    return {"mu": np.concatenate(mus), "std": np.concatenate(stds), "kl": np.concatenate(kls),
            "codes": np.concatenate(codes).astype(np.int64) if codes else None}


def make_represent(model, device: torch.device, chunk: int = 500, with_code: bool = True):
    """represent(images) -> posterior means (n, m), or (means, evaluation codes) for a model
    with a discrete code (unless ``with_code`` is False); images are processed ``chunk`` at a
    time."""
    use_code = model.has_discrete_code and with_code

    @torch.no_grad()
    def represent(images):
        zs, cs = [], []
        for s in range(0, len(images), chunk):
            x = torch.as_tensor(np.asarray(images[s:s + chunk], dtype=np.float32), device=device)
            mu = model.encode(x)[0]
            zs.append(mu.double().cpu().numpy())
            if use_code:
                cs.append(model.evaluation_codes(x, mu=mu).cpu().numpy())
        z = np.concatenate(zs)
        return (z, np.concatenate(cs).astype(np.int64)) if use_code else z
    return represent


def code_trained(model, ckpt: Dict[str, Any]) -> bool:
    """Whether the checkpoint's discrete code has been trained (``model.code_active`` at its
    last update, t - 1). Before t_d the decoder only ever saw the all-zero code, and the
    official code leaves the code out of the disentanglement score."""
    return model.code_active(max(int(ckpt["t"]) - 1, 0))


def evaluate_run(run_dir, *, data_dir=None, seed: int = 0, num_votes: int = 800,
                 batch: int = 100, max_images: Optional[int] = 10000, device="cpu",
                 num_variance_samples: int = 10000, progress: bool = True,
                 checkpoint=None, eval_data=None,
                 selection: str = SELECTION_FINAL, tc_estimator: str = "ksg",
                 collapsed_code: str = "drop") -> Dict[str, Any]:
    """Evaluate RUN_DIR's final checkpoint (or the checkpoint file ``checkpoint``); returns
    the eval.json dict (see module doc).

    ``batch`` is the disentanglement score's L (items per vote).
    ``max_images`` None evaluates the whole dataset (its test split for the labelled sets).
    ``num_variance_samples``: images the score uses for each dim's data variance (paper: the
    full data; 10000 drawn uniformly by default). ``eval_data``: the result of
    :func:`load_eval_data` for this run, to reuse it across checkpoints."""
    if collapsed_code not in COLLAPSED_CODE:
        raise ValueError(f"collapsed_code must be one of {COLLAPSED_CODE}, got {collapsed_code!r}")
    started = time.time()
    run = RunDir(run_dir)
    if checkpoint is None and not run.has_checkpoint():
        raise FileNotFoundError(f"no checkpoint.pt in {str(run.path)!r}: nothing to evaluate "
                                "(train the run first: python -m cascadevae.train --out RUN_DIR)")
    if max_images is not None and int(max_images) < 2:
        raise ValueError(f"max_images must be >= 2 (or None for all), got {max_images}")
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    info = run.read_json("run.json")
    model, ckpt = load_model(run, device, checkpoint)
    if eval_data is None:
        eval_data = load_eval_data(info, data_dir, max_images, seed)
    ds, idx, targets, split, target_name = eval_data
    size = int(model.image_size)
    if tuple(ds.image_shape[-2:]) != (size, size):
        raise ValueError(f"dataset images are {ds.image_shape}, the model expects {size}x{size}")

    enc = encode_all(model, ds.images, idx, ENCODE_BATCH, device, progress=progress)
    n = int(len(idx))
    kl_mean = enc["kl"].mean(axis=0)
    out: Dict[str, Any] = {
        "t": int(ckpt["t"]), "dataset": info["dataset"], "dataset_source": ds.source,
        "model": model.name, "protocol": "paper",
        "latent_dim": int(model.latent_dim), "num_classes": int(model.num_classes),
        "selection": selection,
        "checkpoint": "checkpoint.pt" if checkpoint is None else str(
            Path(checkpoint).relative_to(run.path) if Path(checkpoint).is_relative_to(run.path)
            else checkpoint),
        "eval_split": split, "eval_num_images": n, "seed": int(seed), "device": str(device),
        "kl_per_dim": kl_mean.tolist(), "kl_total": float(kl_mean.sum()),
        "kl_num_images": n,
    }
    # MI / TC of the aggregate posterior over the whole dataset (or split) the evaluation
    # images were drawn from: N = len(ds), not the number of images (a mixture of only n
    # posteriors has a TC of its own, several nats for an informative representation).
    # The MI estimate costs O(n^2 m): past MI_TC_MAX_POINTS a seeded subset is used.
    sub = np.arange(n)
    if n > MI_TC_MAX_POINTS:
        sub = np.sort(np.random.default_rng(seed).choice(n, MI_TC_MAX_POINTS, replace=False))
    mu, std = enc["mu"][sub], np.maximum(enc["std"][sub], 1e-12)
    size = max(int(len(ds)), len(sub))
    out.update(mutual_information(mu, std, size, seed=seed))
    out.update(total_correlation(mu, std, dataset_size=size, estimator=tc_estimator, seed=seed))
    if enc["codes"] is not None:
        S = int(model.num_classes)
        out["code_counts"] = np.bincount(enc["codes"], minlength=S).tolist()
        out.update(discrete_mutual_information(enc["codes"], num_codes=S))
        if targets is not None:
            K = 3 if target_name == "shape factor" else (
                ds.num_classes or int(np.max(targets)) + 1)
            out.update(unsupervised_accuracy(targets, enc["codes"], num_classes=K, num_codes=S))
            out["accuracy_target"] = target_name
    if isinstance(ds, data_mod.GroundTruthData):
        with_code = code_trained(model, ckpt)
        out.update(disentanglement_score(
            ds, make_represent(model, device, with_code=with_code), protocol="paper",
            num_votes=num_votes, batch=batch, seed=seed, continuous_kl=kl_mean,
            num_variance_samples=num_variance_samples,
            keep_collapsed_code=collapsed_code == "keep"))
        out["disentanglement_discrete_dim"] = bool(with_code)
        out["disentanglement_collapsed_code"] = collapsed_code
    out["eval_seconds"] = round(time.time() - started, 2)
    return out


def summary_metrics(res: Dict[str, Any]) -> Dict[str, float]:
    """The headline numbers of an evaluation, as training puts them into summary.json:
    ``disentanglement_score`` (dSprites) and ``unsupervised_accuracy`` (0-100) where they
    apply."""
    out = {}
    if "disentanglement_score" in res:
        out["disentanglement_score"] = float(res["disentanglement_score"])
    if "accuracy_unsupervised" in res:
        out["unsupervised_accuracy"] = float(res["accuracy_unsupervised"])
    return out


def label_metric(res: Dict[str, Any]) -> Optional[str]:
    """The label-based number ``--best-by-label`` maximises: the disentanglement score where
    there is one (dSprites), else the unsupervised accuracy; None when neither applies."""
    for key in ("disentanglement_score", "accuracy_unsupervised"):
        if key in res:
            return key
    return None


def write_evaluation_figures(run_dir, res: Dict[str, Any], device="cpu",
                             dataset=None) -> None:
    """The evaluation figures of RUN_DIR's final checkpoint (see the module doc); ``dataset``
    is the evaluation dataset when already loaded."""
    from .figures import information_curves, write_figures

    run = RunDir(run_dir)
    device = resolve_device(device) if isinstance(device, str) else torch.device(device)
    info = run.read_json("run.json")
    model, ckpt = load_model(run, device)
    ds = dataset if dataset is not None else load_eval_data(info, None, 2, 0)[0]
    mi = np.asarray(res["mi_per_dim"])
    write_figures(model, ds, run.path / "figures", int(ckpt["t"]), device=device,
                  model_name=str(res.get("model", "")), sort_by=mi, sort_name="I(x;z)",
                  prefix="eval_", dated=False)
    records = run.read_metrics()
    if any("mi_per_dim" in r for r in records):
        information_curves(records, TrainConfig.load(run.path).schedule(),
                           run.path / "figures" / "information.png",
                           title=f"{res.get('model')} on {res.get('dataset')}")


def write_evaluation(run_dir, *, figures: bool = True, **kwargs) -> Dict[str, Any]:
    """:func:`evaluate_run` on the final checkpoint, written to RUN_DIR/eval.json, plus the
    evaluation figures; returns the result."""
    info = RunDir(run_dir).read_json("run.json")
    data = load_eval_data(info, kwargs.get("data_dir"), kwargs.get("max_images", 10000),
                          kwargs.get("seed", 0))
    res = evaluate_run(run_dir, eval_data=data, **kwargs)
    atomic_write_json(Path(run_dir) / EVAL_FILE, res)
    if figures:
        write_evaluation_figures(run_dir, res, device=kwargs.get("device", "cpu"),
                                 dataset=data[0])
    return res


def same_evaluation(saved: Dict[str, Any], *, t: int, selection: str, seed: int = 0,
                    num_votes: int = 800, batch: int = 100, max_images: Optional[int] = 10000,
                    num_variance_samples: int = 10000, tc_estimator: str = "ksg",
                    collapsed_code: str = "drop", **_ignored) -> bool:
    """Whether the saved evaluation ``saved`` is of update ``t`` under ``selection`` and every
    option that changes its numbers matches these: what :func:`evaluate_run` would compute
    again (the device and the data folder do not count)."""
    wanted = {"t": int(t), "seed": int(seed), "selection": selection,
              "tc_estimator": tc_estimator}
    # the same images: max_images of them, or fewer only because the split has no more
    n, split_size = int(saved.get("eval_num_images", -1)), int(saved.get("mi_dataset_size", -2))
    if not (n == split_size if max_images is None else
            n == int(max_images) or (n < int(max_images) and n == split_size)):
        return False
    if "disentanglement_score" in saved:
        wanted.update(disentanglement_num_votes=int(num_votes), disentanglement_batch=int(batch),
                      disentanglement_num_variance_samples=int(num_variance_samples),
                      disentanglement_collapsed_code=collapsed_code)
    return all(saved.get(k) == v for k, v in wanted.items())


def kept_final_evaluation(run_dir, **options) -> Optional[Dict[str, Any]]:
    """RUN_DIR/eval.json when it is of the final checkpoint and made with these options
    (:func:`same_evaluation`), else None."""
    run = RunDir(run_dir)
    path = run.path / EVAL_FILE
    if not path.is_file() or not run.has_checkpoint():
        return None
    saved = json.loads(path.read_text())
    t = int(run.load_checkpoint()["t"])
    return saved if same_evaluation(saved, t=t, selection=SELECTION_FINAL, **options) else None


def history_targets(run_dir) -> List[Tuple[Optional[Path], int]]:
    """The checkpoints a history evaluates, oldest first, as (path, t); path None is
    checkpoint.pt.

    The kept checkpoints on the run's checkpoint grid (t a multiple of run.json's
    ``checkpoint_every``), plus checkpoint.pt when it is newer than the last of them. A run
    stopped by a signal or ``--stop-at`` also keeps the checkpoint of the update it stopped at;
    those are left out once the run has gone past them, so an interrupted run and an
    uninterrupted one (they train bitwise alike) have the same history and the same
    best-by-label candidates."""
    run = RunDir(run_dir)
    paths = list(run.kept_weights())
    if not paths:
        raise FileNotFoundError(
            f"{str(run.path)!r} kept no checkpoints (RUN_DIR/checkpoints/ is empty): train with "
            "python -m cascadevae.train --keep-checkpoints to evaluate every checkpoint")
    every = int(run.read_json("run.json").get("checkpoint_every") or 1)
    kept = [(path, int(run.load_checkpoint(path=path)["t"])) for path in paths]
    targets = [(path, t) for path, t in kept if t % every == 0]
    final_t = int(run.load_checkpoint()["t"]) if run.has_checkpoint() else -1
    if final_t > max([t for _, t in targets], default=-1):
        targets.append((None, final_t))
    return targets


def evaluate_history(run_dir, *, progress: bool = True, final: Optional[Dict[str, Any]] = None,
                     reuse: Sequence[Dict[str, Any]] = (),
                     on_result: Optional[Callable[[List[Dict[str, Any]]], None]] = None,
                     **kwargs) -> List[Dict[str, Any]]:
    """:func:`evaluate_run` on every checkpoint of :func:`history_targets`, oldest first.

    ``final``: the evaluation of checkpoint.pt with the same options, when the caller has it;
    the kept checkpoint of the same update holds the same weights, so its entry is that result
    instead of a second evaluation (one fewer, minutes on dSprites). ``reuse``: earlier history
    entries; one of the same update made with the same options (:func:`same_evaluation`) is
    taken as it is. ``on_result(results so far)`` is called after every checkpoint."""
    from tqdm.auto import tqdm

    run = RunDir(run_dir)
    targets = history_targets(run_dir)
    final_t = int(run.load_checkpoint()["t"]) if run.has_checkpoint() else -1
    data = None
    results = []
    for path, t in tqdm(targets, desc="checkpoints", unit="ckpt", disable=not progress):
        done = [r for r in reuse if same_evaluation(r, t=t, selection=SELECTION_EACH, **kwargs)]
        if done:
            results.append(done[-1])
        elif final is not None and t == final_t == int(final["t"]):
            same = dict(final, selection=SELECTION_EACH)
            if path is not None:
                same["checkpoint"] = str(Path(path).relative_to(run.path))
            results.append(same)
        else:
            if data is None:   # loaded once, and only when something is left to evaluate
                data = load_eval_data(run.read_json("run.json"), kwargs.get("data_dir"),
                                      kwargs.get("max_images", 10000), kwargs.get("seed", 0))
            results.append(evaluate_run(run_dir, checkpoint=path, eval_data=data,
                                        progress=False, selection=SELECTION_EACH, **kwargs))
        if on_result is not None:
            on_result(results)
    return results


def write_history(run_dir, *, keep_existing: bool = False, **kwargs) -> List[Dict[str, Any]]:
    """:func:`evaluate_history` into RUN_DIR/eval_history.json, rewritten (atomically) after
    every checkpoint, so an interrupted evaluation keeps what it finished. ``keep_existing``:
    reuse the entries of an existing eval_history.json made with the same options, so such an
    evaluation continues where it stopped (and a finished run's history adds only its new
    checkpoints)."""
    path = Path(run_dir) / HISTORY_FILE
    reuse = json.loads(path.read_text()) if keep_existing and path.is_file() else []
    return evaluate_history(run_dir, reuse=reuse,
                            on_result=lambda results: atomic_write_json(path, results), **kwargs)


def best_by_label(history: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """The checkpoint of ``history`` with the best :func:`label_metric` (the earliest on a
    tie), marked as selected by label."""
    key = label_metric(history[0]) if history else None
    if key is None:
        raise ValueError("best-by-label selection needs a label-based metric (disentanglement "
                         "score or unsupervised accuracy); this run's evaluation has neither")
    best = max(history, key=lambda r: (r[key], -r["t"]))
    return dict(best, selection=SELECTION_BEST, selection_metric=key,
                selection_candidates=[r["t"] for r in history])


def _max_images(text: str) -> Optional[int]:
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2 or 'all', got {text!r}")
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer >= 2 or 'all', got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cascadevae.evaluate",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--data-dir", default=None, help="data directory (default: run.json's, "
                   "then $CASCADEVAE_DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    p.add_argument("--max-images", type=_max_images, default=10000, metavar="N",
                   help="evaluation images for KL / MI / TC / accuracy, or 'all' (default "
                        f"10000; MI and TC use at most {MI_TC_MAX_POINTS} of them)")
    p.add_argument("--votes", type=int, default=800, metavar="M",
                   help="disentanglement score votes (dSprites; default 800)")
    p.add_argument("--batch", type=int, default=100, metavar="L",
                   help="items per vote of the disentanglement score (default 100)")
    p.add_argument("--variance-samples", type=int, default=10000, metavar="N",
                   help="images for the score's per-dim data variance (default 10000)")
    p.add_argument("--all-checkpoints", action="store_true",
                   help="also evaluate every kept checkpoint (RUN_DIR/checkpoints/, from "
                        f"train --keep-checkpoints) into {HISTORY_FILE}")
    p.add_argument("--best-by-label", action="store_true",
                   help="label-based model selection, as the official code did: write the kept "
                        "checkpoint with the best disentanglement score / unsupervised accuracy "
                        f"to {BEST_BY_LABEL_FILE} (implies --all-checkpoints; eval.json stays "
                        "the final checkpoint)")
    p.add_argument("--keep-existing", "--keep-final", dest="keep_existing",
                   action="store_true",
                   help="keep evaluations already made with the same options instead of "
                        "computing them again: RUN_DIR/eval.json when it is of the final "
                        "checkpoint (e.g. training's end evaluation), and with --all-checkpoints "
                        f"or --best-by-label the entries of {HISTORY_FILE} (saved after every "
                        "checkpoint, so an interrupted history continues where it stopped)")
    p.add_argument("--tc-estimator", choices=("ksg", "minibatch_importance"), default="ksg",
                   help="total correlation estimator (default ksg; see docs/evaluation.md)")
    p.add_argument("--collapsed-code", choices=COLLAPSED_CODE, default="drop",
                   help="disentanglement score with a discrete code that gives every image "
                        "one value: drop it (default) or keep it as the official code does "
                        "(it then wins every vote)")
    p.add_argument("--no-figures", action="store_true", help="do not write figures")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="print the full traceback of an error")
    return p


def _fmt(x) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def describe(res: Dict[str, Any]) -> List[str]:
    """A few printable lines about one evaluation."""
    lines = [f"{res['model']} on {res['dataset']} ({res['eval_split']}, "
             f"{res['eval_num_images']} images), {res['selection']} t={res['t']}",
             f"  mean KL total {_fmt(res['kl_total'])}  MI total {_fmt(res['mi_total'])}  "
             f"TC {_fmt(res['tc_estimate'])} (nats, {res['tc_estimator']}, "
             f"{res['tc_num_points']} points)"]
    if "accuracy_unsupervised" in res:
        lines.append(f"  unsupervised accuracy vs {res['accuracy_target']}: "
                     f"{res['accuracy_unsupervised']:.2f}%")
    if "disentanglement_score" in res:
        lines.append(f"  disentanglement score (paper protocol, "
                     f"{res['disentanglement_num_votes']} votes): "
                     f"{res['disentanglement_score']:.2f}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command; a damaged checkpoint, a missing run or dataset ends in one ``error: ...``
    line and exit status 2 (``--debug`` or CASCADEVAE_DEBUG=1: the traceback)."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("CASCADEVAE_DEBUG", "") not in ("", "0")
    try:
        return _main(args)
    except (RunDirError, DatasetError) as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(args) -> int:
    run_path = Path(args.run_dir)
    if not (run_path / "checkpoint.pt").exists():
        raise SystemExit(f"error: no checkpoint.pt in {str(run_path)!r}: nothing to evaluate "
                         "(train it first with python -m cascadevae.train --out RUN_DIR)")
    holder = RunDir(run_path).trainer()
    if holder is not None and holder.get("alive"):
        pid = f" (pid {holder['pid']})" if "pid" in holder else ""
        print(f"note: {run_path} is still training{pid}: this evaluates its latest checkpoint, "
              "not the final one (training evaluates the final one itself when it ends)",
              file=sys.stderr, flush=True)
    common = dict(data_dir=args.data_dir, seed=args.seed, num_votes=args.votes,
                  batch=args.batch, max_images=args.max_images, device=args.device,
                  num_variance_samples=args.variance_samples, tc_estimator=args.tc_estimator,
                  collapsed_code=args.collapsed_code)
    res = kept_final_evaluation(run_path, **common) if args.keep_existing else None
    if res is not None:
        lines = describe(res) + [f"  kept {run_path / EVAL_FILE} (same checkpoint and options)"]
    else:
        res = write_evaluation(run_path, figures=not args.no_figures,
                               progress=not args.no_progress, **common)
        lines = describe(res) + [f"  wrote {run_path / EVAL_FILE} ({res['eval_seconds']:.1f} s)"]
    if args.all_checkpoints or args.best_by_label:
        try:
            history = write_history(run_path, progress=not args.no_progress, final=res,
                                    keep_existing=args.keep_existing, **common)
        except FileNotFoundError as exc:
            raise SystemExit(f"error: {exc}")
        key = label_metric(res)
        lines.append(f"  {len(history)} checkpoints: " + ", ".join(
            f"t={r['t']}" + (f" {r[key]:.1f}" if key else "") for r in history))
        lines.append(f"  wrote {run_path / HISTORY_FILE}")
        if args.best_by_label:
            best = best_by_label(history)
            atomic_write_json(run_path / BEST_BY_LABEL_FILE, best)
            lines.append(f"  best by label ({best['selection_metric']}): t={best['t']} "
                         f"{best[best['selection_metric']]:.2f}; wrote "
                         f"{run_path / BEST_BY_LABEL_FILE} (label-based selection: not "
                         "comparable with final-checkpoint numbers)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
