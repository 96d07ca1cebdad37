"""The real-dSprites loader on small npz files with the real key structure (fewer images),
and every way such a file can be wrong."""
import logging
import zipfile

import numpy as np
import pytest

from cascadevae.data import (DSPRITES_FILENAME, DatasetError, DSprites, DSpritesGrid,
                             ProceduralDSprites, load, load_dsprites_npz, render_factors)
from cascadevae.data import dsprites as dsprites_module

SIZES = (1, 3, 2, 3, 4, 4)  # color, shape, scale, orientation, posX, posY: 288 images
GRID = DSpritesGrid.standard(num_scales=2, num_orientations=3, num_positions=4)


class _Trap:
    """Unpickling this fails the test: proves the loader never unpickles ``metadata``."""

    def __reduce__(self):
        return (pytest.fail, ("the loader unpickled 'metadata'",))


def fake_arrays():
    n = int(np.prod(SIZES))
    classes = np.stack(np.unravel_index(np.arange(n), SIZES), axis=1).astype(np.int64)
    table = [np.array([1.0]), np.array([1.0, 2.0, 3.0]), np.asarray(GRID.scales),
             np.asarray(GRID.orientations), np.asarray(GRID.positions_x),
             np.asarray(GRID.positions_y)]
    values = np.stack([table[k][classes[:, k]] for k in range(6)], axis=1)
    imgs = render_factors(classes[:, 1:], GRID).astype(np.uint8)
    metadata = np.array({"latents_sizes": np.array(SIZES), "trap": _Trap()}, dtype=object)
    return {"imgs": imgs, "latents_values": values, "latents_classes": classes,
            "metadata": metadata}


def write_npz(path, **overrides):
    arrays = fake_arrays()
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez_compressed(path, **arrays)
    return path


@pytest.fixture
def npz(tmp_path):
    return write_npz(tmp_path / DSPRITES_FILENAME)


def test_loads_small_file_bit_packed(npz, tmp_path):
    ds = load_dsprites_npz(npz, strict_grid=False, progress=False)
    assert isinstance(ds, DSprites) and len(ds) == 288
    assert ds.factor_sizes == (3, 2, 3, 4, 4)
    assert ds.packed.dtype == np.uint8 and ds.packed.shape == (288, 512)
    expected = fake_arrays()["imgs"]
    idx = np.arange(288)
    np.testing.assert_array_equal(ds.images(idx)[:, 0], expected.astype(np.float32))
    assert ds.grid == GRID
    np.testing.assert_array_equal(ds.labels, np.repeat([0, 1, 2], 96))
    assert str(npz) in ds.source and ds.name == "dsprites-subgrid"
    f = ds.factors_from_index(idx)
    np.testing.assert_allclose(ds.values_from_factors(f), fake_arrays()["latents_values"][:, 1:])
    # a second load reads the packed cache instead of decompressing again
    assert list((tmp_path / "cache").glob("dsprites-real-v1-*.bin"))
    again = load_dsprites_npz(npz, strict_grid=False, progress=False)
    np.testing.assert_array_equal(again.packed, ds.packed)


def test_cache_is_used_on_second_load(npz, monkeypatch):
    load_dsprites_npz(npz, strict_grid=False, progress=False)

    def no_stream(*a, **k):
        raise AssertionError("must come from the cache")
    monkeypatch.setattr(dsprites_module, "_stream_packed_images", no_stream)
    assert len(load_dsprites_npz(npz, strict_grid=False, progress=False)) == 288
    # and without the cache it does stream
    with pytest.raises(AssertionError, match="cache"):
        load_dsprites_npz(npz, strict_grid=False, progress=False, cache=False)


def test_full_grid_is_required_by_default(npz):
    with pytest.raises(DatasetError, match=r"expected the full dSprites grid \(1, 3, 6, 40, 32, 32\)"):
        load_dsprites_npz(npz, progress=False)


