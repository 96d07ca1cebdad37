"""dSprites (Matthey et al., 2017) as ground-truth data: the factor grid, images kept
bit-packed in memory, and the loader for the real ``.npz`` file.

Five factors, in the file's storage order: shape (square, ellipse, heart), scale (6),
orientation (40), posX (32), posY (32). The file's sixth latent, color, has one value and is
dropped, which leaves the index of every image unchanged.

(About 460 lines: the real file's streaming reader and its validation against the factor grid
are kept beside the grid they fill, since each check reads the grid's layout.)
"""
from __future__ import annotations

import logging
import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from .errors import CacheInvalid, DatasetError
from .ground_truth import GroundTruthData, factors_from_index, index_from_factors
from .image_dataset import ImageDataset, as_index_array
from .paths import PathLike, missing_error, resolve_data_dir

log = logging.getLogger(__name__)

DSPRITES_FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
FACTOR_NAMES = ("shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")
NUM_IMAGES = 737_280
IMAGE_SIZE = 64
PACKED_BYTES = IMAGE_SIZE * IMAGE_SIZE // 8  # one image, 8 pixels per byte (np.packbits order)
NPZ_KEYS = ("imgs", "latents_values", "latents_classes", "metadata")
# The file's latents: color, shape, scale, orientation, posX, posY.
_FILE_LATENT_SIZES = (1,) + FACTOR_SIZES



@dataclass(frozen=True)
class DSpritesGrid:
    """The values behind each factor's classes (shape has 3 classes, values 1, 2, 3 as in the
    file). :meth:`standard` is the real dataset's grid; fewer classes give a sub-grid with
    the same ranges, used by tests and small experiments."""

    scales: Tuple[float, ...]
    orientations: Tuple[float, ...]
    positions_x: Tuple[float, ...]
    positions_y: Tuple[float, ...]

    @classmethod
    def standard(cls, num_scales: int = 6, num_orientations: int = 40,
                 num_positions: int = 32) -> "DSpritesGrid":
        """dSprites' values: scale linspace(0.5, 1), orientation linspace(0, 2 pi) with both
        ends included (as the file does: the first and last orientation coincide), positions
        linspace(0, 1)."""
        for label, n in (("num_scales", num_scales), ("num_orientations", num_orientations),
                         ("num_positions", num_positions)):
            if int(n) < 1:
                raise DatasetError(f"{label} must be >= 1, got {n}")
        return cls(tuple(np.linspace(0.5, 1.0, num_scales).tolist()),
                   tuple(np.linspace(0.0, 2 * math.pi, num_orientations).tolist()),
                   tuple(np.linspace(0.0, 1.0, num_positions).tolist()),
                   tuple(np.linspace(0.0, 1.0, num_positions).tolist()))

    @property
    def factor_sizes(self) -> Tuple[int, ...]:
        return (3, len(self.scales), len(self.orientations), len(self.positions_x),
                len(self.positions_y))

    @property
    def is_standard(self) -> bool:
        return self == DSpritesGrid.standard()

    def values(self) -> Dict[str, np.ndarray]:
        """float64 value of each class, per factor name."""
        return {"shape": np.arange(1.0, 4.0), "scale": np.asarray(self.scales),
                "orientation": np.asarray(self.orientations),
                "posX": np.asarray(self.positions_x), "posY": np.asarray(self.positions_y)}

    def to_params(self) -> dict:
        return {"scales": list(self.scales), "orientations": list(self.orientations),
                "positions_x": list(self.positions_x), "positions_y": list(self.positions_y)}


