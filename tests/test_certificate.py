"""The optimality certificate: objective, is_optimal, dual_prices, check_prices.

A labelling is optimal iff no exchange along a cycle of classes improves it; prices certify it
when every item sits in a class minimising -u[i, l] + prices[l] and
2 lam (n_k - 1) <= prices[k] <= 2 lam n_k. Prices from every solver (return_prices=True) and
from dual_prices must pass check_prices; labellings made strictly worse must fail both checks.
"""
import itertools

import numpy as np
import pytest

import cascadevae_ext as ce
from assign_helpers import (
    METHODS,
    all_labellings,
    brute_force,
    make_instance,
    objective,
    prices_certify,
    require_lemon,
    require_method,
    tie_heavy,
)


def tiny_instances(seed=0, count=12):
    """Dyadic tie-heavy problems with n <= 6, S <= 3, and a dyadic lam."""
    rng = np.random.default_rng(seed)
    for j in range(count):
        n, S = int(rng.integers(2, 7)), int(rng.integers(2, 4))
        lam = (0.0, 2.0**-3, 2.0**-1, 1.0)[j % 4]
        yield tie_heavy(rng, n, S), lam


def family_instances():
    yield make_instance("A", 64, 10, seed=1)
    yield make_instance("B", 64, 10, seed=2)
    yield make_instance("A", 300, 7, seed=3)
    yield make_instance("huge", 50, 4, seed=4)
    yield make_instance("zero", 50, 4, seed=5)
    yield make_instance("A", 1024, 32, seed=6)
    yield make_instance("B", 1024, 32, seed=7)
    yield make_instance("A", 1000, 2, seed=8)


def all_instances():
    yield from tiny_instances()
    yield from family_instances()


# ---- objective -------------------------------------------------------------------------------

def test_objective_matches_python():
    for u, lam in all_instances():
        n, S = u.shape
        rng = np.random.default_rng(n)
        for _ in range(3):
            labels = rng.integers(0, S, n)
            assert ce.objective(u, lam, labels) == objective(u, lam, labels)


def test_objective_hand_example():
    u = np.array([[1.0, 0.0], [1.0, 0.5], [0.0, 2.0]])
    # classes {0, 1} and {2}: 1 + 1 + 2 - lam (2 * 1 + 0) = 4 - 2 lam
    assert ce.objective(u, 0.25, np.array([0, 0, 1])) == 3.5
    # all in class 0: 2 - lam * 3 * 2
    assert ce.objective(u, 0.25, np.array([0, 0, 0])) == 0.5
    assert ce.objective(u, 0.0, np.array([1, 1, 1])) == 2.5


def test_objective_float32_and_torch_labels():
    torch = pytest.importorskip("torch")
    u, lam = make_instance("B", 40, 5, seed=3)  # float32, dyadic
    labels = np.random.default_rng(0).integers(0, 5, 40)
    want = objective(u, lam, labels)
    assert ce.objective(u, lam, labels) == want
    assert ce.objective(torch.from_numpy(u), lam, torch.from_numpy(labels)) == want
    assert ce.objective(u, lam, labels.astype(np.int32)) == want
    assert ce.objective(u, lam, labels.astype(np.uint8)) == want


# ---- certificates of solver output ---------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_solver_output_is_certified(method):
    require_method(method)
    for u, lam in all_instances():
        labels, prices = ce.assign(u, lam, method, return_prices=True)
        assert ce.is_optimal(u, lam, labels), (u.shape, lam)
        assert ce.check_prices(u, lam, labels, prices), (u.shape, lam)
        assert prices_certify(u, lam, labels, prices, atol=1e-9 * (1 + lam * len(u) + np.abs(u).max()))
        dual = ce.dual_prices(u, lam, labels)
        assert dual.shape == (u.shape[1],) and dual.dtype == np.float64
        assert ce.check_prices(u, lam, labels, dual)
        assert prices_certify(u, lam, labels, dual, atol=1e-9 * (1 + lam * len(u) + np.abs(u).max()))


