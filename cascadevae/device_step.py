"""The training step on one CUDA device without host synchronisation, replayed as a CUDA graph.

One update of :class:`DeviceStep` does what the eager step (``cascadevae.training.step``) does (encode,
one z from the run's generator, the discrete step once ``discrete_on(t)``, the loss with the
schedule's betas, backward, one Adam step), but every value stays on the GPU: the B*S scoring
pass, the fused likelihood kernel and the exact assignment run on the device
(:mod:`cascadevae.kernels`), the betas are a device tensor updated in place when they change,
the loss terms and class counts are written to device buffers, and finiteness is recorded on
the device (the first non-finite update's t). Nothing is read back until :meth:`record` or
:meth:`first_nonfinite` is called, e.g. every ``log_every`` updates.

With ``use_graphs=True`` the step is captured as a CUDA graph and replayed, one graph per phase
of the discrete switch (before t_d: codes all zero; from t_d: the discrete step); the first
``warmup_steps`` updates of a phase run eagerly (on a side stream, as torch's capture recipe
asks), then the phase's graph is captured and every later update is one replay. Warm-up updates
and the capture's first replay are real updates: the run's sequence of updates does not depend
on when capture happens. The run's z generator is registered with each graph
(``CUDAGraph.register_generator_state``, torch >= 2.4 for a generator other than the default),
so every replay draws fresh noise exactly as the eager step would.

Host synchronisations that remain, none of them in the per-update work: capturing a phase's
graph (torch synchronises once before a capture), :meth:`record` and :meth:`first_nonfinite`
(when the caller reads). A batch from a pageable numpy array is staged through pinned memory
and copied asynchronously, as are new betas. A problem too large for the device assignment is
refused at construction instead of being solved on the CPU with a sync.

Adam is ``capturable=True``: its step counters live on the device. A "fresh optimizer per stage"
(``fresh_optimizer_per_stage``) zeroes the Adam state in place, which is what a new Adam
amounts to and keeps the tensors the graphs captured.

After a non-finite loss the update still runs (parameters become NaN): the check is read later,
and the caller then stops and keeps its last good checkpoint, as ``Trainer`` does.

The training loop runs it through :class:`cascadevae.training.step.DeviceUpdate`
(``python -m cascadevae.train --device-step eager|graphs``), which owns the wiring: the
DeviceStep shares the trainer's model, z generator and schedule, takes over its optimiser
(checkpoints then save the capturable Adam; ``fresh_optimizer_per_stage`` is handled here), and
reads values back only at log and checkpoint points.
"""
from __future__ import annotations

import warnings
from typing import Any, Dict, Optional

import numpy as np
import torch

from . import kernels

__all__ = ["DeviceStep"]


