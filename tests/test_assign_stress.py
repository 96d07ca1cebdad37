"""Randomised cross-checks of the exact methods on mixed instance families: every method
reaches the same objective, and every labelling and price vector passes the certificate.

The families stress what the fixed-shape tests may miss: many exact ties, columns that are
copies of each other, huge and tiny penalties, float32 and float64, sizes on both sides of
the warm start's subsample threshold and of the eager/lazy move-list switch (n/S = 128),
and S on both sides of the vector kernels' threshold (S = 8).
"""
import numpy as np
import pytest

import cascadevae_ext as ce

METHODS = ["ssp", "warm", "auto", "device_core"] + (["lemon"] if ce.build_info()["lemon"] else [])


def instance(rng):
    n = int(rng.choice([int(rng.integers(1, 300)), int(rng.integers(1000, 3000))]))
    S = int(rng.choice([int(rng.integers(1, 8)), int(rng.integers(8, 40))]))
    kind = int(rng.integers(0, 4))
    if kind == 0:  # heavy ties
        u = rng.integers(-8, 9, size=(n, S)) / 8.0
    elif kind == 1:
        u = rng.random((n, S))
    elif kind == 2:  # CascadeVAE-like log-likelihoods
        u = -(100 + 10 * rng.standard_normal((n, S)))
    else:  # classes that look alike to many items
        u = np.repeat(rng.random((n, 1)), S, axis=1) + rng.integers(0, 2, size=(n, S)) / 4
    if rng.random() < 0.5:
        u = u.astype(np.float32)
    lam = float(rng.choice([0.0, 2.0**-11, 2.0**-6, S / (2 * n), 0.25, 8.0]))
    return u, lam


@pytest.mark.parametrize("seed", range(12))
def test_methods_agree_and_certify(seed):
    rng = np.random.default_rng(1000 + seed)
    for _ in range(5):
        u, lam = instance(rng)
        if "lemon" in METHODS and u.shape[0] * u.shape[1] > 20000:
            methods = [m for m in METHODS if m != "lemon"]  # keep the suite fast
        else:
            methods = METHODS
        objectives = {}
        for m in methods:
            labels, prices = ce.assign(u, lam, m, return_prices=True)
            objectives[m] = ce.objective(u, lam, labels)
            assert ce.check_prices(u, lam, labels, prices), (m, u.shape, lam)
            assert ce.is_optimal(u, lam, labels), (m, u.shape, lam)
        best = max(objectives.values())
        for m, value in objectives.items():
            assert value == pytest.approx(best, rel=1e-12, abs=1e-9), (m, objectives, u.shape, lam)


# Scaling u and lam by 2^k (k = 480: near the largest accepted |u|, 2^512; k = -1000: far
# below 1) changes every double the solvers compute by the same factor, exactly: the
# condensed-graph methods must return the very same labels, LEMON (integer costs) the same
# optimum. This holds the instance families above to the ends of the accepted range.
@pytest.mark.parametrize("seed", range(6))
def test_power_of_two_scaling_changes_nothing(seed):
    rng = np.random.default_rng(2000 + seed)
    for _ in range(4):
        u, lam = instance(rng)
        u = u.astype(np.float64)
        if "lemon" in METHODS and u.shape[0] * u.shape[1] > 20000:
            methods = [m for m in METHODS if m != "lemon"]
        else:
            methods = METHODS
        top = max(float(np.abs(u).max()), lam * u.shape[0], 1e-300)
        for k in (511 - int(np.ceil(np.log2(top))), -1000):
            scale = 2.0**k
            us, ls = u * scale, lam * scale
            atol = 1e-9 * scale * (np.abs(u).max() + lam * u.shape[0] + 1)
            for m in methods:
                labels, prices = ce.assign(us, ls, m, return_prices=True)
                want = ce.assign(u, lam, m)
                if m == "lemon":  # ties may be broken differently: compare the optimum
                    got, best = ce.objective(us, ls, labels), ce.objective(u, lam, want) * scale
                    assert abs(got - best) <= 1e-12 * abs(best) + atol, (m, k, got, best)
                else:
                    np.testing.assert_array_equal(labels, want, err_msg=f"{m}, k = {k}")
                assert ce.check_prices(us, ls, labels, prices, atol=atol), (m, k)
                assert ce.is_optimal(us, ls, labels, atol=atol), (m, k)
