"""The procedural dSprites twin: determinism, that each factor changes the image the way its
name says, the geometry we document, and the on-disk cache (round trip, atomicity, rejection
of truncated, corrupt or stale files)."""
import logging
import math
import os
import time

import numpy as np
import pytest

from cascadevae.data import (AtomicArrayWriter, CacheInvalid, DatasetError, DSprites,
                             DSpritesGrid, ProceduralDSprites, cache_file, load,
                             load_procedural_dsprites, read_array, render_factors,
                             render_sprites, write_array)
from cascadevae.data import dsprites_render
from cascadevae.data.cache import HEADER_BYTES
from cascadevae.data.dsprites import geometry_summary, principal_angle
from cascadevae.data.dsprites_render import procedural_cache_file, render_grid

SMALL = DSpritesGrid.standard(num_scales=2, num_orientations=3, num_positions=4)


@pytest.fixture(scope="module")
def twin():
    return ProceduralDSprites()


def one(twin, shape=0, scale=5, orient=0, x=16, y=16):
    return twin.images_from_factors(np.array([[shape, scale, orient, x, y]]))[0, 0]


def centroid(img):
    r, c = np.nonzero(img)
    return r.mean(), c.mean()


def rotate_pixels(img, theta):
    """The on pixels of ``img`` turned by ``theta`` counter-clockwise (y up) about their
    centroid, rounded back to the pixel grid."""
    rows, cols = np.nonzero(img)
    rc, cc = rows.mean(), cols.mean()
    x, y = cols - cc, -(rows - rc)
    xr = x * np.cos(theta) - y * np.sin(theta)
    yr = x * np.sin(theta) + y * np.cos(theta)
    out = np.zeros_like(img, dtype=bool)
    out[np.clip(np.rint(rc - yr).astype(int), 0, 63), np.clip(np.rint(cc + xr).astype(int), 0, 63)] = True
    return out


def iou(a, b):
    a, b = a > 0.5, b > 0.5
    return (a & b).sum() / (a | b).sum()


def test_binary_deterministic_and_independent_of_batch(twin):
    rng = np.random.default_rng(0)
    f = twin.sample_factors(200, rng)
    a = twin.images_from_factors(f)
    assert a.dtype == np.float32 and a.shape == (200, 1, 64, 64)
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert (a.reshape(200, -1).sum(1) > 0).all()
    np.testing.assert_array_equal(a, twin.images_from_factors(f))
    # each image is the same whether rendered alone or in a mixed batch (the window size
    # depends on the batch, the pixels must not)
    for i in range(0, 200, 37):
        np.testing.assert_array_equal(a[i], twin.images_from_factors(f[i:i + 1])[0])


def test_posx_moves_right_and_posy_moves_down(twin):
    rng = np.random.default_rng(1)
    for shape, scale, orient in zip(range(3), rng.integers(0, 6, 3), rng.integers(0, 40, 3)):
        cols = [centroid(one(twin, shape, scale, orient, x, 12))[1] for x in range(32)]
        rows = [centroid(one(twin, shape, scale, orient, 12, y))[0] for y in range(32)]
        assert np.all(np.diff(cols) > 0), cols
        assert np.all(np.diff(rows) > 0), rows  # posY grows downward (image rows)
        # away from the border, one step is 48/31 px
        assert np.allclose(np.diff(cols[8:24]), 48 / 31, atol=0.6)
    # x leaves the row alone and y the column
    assert centroid(one(twin, 0, 0, 0, 3, 20))[0] == centroid(one(twin, 0, 0, 0, 28, 20))[0]


def test_scale_grows_the_area(twin):
    for shape in range(3):
        for orient in (0, 7, 23):
            areas = [one(twin, shape, s, orient).sum() for s in range(6)]
            assert np.all(np.diff(areas) > 0), (shape, orient, areas)
            # area goes with scale^2: scale 1 vs 0.5 is about 4x
            assert 3.4 < areas[-1] / areas[0] < 4.6


