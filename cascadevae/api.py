"""The Python API: train, load and use a model in a notebook or a script, with the same run
directory the command line writes.

    import cascadevae as cv
    run = cv.fit("mnist", dataset="mnist5k", iters=2000, out="runs/demo")
    codes = run.model.predict_codes(images)     # discrete code per image (n,)
    z = run.model.encode(images)                # continuous factors, posterior means (n, m)
    print(run.metrics)                          # the evaluation summary
    run = cv.load_run("runs/demo")              # a finished (or any) run directory

``images`` are arrays or tensors with values in [0, 1], (n, H, W) or (n, 1, H, W). ``fit`` takes
a preset name or a :class:`~cascadevae.config.TrainConfig`, and a dataset name, an array of
images, or a ``torch.utils.data.Dataset`` (items an image, or a tuple whose first element is
one). It is :class:`cascadevae.training.Session`, the same code ``python -m cascadevae.train``
runs.
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from . import acceleration
from . import data as data_mod
from .config import TrainConfig
from .presets import get_preset
from .run_dir import RunDir

__all__ = ["fit", "load_run", "Run", "TrainedModel", "as_image_dataset"]

ImagesLike = Union[np.ndarray, torch.Tensor]


def _as_images(images: ImagesLike) -> np.ndarray:
    """float32 (n, 1, H, W) in [0, 1] from (n, H, W) / (n, 1, H, W) arrays or tensors."""
    if torch.is_tensor(images):
        images = images.detach().cpu().numpy()
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"images must be (n, H, W) or (n, 1, H, W), got shape {x.shape}")
    if x.size and (not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0):
        raise ValueError(f"images must have values in [0, 1], got [{x.min()}, {x.max()}] "
                         "(divide 8-bit images by 255)")
    return x


def as_image_dataset(data, *, data_dir=None, name: str = "custom"):
    """A library dataset from what ``fit`` accepts: a dataset name (:func:`cascadevae.data.
    load`), a library dataset, an array or tensor of images in [0, 1], or a torch Dataset.
    Arrays are held at 8 bits (value * 255 rounded), which is exact for binary images."""
    if isinstance(data, str):
        return data_mod.load(data, data_dir=data_dir)
    if isinstance(data, data_mod.ImageDataset):
        return data
    if isinstance(data, torch.utils.data.Dataset) and not torch.is_tensor(data):
        items = [data[i] for i in range(len(data))]
        items = [item[0] if isinstance(item, (tuple, list)) else item for item in items]
        data = torch.stack([torch.as_tensor(item, dtype=torch.float32) for item in items])
    x = _as_images(data)
    if x.shape[-1] != x.shape[-2] or x.shape[-1] not in (32, 64):
        raise ValueError(f"images are {x.shape[-2]}x{x.shape[-1]}; the paper's networks take "
                         "32x32 or 64x64 (resize them first)")
    u8 = np.rint(x[:, 0] * 255.0).astype(np.uint8)
    return data_mod.ArrayImageDataset(u8, name=name,
                                      source=f"{len(u8)} images given to cascadevae.fit")


class TrainedModel:
    """A trained model for inference: batched, in eval mode, without gradients, on numpy
    arrays or tensors of images in [0, 1]. ``module`` is the underlying VAE."""

    def __init__(self, module, device: Union[str, torch.device] = "cpu", batch_size: int = 500):
        self.module = module.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = int(batch_size)

    def _batches(self, images: ImagesLike):
        x = _as_images(images)
        for s in range(0, len(x), self.batch_size):
            yield torch.from_numpy(x[s:s + self.batch_size]).to(self.device)

    @torch.no_grad()
    def encode(self, images: ImagesLike) -> np.ndarray:
        """The continuous factors: posterior means mu (n, m)."""
        out = [self.module.encode(x)[0].cpu().numpy() for x in self._batches(images)]
        return np.concatenate(out) if out else np.zeros((0, self.module.latent_dim), np.float32)

    @torch.no_grad()
    def predict_codes(self, images: ImagesLike) -> np.ndarray:
        """Each image's discrete code (n,) int64, as evaluation assigns it (CascadeVAE: z = mu
        and the argmax of the per-code likelihood; JointVAE: the argmax of its logits)."""
        if not self.module.has_discrete_code:
            raise ValueError(f"model {self.module.name!r} has no discrete code")
        out = [self.module.evaluation_codes(x).cpu().numpy() for x in self._batches(images)]
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    @torch.no_grad()
    def decode(self, z: ImagesLike, codes: Optional[np.ndarray] = None) -> np.ndarray:
        """Images (n, H, W) in [0, 1] (Bernoulli means) from z (n, m) and codes (n,) (None:
        the all-zero code of a model without one)."""
        z_t = torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.device)
        d = None
        if codes is not None:
            d = torch.nn.functional.one_hot(torch.as_tensor(np.asarray(codes), device=self.device),
                                            self.module.num_classes).float()
        return torch.sigmoid(self.module.decode(z_t, d))[:, 0].cpu().numpy()

    def reconstruct(self, images: ImagesLike) -> np.ndarray:
        """decode(encode(images), predict_codes(images)): reconstructions (n, H, W)."""
        codes = self.predict_codes(images) if self.module.has_discrete_code else None
        return self.decode(self.encode(images), codes)


class Run:
    """A run directory: its config, trained model, status and evaluation."""

    def __init__(self, path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu"):
        self.dir = RunDir(path)
        self.path = self.dir.path
        self.config = TrainConfig.load(self.path)
        self.device = torch.device(device)
        self._model: Optional[TrainedModel] = None

    @property
    def model(self) -> TrainedModel:
        """The model of the latest checkpoint."""
        if self._model is None:
            from .evaluate import load_model
            module, _ = load_model(self.dir, self.device)
            self._model = TrainedModel(module, self.device)
        return self._model

    @property
    def summary(self) -> Optional[Dict[str, Any]]:
        path = self.dir.summary_path
        return self.dir.read_json(path.name) if path.exists() else None

    @property
    def status(self) -> Optional[str]:
        return (self.summary or {}).get("status")

    @property
    def metrics(self) -> Optional[Dict[str, float]]:
        """summary.json's evaluation summary (disentanglement score / unsupervised accuracy)."""
        return (self.summary or {}).get("metrics")

    def history(self) -> List[Dict[str, Any]]:
        """The records of metrics.jsonl (losses, per-dim KL, betas, class counts, MI)."""
        return self.dir.read_metrics()

    def evaluate(self, **kwargs) -> Dict[str, Any]:
        """Evaluate the latest checkpoint as ``python -m cascadevae.evaluate`` does (eval.json;
        keyword arguments as :func:`cascadevae.evaluate.write_evaluation`)."""
        from .evaluate import write_evaluation
        kwargs.setdefault("progress", False)
        return write_evaluation(self.path, device=self.device, **kwargs)

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, model={self.config.model_name!r}, "
                f"status={self.status!r}, metrics={self.metrics})")


