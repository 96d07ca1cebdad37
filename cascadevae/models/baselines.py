"""The paper's baselines as overrides of :class:`.vae.VAE`, each with its config section:
JointVAE, FactorVAE and beta-TCVAE (their loss pieces are in :mod:`.baseline_terms`;
docs/baselines.md)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from . import baseline_terms as bt
from .config import BetaFields, CodeFields, FactorFields, JointFields, ModelConfig, TCFields
from .registry import register
from .vae import VAE, Posterior, widen


@register
class JointVAE(VAE):
    """JointVAE (Dupont, 2018): z plus one K-way categorical code c (K = ``num_classes``)
    encoded by the same network (K more outputs of its last layer) and sampled with a
    Gumbel-softmax relaxation at ``gumbel_temperature``; the decoder gets concat(z, c). The
    KL enters only through the capacity terms (the per-dim betas are 0)::

        loss = recon + gamma_z |KL_z - C_z(t)| + gamma_c |KL_c - C_c(t)|

    KL_z = sum_j KL(q(z_j|x) || N(0, 1)), KL_c = KL(q(c|x) || Uniform(K)) (batch means), C(t)
    linear from C_min to C_max over num_iters updates (:func:`.baseline_terms.linear_capacity`),
    the discrete C_max capped at log K. At evaluation the code is the argmax of the logits."""
    name, label = "joint-vae", "JointVAE"
    has_discrete_code = True
    encodes_code_logits = True
    diagnostic_terms = ("kl_continuous", "kl_discrete", "capacity_target_continuous",
                        "capacity_target_discrete")

    @dataclass(frozen=True)
    class Config(CodeFields, JointFields, ModelConfig):
        pass

    @classmethod
    def report_label(cls, config) -> str:
        return f"C_z={config.capacity_continuous[1]:g}, C_c={config.capacity_discrete[1]:g}"

    def code_logits(self, h: torch.Tensor) -> torch.Tensor:
        return h[:, 2 * self.latent_dim:]

    def posterior(self, x: torch.Tensor,
                  generator: Optional[torch.Generator] = None) -> Posterior:
        h = widen(self.encoder(x))
        mu, scale = self.gaussian_params(h)
        z = self.reparameterise(mu, scale, generator)
        logits = self.code_logits(h)
        code = bt.gumbel_softmax_sample(logits, self.config.gumbel_temperature, generator)
        return Posterior(mu, scale, z, logits, code)

    def loss_terms(self, x: torch.Tensor, d: Optional[torch.Tensor] = None,
                   betas=None, *, posterior: Optional[Posterior] = None):
        """As :meth:`VAE.loss_terms`; d None (what training passes) means the posterior's own
        relaxed code."""
        if posterior is None:
            posterior = self.posterior(x)
        return super().loss_terms(x, posterior.code if d is None else d, betas,
                                  posterior=posterior)

    def capacity_targets(self, t: int) -> Tuple[float, float]:
        """(C_z(t), C_c(t)) in nats at update t; C_c's C_max capped at log K."""
        c_min, c_max, n, _ = self.config.capacity_continuous
        d_min, d_max, d_n, _ = self.config.capacity_discrete
        d_max = min(d_max, math.log(self.num_classes))
        return (bt.linear_capacity(t, c_min, c_max, n),
                bt.linear_capacity(t, min(d_min, d_max), d_max, d_n))

    def extra_loss_terms(self, x, posterior, d, logits):
        kl_z = self.kl_per_item_dim(posterior.mu, posterior.scale).mean(dim=0).sum()
        kl_c = bt.categorical_kl_uniform(posterior.code_logits).mean()
        c_z, c_c = self.capacity_targets(self.iteration)
        gamma_z, gamma_c = self.config.capacity_continuous[3], self.config.capacity_discrete[3]
        target = lambda c: torch.tensor(c, dtype=kl_z.dtype, device=kl_z.device)  # noqa: E731
        return {"capacity_continuous": gamma_z * (kl_z - c_z).abs(),
                "capacity_discrete": gamma_c * (kl_c - c_c).abs(),
                "kl_continuous": kl_z.detach(), "kl_discrete": kl_c.detach(),
                "capacity_target_continuous": target(c_z),
                "capacity_target_discrete": target(c_c)}

    @torch.no_grad()
    def evaluation_codes(self, x: torch.Tensor,
                         mu: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The argmax of the categorical logits (B,) (not CascadeVAE's likelihood argmax);
        ``mu`` is not needed."""
        return self.code_logits(widen(self.encoder(x))).argmax(dim=1)


@register
class FactorVAE(VAE):
    """FactorVAE (Kim & Mnih, 2018): the VAE loss (beta = 1 in the presets) plus gamma times
    the density-ratio estimate of TC(z) from a discriminator D on z::

        loss = recon + beta KL + gamma * mean_i [D_0(z_i) - D_1(z_i)]      (gamma = tc_weight)

    D (2 logits: 0 = from q(z), 1 = dimension-wise permuted) is trained by its own Adam in
    :meth:`extra_update`, after the VAE step of the same update, on the VAE batch's z (detached)
    and the permuted z of a second batch (Kim & Mnih's Algorithm 1). The VAE loss runs D as a
    constant: its backward reaches z through D but computes no gradient for D's weights."""
    name, label = "factor-vae", "FactorVAE"
    diagnostic_terms = ("tc_estimate",)

    @dataclass(frozen=True)
    class Config(BetaFields, FactorFields, ModelConfig):
        beta: float = 1.0

    @classmethod
    def report_label(cls, config) -> str:
        return f"gamma={config.tc_weight:g}"

    def __init__(self, config: ModelConfig, image_size: int) -> None:
        super().__init__(config, image_size)
        self.discriminator = bt.Discriminator(config.latent_dim, config.discriminator_hidden,
                                              config.discriminator_layers)

    def extra_modules(self) -> Dict[str, nn.Module]:
        return {"discriminator": self.discriminator}

    def extra_optimizer_specs(self) -> Dict[str, Dict[str, Any]]:
        return {"discriminator": {"lr": self.config.discriminator_learning_rate,
                                  "betas": self.config.discriminator_adam_betas}}

    def extra_loss_terms(self, x, posterior, d, logits):
        with bt.frozen(self.discriminator):
            d_z = widen(self.discriminator(posterior.z))
        tc = (d_z[:, 0] - d_z[:, 1]).mean()
        return {"tc_penalty": self.config.tc_weight * tc, "tc_estimate": tc.detach()}

    def extra_update(self, posterior, optimizers, draw_batch, generator=None):
        z = posterior.z.detach()
        with torch.no_grad():
            z_perm = bt.permute_dims(self.posterior(draw_batch(), generator).z, generator)
        d_z, d_perm = widen(self.discriminator(z)), widen(self.discriminator(z_perm))
        joint = torch.zeros(z.shape[0], dtype=torch.int64, device=z.device)
        loss = 0.5 * (F.cross_entropy(d_z, joint) + F.cross_entropy(d_perm, 1 - joint))
        optimizer = optimizers["discriminator"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        accuracy = 0.5 * ((d_z.argmax(1) == 0).float().mean()
                          + (d_perm.argmax(1) == 1).float().mean())
        return {"discriminator_loss": float(loss.detach()),
                "discriminator_accuracy": float(accuracy)}


@register
class BetaTCVAE(VAE):
    """beta-TCVAE (Chen et al., 2018): the KL split into index-code MI, total correlation and
    dimension-wise KL, each estimated on the minibatch (:func:`.baseline_terms
    .kl_decomposition`, estimator ``tc_estimator``, dataset size N = ``dataset_size``)::

        loss = recon + alpha MI + beta TC + gamma dimKL   (mi_weight, tc_weight, dim_kl_weight)

    The analytic KL is not in the loss (the per-dim betas are 0); ``kl_per_dim`` still reports
    it."""
    name, label = "beta-tcvae", "beta-TCVAE"
    diagnostic_terms = ("mi_estimate", "tc_estimate", "dim_kl_estimate")

    @dataclass(frozen=True)
    class Config(TCFields, ModelConfig):
        pass

    @classmethod
    def report_label(cls, config) -> str:
        return f"beta={config.tc_weight:g} (TC)"

    def extra_loss_terms(self, x, posterior, d, logits):
        cfg = self.config
        parts = bt.kl_decomposition(posterior.z, posterior.mu,
                                    self.posterior_log_std(posterior.scale),
                                    cfg.dataset_size, cfg.tc_estimator)
        return {"mi_penalty": cfg.mi_weight * parts.mi, "tc_penalty": cfg.tc_weight * parts.tc,
                "dim_kl_penalty": cfg.dim_kl_weight * parts.dim_kl,
                "mi_estimate": parts.mi.detach(), "tc_estimate": parts.tc.detach(),
                "dim_kl_estimate": parts.dim_kl.detach()}
