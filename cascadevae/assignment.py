"""The discrete step's lambda' conventions (inner maximisation of eq. 6), and the certificate
functions of :mod:`cascadevae_ext` re-exported. The solver itself is called through
:func:`cascadevae.kernels.assign`, which runs where the scores are (``cascadevae_ext.assign``
is its low-level CPU entry).

The objective, for scores ``u`` (n x S, ``u[i, k] = log p(x_i | z_i, e_k)``) and labels d::

    sum_i u[i, d_i]  -  lam * sum_k n_k (n_k - 1)

``lam`` is the paper's lambda' over *ordered* pairs (the sum over i != j of d_i^T d_j).
The official TensorFlow code builds its flow graph with unit arcs of cost
0, p, 2p, ... per class, i.e. lambda'_official * n_k (n_k - 1) / 2 over *unordered* pairs,
and the appendix's lambda' values are in that convention: convert them once, with
:func:`lam_from_official`.
"""
from __future__ import annotations

import math

from cascadevae_ext import (  # noqa: F401  (re-exported API)
    check_prices,
    dual_prices,
    is_optimal,
    objective,
    resolve_method,
)

__all__ = [
    "check_prices",
    "dual_prices",
    "is_optimal",
    "objective",
    "resolve_method",
    "lam_from_official",
    "lam_to_official",
]


def _check_lam(value: float, name: str) -> float:
    value = float(value)
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{name} = {value!r} must be a finite number >= 0")
    return value


def lam_from_official(lam_official: float) -> float:
    """lambda' for :func:`cascadevae.kernels.assign` (ordered pairs) from the official code's lambda' (unordered
    pairs): the same penalty is lam_official * n_k (n_k - 1) / 2, so lam = lam_official / 2."""
    return _check_lam(lam_official, "lam_official") / 2.0


def lam_to_official(lam: float) -> float:
    """Inverse of :func:`lam_from_official`: lam_official = 2 * lam."""
    return 2.0 * _check_lam(lam, "lam")
