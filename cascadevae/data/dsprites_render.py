"""The procedural dSprites twin: our own renderer of dSprites' factor grid (square, ellipse,
heart), lazily per batch or as the full 737,280-image grid cached bit-packed on disk.

Geometry (all in pixels of the 64 x 64 frame; pixel (r, c) covers [c, c+1) x [r, r+1), and is
on exactly when its centre (c + 0.5, r + 0.5) lies inside the shape, boundary included: no
anti-aliasing, so every image is binary and deterministic):

* position: the shape's centre sits at ``8 + 48 * posX`` columns and ``8 + 48 * posY`` rows,
  i.e. 75% of the frame centred on it, posX growing to the right and posY growing *down*
  (image rows); the real file's positions span roughly pixels 8 to 56 as well;
* scale: the size unit is ``20 * scale`` px (the real square at scale 1 is about 19-20 px
  wide): the square's side, the ellipse's major axis (minor axis half of it) and the heart's
  width all equal one unit;
* orientation ``theta``: the shape turns counter-clockwise as displayed (y up) by theta
  about its centre; theta is reduced modulo 2 pi, so 2 pi renders exactly as 0;
* at theta = 0 the square is axis-aligned, the ellipse's major axis is horizontal and the
  heart stands upright with its tip pointing down;
* the heart is the implicit curve (x^2 + y^2 - 1)^3 <= x^2 y^3 (y up), scaled so that its
  width (2 * 1.13903 in curve units) is one unit and shifted so that its area centroid
  (y = 0.29348) is the centre it rotates about and is placed at.

Large shapes at extreme positions are clipped by the frame border (as the centres come within
8 px of it); every clipped image is still distinct.
"""
from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from .cache import cache_file, read_array, write_array
from .dsprites import (FACTOR_NAMES, IMAGE_SIZE, PACKED_BYTES, SHAPE_NAMES, DSprites,
                       DSpritesBase, DSpritesGrid)
from .errors import CacheInvalid, DatasetError
from .ground_truth import factors_from_index
from .image_dataset import as_index_array
from .paths import PathLike

log = logging.getLogger(__name__)

# Bump when the rendering changes in any way: the cache key and header carry it.
RENDERER_VERSION = 1

UNIT_PX = 20.0                     # size unit at scale 1: the square's side
POSITION_RANGE_PX = (8.0, 56.0)    # shape centre at position 0 and at position 1
ELLIPSE_SEMI_AXES = (0.5, 0.25)    # in units: a 20 x 10 px ellipse at scale 1
HEART_HALF_WIDTH = 1.1390282       # of the implicit curve, in curve units
HEART_CENTROID_Y = 0.2934814       # area centroid of the curve (y up), in curve units
HEART_CURVE_PER_UNIT = 2.0 * HEART_HALF_WIDTH
# Radius (in units) of a disc about the centre that holds the whole shape at any orientation:
# bounds the window each image is rendered in.
_SHAPE_RADIUS = np.array([math.sqrt(0.5), ELLIPSE_SEMI_AXES[0],
                          (1.0 + HEART_CENTROID_Y) / HEART_CURVE_PER_UNIT + 1e-3])

GEOMETRY = {"unit_px": UNIT_PX, "position_range_px": list(POSITION_RANGE_PX),
            "ellipse_semi_axes": list(ELLIPSE_SEMI_AXES), "heart": "(x2+y2-1)^3<=x2y3",
            "heart_half_width": HEART_HALF_WIDTH, "heart_centroid_y": HEART_CENTROID_Y,
            "frame": IMAGE_SIZE, "sampling": "pixel centre inside, boundary included"}


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean mask of the points (u, v), in units with y up, inside shape ``shape``."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= np.float32(0.5)
    if shape == 1:
        a, b = ELLIPSE_SEMI_AXES
        return (u * u) * np.float32(1 / a ** 2) + (v * v) * np.float32(1 / b ** 2) <= np.float32(1)
    p = u * np.float32(HEART_CURVE_PER_UNIT)
    q = v * np.float32(HEART_CURVE_PER_UNIT) + np.float32(HEART_CENTROID_Y)
    p2 = p * p
    q2 = q * q
    t = p2 + q2 - np.float32(1)
    return t * t * t <= p2 * q2 * q


