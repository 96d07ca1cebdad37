"""The lambda' conventions: ordered pairs (the paper, and assign) versus the official code's
unordered pairs, checked against the penalty each one describes."""
import itertools

import numpy as np
import pytest

import cascadevae_ext as ce
from cascadevae.assignment import lam_from_official, lam_to_official


def official_penalty(labels, S, lam_official):
    # The official flow graph: per class, unit arcs of cost 0, p, 2p, ... with p = lam_official.
    return sum(lam_official * t for k in range(S) for t in range(int(np.sum(labels == k))))


def test_conversion_matches_official_graph_penalty():
    rng = np.random.default_rng(0)
    S, n, lam_official = 3, 7, 0.375
    u = rng.integers(-8, 9, size=(n, S)) / 8.0
    lam = lam_from_official(lam_official)
    for labels in itertools.islice(itertools.product(range(S), repeat=n), 200):
        labels = np.array(labels)
        ours = ce.objective(u, lam, labels)
        theirs = u[np.arange(n), labels].sum() - official_penalty(labels, S, lam_official)
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_round_trip_and_bad_values():
    assert lam_to_official(lam_from_official(0.001)) == pytest.approx(0.001)
    assert lam_from_official(0.002) == pytest.approx(0.001)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lam"):
            lam_from_official(bad)
