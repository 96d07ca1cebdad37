"""Shared log-space machinery for aggregate-posterior estimates from Gaussian posteriors."""
import numpy as np
from scipy.special import logsumexp

_LOG_2PI = np.log(2.0 * np.pi)


def check_mu_std(mu, std, dataset_size):
    mu = np.asarray(mu, dtype=np.float64)
    std = np.asarray(std, dtype=np.float64)
    if mu.ndim != 2 or mu.shape != std.shape:
        raise ValueError(f"mu and std must both be (n, m) arrays of one shape, got {mu.shape} "
                         f"and {std.shape}")
    if mu.shape[0] < 2:
        raise ValueError(f"need at least 2 posteriors, got {mu.shape[0]}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError("mu must be finite and std finite and > 0 (pass std, not log-variance)")
    dataset_size = int(dataset_size)
    if dataset_size < mu.shape[0]:
        raise ValueError(f"dataset_size ({dataset_size}) must be >= the number of posteriors "
                         f"given ({mu.shape[0]})")
    return mu, std, dataset_size


def log_weights(n_batch, dataset_size):
    """Log importance weights (M, M) for q(z_i) from a batch of M of N data points: the
    posterior that generated z_i gets 1/N, each of the other M-1 gets (N-1)/(N(M-1)) (neither
    Chen et al.'s MWS nor their MSS; see :func:`total_correlation`). They sum to 1, so (inside
    the log) the estimate of q(z_i) is unbiased; with M = N it is the exact mixture
    (1/N) sum_j q(z|x_j)."""
    own = -np.log(dataset_size)
    other = np.log(dataset_size - 1) - np.log(dataset_size) - np.log(n_batch - 1)
    w = np.full((n_batch, n_batch), other)
    np.fill_diagonal(w, own)
    return w


def log_q_terms(z, mu, std, dataset_size, chunk=256):
    """For samples z (n, m) with z_i drawn from posterior i, returns
    (log q(z_i|x_i) per dim (n, m), log q(z_i) joint (n,), log q(z_ij) marginals (n, m)),
    the aggregate-posterior terms estimated with the minibatch importance weights."""
    n, m = mu.shape
    logw = log_weights(n, dataset_size)
    log_std = np.log(std)
    own = -0.5 * (((z - mu) / std) ** 2 + _LOG_2PI) - log_std
    joint = np.empty(n)
    marg = np.empty((n, m))
    for s in range(0, n, chunk):
        zz = z[s:s + chunk, None, :]  # (c, 1, m) against every posterior j
        lp = -0.5 * (((zz - mu[None]) / std[None]) ** 2 + _LOG_2PI) - log_std[None]  # (c, n, m)
        w = logw[s:s + chunk, :, None]
        marg[s:s + chunk] = logsumexp(lp + w, axis=1)
        joint[s:s + chunk] = logsumexp(lp.sum(axis=2) + logw[s:s + chunk], axis=1)
    return own, joint, marg