def render_sprites(shape, scale, orientation, pos_x, pos_y) -> np.ndarray:
    """Render sprites from latent *values* (not class indices): bool ``(n, 64, 64)``.

    ``shape`` is 0 (square), 1 (ellipse) or 2 (heart); ``scale`` > 0 (dSprites uses 0.5..1);
    ``orientation`` in radians; ``pos_x``, ``pos_y`` in [0, 1]. All are broadcast to one
    length. Vectorised over the batch: each image is evaluated only in a square window
    around its centre (side set by the largest shape in the batch), and the windows are
    scattered into the frames in one indexed assignment.
    """
    shape, scale, orientation, pos_x, pos_y = np.broadcast_arrays(
        np.asarray(shape), np.asarray(scale, dtype=np.float64),
        np.asarray(orientation, dtype=np.float64), np.asarray(pos_x, dtype=np.float64),
        np.asarray(pos_y, dtype=np.float64))
    if shape.ndim > 1:
        raise DatasetError(f"render_sprites takes 1-D latents, got shape {shape.shape}")
    shape = np.atleast_1d(shape)
    if shape.size and not np.issubdtype(shape.dtype, np.integer):
        raise DatasetError(f"shape must be integer classes 0, 1, 2, got dtype {shape.dtype}")
    shape = shape.astype(np.int64)
    scale, orientation, pos_x, pos_y = (np.atleast_1d(a) for a in (scale, orientation, pos_x, pos_y))
    n = shape.size
    frames = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    if n == 0:
        return frames
    if shape.min() < 0 or shape.max() > 2:
        raise DatasetError(f"shape class {int(shape.max() if shape.max() > 2 else shape.min())} "
                           "is not 0 (square), 1 (ellipse) or 2 (heart)")
    for label, a, lo, hi in (("scale", scale, 1e-6, 4.0), ("pos_x", pos_x, 0.0, 1.0),
                             ("pos_y", pos_y, 0.0, 1.0)):
        if not np.all(np.isfinite(a)) or a.min() < lo or a.max() > hi:
            raise DatasetError(f"{label} values must lie in [{lo}, {hi}], got "
                               f"[{a.min()}, {a.max()}]")
    if not np.all(np.isfinite(orientation)):
        raise DatasetError("orientation values must be finite")

    lo_px, hi_px = POSITION_RANGE_PX
    cx = lo_px + (hi_px - lo_px) * pos_x
    cy = lo_px + (hi_px - lo_px) * pos_y
    radius_px = float((_SHAPE_RADIUS[shape] * scale).max()) * UNIT_PX
    half = int(math.ceil(radius_px + 1.5))  # window [floor(c) - half, floor(c) + half)
    offsets = np.arange(2 * half)
    cols = np.floor(cx).astype(np.int64)[:, None] - half + offsets  # (n, w) pixel columns
    rows = np.floor(cy).astype(np.int64)[:, None] - half + offsets
    dx = cols + 0.5 - cx[:, None]        # pixel centre minus shape centre, x right
    dy = -(rows + 0.5 - cy[:, None])     # y up, so that theta turns counter-clockwise
    theta = np.mod(orientation, 2 * math.pi)
    inv = 1.0 / (UNIT_PX * scale)
    cos = (np.cos(theta) * inv)[:, None]
    sin = (np.sin(theta) * inv)[:, None]
    # Rotate the pixel offsets by -theta (into the shape's own frame): each coordinate is a
    # column term plus a row term, so the (n, w, w) work is two adds.
    u = (cos * dx).astype(np.float32)[:, None, :] + (sin * dy).astype(np.float32)[:, :, None]
    v = (-sin * dx).astype(np.float32)[:, None, :] + (cos * dy).astype(np.float32)[:, :, None]

    window = np.empty(u.shape, dtype=bool)
    for s in range(3):
        sel = np.flatnonzero(shape == s)
        if sel.size == n:
            window = _inside(s, u, v)
        elif sel.size:
            window[sel] = _inside(s, u[sel], v[sel])
    # Scatter into a frame padded by the window half-size so no index is out of range, then
    # crop: pixels outside the 64 x 64 frame are simply dropped.
    side = IMAGE_SIZE + 2 * half
    canvas = np.zeros((n, side, side), dtype=bool)
    canvas[np.arange(n)[:, None, None], (rows + half)[:, :, None], (cols + half)[:, None, :]] = window
    frames[:] = canvas[:, half:half + IMAGE_SIZE, half:half + IMAGE_SIZE]
    return frames


