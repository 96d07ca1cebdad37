"""cascadevae_ext.assign: exactness against brute force, LEMON and the LP optimum; special
shapes; batches; memory layouts and torch inputs; input validation.

Objectives are compared, not labels: ties are common. Dyadic data (integers over a power of
two, lam a power of two) makes every objective exact in double, so those comparisons use ==.
"""
import functools

import numpy as np
import pytest

import cascadevae_ext as ce
from assign_helpers import (
    HAVE_LEMON,
    METHODS,
    brute_force,
    check_labels,
    counts,
    lp_optimum,
    make_instance,
    objective,
    prices_certify,
    require_lemon,
    require_method,
    tie_heavy,
)

CONCRETE_METHODS = ("ssp", "warm", "lemon", "device_core")


def solve_objective(u, lam, method, **kw):
    labels = ce.assign(u, lam, method, **kw)
    check_labels(labels, (np.shape(u)[0],), np.shape(u)[1])
    return objective(u, lam, labels)


# ---- tiny problems: brute force over all S^n labellings -----------------------------------------

TINY_SHAPES = [(n, S) for n in range(1, 8) for S in range(1, 4)]
TINY_LAMS = (0.0, 2.0**-3, 2.0**-1, 2.0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,S", TINY_SHAPES)
def test_tiny_problems_match_brute_force(n, S, method):
    require_method(method)
    rng = np.random.default_rng(100 * n + S)
    for lam in TINY_LAMS:
        for _ in range(4):
            u = tie_heavy(rng, n, S)
            got = solve_objective(u, lam, method)
            assert got == brute_force(u, lam), f"lam={lam}\nu={u!r}"


@pytest.mark.parametrize("method", METHODS)
def test_two_classes_match_brute_force(method):
    require_method(method)
    rng = np.random.default_rng(2)
    for n in range(1, 13):
        for lam in (0.0, 2.0**-4, 2.0**-2, 1.0):
            u = tie_heavy(rng, n, 2)
            assert solve_objective(u, lam, method) == brute_force(u, lam), f"lam={lam}\nu={u!r}"


# ---- random instances of both families: LEMON and the LP optimum -----------------------------

FAMILY_SHAPES = [(64, 3), (64, 10), (257, 2), (300, 7), (1024, 10), (1024, 32)]
FAMILIES = ("A", "B", "zero", "huge")


@functools.lru_cache(maxsize=None)
def reference(family, n, S, dyadic):
    """(u, lam, LP optimum, LEMON's objective or None)."""
    u, lam = make_instance(family, n, S, seed=7 * n + S + 1000 * FAMILIES.index(family), dyadic=dyadic)
    lemon = objective(u, lam, ce.assign(u, lam, "lemon")) if HAVE_LEMON else None
    return u, lam, lp_optimum(u, lam), lemon


def assert_close(got, want, rel=1e-9):
    assert abs(got - want) <= rel * max(1.0, abs(want)), (got, want)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,S", FAMILY_SHAPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_dyadic_families_match_lemon_and_lp(family, n, S, method):
    require_method(method)
    pytest.importorskip("scipy")
    u, lam, lp, lemon = reference(family, n, S, True)
    got = solve_objective(u, lam, method)
    assert_close(got, lp)
    if lemon is not None:
        assert got == lemon  # exact: dyadic data


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,S", [(64, 10), (1024, 10), (1024, 32)])
@pytest.mark.parametrize("family", ("A", "B"))
def test_float_families_match_lemon_and_lp(family, n, S, method):
    require_method(method)
    pytest.importorskip("scipy")
    u, lam, lp, lemon = reference(family, n, S, False)
    got = solve_objective(u, lam, method)
    assert_close(got, lp)
    if lemon is not None:
        assert_close(got, lemon)


@pytest.mark.parametrize("family", ("A", "B"))
def test_auto_on_larger_problems_matches_lemon(family):
    require_lemon()
    for n, S in [(4096, 10), (2048, 64)]:
        u, lam = make_instance(family, n, S, seed=n + S)
        assert solve_objective(u, lam, "auto") == solve_objective(u, lam, "lemon")


@pytest.mark.parametrize("method", METHODS)
def test_two_classes_large_n_matches_lemon(method):
    require_method(method)
    require_lemon()
    for family in ("A", "B", "zero"):
        for n in (1000, 4097):
            u, lam = make_instance(family, n, 2, seed=n)
            assert solve_objective(u, lam, method) == solve_objective(u, lam, "lemon")


# ---- special cases ---------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [1, 2, 17, 300])
def test_single_class_returns_zeros(method, n):
    require_method(method)
    u = np.random.default_rng(n).standard_normal((n, 1))
    labels, prices = ce.assign(u, 0.25, method, return_prices=True)
    check_labels(labels, (n,), 1)
    assert np.all(labels == 0)
    assert prices.shape == (1,)
    assert prices_certify(u, 0.25, labels, prices)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_items(method, dtype):
    require_method(method)
    labels = ce.assign(np.zeros((0, 4), dtype), 0.5, method)
    check_labels(labels, (0,), 4)
    labels, prices = ce.assign(np.zeros((0, 4), dtype), 0.5, method, return_prices=True)
    check_labels(labels, (0,), 4)
    assert prices.shape == (4,) and np.all(prices == 0)
    labels = ce.assign(np.zeros((3, 0, 4), dtype), 0.5, method)
    check_labels(labels, (3, 0), 4)
    labels, prices = ce.assign(np.zeros((3, 0, 4), dtype), 0.5, method, return_prices=True)
    assert labels.shape == (3, 0) and prices.shape == (3, 4) and np.all(prices == 0)


@pytest.mark.parametrize("method", METHODS)
def test_empty_batch(method):
    require_method(method)
    labels = ce.assign(np.zeros((0, 5, 3)), 0.5, method)
    check_labels(labels, (0, 5), 3)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,S", [(7, 3), (100, 7), (1000, 10), (999, 64)])
def test_huge_penalty_balances_classes(method, n, S):
    require_method(method)
    u = np.random.default_rng(n).random((n, S))
    labels = ce.assign(u, 1e6, method)
    c = counts(labels, S)
    assert c.max() - c.min() <= 1, c


@pytest.mark.parametrize("method", METHODS)
def test_constant_scores_balance_exactly(method):
    require_method(method)
    n, S, lam = 1000, 7, 2.0**-3
    u = np.full((n, S), 0.5)
    c = counts(ce.assign(u, lam, method), S)
    assert c.max() - c.min() <= 1 and c.sum() == n


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n,S", [(5, 3), (300, 7), (2000, 50)])
def test_zero_penalty_takes_each_argmax(method, n, S):
    require_method(method)
    rng = np.random.default_rng(n)
    for u in (rng.standard_normal((n, S)), rng.integers(0, 3, (n, S)) / 2.0):  # the second with ties
        labels = ce.assign(u, 0.0, method)
        np.testing.assert_array_equal(u[np.arange(n), labels], u.max(axis=1))


# ---- batches -----------------------------------------------------------------------------------------

def dyadic_batch(G, n, S, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([tie_heavy(rng, n, S) for _ in range(G)]).astype(dtype)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("num_threads", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_equals_per_problem(method, num_threads, dtype):
    require_method(method)
    G, n, S, lam = 6, 40, 5, 2.0**-3
    u = dyadic_batch(G, n, S, dtype)
    labels, prices = ce.assign(u, lam, method, return_prices=True, num_threads=num_threads)
    check_labels(labels, (G, n), S)
    assert prices.shape == (G, S) and prices.dtype == np.float64
    for g in range(G):
        assert objective(u[g], lam, labels[g]) == solve_objective(u[g], lam, method)
        assert prices_certify(u[g], lam, labels[g], prices[g])
    # labels only, same answer
    labels_only = ce.assign(u, lam, method, num_threads=num_threads)
    for g in range(G):
        assert objective(u[g], lam, labels_only[g]) == objective(u[g], lam, labels[g])


@pytest.mark.parametrize("method", METHODS)
def test_batch_of_mixed_difficulty(method):
    """Problems of very different cost in one batch (dynamic scheduling over threads)."""
    require_method(method)
    G, n, S = 8, 256, 8
    rng = np.random.default_rng(3)
    u = np.stack([np.floor(rng.random((n, S)) * 2**10) / 2**10 * (g + 1) for g in range(G)])
    lam = 2.0**-6
    labels = ce.assign(u, lam, method, num_threads=2)
    for g in range(G):
        assert objective(u[g], lam, labels[g]) == solve_objective(u[g], lam, method)


# ---- dtypes, layouts, torch ---------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_float32_equals_float64_on_dyadic_data(method):
    require_method(method)
    for family, n, S in [("A", 300, 7), ("B", 300, 7), ("A", 64, 2)]:
        u, lam = make_instance(family, n, S, seed=11)
        u64 = u.astype(np.float64)
        u32 = u.astype(np.float32)
        assert np.array_equal(u32.astype(np.float64), u64)
        assert solve_objective(u32, lam, method) == solve_objective(u64, lam, method)


def _strided(u):
    big = np.zeros((2 * u.shape[0], 3 * u.shape[1]), u.dtype)
    big[::2, ::3] = u
    return big[::2, ::3]


LAYOUTS = {
    "fortran": np.asfortranarray,
    "strided": _strided,
    "negative-row-stride": lambda u: np.ascontiguousarray(u[::-1])[::-1],
    "negative-column-stride": lambda u: np.ascontiguousarray(u[:, ::-1])[:, ::-1],
    "readonly": lambda u: np.frombuffer(u.tobytes(), u.dtype).reshape(u.shape),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layouts_equal_contiguous(method, layout, dtype):
    require_method(method)
    rng = np.random.default_rng(5)
    u = tie_heavy(rng, 60, 6).astype(dtype)
    lam = 2.0**-4
    view = LAYOUTS[layout](u)
    assert np.array_equal(view, u)
    if layout != "readonly":
        assert not view.flags.c_contiguous
    labels = ce.assign(view, lam, method)
    check_labels(labels, (60,), 6)
    assert objective(u, lam, labels) == solve_objective(u, lam, method)
    assert np.array_equal(view, u)  # input untouched


BATCH_LAYOUTS = {
    "transposed": lambda b: np.ascontiguousarray(b.transpose(1, 0, 2)).transpose(1, 0, 2),
    "reversed-batch": lambda b: np.ascontiguousarray(b[::-1])[::-1],
    "strided-items": lambda b: np.repeat(b, 2, axis=1)[:, ::2],
    "fortran": np.asfortranarray,
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("layout", sorted(BATCH_LAYOUTS))
def test_batch_layouts_equal_contiguous(method, layout):
    require_method(method)
    u = dyadic_batch(4, 30, 4, np.float64, seed=9)
    lam = 2.0**-3
    view = BATCH_LAYOUTS[layout](u)
    assert np.array_equal(view, u) and not view.flags.c_contiguous
    labels = ce.assign(view, lam, method, num_threads=2)
    check_labels(labels, (4, 30), 4)
    want = ce.assign(u, lam, method)
    for g in range(4):
        assert objective(u[g], lam, labels[g]) == objective(u[g], lam, want[g])


@pytest.mark.parametrize("method", METHODS)
def test_torch_cpu_tensors(method):
    require_method(method)
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    u = tie_heavy(rng, 50, 4)
    lam = 2.0**-3
    want = solve_objective(u, lam, method)
    tensors = {
        "float64": torch.from_numpy(u.copy()),
        "float32": torch.from_numpy(u.astype(np.float32)),
        "requires_grad": torch.tensor(u, requires_grad=True),
        "non-contiguous": torch.from_numpy(np.ascontiguousarray(u.T)).T,
        "column-slice": torch.from_numpy(np.repeat(u, 2, axis=1))[:, ::2],
    }
    for name, t in tensors.items():
        assert np.array_equal(t.detach().numpy(), u), name
        labels = ce.assign(t, lam, method)
        check_labels(labels, (50,), 4)
        assert objective(u, lam, labels) == want, name
    assert tensors["requires_grad"].grad is None
    # a batch, and lam as a 0-d tensor
    b = torch.from_numpy(dyadic_batch(3, 20, 4, np.float32))
    labels = ce.assign(b, torch.tensor(lam), method)
    check_labels(labels, (3, 20), 4)
    for g in range(3):
        assert objective(b[g].numpy(), lam, labels[g]) == solve_objective(b[g].numpy(), lam, method)


# ---- outputs and resolve_method -----------------------------------------------------------------

def test_output_types():
    u = np.random.default_rng(0).random((20, 3))
    labels = ce.assign(u, 0.1)
    assert isinstance(labels, np.ndarray) and labels.dtype == np.int64 and labels.shape == (20,)
    assert labels.flags.c_contiguous and labels.flags.writeable
    out = ce.assign(u, 0.1, return_prices=True)
    assert isinstance(out, tuple) and len(out) == 2
    assert out[1].dtype == np.float64 and out[1].shape == (3,)
    # keyword-only options
    with pytest.raises(TypeError):
        ce.assign(u, 0.1, "auto", True)


@pytest.mark.parametrize("family,n,S", [("A", 64, 3), ("A", 4096, 100), ("B", 4096, 100), ("B", 65, 2), ("A", 10, 1)])
def test_resolve_method(family, n, S):
    u, lam = make_instance(family, n, S, seed=1)
    assert ce.resolve_method(u, lam) in CONCRETE_METHODS
    assert ce.resolve_method(u, lam, "auto") == ce.resolve_method(u, lam)
    for m in CONCRETE_METHODS:
        assert ce.resolve_method(u, lam, m) == m
    assert ce.resolve_method(np.zeros((0, S)), lam) in CONCRETE_METHODS


# ---- input validation ---------------------------------------------------------------------------

def u_with(value, where, shape=(5, 3), dtype=np.float64):
    u = np.zeros(shape, dtype)
    u[where] = value
    return u


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "value,word", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")], ids=["nan", "inf", "-inf"]
)
def test_non_finite_scores_name_the_position(value, word, dtype):
    with pytest.raises(ValueError, match=r"u\[3, 1\] is " + word):
        ce.assign(u_with(value, (3, 1), dtype=dtype), 0.5)
    with pytest.raises(ValueError, match=r"u\[2, 3, 1\] is " + word):
        ce.assign(u_with(value, (2, 3, 1), shape=(4, 5, 3), dtype=dtype), 0.5)
    with pytest.raises(ValueError, match=r"u\[3, 1\]"):
        ce.resolve_method(u_with(value, (3, 1), dtype=dtype), 0.5)
    if value > 0:  # +inf must not be reported as -inf
        with pytest.raises(ValueError) as info:
            ce.assign(u_with(value, (3, 1), dtype=dtype), 0.5)
        assert "-inf" not in str(info.value)


@pytest.mark.parametrize(
    "lam,exc,pattern",
    [
        (-0.5, ValueError, "negative"),
        (-1, ValueError, "negative"),
        (float("nan"), ValueError, "NaN"),
        (float("inf"), ValueError, "infinite"),
        (np.float64(-2.0), ValueError, "negative"),
        ("0.5", TypeError, "real number"),
        (None, TypeError, "real number"),
        (1j, TypeError, "real number"),
        (True, TypeError, "real number"),
        ([0.5], TypeError, "real number"),
    ],
    ids=repr,
)
def test_bad_lam(lam, exc, pattern):
    u = np.zeros((4, 2))
    with pytest.raises(exc, match=pattern) as info:
        ce.assign(u, lam)
    assert "lam" in str(info.value)
    with pytest.raises(exc, match=pattern):
        ce.resolve_method(u, lam)


def test_good_lam_types():
    u = np.random.default_rng(0).random((10, 3))
    want = objective(u, 0.25, ce.assign(u, 0.25))
    for lam in (np.float32(0.25), np.float64(0.25), 0.25, np.array(0.25)):
        assert objective(u, 0.25, ce.assign(u, lam)) == want
    ce.assign(u, 0)  # ints are fine
    ce.assign(u, np.int64(1))


BAD_SCORES = [
    pytest.param(np.zeros(5), ValueError, r"shape \(n, S\).*1 dimensions", id="ndim1"),
    pytest.param(np.zeros((2, 3, 4, 5)), ValueError, "4 dimensions", id="ndim4"),
    pytest.param(np.array(1.0), ValueError, "0 dimensions", id="ndim0"),
    pytest.param(np.zeros((3, 0)), ValueError, "S = 0", id="S0"),
    pytest.param(np.zeros((2, 3, 0)), ValueError, "S = 0", id="S0-batch"),
    pytest.param(np.zeros((4, 3), np.int64), TypeError, "dtype int64", id="int64"),
    pytest.param(np.zeros((4, 3), np.int32), TypeError, "dtype int32", id="int32"),
    pytest.param(np.zeros((4, 3), np.float16), TypeError, "dtype float16", id="float16"),
    pytest.param(np.zeros((4, 3), np.complex128), TypeError, "dtype complex128", id="complex128"),
    pytest.param(np.zeros((4, 3), bool), TypeError, "dtype bool", id="bool"),
    pytest.param(np.zeros((4, 3), object), TypeError, "dtype object", id="object"),
    pytest.param([[0.0, 1.0], [1.0, 0.0]], TypeError, "list", id="list"),
    pytest.param(((0.0, 1.0),), TypeError, "tuple", id="tuple"),
    pytest.param("abc", TypeError, "str", id="str"),
    pytest.param(None, TypeError, "NoneType", id="None"),
    pytest.param(3.0, TypeError, "float", id="float"),
]


@pytest.mark.parametrize("u,exc,pattern", BAD_SCORES)
def test_bad_scores(u, exc, pattern):
    with pytest.raises(exc, match=pattern) as info:
        ce.assign(u, 0.5)
    assert "u" in str(info.value)
    if not (isinstance(u, np.ndarray) and u.ndim == 3):
        with pytest.raises(exc, match=pattern):
            ce.resolve_method(u, 0.5)


def test_bad_torch_scores():
    torch = pytest.importorskip("torch")
    for t, pattern in [
        (torch.zeros(4, 3, dtype=torch.int64), "torch.int64"),
        (torch.zeros(4, 3, dtype=torch.float16), "torch.float16"),
        (torch.zeros(4, 3, dtype=torch.bfloat16), "torch.bfloat16"),
        (torch.zeros(4, 3, dtype=torch.complex64), "torch.complex64"),
    ]:
        with pytest.raises(TypeError, match=pattern):
            ce.assign(t, 0.5)
    with pytest.raises(ValueError, match=r"u\[1, 2\] is nan"):
        ce.assign(torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, float("nan")]]), 0.5)


def test_cuda_tensor_is_refused():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(TypeError, match="device 'cuda"):
        ce.assign(torch.zeros(4, 3, device="cuda"), 0.5)


@pytest.mark.parametrize("method", ["fast", "", "Auto ", "simplex"])
def test_unknown_method(method):
    u = np.zeros((4, 2))
    with pytest.raises(ValueError, match="method") as info:
        ce.assign(u, 0.5, method)
    assert repr(method) in str(info.value) or method in str(info.value)
    with pytest.raises(ValueError, match="method"):
        ce.resolve_method(u, 0.5, method)


def test_negative_num_threads():
    with pytest.raises(ValueError, match="num_threads"):
        ce.assign(np.zeros((3, 4, 2)), 0.5, num_threads=-1)


def test_lemon_missing_is_reported():
    if HAVE_LEMON:
        pytest.skip("this build has LEMON")
    with pytest.raises(ValueError, match="liblemon-dev"):
        ce.assign(np.zeros((4, 2)), 0.5, "lemon")


def test_build_info():
    info = ce.build_info()
    assert isinstance(info["lemon"], bool)


def test_interpreter_exits_cleanly_after_copying_inputs():
    """Inputs that must be copied (non-unit column stride) and a torch tensor, then exit:
    no object of the extension may outlive the interpreter (that aborts at shutdown)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np, cascadevae_ext as ce\n"
        "u = np.asfortranarray(np.random.default_rng(0).random((20, 3)))\n"
        "ce.assign(u, 0.1); ce.assign(np.stack([u, u])[:, :, ::-1], 0.1, num_threads=2)\n"
        "try:\n    import torch\n    ce.assign(torch.zeros(5, 3).T, 0.1)\nexcept ImportError:\n    pass\n"
        "print('done')\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]


# ---- very many classes -------------------------------------------------------------------------


def test_many_classes_use_lemon_or_refuse_clearly():
    """Past 6000 classes the condensed-graph solvers would need gigabytes of S x S tables:
    they refuse by name, auto switches to LEMON, and the O(S^3) certificate refuses too."""
    rng = np.random.default_rng(7)
    u = rng.random((5, 7000))
    for method in ("ssp", "warm"):
        with pytest.raises(ValueError, match="S = 7000"):
            ce.assign(u, 0.01, method)
    if HAVE_LEMON:
        assert ce.resolve_method(u, 0.01) == "lemon"
        labels, prices = ce.assign(u, 0.01, return_prices=True)
        assert ce.check_prices(u, 0.01, labels, prices)
        # each item alone in its best class: no penalty, every score maximal
        assert ce.objective(u, 0.01, labels) == pytest.approx(u.max(axis=1).sum())
    else:
        with pytest.raises(ValueError, match="liblemon-dev"):
            ce.assign(u, 0.01)
    with pytest.raises(ValueError, match="check_prices"):
        ce.is_optimal(u[:, :5000], 0.01, np.zeros(5, dtype=np.int64))
    with pytest.raises(ValueError, match="check_prices"):
        ce.dual_prices(u[:, :5000], 0.01, np.zeros(5, dtype=np.int64))
