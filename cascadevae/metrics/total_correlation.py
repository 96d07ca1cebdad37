"""Total correlation TC(z) = KL(q(z) || prod_j q(z_j)) of the aggregate posterior (the paper's
eq. 3 and Figure 2), estimated from Gaussian posteriors q(z|x_i) = N(mu_i, diag(std_i^2))."""
import numpy as np

from ._gaussian import check_mu_std, log_q_terms

ESTIMATORS = ("minibatch_importance",)


def total_correlation(mu, std, *, dataset_size, estimator="minibatch_importance",
                      num_samples=1, seed=0):
    """Estimate TC(z) in nats from posteriors of n data points (a minibatch of a dataset of
    ``dataset_size`` = N points; pass N = n when mu/std cover the whole dataset).

    Estimator ``"minibatch_importance"`` (in the spirit of Chen et al., 2018, beta-TCVAE, but
    neither of their two weightings exactly): draw z_i ~ q(z|x_i) (``num_samples`` draws per
    point), estimate log q(z_i) and each log q(z_ij) as logsumexp_j [log q(z_i|x_j) + log w_ij]
    with the importance weights w: the posterior that generated z_i gets 1/N and each of the
    n - 1 others (N-1)/(N(n-1)), i.e. q(z_i) = (1/N) q(z_i|x_i) + (1/N) sum over the N - 1
    other data points, that sum estimated from the n - 1 others in the batch. The weights sum
    to one and the estimate of q(z_i) is unbiased for a uniformly drawn batch. (Chen et al.'s
    MWS weights every posterior 1/(N n); their MSS gives 1/N to the own posterior, one
    "stratum" weight (N-n+1)/(N(n-1)) to one other and 1/(n-1) to the rest.) The TC estimate
    is the mean of log q(z_i) - sum_j log q(z_ij). Everything is in log space.
    Note: the form often written log(1/(N n)) sum_j q(z|x_j) uses unnormalised weights; its
    constant offset cancels in a training loss's gradient but not in a reported value, so it is
    not used here.

    Bias: each log of an unbiased density estimate is biased downward (Jensen), more for the
    joint (a sharper, K-dimensional density, fewer effective neighbours) than for the 1-d
    marginals, which pulls the estimate below the truth when n << N. In the other direction,
    with n = N the estimate is the TC of the finite mixture of N Gaussians, which is > 0 even for
    independent factors whenever the posteriors are narrow relative to the spacing of the
    means (at the extreme, up to (K - 1) log N). Compare numbers only at equal n, N and m.

    Returns ``{"tc_estimate", "tc_estimator", "tc_num_points", "tc_dataset_size",
    "tc_num_samples", "tc_seed"}``.
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
        _, joint, marg = log_q_terms(z, mu, std, dataset_size)
        vals.append(np.mean(joint - marg.sum(axis=1)))
    return {"tc_estimate": float(np.mean(vals)), "tc_estimator": estimator,
            "tc_num_points": int(mu.shape[0]), "tc_dataset_size": dataset_size,
            "tc_num_samples": int(num_samples), "tc_seed": seed}
