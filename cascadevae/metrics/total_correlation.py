"""Total correlation TC(z) = KL(q(z) || prod_j q(z_j)) of the aggregate posterior
q(z) = E_x q(z|x) (the paper's eq. 3 and Figure 2), from Gaussian posteriors
q(z|x_i) = N(mu_i, diag(std_i^2)) of images x_i drawn uniformly from the dataset.

Two estimators (their bias on cases with a known answer is measured in
``tests/test_metrics.py`` and tabulated in docs/evaluation.md):

* ``"ksg"`` (default): one sample z_i ~ q(z|x_i) per image is a sample of q(z) itself, and
  TC = sum_j H(z_j) - H(z) is estimated from those samples by nearest neighbours, with the
  Kraskov-Stoegbauer-Grassberger construction (their estimator 1, generalised from two
  variables to m): for each sample, eps_i = the max-norm distance to its k-th neighbour in
  the joint space, n_ij = the samples closer than eps_i in dim j, and

      TC = psi(k) + (m - 1) psi(n) - mean_i sum_j psi(n_ij + 1).

  Each dim is standardised first (TC is invariant to it; the neighbour search is not). Using
  the joint radius in every marginal makes most of the kNN entropy biases cancel. It needs no
  dataset size and does not care how narrow the posteriors are.
* ``"minibatch_importance"``: log q(z_i) and each log q(z_ij) as a logsumexp over the n
  posteriors with importance weights (own posterior 1/N, each of the n - 1 others
  (N-1)/(N(n-1)), N = ``dataset_size``; in the spirit of Chen et al.'s beta-TCVAE estimators
  but neither of their weightings exactly), then the mean of log q(z_i) - sum_j log q(z_ij).
  A kernel estimate of an m-dimensional density from n points: with narrow posteriors (an
  informative representation) the joint density at z_i is dominated by z_i's own posterior,
  and the estimate is biased up by several nats (7.6 nats for independent 6-dim factors,
  posterior std 0.03, n = 4,000, N = 737,280, where the truth is 0). With N = n it is the TC
  of the n-component mixture, larger still. Kept for comparison with code that uses it.
"""
import numpy as np

from ._gaussian import check_mu_std, log_q_terms

ESTIMATORS = ("ksg", "minibatch_importance")
DEFAULT_NEIGHBOURS = 4


def ksg_total_correlation(z, k: int = DEFAULT_NEIGHBOURS) -> float:
    """The KSG estimate of TC (nats) from samples z (n, m) of a continuous distribution (see
    the module docstring). Needs n > k and m >= 1 (m = 1 gives ~0); constant dims are
    dropped (they carry no dependence)."""
    from scipy.spatial import cKDTree
    from scipy.special import digamma
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or not np.all(np.isfinite(z)):
        raise ValueError(f"z must be a finite (n, m) array, got shape {z.shape}")
    n = z.shape[0]
    k = int(k)
    if k < 1 or n <= k:
        raise ValueError(f"need n > k >= 1 samples for k nearest neighbours, got n = {n}, k = {k}")
    spread = z.std(axis=0)
    z = (z[:, spread > 0] - z[:, spread > 0].mean(axis=0)) / spread[spread > 0]
    m = z.shape[1]
    if m < 2:
        return 0.0
    dist, _ = cKDTree(z).query(z, k=k + 1, p=np.inf)  # the first neighbour is the point itself
    eps = dist[:, -1]
    psi_counts = np.zeros(n)
    for j in range(m):
        col = np.sort(z[:, j])
        # samples strictly within eps_i of z_ij, the point itself included: n_ij + 1
        lo = np.searchsorted(col, z[:, j] - eps, side="right")
        hi = np.searchsorted(col, z[:, j] + eps, side="left")
        psi_counts += digamma(np.maximum(hi - lo, 1))
    return float(digamma(k) + (m - 1) * digamma(n) - psi_counts.mean())


def total_correlation(mu, std, *, dataset_size, estimator="ksg", num_samples=1, seed=0,
                      neighbours: int = DEFAULT_NEIGHBOURS):
    """Estimate TC(z) in nats from the posteriors of n images drawn uniformly from a dataset
    of ``dataset_size`` = N images (N = n when mu/std cover the whole dataset).

    ``estimator``: "ksg" (default; ``neighbours`` = its k) or "minibatch_importance" (module
    docstring: biased up by nats for informative representations; only it uses N).
    ``num_samples`` draws of z per image are averaged (each draw one estimate).

    Returns ``{"tc_estimate", "tc_estimator", "tc_num_points", "tc_dataset_size",
    "tc_num_samples", "tc_seed"}`` (+ ``"tc_neighbours"`` for ksg).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    mu, std, dataset_size = check_mu_std(mu, std, dataset_size)
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(int(num_samples)):
        z = mu + std * rng.standard_normal(mu.shape)
        if estimator == "ksg":
            vals.append(ksg_total_correlation(z, neighbours))
        else:
            _, joint, marg = log_q_terms(z, mu, std, dataset_size)
            vals.append(np.mean(joint - marg.sum(axis=1)))
    out = {"tc_estimate": float(np.mean(vals)), "tc_estimator": estimator,
           "tc_num_points": int(mu.shape[0]), "tc_dataset_size": dataset_size,
           "tc_num_samples": int(num_samples), "tc_seed": seed}
    if estimator == "ksg":
        out["tc_neighbours"] = int(neighbours)
    return out
