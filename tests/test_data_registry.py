"""The registry and data-directory resolution: argument > CASCADEVAE_DATA > none, names and
aliases, and which dSprites is used."""
import argparse

import numpy as np
import pytest

from cascadevae.data import (DatasetError, ImageDataset, ProceduralDSprites,
                             add_data_dir_argument, available, cache_dir, load,
                             resolve_data_dir)


def test_data_dir_resolution_order(tmp_path, monkeypatch):
    assert resolve_data_dir() is None
    monkeypatch.setenv("CASCADEVAE_DATA", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"  # the argument wins
    monkeypatch.setenv("CASCADEVAE_DATA", "")
    assert resolve_data_dir() is None
    parser = add_data_dir_argument(argparse.ArgumentParser())
    assert parser.parse_args(["--data-dir", "/x"]).data_dir == "/x"
    assert parser.parse_args([]).data_dir is None


def test_cache_dir_resolution(tmp_path, monkeypatch):
    assert cache_dir() == tmp_path / "cache" and (tmp_path / "cache").is_dir()
    assert cache_dir(tmp_path / "c2") == tmp_path / "c2"
    monkeypatch.delenv("CASCADEVAE_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "cascadevae"


def test_names_and_aliases():
    names = available()
    for name in ("dsprites", "dsprites-procedural", "dsprites-real", "mnist", "fashion-mnist",
                 "mnist5k", "chairs"):
        assert name in names
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'.*dsprites"):
        load("cifar")
    assert isinstance(load("DSprites_Procedural", lazy=True), ProceduralDSprites)


def test_dsprites_defaults_to_the_twin_without_a_data_dir():
    ds = load("dsprites", lazy=True)
    assert isinstance(ds, ProceduralDSprites) and isinstance(ds, ImageDataset)
    assert "procedural" in ds.source
    x, idx = ds.sample_batch(4, np.random.default_rng(0))
    assert x.shape == (4, 1, 64, 64)
    with pytest.raises(DatasetError, match="unknown split 'test'"):
        load("dsprites", split="test", lazy=True)
    with pytest.raises(DatasetError, match=r"unknown options \['lazzy'\]"):
        load("dsprites", lazzy=True)


def test_mnist5k_takes_no_options():
    with pytest.raises(DatasetError, match="no options"):
        load("mnist5k", holdout=3)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_sets_take_holdout_and_test_from(tmp_path, name):
    import struct

    def write_idx(path, array):
        array = np.asarray(array, dtype=np.uint8)
        head = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
        path.write_bytes(head + array.tobytes())

    for part, n in (("train", 30), ("t10k", 5)):  # the files directly in the data directory
        write_idx(tmp_path / f"{part}-images-idx3-ubyte", np.zeros((n, 28, 28)))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte", np.arange(n) % 10)
    assert "holdout" in available()[name] or "same options" in available()[name]
    ds = load(name, data_dir=tmp_path, split="test", holdout=0.2)
    assert (len(ds), ds.holdout, ds.test_from, ds.split) == (6, 6, "holdout", "test")
    assert len(load(name, data_dir=tmp_path, split="test", test_from="t10k")) == 5
    with pytest.raises(DatasetError, match=r"unknown options \['hold_out'\]; it takes \['holdout', 'test_from'\]"):
        load(name, data_dir=tmp_path, hold_out=3)


def test_command_line(tmp_path, capsys):
    from cascadevae.data.__main__ import main

    assert main(["list"]) == 0
    assert "mnist5k" in capsys.readouterr().out
    assert main(["geometry", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '"posY_increases": "down"' in out and "dsprites_ndarray" in out
    pytest.importorskip("matplotlib")
    assert main(["figure", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
