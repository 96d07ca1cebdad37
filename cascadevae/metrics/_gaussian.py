"""Shared log-space machinery for aggregate-posterior estimates from Gaussian posteriors."""
import numpy as np

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


def log_q_terms(z, mu, std, dataset_size, chunk=256, joint=True):
    """For samples z (n, m) with z_i drawn from posterior i, returns
    (log q(z_i|x_i) per dim (n, m), log q(z_i) joint (n,) or None when ``joint`` is False,
    log q(z_ij) marginals (n, m)), the aggregate-posterior terms estimated with the minibatch
    importance weights.

    The (n, n, m) work runs in torch float64 (its threads): at n = 10,000 this is most of an
    evaluation's MI and TC time. The weights are one value off the diagonal and another on it
    (:func:`log_weights`), so the off-diagonal one is added after the log-sum-exp and only the
    diagonal gets the difference, instead of adding an (n, n) weight array to every term."""
    import torch

    n, m = mu.shape
    own_w = -np.log(dataset_size)
    other_w = np.log(dataset_size - 1) - np.log(dataset_size) - np.log(n - 1)
    log_std = np.log(std)
    own = -0.5 * (((z - mu) / std) ** 2 + _LOG_2PI) - log_std
    Z, MU, STD = (torch.as_tensor(a, dtype=torch.float64) for a in (z, mu, std))
    norm = torch.as_tensor(0.5 * _LOG_2PI + log_std, dtype=torch.float64)   # (n, m)
    joint_out = np.empty(n) if joint else None
    marg = np.empty((n, m))
    for s in range(0, n, chunk):
        c = min(chunk, n - s)
        rows, cols = torch.arange(c), torch.arange(s, s + c)
        # log q(z_ik | x_j) for the chunk's samples i against every posterior j: (c, n, m)
        lp = (Z[s:s + c, None, :] - MU[None]).div_(STD[None]).square_().mul_(-0.5).sub_(norm[None])
        if joint:
            total = lp.sum(dim=2)
            total[rows, cols] += own_w - other_w
            joint_out[s:s + c] = (torch.logsumexp(total, dim=1) + other_w).numpy()
        lp[rows, cols] += own_w - other_w
        marg[s:s + c] = (torch.logsumexp(lp, dim=1) + other_w).numpy()
    return own, joint_out, marg
