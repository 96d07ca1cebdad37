"""The VAE base class of every model: a Gaussian posterior, a Bernoulli decoder, and a KL with
one weight per latent dim. The paper's models (:mod:`.paper`) and the baselines
(:mod:`.baselines`) are small overrides; :func:`.registry.build_model` builds any of them.

Loss (to minimise), for a batch of B images of P pixels and per-dim weights beta_j::

    loss = recon + kl (+ extra terms of subclasses)
    recon = (1/B) sum_i sum_p BCE(logit_ip, x_ip)                 Bernoulli NLL, pixel SUM
    kl    = sum_j beta_j * (1/B) sum_i KL(q(z_j | x_i) || N(0, 1))  dim SUM, batch mean

so beta is measured against a reconstruction summed over pixels (as the paper and the
official code do); a beta meant for a pixel-averaged reconstruction is P times smaller.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, NamedTuple, Optional, Tuple, Type, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import IMAGE_SIZES, ModelConfig
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

    A model is a small subclass that declares its traits as class attributes (the registry,
    :mod:`.registry`, derives every table of models from them):

    * ``name``, ``label``: the model's config name and its name in reports;
    * ``Config``: its section of the run's config (a :class:`.config.ModelConfig` subclass made
      of the field groups it uses; ``Config.schedule_kind`` says where the betas come from);
    * ``has_discrete_code``: the decoder also takes a discrete code d of size S, and
      :meth:`evaluation_codes` gives each image's code at evaluation;
    * ``uses_discrete_step``: d comes from the alternating step of
      :mod:`cascadevae.models.discrete` after the warm-up t_d. A model with a code but without
      the step encodes and samples its own code (``encodes_code_logits``: JointVAE);
    * ``supports_device_step``: :mod:`cascadevae.device_step` reproduces its update (no extra
      optimiser, no iteration-dependent term).

    :meth:`decoder_code` is the one answer to "which code does the decoder get at update t".

    Hooks for models with more terms: :meth:`extra_loss_terms` adds named terms to the loss
    (the names in ``diagnostic_terms`` are only reported), :meth:`set_iteration` tells the
    model the update index t, :meth:`extra_modules` names modules trained by their own
    optimiser (e.g. a discriminator) with :meth:`extra_optimizer_specs` and
    :meth:`extra_update`, and :meth:`vae_parameters` are the parameters for the main optimiser.
    """

    name: str = "vae"
    label: str = "VAE"
    Config: Type[ModelConfig] = ModelConfig
    has_discrete_code: bool = False
    uses_discrete_step: bool = False
    encodes_code_logits: bool = False
    supports_device_step: bool = False
    diagnostic_terms: Tuple[str, ...] = ()

    def __init__(self, config: ModelConfig, image_size: int) -> None:
        super().__init__()
        if not isinstance(config, self.Config):
            raise TypeError(f"model {self.name!r} takes a {self.Config.__qualname__}, got "
                            f"{type(config).__qualname__}")
        if image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size = {image_size!r} has no network table; use one of "
                             f"{IMAGE_SIZES} (resize 28x28 MNIST to 32x32)")
        self.config = config
        self.image_size = int(image_size)
        self.latent_dim = config.latent_dim
        self.num_classes = getattr(config, "num_classes", 0)
        self.std_param = config.std_param
        self.schedule = config.schedule()
        self.iteration = 0
        self.encoder = Encoder(self.image_size, config.latent_dim,
                               self.num_classes if self.encodes_code_logits else 0)
        self.decoder = Decoder(self.image_size, config.latent_dim, self.num_classes)

    @classmethod
    def report_label(cls, config: ModelConfig) -> str:
        """The hyperparameter that distinguishes this model's rows in a report."""
        return ""

    # ---- which code the decoder gets ------------------------------------------------------
    def code_active(self, t: Optional[int]) -> bool:
        """Whether the code carries information at update t: always for a model that samples
        its own code, from t_d on for the alternating step, never without a code. Before
        that the decoder only ever sees (and so only ever gets) the all-zero code. t None:
        a trained model (active whenever there is a code)."""
        if not self.has_discrete_code:
            return False
        return t is None or not self.uses_discrete_step or self.schedule.discrete_on(t)

    def decoder_code(self, x: torch.Tensor, z: torch.Tensor, t: Optional[int], *, train: bool,
                     method: str = "auto", loglik_variant: str = "fast",
                     mu: Optional[torch.Tensor] = None) -> Optional[torch.Tensor]:
        """The code d (B, S) the decoder gets with z at update t.

        ``train=True`` (a training update, z sampled): the alternating step's optimal codes
        once the code is active (exact assignment with lambda', ``method`` and
        ``loglik_variant`` passed on), else zeros; None for a model that samples its own code
        (``loss_terms`` then uses the posterior's). ``train=False`` (figures, monitor): the
        one-hot evaluation codes of x (``mu``: its posterior means, if computed) once active,
        else zeros. A model without a code gets the empty (B, 0) code."""
        from .discrete import discrete_step  # discrete imports this module
        if not self.has_discrete_code or not self.code_active(t):
            return self.zero_code(x.shape[0], like=z)
        if train:
            if not self.uses_discrete_step:
                return None
            return discrete_step(self, x, z, method=method, loglik_variant=loglik_variant).codes
        labels = self.evaluation_codes(x, mu=mu)
        return F.one_hot(labels, self.num_classes).to(z.dtype)

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
        """betas as a (m,) tensor on ``like``'s device; None means the schedule's at the
        model's current iteration (:meth:`set_iteration`)."""
        if betas is None:
            betas = self.schedule.betas(self.iteration)
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
        betas: per-dim KL weights beta_j (m,), torch or numpy; None uses the schedule's.
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
