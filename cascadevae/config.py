"""The one config of a training run: :class:`TrainConfig`, with the model's section nested in it
(``cfg.model``, the model class's ``Config``; :mod:`cascadevae.models.config`). Presets, the
command line, ``--set`` and the Python API all write to it; it is written to the run directory
as config.json and is the single source of every hyperparameter.

JSON form::

    {"name": "mnist", "dataset": "mnist", "iterations": 120000, "batch_size": 64, ...,
     "model": {"name": "cascade", "latent_dim": 10, "num_classes": 10, "beta_high": 10.0, ...}}

A config.json written before the model section existed (every field flat, ``"model"`` a name)
loads too, as the same run: :meth:`TrainConfig.from_dict` moves the model's fields into its
section and drops the flat format's placeholders for fields the model does not use.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from . import validate as v
from .acceleration import check_compile, check_precision, resolve_compile, resolve_precision
from .models import ModelConfig, config_from_dict, model_class
from .schedule import Schedule

#: the dataset families a config names; images are 64x64 for dsprites and chairs, 32x32 for the
#: MNISTs (cascadevae.data.registry says which loader names belong to which); "custom" is a
#: user's own images given to :func:`cascadevae.fit`
DATASETS = ("dsprites", "mnist", "fashion-mnist", "chairs", "custom")
#: datasets read from IDX files, whose test split ``holdout`` / ``test_from`` choose
SPLIT_DATASETS = ("mnist", "fashion-mnist")
TEST_FROM = ("holdout", "t10k")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training run (frozen, picklable, JSON round trip).

    ``model``: the model's config section (its fields are described in
    :mod:`cascadevae.models.config`; lambda' lives there and is converted there, once).

    ``weight_decay`` is an L2 penalty on the weights added to the loss (the official code's
    regulariser), not decoupled AdamW decay. ``fresh_optimizer_per_stage``: start a new
    optimizer state whenever ``schedule().optimizer_reset(t)`` is true, i.e. whenever the beta
    vector changes; the official code keeps one Adam per beta vector, so its state is *not*
    reset at the discrete switch (80k), where the betas stay the same.

    ``budget_scale`` is 1 for the paper's budgets; :meth:`scaled` records its factor there.

    ``holdout`` and ``test_from`` (MNIST and FashionMNIST from IDX files only) choose the test
    split: ``holdout`` images of the training file (a count, or a fraction in (0, 1); None: 1/6
    of it, at most 10,000, the paper's 50,000/10,000 for the full file) or, with
    ``test_from="t10k"``, the t10k files (training on the whole training file). MNIST-5k has its
    own fixed split. See docs/datasets.md.

    ``precision`` ("auto", "fp32", "bf16") and ``compile`` ("auto", True, False) say how the
    update runs: bf16 runs the networks under bfloat16 autocast (float32 weights, Adam state,
    losses and KL), compile runs them through torch.compile. They change the bits a run
    produces, so a run records the concrete values it used (:meth:`resolved`: "auto" becomes
    what :mod:`cascadevae.acceleration` picks for the device) and a resume keeps them.
    """

    name: str
    dataset: str
    model: ModelConfig
    learning_rate: float
    adam_betas: Tuple[float, float]
    weight_decay: float
    fresh_optimizer_per_stage: bool
    batch_size: int
    iterations: int
    seed: int = 0
    budget_scale: float = 1.0
    source: str = ""
    precision: str = "auto"
    compile: Union[str, bool] = "auto"
    holdout: Optional[Union[int, float]] = None
    test_from: str = "holdout"

    def __post_init__(self) -> None:
        s = lambda n, x: object.__setattr__(self, n, x)  # noqa: E731  (normalise frozen fields)
        label = "TrainConfig"
        s("name", v.text(self.name, f"{label}.name", nonempty=True))
        s("source", v.text(self.source, f"{label}.source"))
        v.choice(self.dataset, f"{label}.dataset", DATASETS)
        if not isinstance(self.model, ModelConfig) or not self.model.model_name:
            raise ValueError(f"{label}.model = {self.model!r}: expected a model's config "
                             "section (e.g. MODELS['cascade'].Config(...))")
        s("learning_rate", v.number(self.learning_rate, f"{label}.learning_rate", positive=True))
        s("adam_betas", v.adam_betas(self.adam_betas, f"{label}.adam_betas"))
        s("weight_decay", v.number(self.weight_decay, f"{label}.weight_decay"))
        v.flag(self.fresh_optimizer_per_stage, f"{label}.fresh_optimizer_per_stage")
        s("batch_size", v.count(self.batch_size, f"{label}.batch_size", 1))
        s("iterations", v.count(self.iterations, f"{label}.iterations", 1))
        s("seed", v.count(self.seed, f"{label}.seed", 0))
        s("budget_scale", v.number(self.budget_scale, f"{label}.budget_scale", positive=True))
        check_precision(self.precision)
        check_compile(self.compile)
        v.choice(self.test_from, f"{label}.test_from", TEST_FROM)
        if self.holdout is not None:
            h = self.holdout
            ok = (not isinstance(h, bool) and (isinstance(h, int) and h >= 1
                                               or isinstance(h, float) and 0.0 < h < 1.0))
            if not ok:
                raise ValueError(f"{label}.holdout = {h!r}: expected a count >= 1 or a fraction "
                                 "in (0, 1) of the training file (or None: 1/6 of it, at most "
                                 "10,000)")
        if (self.holdout is not None or self.test_from != "holdout") and \
                self.dataset not in SPLIT_DATASETS:
            raise ValueError(f"{label}: holdout and test_from split the IDX training files of "
                             f"{list(SPLIT_DATASETS)}; dataset {self.dataset!r} has none")
        if self.holdout is not None and self.test_from == "t10k":
            raise ValueError(f"{label}: holdout = {self.holdout!r} with test_from = 't10k': the "
                             "t10k files are the test split then, nothing is held out")

    # -- derived ------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.model.model_name

    def model_class(self):
        return model_class(self.model)

    def schedule(self) -> Schedule:
        """The beta / discrete-step schedule this run trains with (the model section's)."""
        return self.model.schedule()

    # -- copies -------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> Tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **overrides: Any) -> "TrainConfig":
        """A validated copy with some fields changed. Keys are the run's fields or the model
        section's (``latent_dim=5``, ``discrete_warmup=0``, ...). ``model="beta-vae"`` (a name)
        switches the model: the fields the new model shares with the old section carry over,
        the others take the new model's defaults. Unknown names raise ValueError."""
        overrides = dict(overrides)
        section = self.model
        new_model = overrides.pop("model", None)
        if isinstance(new_model, ModelConfig):
            section = new_model
        elif new_model is not None:
            cls = model_class(new_model)
            if cls.name != section.model_name:
                keep = {n: getattr(section, n) for n in cls.Config.field_names()
                        if n in section.field_names()}
                section = cls.Config(**keep)
        run = {k: overrides.pop(k) for k in list(overrides) if k in self.field_names()}
        unknown = sorted(set(overrides) - set(section.field_names()))
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; valid names: the run's "
                             f"{', '.join(n for n in self.field_names() if n != 'model')}, and "
                             f"model {section.model_name!r}'s {', '.join(section.field_names())}")
        if overrides:
            section = section.replace(**overrides)
        return dataclasses.replace(self, model=section, **run)

    def resolved(self, device) -> "TrainConfig":
        """This config with ``precision`` and ``compile`` made concrete for ``device``."""
        precision = resolve_precision(self.precision, device)
        return self.replace(precision=precision,
                            compile=resolve_compile(self.compile, device, precision))

    def with_dataset_size(self, size: int) -> "TrainConfig":
        """This config with the model's ``dataset_size`` = ``size`` (the training set's length)
        when the model needs N and leaves it None; otherwise unchanged (an explicit N is
        kept)."""
        if getattr(self.model, "dataset_size", 0) is None:
            return self.replace(dataset_size=int(size))
        return self

    def scaled(self, iterations: int) -> "TrainConfig":
        """A copy on a smaller (or larger) budget: iterations, r, t_d and JointVAE's capacity
        num_iters all shrink by the same factor, so the cascade, the discrete switch and the
        capacity ramps keep their place in the run. A *scaled* schedule, for demonstrations on
        slow machines, not the paper's; ``budget_scale`` and ``source`` record the factor."""
        iterations = v.count(iterations, "TrainConfig.iterations", 1)
        f = iterations / self.iterations
        section, changes = self.model.scaled(f)
        r = changes.get("relieve_every", (None, None))
        td = changes.get("discrete_warmup", (None, None))
        note = (f"scaled schedule: iterations {self.iterations} -> {iterations}, r {r[0]} -> "
                f"{r[1]}, t_d {td[0]} -> {td[1]}")
        for name in ("capacity_continuous", "capacity_discrete"):
            if name in changes:
                note += f", {name} num_iters {changes[name][0][2]} -> {changes[name][1][2]}"
        note += f" (x{f:.4g})"
        return dataclasses.replace(self, model=section, iterations=iterations,
                                   budget_scale=self.budget_scale * f,
                                   source=f"{self.source}; {note}" if self.source else note)

    # -- (de)serialisation --------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """JSON-safe dict (tuples become lists, the model section nested)."""
        out: Dict[str, Any] = {}
        for n in self.field_names():
            value = getattr(self, n)
            out[n] = (value.to_dict() if n == "model" else
                      list(value) if isinstance(value, tuple) else value)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrainConfig":
        d = dict(d)
        if isinstance(d.get("model"), str):
            d = _from_flat(d)
        unknown = sorted(set(d) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; valid names: "
                             f"{', '.join(cls.field_names())}")
        if not isinstance(d.get("model"), Mapping):
            raise ValueError(f"TrainConfig.model = {d.get('model')!r}: expected the model "
                             "section, a dict with the model's 'name' and its fields")
        d["model"] = config_from_dict(d["model"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls.from_dict(json.loads(text))

    def save(self, path: "os.PathLike[str] | str") -> str:
        """Write the config as JSON; a directory gets ``config.json`` inside it."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_json() + "\n")
        return path

    @classmethod
    def load(cls, path: "os.PathLike[str] | str") -> "TrainConfig":
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path, encoding="utf-8") as fh:
            return cls.from_json(fh.read())


def _from_flat(d: Dict[str, Any]) -> Dict[str, Any]:
    """The flat config.json of earlier versions (every field at the top, ``"model"`` a name)
    as the nested form. Such a file predates precision and compile: it was a float32,
    uncompiled run."""
    cls = model_class(d["model"])
    names = set(cls.Config.field_names())
    section = {"name": cls.name}
    for key in list(d):
        if key in names:
            section[key] = d.pop(key)
    run_fields = set(TrainConfig.field_names())
    # the flat format's placeholders for fields this model does not use (None, 0, ())
    for key in [k for k in d if k not in run_fields]:
        if d[key] in (None, 0, 0.0, (), []) or key == "schedule_variant":
            d.pop(key)
    d["model"] = section
    d.setdefault("precision", "fp32")
    d.setdefault("compile", False)
    return d


def data_options(cfg: TrainConfig, data_name: str) -> Dict[str, Any]:
    """The keyword options of :func:`cascadevae.data.load` that the config fixes (the test
    split of the IDX datasets); none for the embedded MNIST-5k and the other datasets."""
    if cfg.dataset not in SPLIT_DATASETS or data_name == "mnist5k":
        return {}
    return {"holdout": cfg.holdout, "test_from": cfg.test_from}