def test_orientation_rotates_counter_clockwise(twin):
    thetas = np.linspace(0, 2 * np.pi, 40)
    for k in range(1, 39):
        img = one(twin, 1, 5, k)  # ellipse: principal axis = theta mod pi
        diff = (principal_angle(img) - thetas[k] + np.pi / 2) % np.pi - np.pi / 2
        assert abs(diff) < math.radians(4), (k, math.degrees(diff))
    # the heart turns about its area centroid: the centroid stays put, and the pixels of
    # orientation 0 turned counter-clockwise by theta (not clockwise) overlap orientation k
    base = one(twin, 2, 5, 0)
    r0, c0 = centroid(base)
    for k in (3, 6, 10, 15, 26, 30):  # not near pi, where both directions agree
        img = one(twin, 2, 5, k)
        r, c = centroid(img)
        assert abs(r - r0) < 0.5 and abs(c - c0) < 0.5
        ccw = iou(rotate_pixels(base, thetas[k]), img)
        cw = iou(rotate_pixels(base, -thetas[k]), img)
        assert ccw > 0.8 and ccw > cw, (k, ccw, cw)
    # every orientation of the heart is a different image except 2 pi == 0
    hearts = [one(twin, 2, 5, k).tobytes() for k in range(40)]
    assert len(set(hearts)) == 39 and hearts[0] == hearts[39]
    for shape in range(3):
        np.testing.assert_array_equal(one(twin, shape, 3, 0, 5, 9), one(twin, shape, 3, 39, 5, 9))


def test_shape_changes_the_pixel_set(twin):
    imgs = [one(twin, s, 5, 0) for s in range(3)]
    assert len({i.tobytes() for i in imgs}) == 3
    square, ellipse, heart = (i.sum() for i in imgs)
    assert square > heart > ellipse


def test_documented_geometry(twin):
    square = one(twin, 0, 5, 0, 16, 16)
    assert np.any(square, 0).sum() == 20 and np.any(square, 1).sum() == 20 and square.sum() == 400
    assert np.any(one(twin, 0, 0, 0), 0).sum() == 10
    ellipse = one(twin, 1, 5, 0)
    assert np.any(ellipse, 0).sum() == 20 and np.any(ellipse, 1).sum() == 10
    heart = one(twin, 2, 5, 0)
    assert np.any(heart, 0).sum() == 20
    # the render window never cuts a shape: the area is the analytic one at every
    # orientation (square 400 px, ellipse pi * 10 * 5, heart 3.66198 / 2.27806^2 * 400)
    for shape, area in ((0, 400.0), (1, math.pi * 50), (2, 3.66198 / 2.27806 ** 2 * 400)):
        for k in range(0, 40, 3):
            assert one(twin, shape, 5, k).sum() == pytest.approx(area, rel=0.03), (shape, k)
    s = geometry_summary(twin)
    assert s["posY_increases"] == "down"
    assert s["heart_tip_at_orientation_0"] == "down"
    assert s["rotation_with_orientation"] == "counter-clockwise"
    assert all(s["first_last_orientation_identical"].values())
    # centres at 8 + 48 * pos (clipping at the frame nudges the extreme centroids inward)
    assert 8 <= s["centroid_col_at_posX_min_max"][0] <= 10
    assert 54 <= s["centroid_col_at_posX_min_max"][1] <= 56


def test_heart_constants_match_the_curve():
    # the curve's half width and area centroid, measured on a fine grid
    x = np.linspace(-1.2, 1.2, 2401)[None, :]
    y = np.linspace(-1.05, 1.3, 2351)[:, None]
    inside = (x * x + y * y - 1) ** 3 <= x * x * y ** 3
    half_width = np.abs(np.broadcast_to(x, inside.shape)[inside]).max()
    cy = (np.broadcast_to(y, inside.shape)[inside]).mean()
    assert half_width == pytest.approx(dsprites_render.HEART_HALF_WIDTH, abs=2e-3)
    assert cy == pytest.approx(dsprites_render.HEART_CENTROID_Y, abs=2e-3)


def test_render_sprites_validates_inputs():
    with pytest.raises(DatasetError, match="shape class 3"):
        render_sprites([3], [1.0], [0.0], [0.5], [0.5])
    with pytest.raises(DatasetError, match="pos_x"):
        render_sprites([0], [1.0], [0.0], [1.5], [0.5])
    with pytest.raises(DatasetError, match="scale"):
        render_sprites([0], [0.0], [0.0], [0.5], [0.5])
    with pytest.raises(DatasetError, match="posY = 32"):
        render_factors(np.array([[0, 0, 0, 0, 32]]))
    assert render_sprites([], [], [], [], []).shape == (0, 64, 64)


def test_lazy_batch_is_fast_enough_for_training(twin):
    rng = np.random.default_rng(0)
    twin.sample_batch(64, rng)
    t0 = time.perf_counter()
    for _ in range(10):
        x, _ = twin.sample_batch(64, rng)
    per_batch = (time.perf_counter() - t0) / 10
    assert x.shape == (64, 1, 64, 64)
    assert per_batch < 0.1  # training consumes ~64 images per 100 ms


# ---------------------------------------------------------------------------- the cache