class DeviceStep:
    """The training step of a model with ``supports_device_step`` (beta-VAE, AnchorVAE,
    CascadeVAE-C/-D, CascadeVAE) on CUDA, sync-free, graph-replayable.

    On a CPU model (``use_graphs=False`` only) it runs the same update with the CPU kernels and
    a plain Adam: what the CPU tests use to check the update against ``Trainer.step``.

    Args:
        model: the VAE, on a CUDA device (or the CPU, see above).
        schedule: the run's schedule (``betas(t)``, ``discrete_on(t)``, ``optimizer_reset(t)``).
        batch_size, image_shape: the static input buffer is (batch_size, *image_shape).
        z_generator: the run's CUDA torch.Generator for z (None: the default CUDA generator).
        learning_rate, adam_betas, weight_decay: Adam's settings (as ``TrainConfig``).
        fresh_optimizer_per_stage: zero the Adam state where ``schedule.optimizer_reset(t)``.
        use_graphs: capture and replay CUDA graphs (False: the same work, eagerly, for
            comparison and debugging).
        warmup_steps: eager updates per phase before its capture.
        loglik_variant: the CUDA likelihood kernel's variant ("fast" or "precise").
    """

    def __init__(self, model: torch.nn.Module, schedule, *, batch_size: int, image_shape,
                 z_generator: Optional[torch.Generator] = None, learning_rate: float = 1e-3,
                 adam_betas=(0.9, 0.999), weight_decay: float = 0.0,
                 fresh_optimizer_per_stage: bool = False, use_graphs: bool = True,
                 warmup_steps: int = 2, loglik_variant: str = "fast"):
        params = list(model.vae_parameters())
        device = params[0].device
        self.on_cuda = device.type == "cuda"
        if self.on_cuda:
            kernels._require_cuda_kernels()
        elif use_graphs:
            raise ValueError(f"CUDA graphs need a model on a CUDA device, this one is on {device}")
        if loglik_variant not in kernels.LOGLIK_VARIANTS:
            raise ValueError(f"loglik_variant = {loglik_variant!r} is not one of {kernels.LOGLIK_VARIANTS}")
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps = {warmup_steps} must be >= 1 (capture needs eager warm-up)")
        self.model = model
        self.device = device
        self.schedule = schedule
        self.batch_size = int(batch_size)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.num_classes = int(model.num_classes)
        if (self.on_cuda and model.has_discrete_code
                and not kernels.assign_fits_device(self.batch_size, self.num_classes, self.device)):
            raise ValueError(f"the CUDA assign cannot hold a batch of {self.batch_size} items and "
                             f"S = {self.num_classes} classes in one block's shared memory; train "
                             "without CUDA graphs (the eager step solves it on the CPU)")
        self.z_generator = z_generator
        self.fresh_optimizer_per_stage = bool(fresh_optimizer_per_stage)
        self.use_graphs = bool(use_graphs)
        self.warmup_steps = int(warmup_steps)
        self.loglik_variant = loglik_variant
        # capturable: step counters on the device, so the update needs no host value
        self.optimizer = torch.optim.Adam(params, lr=learning_rate, betas=tuple(adam_betas),
                                          weight_decay=weight_decay, capturable=self.on_cuda)
        dtype = params[0].dtype
        dev = self.device
        # Static buffers: the graphs read and write these addresses on every replay.
        self.x = torch.zeros((self.batch_size,) + self.image_shape, dtype=dtype, device=dev)
        self.betas = torch.zeros(model.latent_dim, dtype=dtype, device=dev)
        self.stats = torch.zeros(3 + model.latent_dim, dtype=torch.float32, device=dev)
        self.counts = torch.zeros(max(self.num_classes, 1), dtype=torch.float32, device=dev)
        self.t_device = torch.zeros((), dtype=torch.int64, device=dev)
        self.first_bad = torch.full((), -1, dtype=torch.int64, device=dev)
        self._betas_key: Optional[tuple] = None
        self._graphs: Dict[bool, torch.cuda.CUDAGraph] = {}
        self._eager_runs: Dict[bool, int] = {False: 0, True: 0}
        self._next_t: Optional[int] = None
        self._last_on = False

    @classmethod
    def from_trainer(cls, trainer, **options) -> "DeviceStep":
        """A DeviceStep on a ``cascadevae.training.Trainer``'s model, schedule, z generator and
        Adam settings; the trainer's optimizer state (e.g. after a resume) is carried over."""
        cfg = trainer.cfg
        image_shape = (1, trainer.image_size, trainer.image_size)
        step = cls(trainer.model, trainer.schedule, batch_size=cfg.batch_size,
                   image_shape=image_shape, z_generator=trainer.z_gen,
                   learning_rate=cfg.learning_rate, adam_betas=cfg.adam_betas,
                   weight_decay=cfg.weight_decay,
                   fresh_optimizer_per_stage=cfg.fresh_optimizer_per_stage, **options)
        if trainer.optimizer.state:
            step.load_optimizer_state(trainer.optimizer.state_dict())
        return step

    # -- optimizer ----------------------------------------------------------------------------
    def load_optimizer_state(self, state_dict: Dict[str, Any]) -> None:
        """Loads an Adam state dict (capturable or not) and keeps this Adam capturable, with its
        step counters on the device. Call before the first capture (graphs hold the tensors)."""
        if self._graphs:
            raise RuntimeError("load the optimizer state before the first update: the captured "
                               "graphs hold the current state tensors")
        self.optimizer.load_state_dict(state_dict)
        if not self.on_cuda:
            return
        for group in self.optimizer.param_groups:
            group["capturable"] = True
        for state in self.optimizer.state.values():
            if "step" in state:
                state["step"] = torch.as_tensor(state["step"], dtype=torch.float32).to(self.device)

    def reset_optimizer(self) -> None:
        """A fresh Adam, in place: zero moments and step counters (no new tensors)."""
        for state in self.optimizer.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.zero_()

    # -- one update ---------------------------------------------------------------------------
    def step(self, t: int, images) -> None:
        """Update t with a batch of images ((B, *image_shape) numpy array, CPU or CUDA tensor).
        Returns as soon as the work is queued."""
        on = bool(self.model.code_active(t))
        if self.fresh_optimizer_per_stage and self.schedule.optimizer_reset(t):
            self.reset_optimizer()
        self._set_betas(self.schedule.betas(t))
        self._load_batch(images)
        if self._next_t != t:
            self.t_device.fill_(t)  # a resumed or restarted run: the device counter follows t
        self._next_t = t + 1
        self._last_on = on
        if not self.use_graphs:
            self.optimizer.zero_grad(set_to_none=True)
            self._body(on, t)
            return
        graph = self._graphs.get(on)
        if graph is not None:
            graph.replay()
        elif self._eager_runs[on] < self.warmup_steps:
            self._warmup(on, t)
        else:
            self._capture(on, t).replay()  # capturing records the update; the replay makes it

    def _set_betas(self, betas) -> None:
        key = tuple(float(b) for b in betas)
        if key == self._betas_key:
            return
        host = torch.tensor(key, dtype=self.betas.dtype)
        if self.on_cuda:
            host = host.pin_memory()  # pinned and non-blocking: no host sync
        self.betas.copy_(host, non_blocking=True)
        self._betas_key = key

    def _load_batch(self, images) -> None:
        if torch.is_tensor(images) and images.is_cuda:
            self.x.copy_(images.reshape(self.x.shape))
            return
        if not torch.is_tensor(images):
            images = torch.from_numpy(np.ascontiguousarray(images))
        host = images.reshape(self.x.shape).to(self.x.dtype)
        if self.on_cuda:
            host = host.pin_memory()
        self.x.copy_(host, non_blocking=True)

    def _body(self, on: bool, t: int) -> None:
        """The update itself (``on``: the code is active; ``t``: an update of the phase), on
        the current stream; everything it keeps is written in place."""
        model = self.model
        model.train()
        post = model.posterior(self.x, generator=self.z_generator)
        # the phase's t: the code is active in every update of it or in none (a phase is
        # captured once and replayed)
        d = model.decoder_code(self.x, post.z, t, train=True,
                               method="device" if self.on_cuda else "auto",
                               loglik_variant=self.loglik_variant)
        terms = model.loss_terms(self.x, d, self.betas, posterior=post)
        terms["loss"].backward()
        with warnings.catch_warnings():
            # Eager updates (warm-up, use_graphs=False) run the capturable Adam uncaptured on
            # purpose: the same arithmetic as the graphs.
            warnings.filterwarnings("ignore", message=".*capturable=True.*")
            self.optimizer.step()
        values = torch.stack([terms["loss"], terms["recon"], terms["kl"]]).detach().float()
        self.stats[:3].copy_(values)
        self.stats[3:].copy_(terms["kl_per_dim"].detach())
        if on and model.uses_discrete_step:
            self.counts.copy_(d.detach().sum(dim=0))
        bad = ~torch.isfinite(values).all()
        self.first_bad.copy_(torch.where(bad & (self.first_bad < 0), self.t_device, self.first_bad))
        self.t_device.add_(1)

    def _warmup(self, on: bool, t: int) -> None:
        side = torch.cuda.Stream(self.device)  # torch's recipe: warm up off the capture's stream
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self.optimizer.zero_grad(set_to_none=True)
            self._body(on, t)
        torch.cuda.current_stream(self.device).wait_stream(side)
        self._eager_runs[on] += 1

    def _capture(self, on: bool, t: int) -> torch.cuda.CUDAGraph:
        # The phases come one after the other (before t_d, then from t_d on): free the other
        # phase's graph and pool rather than keep both.
        self._graphs.pop(not on, None)
        graph = torch.cuda.CUDAGraph()
        if self.z_generator is not None:
            register = getattr(graph, "register_generator_state", None)
            if register is None:
                raise RuntimeError(f"torch {torch.__version__} cannot capture draws from a "
                                   "non-default generator in a CUDA graph (needs torch >= 2.4 "
                                   "with CUDAGraph.register_generator_state); use_graphs=False")
            register(self.z_generator)
        self.optimizer.zero_grad(set_to_none=True)  # the graph owns the gradients it writes
        with torch.cuda.graph(graph):
            self._body(on, t)
        self._graphs[on] = graph
        return graph

    # -- reading back (host syncs) ------------------------------------------------------------
    def record(self, t: int) -> Dict[str, Any]:
        """The values of the last update, as ``Trainer.step`` returns them (waits for the GPU)."""
        stats = self.stats.cpu().tolist()
        counts = None
        if self._last_on and self.model.has_discrete_code:
            counts = [int(round(c)) for c in self.counts.cpu().tolist()]
        m = self.model.latent_dim
        betas = list(self._betas_key) if self._betas_key is not None else [0.0] * m
        return {"t": t, "loss": stats[0], "recon": stats[1], "kl": stats[2],
                "kl_per_dim": stats[3:3 + m], "betas": betas,
                "relieved": int(self.schedule.relieved(t)), "discrete_on": self._last_on,
                "class_counts": counts}

    def first_nonfinite(self) -> Optional[int]:
        """The first update t whose loss, recon or kl was not finite, or None (waits for the GPU)."""
        bad = int(self.first_bad.item())
        return None if bad < 0 else bad
