"""The model registry: every model class registers itself here (:func:`register`), and every
table of models the library needs (names, config sections, schedule kinds, which models have a
code, the discrete step or the device step, report labels) is derived from the classes.
:func:`build_model` is the one place that turns a config section into a model.

Adding a model is one file: a :class:`cascadevae.models.VAE` subclass with its traits and its
``Config``, decorated with :func:`register` (docs/adding-a-model.md).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Mapping, Type

if TYPE_CHECKING:  # pragma: no cover
    from .config import ModelConfig
    from .vae import VAE

#: model name -> class, in registration order
MODELS: Dict[str, "Type[VAE]"] = {}


def register(cls):
    """Class decorator: add a VAE subclass under ``cls.name`` and tie its ``Config`` to it."""
    from .config import ModelConfig
    if not cls.name or cls.name in MODELS:
        raise ValueError(f"model name {cls.name!r} is empty or already registered")
    if not (isinstance(cls.Config, type) and issubclass(cls.Config, ModelConfig)):
        raise TypeError(f"{cls.__name__}.Config must be a ModelConfig subclass")
    if cls.Config is ModelConfig:
        raise TypeError(f"{cls.__name__} needs its own Config (a ModelConfig subclass)")
    fields = set(cls.Config.field_names())
    if cls.has_discrete_code != ("num_classes" in fields):
        raise TypeError(f"{cls.__name__}: has_discrete_code must match a num_classes field")
    if cls.uses_discrete_step != ("discrete_warmup" in fields):
        raise TypeError(f"{cls.__name__}: uses_discrete_step must match a discrete_warmup field")
    cls.Config.model_name = cls.name
    MODELS[cls.name] = cls
    return cls


def model_class(name_or_config) -> "Type[VAE]":
    """The class of a model name or of a config section."""
    name = name_or_config if isinstance(name_or_config, str) else name_or_config.model_name
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODELS)}") from None


def model_names():
    return tuple(MODELS)


def config_from_dict(values: Mapping[str, Any]) -> "ModelConfig":
    """A config section from its :meth:`~.config.ModelConfig.to_dict` form ({"name": ...,
    fields}); unknown fields are an error (a typo must not be lost)."""
    values = dict(values)
    cls = model_class(values.pop("name", None))
    unknown = sorted(set(values) - set(cls.Config.field_names()))
    if unknown:
        raise ValueError(f"model {cls.name!r} has no fields {unknown}; its fields: "
                         f"{', '.join(cls.Config.field_names())}")
    return cls.Config(**values)


def build_model(config: "ModelConfig", image_size: int) -> "VAE":
    """The model of config section ``config`` for ``image_size`` x ``image_size`` images."""
    from .config import ModelConfig
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model takes a model config section, got "
                        f"{type(config).__name__}; use config_from_dict for a dict")
    return model_class(config)(config, image_size)


def traits() -> Dict[str, Dict[str, Any]]:
    """Every registered model's traits, as a table (for docs, the CLI and reports)."""
    return {name: {"label": cls.label, "schedule": cls.Config.schedule_kind,
                   "code": cls.has_discrete_code, "discrete_step": cls.uses_discrete_step,
                   "device_step": cls.supports_device_step,
                   "fields": list(cls.Config.field_names())}
            for name, cls in MODELS.items()}
