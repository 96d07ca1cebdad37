"""A training run's state: the model, its optimisers, the run's two random generators (z noise
and data order) and the update counter t, with checkpoints that restore it bit for bit. What
one update does is the step's business (:mod:`.step`); the loop (:mod:`.loop`) only counts.

``cfg.model.dataset_size`` left None by a model that needs it (beta-TCVAE) is filled from
``len(dataset)`` here; ``self.cfg`` (checkpointed, config.json) records the value used, and
``auto`` precision and compile are made concrete for the device.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch

from ..config import TrainConfig
from ..models import build_model
from ..run_dir import rng_states, set_rng_states


class Trainer:
    """One run's state. ``step()`` makes one eager update (the default step of the loop);
    benchmarks and tests call it directly."""

    def __init__(self, cfg: TrainConfig, dataset, image_size: int, device: torch.device):
        cfg = cfg.with_dataset_size(len(dataset)).resolved(device)
        self.cfg = cfg
        self.dataset = dataset
        self.device = torch.device(device)
        self.image_size = int(image_size)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model, self.image_size).to(self.device)
        self.schedule = self.model.schedule
        self.z_gen = torch.Generator(device=self.device)
        self.z_gen.manual_seed(cfg.seed + 1)
        self.data_rng = np.random.default_rng(cfg.seed)
        self.optimizer = self.new_optimizer()
        self.extra_optimizers = self.new_extra_optimizers()
        self.t = 0               # updates done
        self.elapsed = 0.0       # wall seconds of earlier segments
        self.updating = False    # inside optimizer.step(): parameters half-written
        self._pre = None
        self._eager = None

    # -- optimisers -----------------------------------------------------------------------------
    def new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.vae_parameters(), lr=self.cfg.learning_rate,
                                betas=self.cfg.adam_betas, weight_decay=self.cfg.weight_decay)

    def new_extra_optimizers(self) -> Dict[str, torch.optim.Optimizer]:
        """One Adam per ``model.extra_modules()`` entry, from ``model.extra_optimizer_specs()``
        (e.g. FactorVAE's discriminator); never reset with the VAE's optimiser."""
        modules, specs = self.model.extra_modules(), self.model.extra_optimizer_specs()
        if set(modules) != set(specs):
            raise ValueError(f"model {self.model.name!r}: extra modules {sorted(modules)} and "
                             f"optimiser specs {sorted(specs)} must name the same entries")
        return {name: torch.optim.Adam(modules[name].parameters(), **specs[name])
                for name in modules}

    # -- data -------------------------------------------------------------------------------
    def draw_batch(self) -> torch.Tensor:
        """The next batch of the run's data order, on the device."""
        images, _ = self.dataset.sample_batch(self.cfg.batch_size, self.data_rng)
        return torch.from_numpy(np.ascontiguousarray(images)).to(self.device)

    # -- interrupted updates ------------------------------------------------------------------
    def begin_update(self) -> None:
        """Remember what an interrupted update must roll back to (its RNG draws, a fresh
        optimizer it may make)."""
        self._pre = (self.z_gen.get_state(), self.data_rng.bit_generator.state, self.optimizer)

    def end_update(self) -> None:
        self._pre = None

    def rollback_interrupted(self) -> bool:
        """After an interrupt inside an update: undo its RNG draws (and a fresh optimizer)
        so the state equals the one after update t - 1. False when the interrupt hit the
        parameter update itself; that state cannot be saved."""
        if self.updating:
            return False
        if self._pre is not None:
            z_state, data_state, optimizer = self._pre
            self.z_gen.set_state(z_state)
            self.data_rng.bit_generator.state = data_state
            self.optimizer = optimizer
            self._pre = None
        return True

    # -- checkpoints --------------------------------------------------------------------------
    def state(self, elapsed: float) -> Dict[str, Any]:
        return {"t": self.t, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "extra_optimizers": {n: o.state_dict() for n, o in self.extra_optimizers.items()},
                "image_size": self.image_size, "config": self.cfg.to_dict(),
                "rng": rng_states(), "z_generator": self.z_gen.get_state(),
                "data_rng": self.data_rng.bit_generator.state, "elapsed": elapsed}

    def load_state(self, state: Dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        saved = state.get("extra_optimizers", {})
        if set(saved) != set(self.extra_optimizers):
            raise ValueError(f"checkpoint has extra optimisers {sorted(saved)}, model "
                             f"{self.model.name!r} has {sorted(self.extra_optimizers)}")
        for name, optimizer in self.extra_optimizers.items():
            optimizer.load_state_dict(saved[name])
        self.t = int(state["t"])
        set_rng_states(state["rng"])
        self.z_gen.set_state(state["z_generator"])
        self.data_rng.bit_generator.state = state["data_rng"]
        self.elapsed = float(state.get("elapsed", 0.0))

    # -- one eager update ---------------------------------------------------------------------
    def step(self) -> Dict[str, Any]:
        """One update with the eager step (compiled networks where ``cfg.compile``)."""
        if self._eager is None:
            from .step import EagerStep
            self._eager = EagerStep(self)
        rec = self._eager.update(self)
        self.end_update()
        return rec
