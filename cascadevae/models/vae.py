"""One VAE base class with a per-dim-weighted KL, and the paper's models as small overrides:
beta-VAE, AnchorVAE, CascadeVAE-C, CascadeVAE-D and CascadeVAE, and the baselines JointVAE,
FactorVAE and beta-TCVAE (their loss pieces are in :mod:`.baseline_terms`; docs/baselines.md).
:func:`build_model` is the one place that turns a :class:`ModelConfig` into a model.

Loss (to minimise), for a batch of B images of P pixels and per-dim weights beta_j::

    loss = recon + kl (+ extra terms of subclasses)
    recon = (1/B) sum_i sum_p BCE(logit_ip, x_ip)                 Bernoulli NLL, pixel SUM
    kl    = sum_j beta_j * (1/B) sum_i KL(q(z_j | x_i) || N(0, 1))  dim SUM, batch mean

so beta is measured against a reconstruction summed over pixels (as the paper and the
official code do); a beta meant for a pixel-averaged reconstruction is P times smaller.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional, Tuple, Type, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import baseline_terms as bt
from .config import MODEL_NAMES, ModelConfig
from .networks import Decoder, Encoder

BetasLike = Union[torch.Tensor, np.ndarray, "list[float]"]


def widen(t: torch.Tensor) -> torch.Tensor:
    """t as float32 if it is bfloat16 or float16 (a network output under autocast), else t
    itself: losses, KLs and samples are always computed in float32 or wider."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


class Posterior(NamedTuple):
    """q_phi(z | x) for a batch: mean (B, m), scale in the model's ``std_param``
    parameterisation (std for "softplus", log sigma^2 for "logvar") and one sample z (B, m).
    A model that encodes its own categorical code (JointVAE) adds its logits (B, K) and the
    relaxed sample it feeds the decoder (B, K); None for every other model."""
    mu: torch.Tensor
    scale: torch.Tensor
    z: torch.Tensor
    code_logits: Optional[torch.Tensor] = None
    code: Optional[torch.Tensor] = None