def test_brute_force_optima_are_certified():
    """Every optimal labelling (ties included) passes; every strictly worse one fails."""
    for u, lam in tiny_instances(seed=1, count=8):
        n, S = u.shape
        best = brute_force(u, lam)
        for labels in all_labellings(n, S)[:: max(1, S**n // 200)]:
            value = objective(u, lam, labels)
            assert ce.is_optimal(u, lam, labels) == (value == best), (u, lam, labels)


def test_lemon_prices_sign_convention():
    """A hand example: both items prefer class 0 by 1; mu = 1/2, so both share class 0 and
    lambda_0 in [mu (2 - 1), 1 + lambda_1], lambda_1 <= 0 (empty class)."""
    require_lemon()
    u = np.array([[1.0, 0.0], [1.0, 0.0]])
    labels, prices = ce.assign(u, 0.25, "lemon", return_prices=True)
    assert list(labels) == [0, 0]
    assert 0.5 <= prices[0] <= 1.0 + prices[1] and prices[1] <= 0.0
    assert prices_certify(u, 0.25, labels, prices)


@pytest.mark.parametrize("family", ["A", "B"])
def test_lemon_prices_on_float_data(family):
    """Non-dyadic data: LEMON's prices certify up to round-off."""
    require_lemon()
    for n, S in [(200, 5), (1024, 32)]:
        u, lam = make_instance(family, n, S, seed=n, dyadic=False)
        labels, prices = ce.assign(u, lam, "lemon", return_prices=True)
        assert prices_certify(u, lam, labels, prices, atol=1e-9 * (1 + lam * n + np.abs(u).max()))
        assert ce.check_prices(u, lam, labels, prices)


@pytest.mark.parametrize("method", METHODS)
def test_batch_prices_are_certified(method):
    require_method(method)
    rng = np.random.default_rng(4)
    u = np.stack([tie_heavy(rng, 30, 4) for _ in range(5)])
    labels, prices = ce.assign(u, 2.0**-3, method, return_prices=True, num_threads=2)
    for g in range(5):
        assert ce.check_prices(u[g], 2.0**-3, labels[g], prices[g])
        assert ce.is_optimal(u[g], 2.0**-3, labels[g])


# ---- perturbed labellings ----------------------------------------------------------------------

def perturbations(labels, S, rng=None, limit=None):
    """Labellings one change away: a single item moved to another class, or two items of
    different classes swapped. All of them, or `limit` random ones."""
    n = len(labels)
    moves = [("move", i, k) for i in range(n) for k in range(S) if k != labels[i]]
    swaps = [("swap", i, j) for i, j in itertools.combinations(range(n), 2) if labels[i] != labels[j]]
    candidates = moves + swaps
    if limit is not None and len(candidates) > limit:
        pick = rng.choice(len(candidates), limit, replace=False)
        candidates = [candidates[p] for p in pick]
    for kind, a, b in candidates:
        new = labels.copy()
        if kind == "move":
            new[a] = b
        else:
            new[a], new[b] = labels[b], labels[a]
        yield new


@pytest.mark.parametrize("method", METHODS)
def test_perturbed_labellings_are_rejected(method):
    require_method(method)
    rng = np.random.default_rng(0)
    checked = 0
    for u, lam in all_instances():
        labels, prices = ce.assign(u, lam, method, return_prices=True)
        best = objective(u, lam, labels)
        gap = 1e-6 * (1 + np.abs(u).max() + lam * len(u))
        for worse in perturbations(labels, u.shape[1], rng, limit=60):
            value = objective(u, lam, worse)
            if value < best - gap:
                assert not ce.is_optimal(u, lam, worse)
                assert not ce.check_prices(u, lam, worse, prices)
                assert not prices_certify(u, lam, worse, prices)
                checked += 1
            elif value == best:  # a tie: still optimal
                assert ce.is_optimal(u, lam, worse)
    assert checked > 100


def test_dual_prices_rejects_non_optimal():
    u = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    labels = np.array([0, 0, 1])  # every item in its worse class (lam = 0)
    assert not ce.is_optimal(u, 0.0, labels)
    with pytest.raises(ValueError, match="not optimal"):
        ce.dual_prices(u, 0.0, labels)
    for u, lam in family_instances():
        labels = np.zeros(len(u), np.int64)  # everything in class 0: never optimal here
        if objective(u, lam, labels) < brute_or_lemon(u, lam) - 1e-6:
            with pytest.raises(ValueError, match="not optimal"):
                ce.dual_prices(u, lam, labels)


def brute_or_lemon(u, lam):
    if u.shape[0] <= 7:
        return brute_force(u, lam)
    for method in ("lemon", "auto"):
        try:
            return objective(u, lam, ce.assign(u, lam, method))
        except ValueError:
            continue
    raise AssertionError("no solver")


def test_atol():
    u = np.array([[0.0, 2.0**-4]])
    labels = np.array([0])  # improvable by 1/16
    assert not ce.is_optimal(u, 0.0, labels)
    assert ce.is_optimal(u, 0.0, labels, atol=1.0)
    assert not ce.is_optimal(u, 0.0, labels, atol=1e-3)
    prices = np.zeros(2)
    assert not ce.check_prices(u, 0.0, labels, prices)
    assert ce.check_prices(u, 0.0, labels, prices, atol=0.1)
    ce.dual_prices(u, 0.0, labels, atol=1.0)  # accepted as optimal within atol
    with pytest.raises(ValueError, match="atol"):
        ce.is_optimal(u, 0.0, labels, atol=-1.0)


def test_check_prices_bounds():
    """Condition (ii) on its own: prices outside [mu (n_k - 1), mu n_k] are refused."""
    u = np.zeros((3, 2))
    lam = 0.5  # mu = 1
    labels = np.array([0, 0, 1])  # n = (2, 1): lambda_0 in [1, 2], lambda_1 in [0, 1]
    assert ce.check_prices(u, lam, labels, np.array([1.0, 1.0]))
    assert not ce.check_prices(u, lam, labels, np.array([2.5, 1.0]))  # but also (i) fails
    assert not ce.check_prices(u, lam, labels, np.array([0.5, 0.5]))  # lambda_0 below mu (n_0 - 1)
    assert not ce.check_prices(u, lam, labels, np.array([1.5, 1.5]))  # lambda_1 above mu n_1
    assert not ce.check_prices(u, lam, labels, np.array([2.0, 0.0]))  # (ii) holds, (i) fails: 0, 1 prefer class 1
    assert ce.check_prices(np.zeros((0, 2)), lam, np.zeros(0, np.int64), np.zeros(2))


# ---- argument validation -------------------------------------------------------------------

CERT_FUNCS = {
    "objective": lambda u, labels: ce.objective(u, 0.5, labels),
    "is_optimal": lambda u, labels: ce.is_optimal(u, 0.5, labels),
    "dual_prices": lambda u, labels: ce.dual_prices(u, 0.5, labels),
    "check_prices": lambda u, labels: ce.check_prices(u, 0.5, labels, np.zeros(np.shape(u)[-1])),
}


@pytest.mark.parametrize("func", sorted(CERT_FUNCS))
@pytest.mark.parametrize(
    "labels,exc,pattern",
    [
        (np.zeros(4, np.int64), ValueError, r"shape \(5,\)"),
        (np.zeros(6, np.int64), ValueError, r"shape \(5,\)"),
        (np.zeros((5, 1), np.int64), ValueError, r"shape \(5,\)"),
        (np.array([0, 1, -1, 0, 0]), ValueError, r"labels\[2\] = -1"),
        (np.array([0, 1, 2, 3, 0]), ValueError, r"labels\[3\] = 3"),
        (np.zeros(5, np.float64), TypeError, "float64"),
        (np.zeros(5, np.float32), TypeError, "float32"),
        (np.zeros(5, bool), TypeError, "bool"),
        ([0, 1, 2, 0, 1], TypeError, "list"),
        (None, TypeError, "NoneType"),
    ],
    ids=str,
)
def test_bad_labels(func, labels, exc, pattern):
    u = np.zeros((5, 3))
    with pytest.raises(exc, match=pattern) as info:
        CERT_FUNCS[func](u, labels)
    assert "labels" in str(info.value)


@pytest.mark.parametrize("func", sorted(CERT_FUNCS))
def test_certificate_functions_validate_scores(func):
    labels = np.zeros(5, np.int64)
    with pytest.raises(ValueError, match=r"u\[3, 1\] is nan"):
        u = np.zeros((5, 3))
        u[3, 1] = np.nan
        CERT_FUNCS[func](u, labels)
    with pytest.raises(ValueError, match="shape"):
        CERT_FUNCS[func](np.zeros((2, 5, 3)), labels)  # no batches here
    with pytest.raises(TypeError, match="dtype int64"):
        CERT_FUNCS[func](np.zeros((5, 3), np.int64), labels)
    with pytest.raises(TypeError, match="list"):
        CERT_FUNCS[func]([[0.0] * 3] * 5, labels)


@pytest.mark.parametrize("name", ["objective", "is_optimal", "dual_prices"])
def test_certificate_functions_validate_lam(name):
    f = getattr(ce, name)
    u, labels = np.zeros((5, 3)), np.zeros(5, np.int64)
    with pytest.raises(ValueError, match="lam"):
        f(u, -1.0, labels)
    with pytest.raises(ValueError, match="lam"):
        f(u, float("nan"), labels)
    with pytest.raises(TypeError, match="lam"):
        f(u, "1", labels)


def test_check_prices_validates_prices():
    u, labels = np.zeros((5, 3)), np.zeros(5, np.int64)
    for prices in (np.zeros(2), np.zeros(4), np.zeros((3, 1))):
        with pytest.raises(ValueError, match=r"prices must have shape \(3,\)"):
            ce.check_prices(u, 0.5, labels, prices)
    with pytest.raises(TypeError, match="prices"):
        ce.check_prices(u, 0.5, labels, [0.0, 0.0, 0.0])
    for prices in (np.array([4.0, 4.0, 4.0]), np.array([4.0, 0.0, 0.0])):  # float32 is accepted too
        assert ce.check_prices(u, 0.5, labels, prices.astype(np.float32)) == ce.check_prices(u, 0.5, labels, prices)
