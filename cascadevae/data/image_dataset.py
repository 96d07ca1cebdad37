"""The common image-dataset notion: a length, a channel-first image shape, batch access by an
index array returning float32 numpy images in [0, 1], class labels where they exist, and
fast random batches.

Images come back as numpy ``float32`` arrays of shape ``(n, 1, H, W)`` (channel first, as
torch layers expect); ``torch.from_numpy`` turns a batch into a tensor without a copy.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Optional, Sequence, Tuple

import numpy as np

from .errors import DatasetError


def as_index_array(indices, length: int) -> np.ndarray:
    """``indices`` as a 1-D int64 array, checked against ``[0, length)`` (negative indices are
    rejected: they are almost always a bug in sampling code)."""
    idx = np.asarray(indices)
    if idx.ndim == 0:
        idx = idx.reshape(1)
    if idx.ndim != 1:
        raise DatasetError(f"indices must be 1-D, got shape {idx.shape}")
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise DatasetError(f"indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= length:
            bad = lo if lo < 0 else hi
            raise DatasetError(f"index {bad} is out of range for a dataset of {length} images")
    return idx


class ImageDataset(ABC):
    """A finite set of single-channel images with values in [0, 1].

    Subclasses implement :meth:`__len__`, :attr:`image_shape` and :meth:`images`.
    ``labels`` is an int64 array (one class per image) or ``None`` for unlabelled sets.
    """

    #: short registry name, e.g. ``"mnist"`` or ``"dsprites-procedural"``
    name: str = "images"
    #: where the images came from, in words (file path, renderer version, ...)
    source: str = ""
    #: class names indexed by label, where the set is labelled
    class_names: Optional[Tuple[str, ...]] = None

    @abstractmethod
    def __len__(self) -> int:
        ...

    @property
    @abstractmethod
    def image_shape(self) -> Tuple[int, int, int]:
        """``(1, H, W)``: channel first."""

    @abstractmethod
    def images(self, indices) -> np.ndarray:
        """float32 ``(len(indices), 1, H, W)`` in [0, 1] for an integer index array."""

    @property
    def labels(self) -> Optional[np.ndarray]:
        return None

    @property
    def num_classes(self) -> Optional[int]:
        labels = self.labels
        if labels is None:
            return None
        if self.class_names is not None:
            return len(self.class_names)
        return int(labels.max()) + 1 if labels.size else 0

    def sample_batch(self, batch_size: int, rng: np.random.Generator
                     ) -> Tuple[np.ndarray, np.ndarray]:
        """``(images, indices)``: ``batch_size`` indices drawn uniformly with replacement."""
        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
        idx = rng.integers(0, len(self), size=batch_size, dtype=np.int64)
        return self.images(idx), idx

    def batches(self, batch_size: int, rng: np.random.Generator, *,
                epochs: Optional[int] = None, drop_last: bool = True
                ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Yield ``(images, indices)`` batches, each epoch a fresh random permutation (every
        image once per epoch); forever when ``epochs`` is None. With ``drop_last`` the last
        short batch of an epoch is skipped, so every batch has ``batch_size`` images."""
        n = len(self)
        if batch_size < 1:
            raise DatasetError(f"batch_size must be >= 1, got {batch_size}")
        if drop_last and batch_size > n:
            raise DatasetError(f"batch_size {batch_size} exceeds the {n} images of {self.name}")
        epoch = 0
        while epochs is None or epoch < epochs:
            order = rng.permutation(n)
            stop = n - n % batch_size if drop_last else n
            for start in range(0, stop, batch_size):
                idx = order[start:start + batch_size]
                yield self.images(idx), idx
            epoch += 1

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, n={len(self)}, "
                f"image_shape={self.image_shape}, source={self.source!r})")


class ArrayImageDataset(ImageDataset):
    """Images held in memory as uint8 ``(n, H, W)`` (value / 255 is the intensity), with
    optional int64 labels; used by MNIST, FashionMNIST, the MNIST-5k subset and Chairs."""

    def __init__(self, images_u8: np.ndarray, labels: Optional[np.ndarray] = None, *,
                 name: str, source: str, class_names: Optional[Sequence[str]] = None):
        images_u8 = np.asarray(images_u8)
        if images_u8.dtype != np.uint8 or images_u8.ndim != 3:
            raise DatasetError(f"{name}: images must be uint8 (n, H, W), got {images_u8.dtype} "
                               f"{images_u8.shape}")
        if labels is not None:
            labels = np.asarray(labels).astype(np.int64, copy=False)
            if labels.shape != (images_u8.shape[0],):
                raise DatasetError(f"{name}: {images_u8.shape[0]} images but labels of shape "
                                   f"{labels.shape}")
        self._images = np.ascontiguousarray(images_u8)
        self._labels = labels
        self.name = name
        self.source = source
        self.class_names = tuple(class_names) if class_names is not None else None

    def __len__(self) -> int:
        return self._images.shape[0]

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return (1,) + tuple(self._images.shape[1:])

    @property
    def raw(self) -> np.ndarray:
        """The stored uint8 ``(n, H, W)`` array (read-only view)."""
        view = self._images.view()
        view.flags.writeable = False
        return view

    @property
    def labels(self) -> Optional[np.ndarray]:
        return self._labels

    def images(self, indices) -> np.ndarray:
        idx = as_index_array(indices, len(self))
        out = self._images[idx].astype(np.float32)
        out *= np.float32(1.0 / 255.0)
        return out[:, None]