class VAE(nn.Module):
    """Gaussian-posterior, Bernoulli-decoder VAE whose KL has one weight beta_j per latent dim.

    Variants override the class attributes and :meth:`fixed_betas`:

    * ``uses_cascade_schedule``: the per-dim betas come from the cascade schedule
      (``cascadevae.schedule``); the training loop passes them to :meth:`loss_terms`.
    * ``has_discrete_code``: the decoder also takes a discrete code d of size S, and
      :meth:`evaluation_codes` gives each image's code at evaluation.
    * ``uses_discrete_step``: d comes from the alternating step of
      :mod:`cascadevae.models.discrete` after the warm-up t_d (CascadeVAE-D, CascadeVAE). A
      model with a code but without the step encodes and samples its own code
      (``encodes_code_logits``: the encoder has S more outputs, JointVAE).

    Hooks for models with more terms: :meth:`extra_loss_terms` adds named terms to the loss
    (the names in ``diagnostic_terms`` are only reported), :meth:`set_iteration` tells the
    model the update index t, :meth:`extra_modules` names modules trained by their own
    optimiser (e.g. a discriminator) with :meth:`extra_optimizer_specs` and
    :meth:`extra_update`, and :meth:`vae_parameters` are the parameters for the main optimiser.
    """

    name: str = "vae"
    uses_cascade_schedule: bool = False
    has_discrete_code: bool = False
    uses_discrete_step: bool = False
    encodes_code_logits: bool = False
    diagnostic_terms: Tuple[str, ...] = ()

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if self.has_discrete_code and config.num_classes < 2:
            raise ValueError(f"model {config.model!r} has a discrete code: set num_classes (S) "
                             f">= 2, got {config.num_classes}")
        if not self.has_discrete_code and config.num_classes != 0:
            raise ValueError(f"model {config.model!r} has no discrete code: num_classes (S) "
                             f"must be 0, got {config.num_classes}")
        self.config = config
        self.latent_dim = config.latent_dim
        self.num_classes = config.num_classes
        self.std_param = config.std_param
        self.iteration = 0
        self.encoder = Encoder(config.image_size, config.latent_dim,
                               config.num_classes if self.encodes_code_logits else 0)
        self.decoder = Decoder(config.image_size, config.latent_dim, config.num_classes)

    # ---- the per-variant hook -------------------------------------------------------------
    def fixed_betas(self) -> Optional[torch.Tensor]:
        """Per-dim betas (m,) of a model without a schedule; None when they come from the
        cascade schedule and must be passed to :meth:`loss_terms`."""
        return None

    # ---- inference ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor):
        """x (B, 1, H, W) in [0, 1] -> (mu, scale), each (B, m). scale is the std for
        ``std_param="softplus"`` (std = softplus(raw)) and log sigma^2 for ``"logvar"``.
        Float32 also under bfloat16 autocast (:func:`widen`: the KL and z are computed in
        float32)."""
        return self.gaussian_params(widen(self.encoder(x)))

    def gaussian_params(self, h: torch.Tensor):
        """The encoder output h (B, 2m [+ S]) -> (mu, scale) as :meth:`encode` returns them."""
        m = self.latent_dim
        mu, raw = h[:, :m], h[:, m:2 * m]
        if self.std_param == "softplus":
            return mu, F.softplus(raw)
        return mu, raw

    def posterior_std(self, scale: torch.Tensor) -> torch.Tensor:
        """sigma from :meth:`encode`'s second output."""
        return scale if self.std_param == "softplus" else torch.exp(0.5 * scale)

    def posterior_log_std(self, scale: torch.Tensor) -> torch.Tensor:
        """log sigma from :meth:`encode`'s second output. For softplus, sigma is clamped away
        from 0 only where softplus itself underflows (raw < -100)."""
        if self.std_param == "softplus":
            return torch.log(scale.clamp_min(torch.finfo(scale.dtype).tiny))
        return 0.5 * scale

    def reparameterise(self, mu: torch.Tensor, scale: torch.Tensor,
                       generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I)."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + self.posterior_std(scale) * eps

    def posterior(self, x: torch.Tensor,
                  generator: Optional[torch.Generator] = None) -> Posterior:
        """Encode once and draw one z. Reuse the result for the discrete step and the loss, so
        both see the same z (the paper samples z once per batch)."""
        mu, scale = self.encode(x)
        return Posterior(mu, scale, self.reparameterise(mu, scale, generator))

    @torch.no_grad()
    def represent(self, x: torch.Tensor) -> torch.Tensor:
        """The representation used for evaluation: the posterior mean (B, m)."""
        return self.encode(x)[0]

    def kl_per_item_dim(self, mu: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, sigma^2) || N(0, 1)) per item and dim, (B, m)."""
        if self.std_param == "softplus":
            return 0.5 * (mu * mu + scale * scale - 1.0) - self.posterior_log_std(scale)
        return 0.5 * (mu * mu + torch.exp(scale) - 1.0 - scale)

    @torch.no_grad()
    def evaluation_codes(self, x: torch.Tensor,
                         mu: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Each image's discrete code at evaluation, labels (B,) int64: here CascadeVAE's,
        z = mu and the argmax over k of log p(x | mu, e_k) without the pairwise term
        (:func:`cascadevae.models.discrete.evaluation_codes`). ``mu``: x's posterior means when
        already computed (saves an encoder pass; models that do not need it ignore it). Every
        metric and figure gets codes through this method."""
        if not self.has_discrete_code:
            raise ValueError(f"model {self.name!r} has no discrete code")
        from .discrete import evaluation_codes  # discrete imports this module
        return evaluation_codes(self, x, mu=mu)

    # ---- generation -----------------------------------------------------------------------
    def zero_code(self, batch: int, like: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The all-zero code (batch, S) the decoder gets before t_d (and always for S = 0)."""
        ref = like if like is not None else next(self.parameters())
        return torch.zeros(batch, self.num_classes, device=ref.device, dtype=ref.dtype)

    def decoder_input(self, z: torch.Tensor, d: Optional[torch.Tensor] = None) -> torch.Tensor:
        """concat(z, d) (B, m + S); d None means the all-zero code."""
        if d is None:
            d = self.zero_code(z.shape[0], like=z)
        if d.shape != (z.shape[0], self.num_classes):
            raise ValueError(f"code d has shape {tuple(d.shape)}; expected (B, S) = "
                             f"({z.shape[0]}, {self.num_classes})")
        return torch.cat([z, d.to(z.dtype)], dim=1)

    def decode(self, z: torch.Tensor, d: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(z (B, m), d (B, S) one-hot or zeros or None) -> Bernoulli logits (B, 1, H, W)."""
        return self.decoder(self.decoder_input(z, d))

    # ---- loss -----------------------------------------------------------------------------
    def resolve_betas(self, betas: Optional[BetasLike], like: torch.Tensor) -> torch.Tensor:
        """betas as a (m,) tensor on ``like``'s device; None means :meth:`fixed_betas`."""
        if betas is None:
            betas = self.fixed_betas()
            if betas is None:
                raise ValueError(f"model {self.name!r} uses the cascade schedule: pass the "
                                 "per-dim betas (m,) from cascadevae.schedule to loss_terms")
        betas = torch.as_tensor(betas, dtype=like.dtype, device=like.device)
        if betas.shape != (self.latent_dim,):
            raise ValueError(f"betas has shape {tuple(betas.shape)}; expected (m,) = "
                             f"({self.latent_dim},)")
        return betas

    def recon_loss(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Bernoulli NLL summed over pixels, averaged over the batch; accumulated in float32
        at least (bfloat16 logits under autocast are widened first)."""
        return F.binary_cross_entropy_with_logits(widen(logits), x, reduction="sum") / x.shape[0]

    def loss_terms(self, x: torch.Tensor, d: Optional[torch.Tensor] = None,
                   betas: Optional[BetasLike] = None, *,
                   posterior: Optional[Posterior] = None) -> Dict[str, torch.Tensor]:
        """The objective's terms for a batch x (B, 1, H, W).

        d: (B, S) one-hot codes from the discrete step, or None / zeros before t_d.
        betas: per-dim KL weights beta_j (m,), torch or numpy; None uses :meth:`fixed_betas`.
        posterior: the :meth:`posterior` already computed for x (pass it when the discrete
        step used its z, so the encoder runs once and both steps share z).

        Returns ``recon`` (Bernoulli NLL summed over pixels, batch mean), ``kl_per_dim`` (m,)
        (unweighted KL per dim, batch mean), ``kl`` (sum_j beta_j kl_per_dim[j]), any extra
        terms of the subclass, and ``loss`` = recon + kl + extras (except the extras named in
        ``diagnostic_terms``, which are reported only).
        """
        if posterior is None:
            posterior = self.posterior(x)
        logits = self.decode(posterior.z, d)
        recon = self.recon_loss(logits, x)
        kl_per_dim = self.kl_per_item_dim(posterior.mu, posterior.scale).mean(dim=0)
        kl = (self.resolve_betas(betas, kl_per_dim) * kl_per_dim).sum()
        terms = {"recon": recon, "kl_per_dim": kl_per_dim, "kl": kl}
        extra = self.extra_loss_terms(x, posterior, d, logits)
        loss = recon + kl
        for key, value in extra.items():
            if key not in self.diagnostic_terms:
                loss = loss + value
        terms.update(extra)
        terms["loss"] = loss
        return terms

    # ---- hooks for models with more terms or optimisers -----------------------------------
    def set_iteration(self, t: int) -> None:
        """The update index t (from 0) about to be made; the trainer calls this before every
        update, so a resumed run sets it again and nothing of it is checkpointed. Read by
        models whose loss depends on t (JointVAE's capacities)."""
        self.iteration = int(t)

    def extra_loss_terms(self, x: torch.Tensor, posterior: Posterior, d: Optional[torch.Tensor],
                         logits: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Named scalar terms added to the loss (e.g. JointVAE's capacity terms, FactorVAE's
        TC penalty), plus reported-only ones named in ``diagnostic_terms``. None here."""
        return {}

    def extra_modules(self) -> Dict[str, nn.Module]:
        """Modules trained by their own optimiser (e.g. FactorVAE's discriminator). None here."""
        return {}

    def extra_optimizer_specs(self) -> Dict[str, Dict[str, Any]]:
        """For each :meth:`extra_modules` entry, the keyword arguments of its torch.optim.Adam
        (the trainer builds, checkpoints and restores one optimiser per entry)."""
        return {}

    def extra_update(self, posterior: Posterior, optimizers: Dict[str, torch.optim.Optimizer],
                     draw_batch: Callable[[], torch.Tensor],
                     generator: Optional[torch.Generator] = None) -> Dict[str, float]:
        """Train the extra modules; the trainer calls it right after the VAE's optimiser step
        of the same update. ``posterior`` is the one the VAE loss used: its graph is freed and
        the parameters it came from have changed, so use ``posterior.z.detach()``.
        ``optimizers``: one per :meth:`extra_modules` entry; ``draw_batch()``: a further batch
        from the run's data order; ``generator``: the run's sampling generator (both are
        checkpointed, so a resumed run draws the same). Returns named floats for the log."""
        return {}

    def vae_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters for the main (VAE) optimiser: all except those of :meth:`extra_modules`."""
        extra = {id(p) for m in self.extra_modules().values() for p in m.parameters()}
        return (p for p in self.parameters() if id(p) not in extra)


class BetaVAE(VAE):
    """beta-VAE (Higgins et al., 2017): the same beta on every dim, no schedule."""
    name = "beta-vae"

    def fixed_betas(self) -> torch.Tensor:
        return torch.full((self.latent_dim,), self.config.beta)


class AnchorVAE(VAE):
    """AnchorVAE (Gao et al., 2018): beta_l on ``anchor_dims``, beta_h on the rest, fixed."""
    name = "anchor-vae"

    def fixed_betas(self) -> torch.Tensor:
        betas = torch.full((self.latent_dim,), self.config.beta_high)
        betas[list(self.config.anchor_dims)] = self.config.beta_low
        return betas


class CascadeVAEC(VAE):
    """CascadeVAE-C: information cascading (betas from beta_h to beta_l one dim per r
    iterations, from the schedule), no discrete code."""
    name = "cascade-c"
    uses_cascade_schedule = True


class CascadeVAED(VAE):
    """CascadeVAE-D: discrete code with the alternating step, one fixed beta on every dim."""
    name = "cascade-d"
    has_discrete_code = True
    uses_discrete_step = True

    def fixed_betas(self) -> torch.Tensor:
        return torch.full((self.latent_dim,), self.config.beta)


class CascadeVAE(VAE):
    """CascadeVAE (Algorithm 1): information cascading and the discrete code."""
    name = "cascade"
    uses_cascade_schedule = True
    has_discrete_code = True
    uses_discrete_step = True


class JointVAE(VAE):
    """JointVAE (Dupont, 2018): z plus one K-way categorical code c (K = ``num_classes``)
    encoded by the same network (K more outputs of its last layer) and sampled with a
    Gumbel-softmax relaxation at ``gumbel_temperature``; the decoder gets concat(z, c). The
    KL enters only through the capacity terms (the per-dim betas are 0)::

        loss = recon + gamma_z |KL_z - C_z(t)| + gamma_c |KL_c - C_c(t)|

    KL_z = sum_j KL(q(z_j|x) || N(0, 1)), KL_c = KL(q(c|x) || Uniform(K)) (batch means), C(t)
    linear from C_min to C_max over num_iters updates (:func:`.baseline_terms.linear_capacity`),
    the discrete C_max capped at log K. At evaluation the code is the argmax of the logits."""
    name = "joint-vae"
    has_discrete_code = True
    encodes_code_logits = True
    diagnostic_terms = ("kl_continuous", "kl_discrete", "capacity_target_continuous",
                        "capacity_target_discrete")

    def fixed_betas(self) -> torch.Tensor:
        return torch.zeros(self.latent_dim)

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


class FactorVAE(BetaVAE):
    """FactorVAE (Kim & Mnih, 2018): the VAE loss (beta = 1 in the presets) plus gamma times
    the density-ratio estimate of TC(z) from a discriminator D on z::

        loss = recon + beta KL + gamma * mean_i [D_0(z_i) - D_1(z_i)]      (gamma = tc_weight)

    D (2 logits: 0 = from q(z), 1 = dimension-wise permuted) is trained by its own Adam in
    :meth:`extra_update`, after the VAE step of the same update, on the VAE batch's z (detached)
    and the permuted z of a second batch (Kim & Mnih's Algorithm 1). The VAE loss runs D as a
    constant: its backward reaches z through D but computes no gradient for D's weights."""
    name = "factor-vae"
    diagnostic_terms = ("tc_estimate",)

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
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


class BetaTCVAE(VAE):
    """beta-TCVAE (Chen et al., 2018): the KL split into index-code MI, total correlation and
    dimension-wise KL, each estimated on the minibatch (:func:`.baseline_terms
    .kl_decomposition`, estimator ``tc_estimator``, dataset size N = ``dataset_size``)::

        loss = recon + alpha MI + beta TC + gamma dimKL   (mi_weight, tc_weight, dim_kl_weight)

    The analytic KL is not in the loss (the per-dim betas are 0); ``kl_per_dim`` still reports
    it."""
    name = "beta-tcvae"
    diagnostic_terms = ("mi_estimate", "tc_estimate", "dim_kl_estimate")

    def fixed_betas(self) -> torch.Tensor:
        return torch.zeros(self.latent_dim)

    def extra_loss_terms(self, x, posterior, d, logits):
        cfg = self.config
        parts = bt.kl_decomposition(posterior.z, posterior.mu,
                                    self.posterior_log_std(posterior.scale),
                                    cfg.dataset_size, cfg.tc_estimator)
        return {"mi_penalty": cfg.mi_weight * parts.mi, "tc_penalty": cfg.tc_weight * parts.tc,
                "dim_kl_penalty": cfg.dim_kl_weight * parts.dim_kl,
                "mi_estimate": parts.mi.detach(), "tc_estimate": parts.tc.detach(),
                "dim_kl_estimate": parts.dim_kl.detach()}


MODELS: Dict[str, Type[VAE]] = {cls.name: cls for cls in
                                (BetaVAE, AnchorVAE, CascadeVAEC, CascadeVAED, CascadeVAE,
                                 JointVAE, FactorVAE, BetaTCVAE)}
assert tuple(MODELS) == MODEL_NAMES


def build_model(config: ModelConfig) -> VAE:
    """The model named by ``config.model``, built from ``config``."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model takes a ModelConfig, got {type(config).__name__}; "
                        "use ModelConfig.from_dict for a dict")
    return MODELS[config.model](config)