def render_factors(factors, grid: Optional[DSpritesGrid] = None) -> np.ndarray:
    """bool ``(n, 64, 64)`` for int factor classes ``(n, 5)`` of ``grid`` (default: the
    standard dSprites grid)."""
    grid = grid or DSpritesGrid.standard()
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != len(FACTOR_NAMES):
        raise DatasetError(f"factors must have shape (n, {len(FACTOR_NAMES)}), got {f.shape}")
    values = grid.values()
    sizes = grid.factor_sizes
    bad = (f < 0) | (f >= np.asarray(sizes))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DatasetError(f"factor {FACTOR_NAMES[col]} = {int(f[row, col])} (row {int(row)}) "
                           f"is outside [0, {sizes[col]})")
    return render_sprites(f[:, 0], values["scale"][f[:, 1]], values["orientation"][f[:, 2]],
                          values["posX"][f[:, 3]], values["posY"][f[:, 4]])


_LAZY_CHUNK = 4096


class ProceduralDSprites(DSpritesBase):
    """The twin rendered on demand: no cache, no start-up cost; any factor combination or
    index renders in well under a millisecond per image (a batch of 64 in ~2 ms)."""

    def __init__(self, grid: Optional[DSpritesGrid] = None):
        super().__init__(grid or DSpritesGrid.standard())
        self.name = "dsprites-procedural"
        self.source = (f"procedural dSprites twin (cascadevae renderer v{RENDERER_VERSION}), "
                       "rendered lazily")

    def images(self, indices) -> np.ndarray:
        idx = as_index_array(indices, len(self))
        out = np.empty((idx.size, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        # chunks bound the (n, w, w) float temporaries for large requests (metrics ask for
        # tens of thousands of images at once)
        for start in range(0, idx.size, _LAZY_CHUNK):
            part = idx[start:start + _LAZY_CHUNK]
            out[start:start + part.size, 0] = render_factors(
                factors_from_index(part, self.factor_sizes), self.grid)
        return out


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def render_grid(grid: Optional[DSpritesGrid] = None, *, num_workers: Optional[int] = None,
                progress: bool = True, chunk: int = 4096) -> np.ndarray:
    """Render every combination of ``grid`` in index order: uint8 ``(N, 512)``, each row the
    ``np.packbits`` of one flattened 64 x 64 image. Chunks are rendered by a pool of
    ``num_workers`` threads (default: the usable cores; numpy releases the GIL in the
    array work), with a tqdm progress bar."""
    from tqdm.auto import tqdm

    grid = grid or DSpritesGrid.standard()
    sizes = grid.factor_sizes
    n = int(np.prod(sizes))
    packed = np.empty((n, PACKED_BYTES), dtype=np.uint8)
    starts = list(range(0, n, chunk))

    def work(start: int) -> int:
        stop = min(n, start + chunk)
        frames = render_factors(factors_from_index(np.arange(start, stop), sizes), grid)
        packed[start:stop] = np.packbits(frames.reshape(stop - start, -1), axis=1)
        return stop - start

    workers = num_workers or _default_workers()
    with tqdm(total=n, desc="dSprites twin: rendering", unit="img", disable=not progress,
              leave=False) as bar:
        if workers == 1:
            for start in starts:
                bar.update(work(start))
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for done in pool.map(work, starts):
                    bar.update(done)
    return packed


def cache_params(grid: DSpritesGrid) -> dict:
    return {"renderer": RENDERER_VERSION, "geometry": GEOMETRY, "grid": grid.to_params()}


def procedural_cache_file(grid: Optional[DSpritesGrid] = None,
                          cache_directory: Optional[PathLike] = None) -> Path:
    """Where the twin of ``grid`` is cached (the name carries the format version and a digest
    of the renderer version, geometry and grid)."""
    return cache_file("dsprites-procedural", cache_params(grid or DSpritesGrid.standard()),
                      cache_directory)


def _spot_check(packed: np.ndarray, grid: DSpritesGrid, count: int, path: Path) -> None:
    # A cheap guard against a renderer that changed without a version bump: re-render a few
    # cached images and compare them bit for bit.
    if count <= 0:
        return
    rng = np.random.default_rng()
    idx = rng.integers(0, packed.shape[0], size=count)
    fresh = np.packbits(render_factors(factors_from_index(idx, grid.factor_sizes), grid)
                        .reshape(count, -1), axis=1)
    if not np.array_equal(fresh, packed[idx]):
        raise CacheInvalid(f"cache file {str(path)!r} differs from the current renderer (stale)")


def load_procedural_dsprites(grid: Optional[DSpritesGrid] = None, *, lazy: bool = False,
                             cache: bool = True, cache_directory: Optional[PathLike] = None,
                             progress: bool = True, num_workers: Optional[int] = None,
                             verify: int = 16):
    """The procedural twin of dSprites (or of a sub-grid).

    ``lazy=True``: a :class:`ProceduralDSprites` that renders per batch. Otherwise the whole
    grid, bit-packed in memory (:class:`~cascadevae.data.dsprites.DSprites`): read from the
    cache when a valid file exists (checked: header, size, CRC-32, and ``verify`` images
    re-rendered), else rendered (under a minute for the full grid on 2 cores) and written to
    the cache atomically. A corrupt or stale cache is reported and rebuilt.
    """
    grid = grid or DSpritesGrid.standard()
    if lazy:
        return ProceduralDSprites(grid)
    params = cache_params(grid)
    packed = None
    target = None
    if cache:
        target = cache_file("dsprites-procedural", params, cache_directory)
        try:
            packed = read_array(target, "dsprites-procedural", params)
            if packed.shape != (int(np.prod(grid.factor_sizes)), PACKED_BYTES):
                raise CacheInvalid(f"cache file {str(target)!r} holds shape {packed.shape}")
            _spot_check(packed, grid, verify, target)
        except CacheInvalid as exc:
            packed = None
            if target.exists():
                log.warning("%s; rendering it again", exc)
    if packed is None:
        packed = render_grid(grid, num_workers=num_workers, progress=progress)
        if target is not None:
            try:
                write_array(target, "dsprites-procedural", params, packed)
            except OSError as exc:  # a read-only cache must not stop training
                log.warning("could not write the dSprites twin cache %s: %s", target, exc)
    where = f"cached at {str(target)!r}" if target is not None else "in memory, not cached"
    name = "dsprites-procedural" if grid.is_standard else "dsprites-procedural-subgrid"
    return DSprites(packed, grid, name=name,
                    source=f"procedural dSprites twin (cascadevae renderer v{RENDERER_VERSION}), "
                           f"{where}")


def save_sample_figure(path: PathLike, grid: Optional[DSpritesGrid] = None) -> Path:
    """Write a PNG of the twin: one row per factor, each varied over its range with the
    others fixed (matplotlib, imported here only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = grid or DSpritesGrid.standard()
    sizes = grid.factor_sizes
    values = grid.values()
    base = np.array([2, sizes[1] - 1, 0, sizes[3] // 2, sizes[4] // 2])
    cols = 10
    rows_spec = []
    for k, name in enumerate(FACTOR_NAMES):
        picks = np.unique(np.round(np.linspace(0, sizes[k] - 1, min(cols, sizes[k]))).astype(int))
        rows_spec.append((k, name, picks))
    shape_row = []  # every shape at every scale, for a direct size comparison
    for s in range(3):
        for sc in (0, sizes[1] - 1):
            shape_row.append((s, sc))
    fig, axes = plt.subplots(len(rows_spec) + 1, cols, figsize=(cols * 1.1, (len(rows_spec) + 1) * 1.25))
    for r, (k, name, picks) in enumerate(rows_spec):
        f = np.repeat(base[None], len(picks), axis=0)
        f[:, k] = picks
        imgs = render_factors(f, grid)
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(picks):
                ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                v = values[name][picks[c]]
                label = SHAPE_NAMES[picks[c]] if name == "shape" else (
                    f"{math.degrees(v):.0f}°" if name == "orientation" else f"{v:.2f}")
                ax.set_title(label, fontsize=7, pad=2)
            else:
                ax.axis("off")
        axes[r, 0].set_ylabel(name, fontsize=8)
    f = np.array([[s, sc, 3, sizes[3] // 2, sizes[4] // 2] for s, sc in shape_row])
    imgs = render_factors(f, grid)
    for c in range(cols):
        ax = axes[-1, c]
        ax.set_xticks([])
        ax.set_yticks([])
        if c < len(shape_row):
            ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            s, sc = shape_row[c]
            ax.set_title(f"{SHAPE_NAMES[s]} {values['scale'][sc]:.1f}", fontsize=7, pad=2)
        else:
            ax.axis("off")
    axes[-1, 0].set_ylabel("shape x scale", fontsize=8)
    fig.suptitle("procedural dSprites twin: one factor varied per row (others: heart, scale 1, "
                 "orientation 0, centre)", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
