"""3D Chairs (Aubry et al., CVPR 2014) as a folder of images: every PNG/JPEG under it,
recursively, converted to grayscale and resized to 64 x 64 with PIL, values in [0, 1].

The paper "preprocessed the chairs dataset and prepared 86,366 images of size 64 x 64":
that is every image of ``rendered_chairs.tar`` (1,393 chair models x 62 views = 86,366
renderings of 600 x 600 px). Preparation here: unpack the tar under the data directory
(``DATA_DIR/rendered_chairs/<model>/renders/*.png``); each image is converted to 8-bit
grayscale (ITU-R 601 luma; transparent pixels, if any, are composited over white first)
and resized to 64 x 64 with PIL's bilinear filter (antialiased when shrinking), without
cropping; non-square images are stretched. The result is cached (uint8) in the cache
directory, keyed by the folder and the names, sizes and times of its files.
"""
from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List, Optional

import numpy as np

from .cache import cache_file, read_array, write_array
from .errors import CacheInvalid, DatasetError, MissingDependencyError
from .image_dataset import ArrayImageDataset
from .paths import PathLike, missing_error, resolve_data_dir

log = logging.getLogger(__name__)

CHAIRS_NUM_IMAGES = 86_366
IMAGE_SIZE = 64
EXTENSIONS = (".png", ".jpg", ".jpeg")
SUBDIRS = ("rendered_chairs", "chairs", "3d_chairs", "3DChairs")
SPLITS = ("train", "full")


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:
        raise MissingDependencyError(
            f"the chairs loader needs Pillow, which is not installed ({exc}); run: "
            "pip install pillow") from exc
    return Image


def list_images(folder: PathLike) -> List[Path]:
    """Every ``.png``, ``.jpg`` or ``.jpeg`` file under ``folder`` (any case), sorted by
    relative path so the order, and the index of each image, is reproducible."""
    folder = Path(folder)
    found = [p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def load_image(path: PathLike, size: int = IMAGE_SIZE) -> np.ndarray:
    """One image as uint8 ``(size, size)`` grayscale (see the module docstring)."""
    Image = _pil()
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(white, rgba)
            gray = img.convert("L")
            if gray.size != (size, size):
                gray = gray.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(gray, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"cannot read image {str(path)!r} ({exc}); remove or replace it") from None


def _folder_key(folder: Path, files: List[Path], size: int) -> dict:
    digest = hashlib.sha256()
    for p in files:
        st = p.stat()
        digest.update(f"{p.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"folder": str(folder.resolve()), "count": len(files), "size": size,
            "files_sha256": digest.hexdigest(), "method": "PIL L, bilinear, alpha over white"}


def load_image_folder(folder: PathLike, *, size: int = IMAGE_SIZE, name: str = "chairs",
                      cache: bool = True, cache_directory: Optional[PathLike] = None,
                      num_workers: Optional[int] = None, progress: bool = True
                      ) -> ArrayImageDataset:
    """All images under ``folder`` as an unlabelled ``size`` x ``size`` grayscale dataset,
    decoded by a pool of threads with a progress bar, cached (uint8) after the first load."""
    from tqdm.auto import tqdm

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{name}: image folder {str(folder)!r} does not exist")
    files = list_images(folder)
    if not files:
        raise DatasetError(f"{name}: no .png/.jpg/.jpeg images under {str(folder)!r}; unpack "
                           "rendered_chairs.tar there (see docs/datasets.md)")
    images = None
    target = None
    if cache:
        params = _folder_key(folder, files, size)
        target = cache_file("image-folder", params, cache_directory)
        try:
            images = read_array(target, "image-folder", params)
        except CacheInvalid as exc:
            if target.exists():
                log.warning("%s; decoding the images again", exc)
    if images is None:
        _pil()  # fail once, clearly, before starting threads
        images = np.empty((len(files), size, size), dtype=np.uint8)
        workers = num_workers or max(1, len(os.sched_getaffinity(0))
                                     if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))

        def work(i: int) -> None:
            images[i] = load_image(files[i], size)

        with tqdm(total=len(files), desc=f"{name}: decoding", unit="img",
                  disable=not progress, leave=False) as bar, \
                ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(work, range(len(files)), chunksize=64):
                bar.update(1)
        if target is not None:
            try:
                write_array(target, "image-folder", params, images)
            except OSError as exc:
                log.warning("could not write the image cache %s: %s", target, exc)
    if name == "chairs" and len(files) != CHAIRS_NUM_IMAGES:
        log.info("chairs: %d images under %s (the paper used %d)", len(files), folder,
                 CHAIRS_NUM_IMAGES)
    return ArrayImageDataset(images, None, name=name,
                             source=f"{len(files)} images under {str(folder)!r}, grayscale "
                                    f"{size}x{size} (PIL bilinear)")


def find_chairs_folder(data_dir: Optional[PathLike] = None) -> Path:
    root = resolve_data_dir(data_dir)
    searched = [root / sub for sub in SUBDIRS] if root is not None else []
    for folder in searched:
        if folder.is_dir():
            return folder
    raise missing_error("Chairs", "chairs",
                        f"a folder {' or '.join(repr(s) for s in SUBDIRS)} of PNG/JPEG images "
                        "(unpacked rendered_chairs.tar)", searched, root)


def load_chairs(data_dir: Optional[PathLike] = None, split: str = "train", **options
                ) -> ArrayImageDataset:
    """The 3D chairs images under ``DATA_DIR/rendered_chairs`` (or ``chairs``,
    ``3d_chairs``, ``3DChairs``): unlabelled, 64 x 64. The paper uses all of them, so
    ``"train"`` and ``"full"`` are the same set. ``options`` go to
    :func:`load_image_folder`."""
    if split not in SPLITS:
        raise DatasetError(f"chairs: unknown split {split!r}; the chairs are one unlabelled set: "
                           f"choose one of {list(SPLITS)}")
    return load_image_folder(find_chairs_folder(data_dir), name="chairs", **options)
