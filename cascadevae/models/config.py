"""The model section of a run's config: one frozen dataclass per model, which each model class
declares as its ``Config`` (see :mod:`.registry`), built from the field groups below. The
section is nested in the run's :class:`cascadevae.config.TrainConfig` and is the only place a
model hyperparameter lives; a model carries exactly the fields it uses.

Field groups (each model's ``Config`` inherits the ones it needs):

* :class:`ModelConfig` (every model): ``latent_dim`` (m), ``std_param``.
* :class:`CodeFields`: ``num_classes`` (S >= 2), the discrete code's size.
* :class:`CascadeFields`: ``beta_high`` (beta_h), ``beta_low`` (beta_l), ``relieve_every``
  (r), ``schedule_variant`` ("paper": Algorithm 1; "official": the authors' code's counting).
* :class:`DiscreteStepFields`: ``discrete_warmup`` (t_d) and ``pairwise_lambda_official``
  (lambda' as the appendix and the official code give it, over *unordered* pairs).
  :attr:`DiscreteStepFields.pairwise_lambda` is lambda' over ordered pairs, the paper's eq. (6)
  and what ``cascadevae_ext.assign`` takes: the one place the appendix value is converted.
* :class:`BetaFields`: one ``beta`` on every dim.
* :class:`AnchorFields`: ``beta_high``, ``beta_low`` and ``anchor_dims``.
* the baselines' groups (:class:`JointFields`, :class:`FactorFields`, :class:`TCFields`).

beta and the loss scale: every beta multiplies a KL divergence summed over latent dims and
averaged over the batch, against a Bernoulli NLL *summed* over pixels and averaged over the
batch. A beta meant for a pixel-averaged reconstruction over P pixels is beta * P here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Dict, Optional, Tuple

from .. import validate as v
from ..assignment import lam_from_official
from ..schedule import VARIANTS, AnchorSchedule, CascadeSchedule, ConstantSchedule, Schedule

#: Input sizes with a network table in the paper's appendix B (Table 5: 64, Table 6: 32).
IMAGE_SIZES = (32, 64)
#: Posterior std parameterisations: "softplus" (std = softplus(raw), the official code's) or
#: "logvar" (the head is log sigma^2; Dupont's JointVAE convention).
STD_PARAMS = ("softplus", "logvar")
#: beta-TCVAE's estimators of q(z): minibatch-weighted and minibatch stratified sampling.
TC_ESTIMATORS = ("mws", "mss")

#: field -> its check (value, name) -> normalised value; one table for every model's fields
FIELD_CHECKS = {
    "latent_dim": lambda x, n: v.count(x, n, 1),
    "std_param": lambda x, n: v.choice(x, n, STD_PARAMS),
    "num_classes": lambda x, n: v.count(x, n, 2),
    "beta_high": v.number, "beta_low": v.number, "beta": v.number,
    "relieve_every": lambda x, n: v.count(x, n, 1),
    "schedule_variant": lambda x, n: v.choice(x, n, VARIANTS),
    "discrete_warmup": lambda x, n: v.count(x, n, 0),
    "pairwise_lambda_official": v.number,
    "anchor_dims": v.dims,
    "capacity_continuous": v.capacity, "capacity_discrete": v.capacity,
    "gumbel_temperature": lambda x, n: v.number(x, n, positive=True),
    "tc_weight": v.number, "mi_weight": v.number, "dim_kl_weight": v.number,
    "discriminator_hidden": lambda x, n: v.count(x, n, 1),
    "discriminator_layers": lambda x, n: v.count(x, n, 2),
    "discriminator_learning_rate": lambda x, n: v.number(x, n, positive=True),
    "discriminator_adam_betas": v.adam_betas,
    "tc_estimator": lambda x, n: v.choice(x, n, TC_ESTIMATORS),
    "dataset_size": lambda x, n: v.optional(v.count, x, n, 2),
}


@dataclass(frozen=True)
class ModelConfig:
    """The fields every model has: ``latent_dim`` (m, continuous dims z_1..z_m) and
    ``std_param`` (how the encoder's second head becomes the posterior std; every model takes
    the same default so that differences come from the method). Subclasses add field groups;
    ``model_name`` is set by :func:`cascadevae.models.registry.register`."""

    latent_dim: int = 10
    std_param: str = "softplus"

    model_name: ClassVar[str] = ""
    #: how the per-dim betas come about: "cascade", "constant", "anchor" or "none" (the model
    #: weights its KL itself; the schedule's betas are 0)
    schedule_kind: ClassVar[str] = "none"

    def __post_init__(self) -> None:
        label = self.model_name or type(self).__name__
        for f in dataclasses.fields(self):
            check = FIELD_CHECKS.get(f.name)
            if check is not None:
                object.__setattr__(self, f.name, check(getattr(self, f.name),
                                                       f"{label}.{f.name}"))
        if "anchor_dims" in self.field_names():
            v.dims(self.anchor_dims, f"{label}.anchor_dims", self.latent_dim)
        self.schedule()  # cross-field checks (beta_l <= beta_h, t_d in whole stages, ...)

    # -- fields -------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **overrides: Any) -> "ModelConfig":
        """A validated copy with some fields changed; a name this model does not have raises
        ValueError listing the ones it has."""
        unknown = sorted(set(overrides) - set(self.field_names()))
        if unknown:
            raise ValueError(f"model {self.model_name!r} has no fields {unknown}; its fields: "
                             f"{', '.join(self.field_names())}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> Dict[str, Any]:
        """``{"name": model name, field: value, ...}``, JSON-safe (tuples as lists)."""
        out: Dict[str, Any] = {"name": self.model_name}
        for n in self.field_names():
            value = getattr(self, n)
            out[n] = list(value) if isinstance(value, tuple) else value
        return out

    # -- derived ------------------------------------------------------------------------------
    @property
    def discrete_warmup_or_none(self) -> Optional[int]:
        """t_d for a model with the alternating step, None for the others."""
        return getattr(self, "discrete_warmup", None)

    def schedule(self) -> Schedule:
        """The beta / discrete-step schedule of these fields (``schedule_kind``)."""
        t_d = self.discrete_warmup_or_none
        kind = self.schedule_kind
        if kind == "cascade":
            return CascadeSchedule(self.latent_dim, self.beta_high, self.beta_low,
                                   self.relieve_every, t_d, self.schedule_variant)
        if kind == "anchor":
            return AnchorSchedule(self.latent_dim, self.anchor_dims, self.beta_high,
                                  self.beta_low, t_d)
        if kind == "constant":
            return ConstantSchedule(self.latent_dim, self.beta, t_d)
        return ConstantSchedule(self.latent_dim, 0.0, t_d)

    def scaled(self, factor: float) -> Tuple["ModelConfig", Dict[str, Tuple[Any, Any]]]:
        """A copy whose iteration counts (r, t_d, capacity num_iters) are scaled by ``factor``,
        and {field: (old, new)} of what changed. r and num_iters round to at least 1; a t_d
        that is a whole number of stages stays one, so the official counting carries over."""
        changes: Dict[str, Any] = {}
        r_old = getattr(self, "relieve_every", None)
        r_new = max(1, round(r_old * factor)) if r_old is not None else None
        if r_old is not None:
            changes["relieve_every"] = r_new
        td = self.discrete_warmup_or_none
        if td is not None:
            if r_old is not None and td % r_old == 0:
                changes["discrete_warmup"] = (td // r_old) * r_new
            else:
                changes["discrete_warmup"] = round(td * factor)
        for name in ("capacity_continuous", "capacity_discrete"):
            cap = getattr(self, name, None)
            if cap is not None:
                changes[name] = (cap[0], cap[1], max(1, round(cap[2] * factor)), cap[3])
        report = {k: (getattr(self, k), new) for k, new in changes.items()}
        return self.replace(**changes), report


@dataclass(frozen=True)
class CodeFields:
    """A discrete code d of S = ``num_classes`` values (one-hot at the decoder input)."""
    num_classes: int = 3


@dataclass(frozen=True)
class CascadeFields:
    """Information cascading: every dim starts at beta_h and one is relieved to beta_l every r
    updates (:class:`cascadevae.schedule.CascadeSchedule`)."""
    beta_high: float = 10.0
    beta_low: float = 1.0
    relieve_every: int = 20_000
    schedule_variant: str = "paper"
    schedule_kind: ClassVar[str] = "cascade"


@dataclass(frozen=True)
class DiscreteStepFields:
    """The alternating discrete step: from update t_d = ``discrete_warmup`` on, the codes come
    from the exact assignment with lambda'; before it the decoder gets all-zero codes."""
    discrete_warmup: int = 0
    pairwise_lambda_official: float = 0.001

    @property
    def pairwise_lambda(self) -> float:
        """lambda' over ordered pairs (eq. 6; what ``cascadevae_ext.assign`` takes), converted
        from ``pairwise_lambda_official`` here and nowhere else: pass it on unchanged."""
        return lam_from_official(self.pairwise_lambda_official)


