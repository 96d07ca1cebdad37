"""The paper's models as small overrides of :class:`.vae.VAE`, each with its config section:
beta-VAE, AnchorVAE, CascadeVAE-C, CascadeVAE-D and CascadeVAE (Algorithm 1)."""
from __future__ import annotations

from dataclasses import dataclass

from .config import (AnchorFields, BetaFields, CascadeFields, CodeFields, DiscreteStepFields,
                     ModelConfig)
from .registry import register
from .vae import VAE


@register
class BetaVAE(VAE):
    """beta-VAE (Higgins et al., 2017): the same beta on every dim, no schedule."""
    name, label = "beta-vae", "beta-VAE"
    supports_device_step = True

    @dataclass(frozen=True)
    class Config(BetaFields, ModelConfig):
        pass

    @classmethod
    def report_label(cls, config) -> str:
        return f"beta={config.beta:g}"


@register
class AnchorVAE(VAE):
    """AnchorVAE (Gao et al., 2018): beta_l on ``anchor_dims``, beta_h on the rest, fixed."""
    name, label = "anchor-vae", "AnchorVAE"
    supports_device_step = True

    @dataclass(frozen=True)
    class Config(AnchorFields, ModelConfig):
        pass

    @classmethod
    def report_label(cls, config) -> str:
        return f"beta_l={config.beta_low:g}"


@register
class CascadeVAEC(VAE):
    """CascadeVAE-C: information cascading (betas from beta_h to beta_l one dim per r
    iterations), no discrete code."""
    name, label = "cascade-c", "CascadeVAE-C"
    supports_device_step = True

    @dataclass(frozen=True)
    class Config(CascadeFields, ModelConfig):
        pass

    @classmethod
    def report_label(cls, config) -> str:
        return f"beta_l={config.beta_low:g}"


@register
class CascadeVAED(VAE):
    """CascadeVAE-D: discrete code with the alternating step, one fixed beta on every dim."""
    name, label = "cascade-d", "CascadeVAE-D"
    has_discrete_code = uses_discrete_step = supports_device_step = True

    @dataclass(frozen=True)
    class Config(CodeFields, BetaFields, DiscreteStepFields, ModelConfig):
        beta: float = 1.0

    @classmethod
    def report_label(cls, config) -> str:
        return f"beta={config.beta:g}"


@register
class CascadeVAE(VAE):
    """CascadeVAE (Algorithm 1): information cascading and the discrete code."""
    name, label = "cascade", "CascadeVAE"
    has_discrete_code = uses_discrete_step = supports_device_step = True

    @dataclass(frozen=True)
    class Config(CodeFields, CascadeFields, DiscreteStepFields, ModelConfig):
        pass

    @classmethod
    def report_label(cls, config) -> str:
        return f"beta_l={config.beta_low:g}"