def test_registry_prefers_the_real_file(npz, tmp_path, caplog):
    ds = load("dsprites", data_dir=tmp_path, strict_grid=False, progress=False)
    assert isinstance(ds, DSprites) and "real file" in ds.source
    ds = load("dsprites-real", data_dir=tmp_path, strict_grid=False, progress=False)
    assert "real file" in ds.source
    # also found in a dsprites/ sub-folder, and through the environment variable
    sub = tmp_path / "other" / "dsprites"
    sub.mkdir(parents=True)
    npz.rename(sub / DSPRITES_FILENAME)
    ds = load("dsprites", data_dir=tmp_path / "other", strict_grid=False, progress=False)
    assert "real file" in ds.source
    # a data directory without the file falls back to the twin, with a warning
    with caplog.at_level(logging.WARNING):
        ds = load("dsprites", data_dir=tmp_path / "empty", lazy=True)
    assert isinstance(ds, ProceduralDSprites) and DSPRITES_FILENAME in caplog.text


def test_missing_file_message(tmp_path):
    with pytest.raises(DatasetError) as info:
        load("dsprites-real", data_dir=tmp_path)
    msg = str(info.value)
    for part in (DSPRITES_FILENAME, "github.com/deepmind/dsprites-dataset", "--data-dir",
                 "CASCADEVAE_DATA", str(tmp_path), "dsprites-procedural"):
        assert part in msg, part
    with pytest.raises(DatasetError, match="no data directory was given"):
        load("dsprites-real")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dsprites_npz(tmp_path / "nope.npz")


@pytest.mark.parametrize("drop", ["imgs", "latents_classes", "latents_values", "metadata"])
def test_wrong_keys(tmp_path, drop):
    path = write_npz(tmp_path / "x.npz", **{drop: None})
    with pytest.raises(DatasetError, match=rf"missing \['{drop}'\]"):
        load_dsprites_npz(path, strict_grid=False, progress=False)


def test_wrong_image_dtype_shape_and_values(tmp_path):
    imgs = fake_arrays()["imgs"]
    cases = {
        "dtype float64": imgs.astype(np.float64),
        r"shape \(288, 32, 32\)": imgs[:, :32, :32],
        "values up to 255": imgs * 255,
    }
    for message, bad in cases.items():
        path = write_npz(tmp_path / "bad.npz", imgs=bad)
        with pytest.raises(DatasetError, match=message):
            load_dsprites_npz(path, strict_grid=False, progress=False, cache=False)


def test_count_mismatch_and_order(tmp_path):
    a = fake_arrays()
    path = write_npz(tmp_path / "short.npz", imgs=a["imgs"][:-1])
    with pytest.raises(DatasetError, match="287 images but 288 rows"):
        load_dsprites_npz(path, strict_grid=False, progress=False)
    path = write_npz(tmp_path / "wide.npz", latents_classes=a["latents_classes"][:, :5])
    with pytest.raises(DatasetError, match="expected \\(N, 6\\) integers"):
        load_dsprites_npz(path, strict_grid=False, progress=False)
    perm = np.random.default_rng(0).permutation(288)
    path = write_npz(tmp_path / "shuffled.npz", imgs=a["imgs"][perm],
                     latents_classes=a["latents_classes"][perm],
                     latents_values=a["latents_values"][perm])
    with pytest.raises(DatasetError, match="C order"):
        load_dsprites_npz(path, strict_grid=False, progress=False)
    values = a["latents_values"].copy()
    values[5, 2] = 0.77
    path = write_npz(tmp_path / "values.npz", latents_values=values)
    with pytest.raises(DatasetError, match="more than one value per class"):
        load_dsprites_npz(path, strict_grid=False, progress=False)


def test_not_a_zip_and_truncated(tmp_path, npz):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all" * 100)
    with pytest.raises(DatasetError, match="not a valid .npz"):
        load_dsprites_npz(junk, progress=False)
    data = npz.read_bytes()
    for cut in (len(data) // 2, len(data) - 30):
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(data[:cut])
        with pytest.raises(DatasetError, match="dSprites file"):
            load_dsprites_npz(truncated, strict_grid=False, progress=False, cache=False)
    # a flipped byte inside the compressed image data fails the zip CRC or zlib
    with zipfile.ZipFile(npz) as zf:
        info = zf.getinfo("imgs.npy")
    corrupt = bytearray(data)
    corrupt[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 0xFF
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(corrupt))
    with pytest.raises(DatasetError, match="imgs"):
        load_dsprites_npz(bad, strict_grid=False, progress=False, cache=False)
