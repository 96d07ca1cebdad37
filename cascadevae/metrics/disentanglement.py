"""Kim & Mnih's (2018) disentanglement score, as CascadeVAE's appendix C computes it
(``protocol="paper"``), with disentanglement_lib's variant selectable
(``protocol="disentanglement_lib"``). The two give numbers that are not comparable."""
import numpy as np

PROTOCOLS = ("paper", "disentanglement_lib")


def _call(represent, images):
    """``represent(images)`` returns z (n, m) or a tuple (z (n, m), codes (n,) int or None)."""
    out = represent(images)
    codes = None
    if isinstance(out, tuple):
        if len(out) != 2:
            raise ValueError(f"represent must return z or (z, codes), got a {len(out)}-tuple")
        out, codes = out
    z = np.asarray(out, dtype=np.float64)
    if z.ndim == 1:
        z = z[:, None]
    if z.ndim != 2 or z.shape[0] != len(images):
        raise ValueError(f"represent returned z of shape {z.shape} for {len(images)} images; "
                         "expected (n, m)")
    if codes is not None:
        codes = np.asarray(codes)
        if codes.shape != (len(images),) or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"represent's discrete code must be (n,) int, got shape "
                             f"{codes.shape} dtype {codes.dtype}")
    return z, codes


def gini_variance(codes):
    """The appendix's "variance" of a discrete code, (1/(2n(n-1))) sum_{p,q} 1[d_p != d_q] =
    (n^2 - sum_k count_k^2) / (2 n (n - 1))."""
    codes = np.asarray(codes)
    n = codes.size
    counts = np.unique(codes, return_counts=True)[1].astype(np.float64)
    return (n * n - np.sum(counts ** 2)) / (2.0 * n * (n - 1))


def _variances(z, codes):
    v = np.var(z, axis=0, ddof=1)  # = (1/(2n(n-1))) sum_{p,q} (z_p - z_q)^2
    if codes is not None:
        v = np.append(v, gini_variance(codes))
    return v


def _votes(ground_truth, represent, factors_for_votes, batch, rng, global_var, active,
           votes_per_call):
    """One vote per entry of ``factors_for_votes``: argmin over active dims of
    var_in_batch / global_var, with ``batch`` items sharing the fixed factor."""
    out = np.empty(len(factors_for_votes), dtype=np.int64)
    idx = np.flatnonzero(active)
    for s in range(0, len(factors_for_votes), votes_per_call):
        ks = factors_for_votes[s:s + votes_per_call]
        f = ground_truth.sample_factors(len(ks) * batch, rng).reshape(len(ks), batch, -1)
        for i, k in enumerate(ks):
            f[i, :, k] = f[i, 0, k]
        z, codes = _call(represent, ground_truth.images_from_factors(f.reshape(len(ks) * batch, -1)))
        for i in range(len(ks)):
            sl = slice(i * batch, (i + 1) * batch)
            v = _variances(z[sl], None if codes is None else codes[sl])
            # a kept collapsed code (global variance 0, keep_collapsed_code) has in-vote
            # variance 0 too: its ratio is taken as 0, so it wins the vote (as officially)
            ratio = np.divide(v[idx], global_var[idx], out=np.zeros(len(idx)),
                              where=global_var[idx] > 0)
            out[s + i] = idx[np.argmin(ratio)]
    return out


