"""Where datasets live: the data directory (argument > ``CASCADEVAE_DATA`` > none), the
cache directory, where each dataset can be obtained, and the one "file not found" message."""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Optional, Sequence, Union

from .errors import DatasetError

PathLike = Union[str, "os.PathLike[str]"]

DATA_DIR_ENV = "CASCADEVAE_DATA"
CACHE_DIR_ENV = "CASCADEVAE_CACHE"
DATA_DIR_FLAG = "--data-dir"

# Where a user obtains each dataset; quoted in every "not found" message.
SOURCES = {
    "dsprites": "https://github.com/deepmind/dsprites-dataset",
    "mnist": "http://yann.lecun.com/exdb/mnist/ (or torchvision.datasets.MNIST(DATA_DIR, download=True), "
             "which writes DATA_DIR/MNIST/raw)",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist (or "
                     "torchvision.datasets.FashionMNIST(DATA_DIR, download=True), which writes "
                     "DATA_DIR/FashionMNIST/raw)",
    "chairs": "the 3D chairs page of Aubry et al. (CVPR 2014), "
              "https://www.di.ens.fr/willow/research/seeing3Dchairs/ (rendered_chairs.tar)",
}


def resolve_data_dir(data_dir: Optional[PathLike] = None) -> Optional[Path]:
    """The data directory: the ``data_dir`` argument (what ``--data-dir`` passes), else the
    ``CASCADEVAE_DATA`` environment variable, else ``None`` (no real files: loaders that have
    an embedded or procedural default use it)."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(env).expanduser()
    return None


def add_data_dir_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the standard ``--data-dir`` flag to a command-line parser (default: the
    ``CASCADEVAE_DATA`` environment variable, resolved later by :func:`resolve_data_dir`)."""
    parser.add_argument(
        DATA_DIR_FLAG, dest="data_dir", default=None, metavar="DIR",
        help=f"folder holding the dataset files (default: ${DATA_DIR_ENV}); "
             "see docs/datasets.md for the expected layout")
    return parser


def cache_dir(directory: Optional[PathLike] = None) -> Path:
    """The cache directory: the argument, else ``CASCADEVAE_CACHE``, else
    ``~/.cache/cascadevae``. Created on demand."""
    if directory is None:
        env = os.environ.get(CACHE_DIR_ENV, "")
        directory = env if env else Path.home() / ".cache" / "cascadevae"
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(
            f"cannot create the cache directory {str(path)!r} ({exc}); point {CACHE_DIR_ENV} at a "
            "writable folder") from exc
    return path


def missing_error(dataset: str, source: str, expected: str, searched: Sequence[Path],
                  data_dir: Optional[Path], extra: str = "") -> DatasetError:
    """The single message for a dataset that cannot be found: which file is expected, where
    we looked, where to get it (``SOURCES[source]``), and how to point the loader at it."""
    if data_dir is None:
        where = (f"no data directory was given (pass data_dir=..., {DATA_DIR_FLAG} DIR, or set "
                 f"{DATA_DIR_ENV})")
    else:
        where = "looked in " + ", ".join(repr(str(p)) for p in searched)
    message = (f"{dataset} not found: expected {expected}; {where}. Get it from "
               f"{SOURCES[source]} and point {DATA_DIR_FLAG} or {DATA_DIR_ENV} at the folder "
               "that holds it.")
    if extra:
        message += " " + extra
    return DatasetError(message)
