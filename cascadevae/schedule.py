"""Per-dimension KL weights over training: the information cascade of CascadeVAE (section 6,
Algorithm 1) and the non-cascade schedules of the baselines, behind one small interface.

Every schedule is a frozen dataclass and a pure function of the iteration counter ``t`` and its
own fields, so a run resumed from a checkpoint (or rebuilt with :func:`schedule_from_dict`)
gets exactly the same betas and the same discrete switch.

Iteration counter
-----------------
``t`` counts parameter updates from 0: ``t`` is the index of the update about to be made
(equivalently, the number of updates already done). Algorithm 1 counts its loop from 1, so the
paper's iteration number is ``t + 1``; the official TensorFlow code counts from 0, as we do.

Variants of the cascade
-----------------------
``variant="paper"``: Algorithm 1 as written. At the top of each loop iteration, the line that
tests whether the iteration number is a multiple of r switches the next still-high beta to
beta_l before that iteration's update. The loop starts at 1, so the first dim is relieved at
the paper's iteration r (our ``t = r - 1``, the r-th update); after k multiples of r, k dims
are relieved. The alternating (discrete) step runs in the iterations whose number is strictly
greater than t_d (the line testing t against t_d uses a strict comparison), i.e. from our
``t = t_d`` on; before it the decoder sees d = 0, as the initialisation line sets it.

``variant="official"``: the counting of the authors' code. ``stage = t // r``. Before the
discrete step starts (``t < t_d``, with t_d a whole number of stages) ``stage + 1`` dims are
relieved, so the first is relieved at ``t = 0``; the stage in which the discrete step arrives
relieves nothing new, so from ``t_d`` on ``stage`` dims are relieved. With 6 dims, r = 2e4 and
t_d = 8e4: 1, 2, 3, 4 dims over the first 80k updates, 4 during 80k-100k (discrete step on),
5 at 100k, all 6 from 120k. Without a discrete step (CascadeVAE-C) one more dim per stage:
10 dims are all relieved at 180k.

beta_l > beta_h is rejected: the cascade *relieves* a dim, lowering its weight. beta_l == beta_h
is allowed (it degenerates to a constant schedule, a useful control).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from . import validate

__all__ = [
    "CascadeSchedule",
    "ConstantSchedule",
    "AnchorSchedule",
    "Schedule",
    "VARIANTS",
    "schedule_from_dict",
]

VARIANTS = ("paper", "official")


# ---------------------------------------------------------------------------------------------
# argument checks: cascadevae.validate, under the names this module's messages use

def _check_int(value: Any, name: str, minimum: int) -> int:
    return validate.count(value, name, minimum)


def _check_beta(value: Any, name: str) -> float:
    return validate.number(value, name)


def _check_warmup(value: Any) -> Optional[int]:
    return validate.optional(validate.count, value, "discrete_warmup (t_d)", 0)


def _check_t(t: Any) -> int:
    return validate.iteration(t)


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalising a frozen dataclass's own fields


class _Base:
    """Shared queries; subclasses define ``relieved``, ``stage``, ``_beta_pair`` and friends."""

    kind: str = ""
    latent_dim: int
    discrete_warmup: Optional[int]

    def discrete_on(self, t: int) -> bool:
        """Whether the alternating (discrete) step runs at update ``t``: ``t >= t_d`` (the
        paper's iteration ``t + 1 > t_d``); never when ``discrete_warmup`` is None."""
        t = _check_t(t)
        return self.discrete_warmup is not None and t >= self.discrete_warmup

    def relieved_dims(self, t: int) -> Tuple[int, ...]:
        """Indices of the dims at beta_l at update ``t``."""
        return tuple(np.flatnonzero(self._low_mask(t)).tolist())

    def betas(self, t: int) -> np.ndarray:
        """The KL weight of each continuous dim at update ``t``: float64 array of shape (m,)."""
        high, low = self._beta_pair()
        out = np.full(self.latent_dim, high, dtype=np.float64)
        out[self._low_mask(t)] = low
        return out

    def optimizer_reset(self, t: int) -> bool:
        """Whether the betas change at update ``t`` (they differ from those of ``t - 1``).
        The official code keeps one Adam state per beta vector, so these are the points where
        it starts a fresh one (not at the discrete switch, where the betas stay the same)."""
        t = _check_t(t)
        return t > 0 and self.relieved(t) != self.relieved(t - 1)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-safe description; :func:`schedule_from_dict` rebuilds an equal schedule."""
        d = {"kind": self.kind}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]):
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"schedule kind {kind!r} cannot build a {cls.__name__} "
                             f"(expected {cls.kind!r}); use schedule_from_dict")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; valid: {sorted(names)}")
        return cls(**d)


# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CascadeSchedule(_Base):
    """Information cascade (Algorithm 1): every beta_j starts at beta_high (beta_h) and the dims
    are relieved to beta_low (beta_l) one at a time, in index order, every relieve_every (r)
    updates; the discrete step starts after discrete_warmup (t_d) updates (None: never, i.e.
    CascadeVAE-C). See the module docstring for the two variants."""

    latent_dim: int
    beta_high: float = 10.0
    beta_low: float = 1.0
    relieve_every: int = 20000
    discrete_warmup: Optional[int] = None
    variant: str = "paper"

    kind = "cascade"

    def __post_init__(self) -> None:
        _set(self, "latent_dim", _check_int(self.latent_dim, "latent_dim (m)", 1))
        _set(self, "beta_high", _check_beta(self.beta_high, "beta_high (beta_h)"))
        _set(self, "beta_low", _check_beta(self.beta_low, "beta_low (beta_l)"))
        if self.beta_low > self.beta_high:
            raise ValueError(f"beta_low (beta_l) = {self.beta_low!r} is above beta_high (beta_h) "
                             f"= {self.beta_high!r}; the cascade lowers a dim's weight, so "
                             "beta_l <= beta_h")
        _set(self, "relieve_every", _check_int(self.relieve_every, "relieve_every (r)", 1))
        _set(self, "discrete_warmup", _check_warmup(self.discrete_warmup))
        if self.variant not in VARIANTS:
            raise ValueError(f"variant = {self.variant!r}; choose one of {list(VARIANTS)}")
        if (self.variant == "official" and self.discrete_warmup is not None
                and self.discrete_warmup % self.relieve_every):
            raise ValueError(
                f"discrete_warmup (t_d) = {self.discrete_warmup} is not a multiple of "
                f"relieve_every (r) = {self.relieve_every}; the official variant counts t_d in "
                "whole stages: pick a multiple of r or use variant='paper'")

    # -- stage counting -----------------------------------------------------------------------
    def stage(self, t: int) -> int:
        """Number of completed r-periods: ``t // r`` (official) or, for the paper, the number
        of multiples of r among the paper's iterations 1..t+1, i.e. ``(t + 1) // r``."""
        t = _check_t(t)
        if self.variant == "official":
            return t // self.relieve_every
        return (t + 1) // self.relieve_every

    def is_stage_boundary(self, t: int) -> bool:
        """Whether update ``t`` is the first of a new stage (t = 0 is not a boundary). Stages
        keep coming after every dim is relieved; see :meth:`optimizer_reset` for beta changes."""
        t = _check_t(t)
        return t > 0 and self.stage(t) != self.stage(t - 1)

    def _warmup_stages(self) -> Optional[int]:
        if self.discrete_warmup is None:
            return None
        return self.discrete_warmup // self.relieve_every

    def relieved(self, t: int) -> int:
        """Number of dims at beta_l at update ``t`` (they are dims 0 .. relieved-1)."""
        s = self.stage(t)
        if self.variant == "official":
            ws = self._warmup_stages()
            # The stage where the discrete step arrives relieves no new dim.
            opened = s + 1 if ws is None or s < ws else s
            return min(self.latent_dim, opened)
        return min(self.latent_dim, s)

    def relief_iterations(self) -> Tuple[Optional[int], ...]:
        """For each dim, the first update ``t`` at which it sits at beta_l (None: never)."""
        r = self.relieve_every
        out = []
        for j in range(self.latent_dim):
            if self.variant == "paper":
                out.append((j + 1) * r - 1)
            else:
                ws = self._warmup_stages()
                out.append(j * r if ws is None or j < ws else (j + 1) * r)
        return tuple(out)

    def fully_relieved_at(self) -> int:
        """First update at which every dim is at beta_l."""
        return max(self.relief_iterations())  # type: ignore[type-var]

    def _low_mask(self, t: int) -> np.ndarray:
        mask = np.zeros(self.latent_dim, dtype=bool)
        mask[: self.relieved(t)] = True
        return mask

    def _beta_pair(self) -> Tuple[float, float]:
        return self.beta_high, self.beta_low


class _StaticSchedule(_Base):
    """Schedules whose betas never change: one stage, no boundaries."""

    def stage(self, t: int) -> int:
        _check_t(t)
        return 0

    def is_stage_boundary(self, t: int) -> bool:
        _check_t(t)
        return False


@dataclass(frozen=True)
class ConstantSchedule(_StaticSchedule):
    """One beta on every dim for the whole run: beta-VAE, and CascadeVAE-D (alternating
    discrete step after discrete_warmup (t_d), no cascade). No dim is ever "relieved"."""

    latent_dim: int
    beta: float = 1.0
    discrete_warmup: Optional[int] = None

    kind = "constant"

    def __post_init__(self) -> None:
        _set(self, "latent_dim", _check_int(self.latent_dim, "latent_dim (m)", 1))
        _set(self, "beta", _check_beta(self.beta, "beta"))
        _set(self, "discrete_warmup", _check_warmup(self.discrete_warmup))

    def relieved(self, t: int) -> int:
        _check_t(t)
        return 0

    def relief_iterations(self) -> Tuple[Optional[int], ...]:
        return (None,) * self.latent_dim

    def _low_mask(self, t: int) -> np.ndarray:
        _check_t(t)
        return np.zeros(self.latent_dim, dtype=bool)

    def _beta_pair(self) -> Tuple[float, float]:
        return self.beta, self.beta


@dataclass(frozen=True)
class AnchorSchedule(_StaticSchedule):
    """AnchorVAE (Gao et al., 2018): beta_low (beta_l) on a fixed set of anchor dims and
    beta_high (beta_h) on the rest, for the whole run; nothing changes over time."""

    latent_dim: int
    anchor_dims: Tuple[int, ...] = (0,)
    beta_high: float = 10.0
    beta_low: float = 1.0
    discrete_warmup: Optional[int] = None

    kind = "anchor"

    def __post_init__(self) -> None:
        m = _check_int(self.latent_dim, "latent_dim (m)", 1)
        _set(self, "latent_dim", m)
        _set(self, "beta_high", _check_beta(self.beta_high, "beta_high (beta_h)"))
        _set(self, "beta_low", _check_beta(self.beta_low, "beta_low (beta_l)"))
        if self.beta_low > self.beta_high:
            raise ValueError(f"beta_low (beta_l) = {self.beta_low!r} is above beta_high (beta_h) "
                             f"= {self.beta_high!r}; anchors get the lower weight, so "
                             "beta_l <= beta_h")
        dims = tuple(_check_int(j, "anchor dim", 0) for j in self.anchor_dims)
        if not dims:
            raise ValueError("anchor_dims is empty; a schedule without anchors is a "
                             "ConstantSchedule(beta=beta_high)")
        bad = [j for j in dims if j >= m]
        if bad:
            raise ValueError(f"anchor_dims {list(bad)} out of range for latent_dim (m) = {m}")
        if len(set(dims)) != len(dims):
            raise ValueError(f"anchor_dims {list(dims)} has duplicates")
        _set(self, "anchor_dims", tuple(sorted(dims)))
        _set(self, "discrete_warmup", _check_warmup(self.discrete_warmup))

    def relieved(self, t: int) -> int:
        _check_t(t)
        return len(self.anchor_dims)

    def relief_iterations(self) -> Tuple[Optional[int], ...]:
        anchors = set(self.anchor_dims)
        return tuple(0 if j in anchors else None for j in range(self.latent_dim))

    def _low_mask(self, t: int) -> np.ndarray:
        _check_t(t)
        mask = np.zeros(self.latent_dim, dtype=bool)
        mask[list(self.anchor_dims)] = True
        return mask

    def _beta_pair(self) -> Tuple[float, float]:
        return self.beta_high, self.beta_low


Schedule = Union[CascadeSchedule, ConstantSchedule, AnchorSchedule]

_KINDS = {cls.kind: cls for cls in (CascadeSchedule, ConstantSchedule, AnchorSchedule)}


def schedule_from_dict(d: Dict[str, Any]) -> Schedule:
    """Rebuild any schedule from its :meth:`to_dict` form (dispatching on ``kind``)."""
    if not isinstance(d, dict) or "kind" not in d:
        raise ValueError(f"expected a schedule dict with a 'kind' key, got {d!r}")
    cls = _KINDS.get(d["kind"])
    if cls is None:
        raise ValueError(f"unknown schedule kind {d['kind']!r}; valid: {sorted(_KINDS)}")
    return cls.from_dict(d)