def load_run(path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu") -> Run:
    """The run in ``path`` (written by ``fit`` or ``python -m cascadevae.train``)."""
    return Run(path, device)


def fit(config: Union[str, TrainConfig] = "dsprites", *, dataset=None, iters: Optional[int] = None,
        out: Optional[Union[str, os.PathLike]] = None, seed: Optional[int] = None,
        model: Optional[str] = None, device: Union[str, torch.device] = "auto",
        threads: Optional[int] = None, data_dir=None, evaluate: bool = True,
        progress: bool = True, figures: bool = True, log_every: int = 100,
        checkpoint_every: int = 5000, mi_every: Optional[int] = None, **overrides) -> Run:
    """Train a model and return its :class:`Run`.

    ``config``: a preset name (``cascadevae.presets.preset_names()``) or a TrainConfig.
    ``dataset``: a dataset name (default: the config's), an array or tensor of images in
    [0, 1], or a torch Dataset; images are 32x32 or 64x64. ``iters`` below the config's budget
    scales its schedule (as ``--iters``). ``seed``, ``model`` and ``**overrides`` (any run or
    model field, as ``--set``) change the config. ``out``: the run directory (default
    runs/<preset>-<dataset>-<time>; an existing run there is an error: use ``load_run``).
    Evaluation at the end needs a named dataset (a user's images have no labels to score)."""
    cfg = get_preset(config) if isinstance(config, str) else config
    if not isinstance(cfg, TrainConfig):
        raise TypeError(f"config must be a preset name or a TrainConfig, got {type(config).__name__}")
    over = dict(overrides)
    if seed is not None:
        over["seed"] = seed
    if model is not None:
        over["model"] = model
    named = dataset is None or isinstance(dataset, str)
    data_name = (dataset or cfg.dataset) if named else "custom"
    ds = as_image_dataset(data_name if named else dataset, data_dir=data_dir)
    image_size = int(ds.image_shape[-1])
    if named:
        over["dataset"] = data_mod.family(data_name)
        if image_size != data_mod.image_size(data_name):
            raise ValueError(f"dataset {data_name!r} images are {ds.image_shape}")
    else:
        over["dataset"] = "custom"
    cfg = cfg.replace(**over)
    if iters is not None:
        cfg = cfg.scaled(iters) if iters < cfg.iterations else cfg.replace(iterations=iters)
    from .training import RunOptions, Session
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                       else "cpu" if device == "auto" else device)
    threads = threads or acceleration.default_threads()
    torch.set_num_threads(threads)
    out = out or os.path.join("runs", f"{cfg.name}-{data_name}-{_dt.datetime.now():%Y%m%d-%H%M%S}")
    if (Path(out) / "checkpoint.pt").exists():
        raise ValueError(f"{out} already holds a run: load it with cascadevae.load_run({str(out)!r}) "
                         "or choose another out")
    options = RunOptions(log_every=log_every, checkpoint_every=checkpoint_every,
                         mi_every=mi_every, figures=figures, progress=progress,
                         evaluate=evaluate and named)
    session = Session.new(cfg, ds, data_name=data_name, image_size=image_size, out=out,
                          device=dev, options=options, threads=threads, data_dir=data_dir,
                          preset=cfg.name, command="cascadevae.fit(...)")
    session.train()
    return Run(session.run.path, dev)