def disentanglement_score(ground_truth, represent, *, protocol="paper", num_votes=800,
                          batch=100, seed=0, kl_threshold=0.1, continuous_kl=None,
                          num_variance_samples=10000, num_train_votes=10000,
                          num_eval_votes=5000, std_threshold=0.05, votes_per_call=10,
                          keep_collapsed_code=False):
    """Kim & Mnih's disentanglement score on a 0-100 scale.

    ``ground_truth``: a :class:`cascadevae.data.ground_truth.GroundTruthData`; all of its
    factors are used (dSprites: shape, scale, orientation, x, y; color is not a factor there).
    ``represent(images)`` -> z (n, m) (posterior means) or (z, codes) with codes (n,) int the
    discrete code (CascadeVAE's evaluation-time argmax code), or None.

    ``protocol="paper"`` (appendix C of Jeong & Song 2019):
      * Continuous dim j is pruned when the dataset-mean KL(q(z_j|x) || p(z_j)) < ``kl_threshold``
        (0.1). That KL is not visible from z, so it is passed as ``continuous_kl`` (m,); with
        ``continuous_kl=None`` no KL pruning is done (reported as
        ``disentanglement_kl_pruning: False``). The discrete code is never KL-pruned.
      * Any dim whose data variance v_j is 0 is dropped too (it cannot be normalised), the
        discrete code included: a code that gives every image the same value carries no
        information. The official code keeps such a collapsed code instead, and since its
        in-vote variance is 0 as well it wins every vote (score 100/K = 20 on dSprites);
        ``keep_collapsed_code=True`` reproduces that. With no
        active dim at all (a constant representation) every vote lands on one "no dim"
        class, the majority-vote classifier predicts one factor, and the score is chance:
        100 x the largest share of one factor among the votes (20 for 5 factors in turn).
      * v_j, the appendix's "variance over the full data" (footnote 3), is estimated from
        ``num_variance_samples`` (default 10000) uniformly drawn items, not all 737,280.
      * ``num_votes`` M = 800 votes, factors taken in turn (k = i mod K: 160 per factor for
        K = 5); each vote: ``batch`` L = 100 items with factor k fixed (to a uniformly drawn
        value) and the others uniform; per-dim unbiased variance (the appendix's
        1/(2N(N-1)) sum_{p,q} (z_p - z_q)^2), the discrete code's "variance" being the Gini form
        (n^2 - sum count^2)/(2n(n-1)); vote (argmin_j Var_j / v_j, k).
      * Score = (1/M) sum_j max_k V_jk: the majority-vote classifier scored on the same votes
        it was built from (appendix C's formula, as the official code does). Chance is 100/K.
    ``protocol="disentanglement_lib"`` (its factor_vae metric): no KL pruning; a dim is active
    when its data std >= ``std_threshold`` (0.05), v_j from ``num_variance_samples``; each vote
    picks its factor uniformly at random; ``num_train_votes`` (10000) build the majority-vote
    classifier and ``num_eval_votes`` (5000) fresh votes score it (``batch`` is 64 in their
    config: pass it). A discrete code, if given, is one more dim with the Gini variance.
    ``num_votes`` and ``kl_threshold`` are unused there.

    Returns a dict with ``disentanglement_score``, ``_protocol``, ``_seed``, ``_active_dims``
    (indices; index m is the discrete code), ``_num_votes``, ``_batch``, ``_kl_pruning``,
    ``_num_variance_samples``, ``_dim_to_factor`` (the classifier; -1 for a dim with no votes)
    and, for disentanglement_lib, ``_train_score``.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if int(batch) < 2:
        raise ValueError(f"batch must be >= 2 (a variance needs two items), got {batch}")
    rng = np.random.default_rng(seed)
    K = ground_truth.num_factors

    f = ground_truth.sample_factors(int(num_variance_samples), rng)
    z_all, codes_all = _call(represent, ground_truth.images_from_factors(f))
    m = z_all.shape[1]
    global_var = _variances(z_all, codes_all)
    n_dims = global_var.size
    active = global_var > 0
    if keep_collapsed_code and codes_all is not None:
        active[m] = True
    kl_pruning = False
    if protocol == "paper":
        if continuous_kl is not None:
            kl = np.asarray(continuous_kl, dtype=np.float64)
            if kl.shape != (m,):
                raise ValueError(f"continuous_kl must have shape ({m},) (one mean KL per "
                                 f"continuous dim), got {kl.shape}")
            active[:m] &= kl >= kl_threshold
            kl_pruning = True
    else:
        active[:m] &= np.sqrt(global_var[:m]) >= std_threshold

    result = {"disentanglement_protocol": protocol, "disentanglement_seed": seed,
              "disentanglement_active_dims": np.flatnonzero(active).tolist(),
              "disentanglement_batch": int(batch), "disentanglement_kl_pruning": kl_pruning,
              "disentanglement_num_variance_samples": int(num_variance_samples),
              "disentanglement_keep_collapsed_code": bool(keep_collapsed_code)}

    def table(factors, dims):
        V = np.zeros((n_dims, K), dtype=np.int64)
        np.add.at(V, (dims, factors), 1)
        return V

    def classifier(V):
        return np.where(V.sum(axis=1) > 0, V.argmax(axis=1), -1)

    if protocol == "paper":
        M = int(num_votes)
        result["disentanglement_num_votes"] = M
        ks = np.arange(M) % K
        if not active.any():
            result.update(disentanglement_score=100.0 * np.bincount(ks, minlength=K).max() / M,
                          disentanglement_dim_to_factor=[-1] * n_dims)
            return result
        V = table(ks, _votes(ground_truth, represent, ks, batch, rng, global_var, active,
                             votes_per_call))
        result["disentanglement_score"] = 100.0 * V.max(axis=1).sum() / M
        result["disentanglement_dim_to_factor"] = classifier(V).tolist()
        return result

    result["disentanglement_num_votes"] = [int(num_train_votes), int(num_eval_votes)]
    k_train = rng.integers(0, K, size=int(num_train_votes))
    if not active.any():  # one "no dim" class: the classifier predicts the commonest factor
        k_eval = rng.integers(0, K, size=int(num_eval_votes))
        top = np.bincount(k_train, minlength=K).argmax()
        result.update(disentanglement_score=100.0 * np.mean(k_eval == top),
                      disentanglement_train_score=100.0 * np.mean(k_train == top),
                      disentanglement_dim_to_factor=[-1] * n_dims)
        return result
    V = table(k_train, _votes(ground_truth, represent, k_train, batch, rng, global_var, active,
                              votes_per_call))
    cls = classifier(V)
    k_eval = rng.integers(0, K, size=int(num_eval_votes))
    d_eval = _votes(ground_truth, represent, k_eval, batch, rng, global_var, active,
                    votes_per_call)
    result["disentanglement_train_score"] = 100.0 * V.max(axis=1).sum() / max(len(k_train), 1)
    result["disentanglement_score"] = 100.0 * np.mean(cls[d_eval] == k_eval)
    result["disentanglement_dim_to_factor"] = cls.tolist()
    return result