@dataclass(frozen=True)
class BetaFields:
    """One KL weight beta on every dim."""
    beta: float = 4.0
    schedule_kind: ClassVar[str] = "constant"


@dataclass(frozen=True)
class AnchorFields:
    """AnchorVAE: beta_l on ``anchor_dims``, beta_h on the rest, fixed."""
    beta_high: float = 10.0
    beta_low: float = 7.0
    anchor_dims: Tuple[int, ...] = (0,)
    schedule_kind: ClassVar[str] = "anchor"


@dataclass(frozen=True)
class JointFields:
    """JointVAE (Dupont, 2018): capacities [C_min, C_max, num_iters, gamma] for the continuous
    and the categorical KL (loss gamma |KL - C(t)|, C rising linearly; the discrete C_max is
    capped at log K) and the Gumbel-softmax temperature tau."""
    capacity_continuous: Tuple[float, float, int, float] = (0.0, 5.0, 25_000, 30.0)
    capacity_discrete: Tuple[float, float, int, float] = (0.0, 5.0, 25_000, 30.0)
    gumbel_temperature: float = 0.67


@dataclass(frozen=True)
class FactorFields:
    """FactorVAE (Kim & Mnih, 2018): gamma = ``tc_weight`` on the discriminator's TC estimate;
    the discriminator is an MLP of ``discriminator_layers`` linear layers of
    ``discriminator_hidden`` units with its own Adam."""
    tc_weight: float = 35.0
    discriminator_hidden: int = 1000
    discriminator_layers: int = 6
    discriminator_learning_rate: float = 1e-4
    discriminator_adam_betas: Tuple[float, float] = (0.5, 0.9)


@dataclass(frozen=True)
class TCFields:
    """beta-TCVAE (Chen et al., 2018): alpha = ``mi_weight``, beta = ``tc_weight``, gamma =
    ``dim_kl_weight``, the minibatch estimator of q(z) and N = ``dataset_size`` (None: the
    trainer fills in the training set's size)."""
    mi_weight: float = 1.0
    tc_weight: float = 6.0
    dim_kl_weight: float = 1.0
    tc_estimator: str = "mws"
    dataset_size: Optional[int] = None
