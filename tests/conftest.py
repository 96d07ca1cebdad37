"""Fixtures and helpers that several test files share. pytest loads this file itself; test files
import the plain helpers with ``from conftest import ...`` (tests/ is on sys.path, as for
assign_helpers.py and model_helpers.py).

* every test runs with its own dataset cache and without the user's data directory;
* random binary images as an in-memory dataset (the stand-in data of the training tests);
* the float64 reference of the Bernoulli log-likelihood kernels and the magnitude their
  tolerances scale with.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Each test writes datasets it builds to a cache of its own (CASCADEVAE_CACHE under its
    tmp_path) and sees no data directory from the environment (CASCADEVAE_DATA unset): no test
    reads or writes the user's cache or data."""
    monkeypatch.setenv("CASCADEVAE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CASCADEVAE_DATA", raising=False)


def random_binary_images(n, size, seed=0):
    """A stand-in dataset: n random binary images (the package's in-memory image dataset)."""
    from cascadevae.data import ArrayImageDataset
    pixels = (np.random.default_rng(seed).random((n, size, size)) < 0.2).astype(np.uint8) * 255
    return ArrayImageDataset(pixels, name="random", source="random binary images")


def as_float64(a):
    """The values of a numpy array or tensor (any strides) as a float64 CPU tensor."""
    if torch.is_tensor(a):
        return a.detach().cpu().double()
    return torch.from_numpy(np.array(a, dtype=np.float64))


def loglik_reference64(logits, x):
    """sum_p x l - softplus(l) of logits (B, S, P) and targets (B, P), computed by torch in
    float64 from the same values: -binary_cross_entropy_with_logits summed over pixels. numpy
    (B, S)."""
    l64, x64 = as_float64(logits), as_float64(x)
    target = x64[:, None, :].expand_as(l64)
    return -F.binary_cross_entropy_with_logits(l64, target, reduction="none").sum(-1).numpy()


def loglik_magnitude64(logits, x):
    """sum_p |x l| + softplus(l) in float64, numpy (B, S): the size of what a row adds up,
    which a kernel's rounding error scales with (the reference itself cancels x l against
    softplus(l))."""
    l64, x64 = as_float64(logits), as_float64(x)
    return ((x64[:, None, :] * l64).abs() + F.softplus(l64)).sum(-1).numpy()
