"""Chairs as an image folder: recursive PNG/JPEG discovery, grayscale 64 x 64 in [0, 1],
transparency over white, the cache, and the error paths."""
import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

from cascadevae.data import DatasetError, load, load_image_folder  # noqa: E402
from cascadevae.data import chairs as chairs_module  # noqa: E402


def make_chairs(root, n_models=3, views=2):
    """rendered_chairs/<model>/renders/image_XXX.png, white background, dark chair."""
    folder = root / "rendered_chairs"
    for m in range(n_models):
        renders = folder / f"model_{m:02d}" / "renders"
        renders.mkdir(parents=True)
        for v in range(views):
            img = np.full((120, 120, 3), 255, np.uint8)
            img[30 + 10 * v:90, 40:80 + 10 * m] = (40 * m, 90, 200)
            Image.fromarray(img).save(renders / f"image_{v:03d}.png")
    return folder


def test_loads_folder_recursively(tmp_path):
    folder = make_chairs(tmp_path)
    extra = folder / "extra"
    extra.mkdir()
    Image.fromarray(np.zeros((50, 70), np.uint8)).save(extra / "b.JPG")
    (folder / "notes.txt").write_text("not an image")
    (folder / "all_chair_names.mat").write_bytes(b"\0" * 10)
    ds = load("chairs", data_dir=tmp_path)
    assert len(ds) == 7 and ds.image_shape == (1, 64, 64) and ds.labels is None
    x = ds.images(np.arange(7))
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    # sorted by relative path: extra/b.JPG first, and a black image stays black
    assert x[0].max() < 0.05
    assert x[1, 0, 0, 0] == pytest.approx(1.0)  # white background corner
    assert x[1].min() < 0.6  # the dark chair
    assert "7 images" in ds.source
    with pytest.raises(DatasetError, match="unknown split 'test'"):
        load("chairs", data_dir=tmp_path, split="test")


def test_transparency_over_white_and_grayscale(tmp_path):
    folder = tmp_path / "chairs"
    folder.mkdir()
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 16:48] = (255, 0, 0, 255)  # an opaque red square on a transparent field
    Image.fromarray(rgba, "RGBA").save(folder / "a.png")
    ds = load_image_folder(folder, cache=False, progress=False)
    img = ds.raw[0]
    assert img[0, 0] == 255  # transparent -> white, not black
    assert img[32, 32] == round(0.299 * 255)  # ITU-R 601 luma of pure red


def test_cache_round_trip_and_invalidation(tmp_path, monkeypatch):
    folder = make_chairs(tmp_path)
    first = load("chairs", data_dir=tmp_path, progress=False)
    assert list((tmp_path / "cache").glob("image-folder-v1-*.bin"))

    def no_decode(*a, **k):
        raise AssertionError("must come from the cache")
    monkeypatch.setattr(chairs_module, "load_image", no_decode)
    np.testing.assert_array_equal(load("chairs", data_dir=tmp_path).raw, first.raw)
    # adding a file changes the key, so the cache is not reused
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(folder / "new.png")
    with pytest.raises(AssertionError, match="cache"):
        load("chairs", data_dir=tmp_path)


def test_errors(tmp_path):
    with pytest.raises(DatasetError) as info:
        load("chairs", data_dir=tmp_path)
    msg = str(info.value)
    for part in ("rendered_chairs", "seeing3Dchairs", "Aubry", "--data-dir", "CASCADEVAE_DATA"):
        assert part in msg, part
    with pytest.raises(DatasetError, match="no data directory was given"):
        load("chairs")
    empty = tmp_path / "chairs"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no .png/.jpg/.jpeg images"):
        load("chairs", data_dir=tmp_path)
    (empty / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(DatasetError, match="broken.png"):
        load("chairs", data_dir=tmp_path, cache=False, progress=False)
    with pytest.raises(DatasetError, match="does not exist"):
        load_image_folder(tmp_path / "nowhere")
