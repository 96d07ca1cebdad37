"""The loss pieces of the baselines, in torch: JointVAE's relaxed categorical code and capacity
targets (Dupont, 2018), FactorVAE's discriminator and dimension-wise permutation (Kim & Mnih,
2018), and beta-TCVAE's minibatch decomposition of the KL into MI, TC and dimension-wise KL
(Chen et al., 2018). The models themselves are the small overrides in :mod:`.vae`.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator, NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import TC_ESTIMATORS

_LOG_2PI = math.log(2.0 * math.pi)


# ---- JointVAE ------------------------------------------------------------------------------

def gumbel_softmax_sample(logits: torch.Tensor, temperature: float,
                          generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A relaxed one-hot sample (B, K): softmax((logits + g) / temperature), g ~ Gumbel(0, 1)
    drawn from ``generator`` (so a resumed run draws the same noise)."""
    u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
    # u in [0, 1): keep both logs finite at the ends of the float range
    tiny = torch.finfo(u.dtype).tiny
    exponential = -torch.log(u.clamp_min(tiny))      # Exp(1), > 0 but 0 where u rounds to 1
    gumbel = -torch.log(exponential.clamp_min(tiny))
    return F.softmax((logits + gumbel) / temperature, dim=-1)


def categorical_kl_uniform(logits: torch.Tensor) -> torch.Tensor:
    """KL(q(c | x) || Uniform(K)) = sum_k q_k log q_k + log K per item, (B,), for
    q = softmax(logits) (computed from log_softmax, so a saturated q stays finite)."""
    log_q = F.log_softmax(logits, dim=-1)
    return (log_q.exp() * log_q).sum(dim=-1) + math.log(logits.shape[-1])


def linear_capacity(t: int, c_min: float, c_max: float, num_iters: int) -> float:
    """JointVAE's capacity target C(t) = min(C_max, C_min + (C_max - C_min) t / num_iters),
    t the update index counted from 0 (Dupont's counter is t + 1)."""
    return min(c_max, c_min + (c_max - c_min) * t / num_iters)


# ---- FactorVAE -----------------------------------------------------------------------------

class Discriminator(nn.Module):
    """FactorVAE's discriminator D(z): an MLP of ``num_layers`` linear layers (the last one
    gives 2 logits: class 0 = a sample of q(z), class 1 = a dimension-wise permuted one), each
    hidden layer ``hidden`` units followed by LeakyReLU(0.2). Kim & Mnih: 6 layers of 1000."""

    def __init__(self, latent_dim: int, hidden: int, num_layers: int) -> None:
        super().__init__()
        layers = []
        width = latent_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        layers.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def permute_dims(z: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Each latent dim of z (B, m) shuffled across the batch by its own permutation: samples
    of prod_j q(z_j) from samples of q(z)."""
    batch, dims = z.shape
    idx = torch.stack([torch.randperm(batch, generator=generator, device=z.device)
                       for _ in range(dims)], dim=1)
    return torch.gather(z, 0, idx)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Run a forward pass through ``module`` as a constant: its parameters do not require grad
    while the graph is built, so a backward through the result leaves their .grad alone (the
    VAE loss uses D(z) but must not train D, and need not pay for D's weight gradients)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


# ---- beta-TCVAE ----------------------------------------------------------------------------

def log_importance_weights(batch: int, dataset_size: int, estimator: str,
                           like: torch.Tensor) -> torch.Tensor:
    """log w (B, B): the weight of posterior j in the estimate of q(z_i) from a minibatch of
    B = ``batch`` drawn from a dataset of N = ``dataset_size`` items.

    * ``"mws"``: 1 / (N B) for every j (Chen et al.'s minibatch-weighted sampling).
    * ``"mss"``: 1 / N for the posterior that drew z_i and (N - 1) / (N (B - 1)) for each other
      one; they sum to 1, and for B = N the estimate is the exact mixture (1/N) sum_j q(z|x_j).
      The same weights as the evaluation metric's (:func:`cascadevae.metrics._gaussian
      .log_weights`), a simplified form of Chen et al.'s stratified matrix.
    """
    if estimator not in TC_ESTIMATORS:
        raise ValueError(f"tc_estimator = {estimator!r}; use one of {TC_ESTIMATORS}")
    if dataset_size < batch:
        raise ValueError(f"dataset_size (N) = {dataset_size} is smaller than the batch "
                         f"({batch}); pass the size of the whole training set")
    if estimator == "mws":
        return torch.full((batch, batch), -math.log(dataset_size * batch),
                          dtype=like.dtype, device=like.device)
    if batch < 2:
        raise ValueError("the 'mss' estimator needs a batch of at least 2")
    other = math.log(dataset_size - 1) - math.log(dataset_size) - math.log(batch - 1)
    w = torch.full((batch, batch), other, dtype=like.dtype, device=like.device)
    w.fill_diagonal_(-math.log(dataset_size))
    return w


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor,
                         log_std: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(log_std)^2), elementwise (broadcasting)."""
    return -0.5 * (((z - mu) * torch.exp(-log_std)) ** 2 + _LOG_2PI) - log_std


class KLDecomposition(NamedTuple):
    """Minibatch estimates (scalars, batch means) of the three parts of the KL term:
    ``mi`` = I(x; z), ``tc`` = KL(q(z) || prod_j q(z_j)),
    ``dim_kl`` = sum_j KL(q(z_j) || p(z_j))."""
    mi: torch.Tensor
    tc: torch.Tensor
    dim_kl: torch.Tensor


def kl_decomposition(z: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor,
                     dataset_size: int, estimator: str) -> KLDecomposition:
    """beta-TCVAE's estimates from one sample z_i ~ q(z | x_i) per item (z, mu, log_std (B, m)),
    all in log space (logsumexp over the batch):

        log q(z_i)          ~ logsumexp_j [ sum_d log q(z_id | x_j) + log w_ij ]
        log prod_d q(z_id)  ~ sum_d logsumexp_j [ log q(z_id | x_j) + log w_ij ]
        MI = mean_i [log q(z_i | x_i) - log q(z_i)],  TC = mean_i [log q(z_i) - log prod_d q(z_id)],
        dimKL = mean_i [log prod_d q(z_id) - log p(z_i)]

    with the weights of :func:`log_importance_weights`. The three add up to the single-sample
    estimate mean_i [log q(z_i | x_i) - log p(z_i)] of the KL."""
    batch = z.shape[0]
    log_w = log_importance_weights(batch, int(dataset_size), estimator, like=z)
    pairwise = gaussian_log_density(z[:, None, :], mu[None], log_std[None])   # (B, B, m)
    log_qz = torch.logsumexp(pairwise.sum(dim=2) + log_w, dim=1)
    log_qz_product = torch.logsumexp(pairwise + log_w[:, :, None], dim=1).sum(dim=1)
    log_qz_x = gaussian_log_density(z, mu, log_std).sum(dim=1)
    log_pz = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)
    return KLDecomposition(mi=(log_qz_x - log_qz).mean(), tc=(log_qz - log_qz_product).mean(),
                           dim_kl=(log_qz_product - log_pz).mean())
