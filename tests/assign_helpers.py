"""Reference computations for the assignment tests, independent of the extension.

Everything here is plain numpy/scipy: the objective, brute force over all labellings, the
LP optimum of the flow model, an O(nS) price certificate, and the instance families.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest

import cascadevae_ext as ce

METHODS = ("ssp", "warm", "lemon", "auto", "device_core")
HAVE_LEMON = bool(ce.build_info()["lemon"])
# The largest |u| and lam * n that cascadevae_ext accepts (README, "cascadevae_ext API").
MAX_MAGNITUDE = 2.0**512
# The "vast" and "tiny" families: family A scaled by these powers of two (exact on dyadic data).
VAST_SCALE = 2.0**500
TINY_SCALE = 2.0**-1000
# The tiny problems solved by brute force over all S^n labellings (CPU and GPU tests).
TINY_SHAPES = [(n, S) for n in range(1, 8) for S in range(1, 4)]
TINY_LAMS = (0.0, 2.0**-3, 2.0**-1, 2.0)


def require_method(method: str) -> None:
    """Skip a test for method="lemon" when the extension was built without LEMON."""
    if method == "lemon" and not HAVE_LEMON:
        pytest.skip("cascadevae_ext was built without LEMON (apt-get install liblemon-dev)")


def require_lemon() -> None:
    require_method("lemon")


# ---- the objective and exact optima --------------------------------------------------------

def counts(labels, S: int) -> np.ndarray:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=S)


def objective(u, lam: float, labels) -> float:
    """sum_i u[i, d_i] - lam sum_k n_k (n_k - 1), with a correctly rounded sum (exact on dyadic data)."""
    u = np.asarray(u, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, S = u.shape
    gain = math.fsum(u[np.arange(n), labels].tolist())
    c = counts(labels, S)
    return gain - lam * float(np.sum(c * (c - 1)))


@functools.lru_cache(maxsize=None)
def all_labellings(n: int, S: int) -> np.ndarray:
    return np.array(list(itertools.product(range(S), repeat=n)), dtype=np.int64).reshape(-1, n)


def brute_force(u, lam: float) -> float:
    """Optimal objective by enumerating all S^n labellings (exact on dyadic data)."""
    u = np.asarray(u, dtype=np.float64)
    n, S = u.shape
    labs = all_labellings(n, S)
    gain = u[np.arange(n), labs].sum(axis=1)
    c = (labs[:, :, None] == np.arange(S)).sum(axis=1)
    return float(np.max(gain - lam * (c * (c - 1)).sum(axis=1)))


def lp_optimum(u, lam: float) -> float:
    """Optimum of the flow LP (source -> item -> class -> sink with n unit arcs per class).

    The constraint matrix is a network matrix, so the LP optimum is the integer optimum.
    Variables: x_ik (item i in class k), then y_kt (the t-th unit arc of class k, cost mu t).
    """
    import scipy.sparse as sparse
    from scipy.optimize import linprog

    u = np.asarray(u, dtype=np.float64)
    n, S = u.shape
    # HiGHS treats costs past 1e20 as infinite and tiny ones as 0: solve at a moderate scale
    # (a power of two, so exact on dyadic data) and scale the optimum back.
    top = float(np.max(np.abs(u), initial=0.0)) + lam * n
    if top > 2.0**30 or 0.0 < top < 2.0**-30:
        scale = 2.0 ** -math.floor(math.log2(top))
        return lp_optimum(u * scale, lam * scale) / scale
    mu = 2.0 * lam
    nx, ny = n * S, S * n
    x = np.arange(nx)
    y = nx + np.arange(ny)
    rows = np.concatenate([x // S, n + x % S, n + np.repeat(np.arange(S), n)])  # item rows, class rows
    cols = np.concatenate([x, x, y])
    vals = np.concatenate([np.ones(nx), np.ones(nx), -np.ones(ny)])
    a_eq = sparse.csr_matrix((vals, (rows, cols)), shape=(n + S, nx + ny))
    b_eq = np.concatenate([np.ones(n), np.zeros(S)])
    cost = np.concatenate([-u.ravel(), mu * np.tile(np.arange(n, dtype=np.float64), S)])
    res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=(0, 1), method="highs")
    assert res.status == 0, res.message
    return -float(res.fun)


def prices_certify(u, lam: float, labels, prices, atol: float = 1e-9) -> bool:
    """Python version of the price certificate: (i) every item sits in a class minimising
    -u[i, l] + prices[l]; (ii) 2 lam (n_k - 1) <= prices[k] <= 2 lam n_k (lower bound if n_k >= 1)."""
    u = np.asarray(u, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    prices = np.asarray(prices, dtype=np.float64)
    n, S = u.shape
    mu = 2.0 * lam
    reduced = -u + prices[None, :]
    ok_items = n == 0 or bool(np.all(reduced[np.arange(n), labels] <= reduced.min(axis=1) + atol))
    c = counts(labels, S)
    ok_upper = bool(np.all(prices <= mu * c + atol))
    ok_lower = bool(np.all((c == 0) | (prices >= mu * (c - 1) - atol)))
    return ok_items and ok_upper and ok_lower


def check_labels(labels, shape, S: int) -> None:
    """Labels are an int64 array of the given shape with every value in [0, S)."""
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == np.int64
    assert labels.shape == tuple(shape)
    if labels.size:
        assert labels.min() >= 0 and labels.max() < S


# ---- instances ---------------------------------------------------------------------------------

def tie_heavy(rng, n: int, S: int) -> np.ndarray:
    """Dyadic scores from a handful of levels (many exact ties), sometimes with equal rows."""
    kind = rng.integers(3)
    if kind == 0:
        return rng.integers(0, 3, size=(n, S)) / 4.0
    if kind == 1:
        return rng.integers(-4, 5, size=(n, S)) / 2.0
    row = rng.integers(-2, 3, size=(1, S)) / 8.0
    return np.repeat(row, n, axis=0) + rng.integers(0, 2, size=(n, 1)) / 8.0


def pow2_near(x: float) -> float:
    return 2.0 ** round(math.log2(x))


def family_a(rng, n: int, S: int, dyadic: bool = True):
    """u uniform [0, 1), lam = S / (2n): strong penalty. Dyadic: u on a 2^-20 grid, lam a power of 2."""
    u = rng.random((n, S))
    if dyadic:
        return np.floor(u * 2**20) / 2**20, pow2_near(S / (2 * n))
    return u, S / (2 * n)


def family_b(rng, n: int, S: int, dyadic: bool = True):
    """CascadeVAE-like: u = -(100 + 10 N(0, 1)) in float32, lam = 2^-11: weak penalty."""
    u = -(100 + 10 * rng.standard_normal((n, S)))
    if dyadic:
        u = np.round(u * 2**12) / 2**12  # |u| < 2^8: 20 significant bits, exact in float32
    return u.astype(np.float32), 2.0**-11


def make_instance(family: str, n: int, S: int, seed: int, dyadic: bool = True):
    """(u, lam) of a named family: "A", "B", "zero" (B's scores, lam = 0), "huge" (A's scores,
    lam = 2^12: forces classes of equal size), "vast" and "tiny" (A's scores and lam times
    2^500 and 2^-1000: the ends of the range the solvers accept, |u| < 2^512 and values far
    below 1, where an absolute constant such as LEMON's big-M "+ 1" swamps the scores)."""
    rng = np.random.default_rng(seed)
    if family == "A":
        return family_a(rng, n, S, dyadic)
    if family == "B":
        return family_b(rng, n, S, dyadic)
    if family == "zero":
        return family_b(rng, n, S, dyadic)[0], 0.0
    if family == "huge":
        return family_a(rng, n, S, dyadic)[0], 2.0**12
    if family in ("vast", "tiny"):
        scale = VAST_SCALE if family == "vast" else TINY_SCALE
        u, lam = family_a(rng, n, S, dyadic)
        return u * scale, lam * scale
    raise ValueError(family)


# ---- running a solve that might not return ---------------------------------------------------

def run_isolated(code: str, timeout: float) -> str:
    """Runs ``code`` in a fresh interpreter and returns its stdout; fails the test (instead of
    hanging the suite) when it takes longer than ``timeout`` seconds or exits non-zero. For
    solves that a regression could turn into an endless loop inside the extension, which no
    thread or signal in this process could interrupt."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        pytest.fail(f"did not finish within {timeout:g} s; last output:\n{out[-2000:]}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout
