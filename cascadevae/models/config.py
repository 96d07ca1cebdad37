"""ModelConfig: the single source of a model's hyperparameters (architecture, betas, discrete
code, lambda'). Picklable, and round-trips through a plain dict for the run directory.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Tuple

from ..assignment import lam_from_official

#: Model names accepted by :func:`cascadevae.models.build_model`.
MODEL_NAMES = ("beta-vae", "anchor-vae", "cascade-c", "cascade-d", "cascade")
#: Input sizes with a network table in the paper's appendix B (Table 5: 64, Table 6: 32).
IMAGE_SIZES = (32, 64)
#: Posterior std parameterisations (see :class:`ModelConfig`).
STD_PARAMS = ("softplus", "logvar")


def _finite_nonneg(value: Any, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} = {value!r} must be a number") from None
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{name} = {value!r} must be a finite number >= 0")
    return value


@dataclass
class ModelConfig:
    """Hyperparameters of one model, in the paper's symbols.

    Attributes:
        model: one of ``MODEL_NAMES``: ``"beta-vae"`` (one beta on every dim),
            ``"anchor-vae"`` (beta_l on ``anchor_dims``, beta_h on the rest, fixed),
            ``"cascade-c"`` (information cascading, no discrete code), ``"cascade-d"``
            (discrete code, one fixed beta) and ``"cascade"`` (both; the paper's CascadeVAE).
        image_size: 64 (dSprites, Chairs: appendix B Table 5) or 32 (MNIST and FashionMNIST
            resized to 32x32: Table 6). Images are one channel in [0, 1].
        latent_dim: m, the number of continuous latent dims z_1..z_m.
        num_classes: S, the number of values of the discrete code d (one-hot at the decoder
            input). 0 for models without a discrete code; >= 2 for cascade-d / cascade.
        beta_high: beta_h, the KL weight of a dim that is not yet relieved (cascade models)
            or not an anchor (anchor-vae). The appendix fixes it at 10.
        beta_low: beta_l, the KL weight of a relieved dim (cascade models) or an anchor dim.
        beta: the single beta of the fixed-beta models (beta-vae, cascade-d); unused by the
            others.
        anchor_dims: indices of the dims at beta_l in AnchorVAE (Gao et al., 2018).
        std_param: how the encoder's second output head becomes the posterior std:
            ``"softplus"`` -- std = softplus(raw), as the official code does (default);
            ``"logvar"`` -- the head is log sigma^2 and std = exp(raw / 2) (Dupont's JointVAE
            convention, which the paper's architecture follows).
        pairwise_lambda_official: lambda' as the appendix and the official code give it
            (0.001 dSprites, 0.1 MNIST/FashionMNIST, 0.01 Chairs). That code's penalty counts
            *unordered* pairs; :attr:`pairwise_lambda` converts it (once) to the ordered-pair
            lambda' of the paper's eq. (6), which is what the solver takes.

    beta and the loss scale: every beta multiplies a KL divergence that is summed over latent
    dims (with per-dim weights beta_j) and averaged over the batch, and the reconstruction
    term is a Bernoulli NLL *summed* over pixels and averaged over the batch. A beta taken
    from a setup that averages the reconstruction over P pixels corresponds to beta * P here.
    """

    model: str = "beta-vae"
    image_size: int = 64
    latent_dim: int = 10
    num_classes: int = 0
    beta_high: float = 10.0
    beta_low: float = 1.0
    beta: float = 4.0
    anchor_dims: Tuple[int, ...] = field(default_factory=tuple)
    std_param: str = "softplus"
    pairwise_lambda_official: float = 0.001

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model = {self.model!r} is not known; use one of {MODEL_NAMES}")
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size = {self.image_size!r} has no network table; use "
                             f"one of {IMAGE_SIZES} (resize 28x28 MNIST to 32x32)")
        if not isinstance(self.latent_dim, int) or self.latent_dim < 1:
            raise ValueError(f"latent_dim (m) = {self.latent_dim!r} must be an int >= 1")
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"num_classes (S) = {self.num_classes!r} must be an int >= 0")
        self.beta_high = _finite_nonneg(self.beta_high, "beta_high (beta_h)")
        self.beta_low = _finite_nonneg(self.beta_low, "beta_low (beta_l)")
        self.beta = _finite_nonneg(self.beta, "beta")
        self.pairwise_lambda_official = _finite_nonneg(
            self.pairwise_lambda_official, "pairwise_lambda_official (lambda')")
        if self.std_param not in STD_PARAMS:
            raise ValueError(f"std_param = {self.std_param!r}; use one of {STD_PARAMS}")
        dims = tuple(int(j) for j in self.anchor_dims)
        bad = [j for j in dims if not 0 <= j < self.latent_dim]
        if bad or len(set(dims)) != len(dims):
            raise ValueError(f"anchor_dims = {self.anchor_dims!r} must be distinct indices in "
                             f"[0, latent_dim = {self.latent_dim})")
        self.anchor_dims = dims

    @property
    def pairwise_lambda(self) -> float:
        """lambda' in the ordered-pair convention of eq. (6) and ``cascadevae_ext.assign``:
        ``lam_from_official(pairwise_lambda_official)``. This is the one place where the
        appendix value is converted; pass the result on unchanged."""
        return lam_from_official(self.pairwise_lambda_official)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready dict of the fields (anchor_dims as a list)."""
        out = dataclasses.asdict(self)
        out["anchor_dims"] = list(self.anchor_dims)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a typo must not be lost)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}; known: {sorted(names)}")
        return cls(**dict(values))
