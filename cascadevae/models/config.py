"""ModelConfig: the single source of a model's hyperparameters (architecture, betas, discrete
code, lambda', the baselines' own weights). Picklable, and round-trips through a plain dict for
the run directory.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
import numbers
from typing import Any, Dict, Mapping, Optional, Tuple

from ..assignment import lam_from_official

#: Model names accepted by :func:`cascadevae.models.build_model`.
MODEL_NAMES = ("beta-vae", "anchor-vae", "cascade-c", "cascade-d", "cascade",
               "joint-vae", "factor-vae", "beta-tcvae")
#: Input sizes with a network table in the paper's appendix B (Table 5: 64, Table 6: 32).
IMAGE_SIZES = (32, 64)
#: Posterior std parameterisations (see :class:`ModelConfig`).
STD_PARAMS = ("softplus", "logvar")
#: beta-TCVAE's estimators of q(z) (see :func:`cascadevae.models.baseline_terms
#: .log_importance_weights`): minibatch-weighted and minibatch stratified sampling.
TC_ESTIMATORS = ("mws", "mss")
#: The baselines' own fields, by model. Each is required (not None) for its model and must be
#: None for every other model, so a config never carries a value that silently does nothing.
BASELINE_FIELDS: Dict[str, Tuple[str, ...]] = {
    "joint-vae": ("capacity_continuous", "capacity_discrete", "gumbel_temperature"),
    "factor-vae": ("tc_weight", "discriminator_hidden", "discriminator_layers",
                   "discriminator_learning_rate", "discriminator_adam_betas"),
    "beta-tcvae": ("mi_weight", "tc_weight", "dim_kl_weight", "tc_estimator", "dataset_size"),
}
ALL_BASELINE_FIELDS: Tuple[str, ...] = tuple(dict.fromkeys(
    n for names in BASELINE_FIELDS.values() for n in names))


def _finite_nonneg(value: Any, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} = {value!r} must be a number") from None
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise ValueError(f"{name} = {value!r} must be a finite number >= 0")
    return value


# ---- validators shared with cascadevae.presets.TrainConfig (``name`` says whose field) -------

def check_number(value: Any, name: str, positive: bool = False) -> float:
    """A finite real >= 0 (> 0 with ``positive``) as a float; bools are not numbers here."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok:
        value = float(value)
        ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise ValueError(f"{name} = {value!r}: expected a finite number "
                         f"{'> 0' if positive else '>= 0'}")
    return value


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum``; bools are not integers here."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} = {value!r}: expected an integer >= {minimum}")
    return int(value)


def check_adam_betas(value: Any, name: str) -> Tuple[float, float]:
    """Adam's (beta1, beta2): two numbers in [0, 1)."""
    if (isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2
            or not all(isinstance(b, numbers.Real) and not isinstance(b, bool)
                       and 0.0 <= float(b) < 1.0 for b in value)):
        raise ValueError(f"{name} = {value!r}: expected two numbers in [0, 1)")
    return float(value[0]), float(value[1])


def check_capacity(value: Any, name: str) -> Tuple[float, float, int, float]:
    """JointVAE's capacity schedule [C_min, C_max, num_iters, gamma] as a tuple: capacities in
    nats with 0 <= C_min <= C_max, num_iters an integer >= 1, gamma >= 0."""
    want = ("expected [C_min, C_max, num_iters, gamma] with 0 <= C_min <= C_max (nats), "
            "num_iters an integer >= 1 and gamma >= 0")
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 4:
        raise ValueError(f"{name} = {value!r}: {want}")
    try:
        c_min, c_max = check_number(value[0], name), check_number(value[1], name)
        num_iters, gamma = check_count(value[2], name), check_number(value[3], name)
    except ValueError:
        raise ValueError(f"{name} = {value!r}: {want}") from None
    if c_max < c_min:
        raise ValueError(f"{name} = {value!r}: {want}")
    return c_min, c_max, num_iters, gamma


def check_baseline_fields(obj: Any, model: str, label: str, optional: Tuple[str, ...] = ()):
    """Check and normalise the baseline fields of ``obj`` (a ModelConfig or TrainConfig) for
    ``model``: its own fields set (except those in ``optional``), every other one None.
    Returns {field: normalised value} for the fields that are set."""
    own = BASELINE_FIELDS.get(model, ())
    unused = [n for n in ALL_BASELINE_FIELDS if n not in own and getattr(obj, n) is not None]
    if unused:
        raise ValueError(f"{label}: model {model!r} does not use {unused}; set them to None")
    missing = [n for n in own if n not in optional and getattr(obj, n) is None]
    if missing:
        raise ValueError(f"{label}: model {model!r} needs {missing} (got None)")
    return {n: _FIELD_CHECKS[n](getattr(obj, n), f"{label}.{n}")
            for n in own if getattr(obj, n) is not None}


