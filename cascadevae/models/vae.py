"""One VAE base class with a per-dim-weighted KL, and the paper's models as small overrides:
beta-VAE, AnchorVAE, CascadeVAE-C, CascadeVAE-D and CascadeVAE. :func:`build_model` is the one
place that turns a :class:`ModelConfig` into a model.

Loss (to minimise), for a batch of B images of P pixels and per-dim weights beta_j::

    loss = recon + kl (+ extra terms of subclasses)
    recon = (1/B) sum_i sum_p BCE(logit_ip, x_ip)                 Bernoulli NLL, pixel SUM
    kl    = sum_j beta_j * (1/B) sum_i KL(q(z_j | x_i) || N(0, 1))  dim SUM, batch mean

so beta is measured against a reconstruction summed over pixels (as the paper and the
official code do); a beta meant for a pixel-averaged reconstruction is P times smaller.
"""
from __future__ import annotations

from typing import Dict, Iterator, NamedTuple, Optional, Type, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import MODEL_NAMES, ModelConfig
from .networks import Decoder, Encoder

BetasLike = Union[torch.Tensor, np.ndarray, "list[float]"]


class Posterior(NamedTuple):
    """q_phi(z | x) for a batch: mean (B, m), scale in the model's ``std_param``
    parameterisation (std for "softplus", log sigma^2 for "logvar") and one sample z (B, m)."""
    mu: torch.Tensor
    scale: torch.Tensor
    z: torch.Tensor


class VAE(nn.Module):
    """Gaussian-posterior, Bernoulli-decoder VAE whose KL has one weight beta_j per latent dim.

    Variants override the class attributes and :meth:`fixed_betas`:

    * ``uses_cascade_schedule``: the per-dim betas come from the cascade schedule
      (``cascadevae.schedule``); the training loop passes them to :meth:`loss_terms`.
    * ``has_discrete_code``: the decoder also takes a one-hot discrete code d of size S, found
      by the alternating step of :mod:`cascadevae.models.discrete` after the warm-up t_d.

    Hooks for models with more terms (JointVAE, FactorVAE; not implemented here):
    :meth:`extra_loss_terms` adds named terms to the loss, :meth:`extra_modules` names modules
    trained by their own optimiser (e.g. a discriminator), and :meth:`vae_parameters` are the
    parameters for the main optimiser.
    """

    name: str = "vae"
    uses_cascade_schedule: bool = False
    has_discrete_code: bool = False

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
        self.encoder = Encoder(config.image_size, config.latent_dim)
        self.decoder = Decoder(config.image_size, config.latent_dim, config.num_classes)

    # ---- the per-variant hook -------------------------------------------------------------
    def fixed_betas(self) -> Optional[torch.Tensor]:
        """Per-dim betas (m,) of a model without a schedule; None when they come from the
        cascade schedule and must be passed to :meth:`loss_terms`."""
        return None

    # ---- inference ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor):
        """x (B, 1, H, W) in [0, 1] -> (mu, scale), each (B, m). scale is the std for
        ``std_param="softplus"`` (std = softplus(raw)) and log sigma^2 for ``"logvar"``."""
        h = self.encoder(x)
        mu, raw = h[:, :self.latent_dim], h[:, self.latent_dim:]
        if self.std_param == "softplus":
            return mu, F.softplus(raw)
        return mu, raw

    def posterior_std(self, scale: torch.Tensor) -> torch.Tensor:
        """sigma from :meth:`encode`'s second output."""
        return scale if self.std_param == "softplus" else torch.exp(0.5 * scale)

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
            # log(sigma) clamped away from 0 only where softplus itself underflows (raw < -100).
            log_std = torch.log(scale.clamp_min(torch.finfo(scale.dtype).tiny))
            return 0.5 * (mu * mu + scale * scale - 1.0) - log_std
        return 0.5 * (mu * mu + torch.exp(scale) - 1.0 - scale)

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
        """Bernoulli NLL summed over pixels, averaged over the batch."""
        return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]

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
        terms of the subclass, and ``loss`` = recon + kl + extras.
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
            loss = loss + value
        terms.update(extra)
        terms["loss"] = loss
        return terms

    # ---- hooks for models with more terms or optimisers -----------------------------------
    def extra_loss_terms(self, x: torch.Tensor, posterior: Posterior, d: Optional[torch.Tensor],
                         logits: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Named scalar terms added to the loss (e.g. JointVAE's capacity terms, FactorVAE's
        TC estimate). None here."""
        return {}

    def extra_modules(self) -> Dict[str, nn.Module]:
        """Modules trained by their own optimiser (e.g. FactorVAE's discriminator). None here."""
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

    def fixed_betas(self) -> torch.Tensor:
        return torch.full((self.latent_dim,), self.config.beta)


class CascadeVAE(VAE):
    """CascadeVAE (Algorithm 1): information cascading and the discrete code."""
    name = "cascade"
    uses_cascade_schedule = True
    has_discrete_code = True


MODELS: Dict[str, Type[VAE]] = {cls.name: cls for cls in
                                (BetaVAE, AnchorVAE, CascadeVAEC, CascadeVAED, CascadeVAE)}
assert tuple(MODELS) == MODEL_NAMES


def build_model(config: ModelConfig) -> VAE:
    """The model named by ``config.model``, built from ``config``."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model takes a ModelConfig, got {type(config).__name__}; "
                        "use ModelConfig.from_dict for a dict")
    return MODELS[config.model](config)