def test_cached_grid_round_trip(tmp_path, monkeypatch):
    ds = load_procedural_dsprites(SMALL, progress=False)
    assert isinstance(ds, DSprites) and len(ds) == 3 * 2 * 3 * 4 * 4
    path = procedural_cache_file(SMALL)
    assert path.is_file() and path.parent == tmp_path / "cache"
    assert "dsprites-procedural-v1-" in path.name
    assert path.stat().st_size == HEADER_BYTES + len(ds) * 512
    lazy = ProceduralDSprites(SMALL)
    idx = np.arange(len(ds))
    np.testing.assert_array_equal(ds.images(idx), lazy.images(idx))
    assert str(path) in ds.source

    def no_render(*a, **k):
        raise AssertionError("a valid cache must not be rendered again")
    monkeypatch.setattr(dsprites_render, "render_grid", no_render)
    again = load_procedural_dsprites(SMALL, progress=False)
    np.testing.assert_array_equal(again.packed, ds.packed)


def test_grid_rendering_is_the_same_in_threads_and_chunks():
    one_thread = render_grid(SMALL, num_workers=1, progress=False)
    np.testing.assert_array_equal(one_thread, render_grid(SMALL, num_workers=2, progress=False,
                                                          chunk=7))


def test_truncated_cache_is_rejected_and_rendered_again(caplog):
    first = load_procedural_dsprites(SMALL, progress=False)
    path = procedural_cache_file(SMALL)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(CacheInvalid, match="truncated"):
        read_array(path, "dsprites-procedural", dsprites_render.cache_params(SMALL))
    with caplog.at_level(logging.WARNING):
        again = load_procedural_dsprites(SMALL, progress=False)
    assert "truncated" in caplog.text
    np.testing.assert_array_equal(again.packed, first.packed)
    assert path.stat().st_size == size  # rewritten whole


def test_corrupt_or_stale_cache_is_rejected(caplog):
    first = load_procedural_dsprites(SMALL, progress=False)
    path = procedural_cache_file(SMALL)
    params = dsprites_render.cache_params(SMALL)
    # a flipped byte fails the CRC
    with open(path, "r+b") as f:
        f.seek(HEADER_BYTES + 300)
        byte = f.read(1)
        f.seek(HEADER_BYTES + 300)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(CacheInvalid, match="CRC"):
        read_array(path, "dsprites-procedural", params)
    with caplog.at_level(logging.WARNING):
        np.testing.assert_array_equal(load_procedural_dsprites(SMALL, progress=False).packed,
                                      first.packed)
    # a header written for other parameters is stale, even under the right name
    other = dsprites_render.cache_params(DSpritesGrid.standard(2, 3, 5))
    with pytest.raises(CacheInvalid, match="other parameters"):
        read_array(path, "dsprites-procedural", other)
    # other parameters never even map to the same file
    assert procedural_cache_file(DSpritesGrid.standard(2, 3, 5)) != path
    # a file with a valid header and CRC but images the renderer does not produce (a changed
    # renderer without a version bump) fails the spot check and is rendered again
    write_array(path, "dsprites-procedural", params, np.zeros_like(first.packed))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = load_procedural_dsprites(SMALL, progress=False, verify=64)
    assert "differs from the current renderer" in caplog.text
    np.testing.assert_array_equal(again.packed, first.packed)


def test_garbage_file_is_not_a_cache(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"hello")
    with pytest.raises(CacheInvalid, match="no valid header"):
        read_array(path, "k", {})
    with pytest.raises(CacheInvalid, match="does not exist"):
        read_array(tmp_path / "missing.bin", "k", {})


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    target = cache_file("toy", {"a": 1}, tmp_path)
    write_array(target, "toy", {"a": 1}, np.arange(10, dtype=np.uint8))
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with AtomicArrayWriter(target, "toy", {"a": 1}, (10,), np.uint8) as w:
            w.write(np.zeros(5, np.uint8))
            raise RuntimeError("killed mid-write")
    with pytest.raises(ValueError, match="wrote 5 of 10 bytes"):
        with AtomicArrayWriter(target, "toy", {"a": 1}, (10,), np.uint8) as w:
            w.write(np.zeros(5, np.uint8))
    assert target.read_bytes() == before  # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == [target.name]  # no temporary files left
    np.testing.assert_array_equal(read_array(target, "toy", {"a": 1}), np.arange(10))
    with pytest.raises(CacheInvalid, match="holds 'toy'"):
        read_array(target, "other", {"a": 1})


def test_uncached_and_lazy_options():
    ds = load_procedural_dsprites(SMALL, cache=False, progress=False)
    assert "not cached" in ds.source and not procedural_cache_file(SMALL).exists()
    assert isinstance(load("dsprites-procedural", lazy=True), ProceduralDSprites)