def _check_estimator(value: Any, name: str) -> str:
    if value not in TC_ESTIMATORS:
        raise ValueError(f"{name} = {value!r}: expected one of {TC_ESTIMATORS}")
    return value


_FIELD_CHECKS = {
    "capacity_continuous": check_capacity,
    "capacity_discrete": check_capacity,
    "gumbel_temperature": lambda v, n: check_number(v, n, positive=True),
    "tc_weight": check_number,
    "discriminator_hidden": check_count,
    "discriminator_layers": lambda v, n: check_count(v, n, 2),
    "discriminator_learning_rate": lambda v, n: check_number(v, n, positive=True),
    "discriminator_adam_betas": check_adam_betas,
    "mi_weight": check_number,
    "dim_kl_weight": check_number,
    "tc_estimator": _check_estimator,
    "dataset_size": lambda v, n: check_count(v, n, 2),
}
assert set(_FIELD_CHECKS) == set(ALL_BASELINE_FIELDS)


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
            convention, which the paper's architecture follows). Every model, the baselines
            included, takes the same default, so that differences come from the method.
        pairwise_lambda_official: lambda' as the appendix and the official code give it
            (0.001 dSprites, 0.1 MNIST/FashionMNIST, 0.01 Chairs). That code's penalty counts
            *unordered* pairs; :attr:`pairwise_lambda` converts it (once) to the ordered-pair
            lambda' of the paper's eq. (6), which is what the solver takes.

    The baselines' own fields (None for every other model; see ``BASELINE_FIELDS``):

        capacity_continuous, capacity_discrete: JointVAE's [C_min, C_max, num_iters, gamma]
            for the continuous (z) and the categorical (c) KL: the loss has
            gamma |KL - C(t)| with C(t) rising linearly from C_min to C_max over num_iters
            updates; the discrete C_max is capped at log K (K = ``num_classes``).
        gumbel_temperature: JointVAE's Gumbel-softmax temperature tau (Dupont: 0.67, fixed).
        tc_weight: the weight of the total-correlation term: FactorVAE's gamma, beta-TCVAE's
            beta.
        discriminator_hidden, discriminator_layers: FactorVAE's discriminator, an MLP of
            ``discriminator_layers`` linear layers (the last gives 2 logits) of
            ``discriminator_hidden`` units (Kim & Mnih: 6 and 1000).
        discriminator_learning_rate, discriminator_adam_betas: its own Adam optimiser
            (Kim & Mnih: 1e-4, (0.5, 0.9)).
        mi_weight, dim_kl_weight: beta-TCVAE's alpha (on the index-code MI) and gamma (on the
            dimension-wise KL).
        tc_estimator: beta-TCVAE's minibatch estimator of q(z), one of ``TC_ESTIMATORS``.
        dataset_size: N, the number of training images, for beta-TCVAE's estimator. Always
            explicit: never derived from a loss weight or the batch.

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
    capacity_continuous: Optional[Tuple[float, float, int, float]] = None
    capacity_discrete: Optional[Tuple[float, float, int, float]] = None
    gumbel_temperature: Optional[float] = None
    tc_weight: Optional[float] = None
    discriminator_hidden: Optional[int] = None
    discriminator_layers: Optional[int] = None
    discriminator_learning_rate: Optional[float] = None
    discriminator_adam_betas: Optional[Tuple[float, float]] = None
    mi_weight: Optional[float] = None
    dim_kl_weight: Optional[float] = None
    tc_estimator: Optional[str] = None
    dataset_size: Optional[int] = None

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
        for name, value in check_baseline_fields(self, self.model, "ModelConfig").items():
            setattr(self, name, value)

    @property
    def pairwise_lambda(self) -> float:
        """lambda' in the ordered-pair convention of eq. (6) and ``cascadevae_ext.assign``:
        ``lam_from_official(pairwise_lambda_official)``. This is the one place where the
        appendix value is converted; pass the result on unchanged."""
        return lam_from_official(self.pairwise_lambda_official)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready dict of the fields (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a typo must not be lost)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}; known: {sorted(names)}")
        return cls(**dict(values))
