"""Mutual information between the data and each latent variable, I(x; z_j) (the paper's
Figures 5, 9 and 11), and I(x; d) for the discrete code."""
import numpy as np

from ._gaussian import check_mu_std, log_q_terms


def mutual_information(mu, std, dataset_size, *, num_samples=1, seed=0):
    """Per-dimension I(x; z_j) = E_x E_{q(z_j|x)}[log q(z_j|x) - log q(z_j)] in nats, with
    log q(z_j) estimated exactly as in :func:`total_correlation` (minibatch importance
    weights, log space; with n = N it is the plug-in mixture of the N posteriors, so each
    estimate lies in [0, log N] up to Monte Carlo noise). A dim whose posterior ignores x
    (identical posteriors for all x) gives exactly 0.

    Returns ``{"mi_per_dim": list (m,), "mi_total": sum, "mi_dataset_size", "mi_num_points",
    "mi_num_samples", "mi_seed"}``.
    """
    mu, std, dataset_size = check_mu_std(mu, std, dataset_size)
    rng = np.random.default_rng(seed)
    acc = np.zeros(mu.shape[1])
    for _ in range(int(num_samples)):
        z = mu + std * rng.standard_normal(mu.shape)
        own, _, marg = log_q_terms(z, mu, std, dataset_size, joint=False)
        acc += np.mean(own - marg, axis=0)
    per_dim = acc / int(num_samples)
    return {"mi_per_dim": per_dim.tolist(), "mi_total": float(per_dim.sum()),
            "mi_dataset_size": dataset_size, "mi_num_points": int(mu.shape[0]),
            "mi_num_samples": int(num_samples), "mi_seed": seed}


def discrete_mutual_information(codes=None, *, probs=None, num_codes=None):
    """I(x; d) in nats for the discrete code d.

    ``codes`` (n,) int: d is a deterministic function of x (CascadeVAE's evaluation-time
    argmax code), so H(d|x) = 0 and I(x; d) = H(d), the entropy of the code counts.
    ``probs`` (n, S): a stochastic code q(d|x_i) (e.g. JointVAE's softmax); then
    I(x; d) = H(mean_i q(d|x_i)) - mean_i H(q(d|x_i)). Pass exactly one of the two.

    Returns ``{"mi_discrete", "mi_discrete_max": log S, "mi_discrete_source"}``.
    """
    if (codes is None) == (probs is None):
        raise ValueError("pass exactly one of codes (n,) or probs (n, S)")
    if codes is not None:
        codes = np.asarray(codes)
        if codes.ndim != 1 or codes.size == 0 or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"codes must be a non-empty 1-d integer array, got shape "
                             f"{codes.shape} dtype {codes.dtype}")
        if codes.min() < 0:
            raise ValueError(f"codes must be >= 0, got min {codes.min()}")
        S = int(num_codes) if num_codes is not None else int(codes.max()) + 1
        if codes.max() >= S:
            raise ValueError(f"codes go up to {codes.max()} but num_codes is {S}")
        p = np.bincount(codes, minlength=S) / codes.size
        cond = 0.0
        source = "codes"
    else:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or np.any(probs < 0) or not np.allclose(probs.sum(1), 1.0, atol=1e-6):
            raise ValueError("probs must be (n, S) with non-negative rows summing to 1")
        S = probs.shape[1]
        p = probs.mean(axis=0)
        cond = float(np.mean(-np.sum(np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0), axis=1)))
        source = "probs"
    h = float(-np.sum(p[p > 0] * np.log(p[p > 0])))
    return {"mi_discrete": h - cond, "mi_discrete_max": float(np.log(S)),
            "mi_discrete_source": source}