class DSpritesBase(GroundTruthData, ImageDataset):
    """dSprites over a :class:`DSpritesGrid`: ground-truth factors and an image dataset whose
    index is the grid index. Labels are the shape class (0 square, 1 ellipse, 2 heart), the
    discrete factor the unsupervised accuracy metric scores on dSprites (S = 3)."""

    class_names = SHAPE_NAMES

    def __init__(self, grid: DSpritesGrid):
        self.grid = grid
        self._labels: Optional[np.ndarray] = None

    @property
    def factor_names(self) -> Tuple[str, ...]:
        return FACTOR_NAMES

    @property
    def factor_sizes(self) -> Tuple[int, ...]:
        return self.grid.factor_sizes

    def factor_values(self) -> Dict[str, np.ndarray]:
        return self.grid.values()

    def values_from_factors(self, factors) -> np.ndarray:
        """float64 ``(n, 5)``: the latent values (as ``latents_values`` minus color) of int
        factors ``(n, 5)``."""
        f = factors_from_index(index_from_factors(factors, self.factor_sizes), self.factor_sizes)
        table = self.grid.values()
        return np.stack([table[name][f[:, k]] for k, name in enumerate(FACTOR_NAMES)], axis=1)

    def __len__(self) -> int:
        return self.num_combinations

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return (1, IMAGE_SIZE, IMAGE_SIZE)

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            # shape is the slowest factor, so the labels are three constant runs
            self._labels = np.repeat(np.arange(3, dtype=np.int64), len(self) // 3)
        return self._labels

    def images_from_factors(self, factors) -> np.ndarray:
        return self.images(self.index_from_factors(factors))


def unpack_images(packed_rows: np.ndarray) -> np.ndarray:
    """float32 ``(n, 1, 64, 64)`` in {0, 1} from bit-packed rows ``(n, 512)`` uint8."""
    # one vectorised unpack of the selected rows (faster than a float lookup table, whose
    # gather writes 32 bits per pixel from scattered reads)
    n = packed_rows.shape[0]
    bits = np.unpackbits(packed_rows, axis=1)
    return bits.astype(np.float32).reshape(n, 1, IMAGE_SIZE, IMAGE_SIZE)


class DSprites(DSpritesBase):
    """dSprites images held bit-packed in memory (512 bytes per image, 377 MB for the full
    grid): from the real file or from the procedural twin's cache. A batch of 64 is one
    gather plus one table lookup, tens of microseconds."""

    def __init__(self, packed: np.ndarray, grid: DSpritesGrid, *, name: str, source: str):
        super().__init__(grid)
        packed = np.asarray(packed)
        if packed.dtype != np.uint8 or packed.shape != (self.num_combinations, PACKED_BYTES):
            raise DatasetError(f"{name}: packed images must be uint8 ({self.num_combinations}, "
                               f"{PACKED_BYTES}), got {packed.dtype} {packed.shape}")
        self._packed = packed
        self.name = name
        self.source = source

    @property
    def packed(self) -> np.ndarray:
        """The bit-packed images ``(N, 512)`` uint8, ``np.packbits`` of each flattened image."""
        return self._packed

    def images(self, indices) -> np.ndarray:
        idx = as_index_array(indices, len(self))
        return unpack_images(self._packed[idx])


# ---------------------------------------------------------------------------------------
# The real file


def dsprites_candidates(data_dir: Path) -> Tuple[Path, ...]:
    return (data_dir / DSPRITES_FILENAME, data_dir / "dsprites" / DSPRITES_FILENAME,
            data_dir / "dsprites-dataset" / DSPRITES_FILENAME)


def find_dsprites_file(data_dir: Optional[PathLike] = None) -> Optional[Path]:
    """The real dSprites file under the data directory (or its ``dsprites/`` or
    ``dsprites-dataset/`` subfolder), or ``None``."""
    root = resolve_data_dir(data_dir)
    if root is None:
        return None
    for path in dsprites_candidates(root):
        if path.is_file():
            return path
    return None


def missing_dsprites_error(data_dir: Optional[PathLike]) -> DatasetError:
    root = resolve_data_dir(data_dir)
    return missing_error(
        "dSprites", "dsprites", f"the file {DSPRITES_FILENAME!r}",
        dsprites_candidates(root) if root is not None else (), root,
        extra="Or load 'dsprites-procedural' for the built-in procedural twin.")


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


def _corrupt(path: Path, what: str, exc: Optional[BaseException] = None) -> DatasetError:
    detail = f" ({exc})" if exc is not None else ""
    return DatasetError(f"dSprites file {str(path)!r}: {what}{detail}. Re-download "
                        f"{DSPRITES_FILENAME} from https://github.com/deepmind/dsprites-dataset.")


def _read_exact(f, nbytes: int) -> bytes:
    parts, got = [], 0
    while got < nbytes:
        part = f.read(nbytes - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_npy_header(f, path: Path, key: str):
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
    except _ZIP_ERRORS as exc:
        raise _corrupt(path, f"member {key!r} has no valid .npy header", exc) from None
    raise _corrupt(path, f"member {key!r} uses .npy format version {version}, expected 1.0 or 2.0")


def _read_small_member(zf: zipfile.ZipFile, key: str, path: Path) -> np.ndarray:
    try:
        with zf.open(key + ".npy") as f:
            # never unpickle: latents are plain numeric arrays
            return np.lib.format.read_array(f, allow_pickle=False)
    except _ZIP_ERRORS as exc:
        raise _corrupt(path, f"member {key!r} is truncated or corrupt", exc) from None


def _stream_packed_images(zf: zipfile.ZipFile, path: Path, *, progress: bool) -> np.ndarray:
    """Read ``imgs`` in chunks of rows, checking they are binary and packing them, so the
    3 GB uint8 array never sits in memory at once."""
    from tqdm.auto import tqdm

    try:
        f = zf.open("imgs.npy")
    except _ZIP_ERRORS as exc:
        raise _corrupt(path, "member 'imgs' cannot be opened", exc) from None
    with f:
        shape, fortran_order, dtype = _read_npy_header(f, path, "imgs")
        if dtype not in (np.dtype(np.uint8), np.dtype(np.bool_)):
            raise _corrupt(path, f"'imgs' has dtype {dtype}, expected uint8 (binary 0/1)")
        if len(shape) != 3 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or fortran_order:
            raise _corrupt(path, f"'imgs' has shape {shape}"
                           f"{' (Fortran order)' if fortran_order else ''}, expected "
                           f"(N, {IMAGE_SIZE}, {IMAGE_SIZE}) in C order")
        n = int(shape[0])
        packed = np.empty((n, PACKED_BYTES), dtype=np.uint8)
        rows = 8192
        pixels = IMAGE_SIZE * IMAGE_SIZE
        bar = tqdm(total=n, desc="dSprites: reading", unit="img", disable=not progress,
                   leave=False)
        try:
            for start in range(0, n, rows):
                stop = min(n, start + rows)
                want = (stop - start) * pixels
                buf = _read_exact(f, want)
                if len(buf) != want:
                    raise _corrupt(path, f"'imgs' ends after {start + len(buf) // pixels} of "
                                   f"{n} images (truncated)")
                chunk = np.frombuffer(buf, dtype=np.uint8).reshape(stop - start, pixels)
                if chunk.max(initial=0) > 1:
                    raise _corrupt(path, f"'imgs' holds values up to {int(chunk.max())} in "
                                   f"images {start}..{stop - 1}, expected binary 0/1")
                packed[start:stop] = np.packbits(chunk, axis=1)
                bar.update(stop - start)
        except _ZIP_ERRORS as exc:
            if isinstance(exc, DatasetError):
                raise
            raise _corrupt(path, "'imgs' is truncated or corrupt", exc) from None
        finally:
            bar.close()
    return packed


def _grid_from_latents(path: Path, classes: np.ndarray, values: np.ndarray, n_images: int,
                       strict_grid: bool) -> DSpritesGrid:
    if classes.ndim != 2 or classes.shape[1] != 6 or not np.issubdtype(classes.dtype, np.integer):
        raise _corrupt(path, f"'latents_classes' has shape {classes.shape} dtype {classes.dtype}, "
                       "expected (N, 6) integers")
    if values.ndim != 2 or values.shape[1] != 6 or not np.issubdtype(values.dtype, np.floating):
        raise _corrupt(path, f"'latents_values' has shape {values.shape} dtype {values.dtype}, "
                       "expected (N, 6) floats")
    if not (classes.shape[0] == values.shape[0] == n_images):
        raise _corrupt(path, f"{n_images} images but {classes.shape[0]} rows of latents_classes "
                       f"and {values.shape[0]} of latents_values")
    if n_images == 0 or classes.min() < 0:
        raise _corrupt(path, "'latents_classes' is empty or negative")
    sizes = tuple(int(s) for s in classes.max(axis=0) + 1)
    if strict_grid and sizes != _FILE_LATENT_SIZES:
        raise _corrupt(path, f"latent sizes are {sizes}, expected the full dSprites grid "
                       f"{_FILE_LATENT_SIZES} (pass strict_grid=False for a sub-grid file)")
    if sizes[0] != 1 or sizes[1] != 3:
        raise _corrupt(path, f"latent sizes are {sizes}: expected one color and three shapes")
    if int(np.prod(sizes)) != n_images:
        raise _corrupt(path, f"{n_images} images but the latent sizes {sizes} make "
                       f"{int(np.prod(sizes))} combinations")
    # The index <-> factor mapping assumes every combination once, in C order.
    if not np.array_equal(index_from_factors(classes, sizes), np.arange(n_images)):
        raise _corrupt(path, "images are not stored in C order over (color, shape, scale, "
                       "orientation, posX, posY), so indices cannot be mapped to factors")
    table = []
    for k, size in enumerate(sizes):
        present, first = np.unique(classes[:, k], return_index=True)  # first row per class
        if present.size != size:
            raise _corrupt(path, f"latent {k} uses {present.size} of its {size} classes")
        per_class = values[first, k]
        if not np.allclose(values[:, k], per_class[classes[:, k]], rtol=0, atol=1e-9):
            raise _corrupt(path, f"latent {k} has more than one value per class")
        table.append(tuple(float(v) for v in per_class))
    return DSpritesGrid(table[2], table[3], table[4], table[5])


def load_dsprites_npz(path: PathLike, *, strict_grid: bool = True, cache: bool = True,
                      cache_directory: Optional[PathLike] = None, progress: bool = True
                      ) -> DSprites:
    """Load the real dSprites ``.npz``, validated, with the images bit-packed in memory.

    Checks: a readable zip with the keys imgs, latents_values, latents_classes, metadata;
    ``imgs`` uint8 (N, 64, 64) with values 0/1; latents (N, 6); every combination once in C
    order. ``metadata`` is a pickled dict: its presence is checked but it is never unpickled
    (that would run code from the file), since the latents carry the same information.
    ``strict_grid=False`` accepts a smaller grid of the same structure (tests).

    With ``cache`` the packed images are kept in the cache directory, keyed by the file's
    path, size and modification time, so later loads skip decompressing 2.9 GB.
    """
    from .cache import cache_file, read_array, write_array

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dSprites file {str(path)!r} does not exist. Download "
                           f"{DSPRITES_FILENAME} from https://github.com/deepmind/dsprites-dataset "
                           "and point --data-dir or CASCADEVAE_DATA at its folder.")
    try:
        zf = zipfile.ZipFile(path)
    except _ZIP_ERRORS as exc:
        raise _corrupt(path, "is not a valid .npz (zip) archive; the download may be truncated",
                       exc) from None
    with zf:
        members = {name[:-4] if name.endswith(".npy") else name for name in zf.namelist()}
        missing = [key for key in NPZ_KEYS if key not in members]
        if missing:
            raise _corrupt(path, f"has keys {sorted(members)}, missing {missing}; a dSprites file "
                           f"has {list(NPZ_KEYS)}")
        classes = _read_small_member(zf, "latents_classes", path)
        values = _read_small_member(zf, "latents_values", path)
        try:
            with zf.open("imgs.npy") as f:
                shape, _, _ = _read_npy_header(f, path, "imgs")
        except _ZIP_ERRORS as exc:
            if isinstance(exc, DatasetError):
                raise
            raise _corrupt(path, "member 'imgs' cannot be opened", exc) from None
        n_images = int(shape[0]) if len(shape) else -1
        grid = _grid_from_latents(path, classes, values, n_images, strict_grid)

        stat = path.stat()
        params = {"file": str(path.resolve()), "size": stat.st_size,
                  "mtime_ns": stat.st_mtime_ns, "n": n_images}
        packed = None
        target = None
        if cache:
            target = cache_file("dsprites-real", params, cache_directory)
            try:
                packed = read_array(target, "dsprites-real", params)
            except CacheInvalid as exc:
                if target.exists():
                    log.warning("%s; re-reading the dSprites file", exc)
        if packed is None:
            packed = _stream_packed_images(zf, path, progress=progress)
            if target is not None:
                try:
                    write_array(target, "dsprites-real", params, packed)
                except OSError as exc:  # a read-only cache must not stop training
                    log.warning("could not write the dSprites cache %s: %s", target, exc)
    name = "dsprites" if grid.is_standard else "dsprites-subgrid"
    return DSprites(packed, grid, name=name, source=f"dSprites real file {str(path)!r}")


# ---------------------------------------------------------------------------------------
# Geometry, measured the same way on the real file and on the procedural twin


def _centroid(img: np.ndarray) -> Tuple[float, float]:
    rows, cols = np.nonzero(img)
    return float(rows.mean()) + 0.5, float(cols.mean()) + 0.5


def principal_angle(img: np.ndarray) -> float:
    """Angle (radians, in (-pi/2, pi/2]) of the principal axis of the on pixels, measured
    counter-clockwise from the +x (column) axis with y pointing up the image."""
    rows, cols = np.nonzero(img)
    x = cols - cols.mean()
    y = -(rows - rows.mean())
    return 0.5 * math.atan2(2 * float((x * y).mean()), float((x * x).mean() - (y * y).mean()))


def geometry_summary(ds: DSpritesBase) -> Dict[str, object]:
    """Measured geometry of a dSprites dataset (real or procedural), for comparing the two:
    centroid ranges along posX / posY, y direction, square width and per-shape areas at the
    largest scale, the heart's tip direction, the rotation direction, and whether the first
    and last orientation give the same image."""
    sizes = ds.factor_sizes
    mid_x, mid_y = sizes[3] // 2, sizes[4] // 2
    big, small = sizes[1] - 1, 0

    def img(shape, scale, orient, x, y):
        return ds.images_from_factors(np.array([[shape, scale, orient, x, y]]))[0, 0] > 0.5

    out: Dict[str, object] = {"source": ds.source}
    cx0 = _centroid(img(0, big, 0, 0, mid_y))[1]
    cx1 = _centroid(img(0, big, 0, sizes[3] - 1, mid_y))[1]
    cy0 = _centroid(img(0, big, 0, mid_x, 0))[0]
    cy1 = _centroid(img(0, big, 0, mid_x, sizes[4] - 1))[0]
    out["centroid_col_at_posX_min_max"] = (round(cx0, 2), round(cx1, 2))
    out["centroid_row_at_posY_min_max"] = (round(cy0, 2), round(cy1, 2))
    out["posY_increases"] = "down" if cy1 > cy0 else "up"
    square = img(0, big, 0, mid_x, mid_y)
    out["square_width_px_at_max_scale"] = int(np.any(square, axis=0).sum())
    out["area_px_at_max_scale"] = {n: int(img(s, big, 0, mid_x, mid_y).sum())
                                   for s, n in enumerate(SHAPE_NAMES)}
    out["area_px_at_min_scale"] = {n: int(img(s, small, 0, mid_x, mid_y).sum())
                                   for s, n in enumerate(SHAPE_NAMES)}
    heart = img(2, big, 0, mid_x, mid_y)
    r, c = _centroid(heart)
    rows, cols = np.nonzero(heart)
    box_r = (rows.min() + rows.max() + 1) / 2
    box_c = (cols.min() + cols.max() + 1) / 2
    # A heart's mass sits in its lobes: the tip is on the side where the box reaches furthest
    # beyond the centroid.
    dr, dc = box_r - r, box_c - c
    out["heart_tip_at_orientation_0"] = (("down" if dr > 0 else "up") if abs(dr) >= abs(dc)
                                         else ("right" if dc > 0 else "left"))
    if sizes[2] > 1:
        a0 = principal_angle(img(1, big, 0, mid_x, mid_y))
        a1 = principal_angle(img(1, big, 1, mid_x, mid_y))
        delta = (a1 - a0 + math.pi / 2) % math.pi - math.pi / 2
        out["ellipse_axis_deg_at_orientation_0"] = round(math.degrees(a0), 1)
        out["rotation_with_orientation"] = "counter-clockwise" if delta > 0 else "clockwise"
        out["first_last_orientation_identical"] = {
            n: bool(np.array_equal(img(s, big, 0, mid_x, mid_y),
                                   img(s, big, sizes[2] - 1, mid_x, mid_y)))
            for s, n in enumerate(SHAPE_NAMES)}
    rng = np.random.default_rng(0)
    sample = ds.images(rng.integers(0, len(ds), size=2000))[:, 0]
    out["mean_intensity_2000_random"] = round(float(sample.mean()), 4)
    border = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    out["fraction_touching_border_2000_random"] = round(
        float(np.any((sample > 0.5) & border, axis=(1, 2)).mean()), 4)
    return out
