"""Data-parallel training with torch.distributed: ``torchrun --nproc_per_node N -m
cascadevae.train ...`` trains one model on N processes (gloo on CPUs, nccl on GPUs).

* The batch: every rank draws the same global batch of ``batch_size`` images (the run's
  data-order generator is the same on every rank) and the same z noise for it, and keeps its
  own slice of batch_size / N rows; so the paper's batch of 64 stays 64 images per update
  whatever N is (batch_size must be a multiple of N).
* The exact global assignment: the paper's class-balance penalty couples the whole batch, so
  the ranks' scores u (n x S, a few KB) are all-gathered, every rank solves the same exact
  problem (deterministic: identical labels, no broadcast) and keeps its own rows. The union
  of the ranks' labels is one ``assign`` over the concatenated batch.
* Gradients are averaged with one all-reduce per update (what DistributedDataParallel does,
  without its module wrapper, so parameter names, checkpoints and the single-process code stay
  the same); every rank then makes the same Adam step.
* Rank 0 alone writes the run directory (config, metrics, checkpoints, figures, summary,
  evaluation) and loads the data set first, so a cache that loading builds (the rendered
  dSprites grid) is built once and the other ranks read it; the stop decision after a signal
  is all-reduced, so every rank stops after the same update.
* Resume from a checkpoint with the same world size is exact. With another world size the run
  continues correctly (same global batches, same z) but the per-rank float sums differ, so it
  is not bitwise the uninterrupted run; the command says so.

Models: those with ``supports_device_step`` (one optimiser, no iteration-dependent term, the
discrete step the only coupling across the batch): beta-VAE, AnchorVAE, CascadeVAE-C/-D,
CascadeVAE.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Dict, Iterator, Optional

import torch
import torch.distributed as dist

from .. import kernels
from ..models.discrete import code_loglik, one_hot_codes
from ..models.vae import Posterior
from .step import EagerStep, NonFiniteLoss


def world_from_env() -> Optional[Dict[str, int]]:
    """``{"rank", "world_size", "local_rank"}`` when launched by torchrun with more than one
    process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return {"rank": int(os.environ.get("RANK", "0")), "world_size": world,
            "local_rank": int(os.environ.get("LOCAL_RANK", "0"))}


def init(device: torch.device) -> Dict[str, int]:
    """Join the process group of a torchrun launch (gloo on the CPU, nccl on CUDA)."""
    info = world_from_env()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return info


@contextlib.contextmanager
def rank_zero_first(world: Optional[Dict[str, int]]) -> Iterator[None]:
    """Run the block on rank 0 first and on the other ranks after it (one barrier), so that
    what the block caches on disk is written once and read by the rest; no-op without a
    process group. Rank 0 releases the others even when its block raises: they then fail on
    their own, instead of waiting for a barrier that never comes."""
    if world is not None and world["rank"] != 0:
        dist.barrier()
    try:
        yield
    finally:
        if world is not None and world["rank"] == 0:
            dist.barrier()


class DataParallelStep(EagerStep):
    """One update of a data-parallel run (module docstring). Precision bf16 works as in the
    eager step; compilation is not supported here."""

    def __init__(self, trainer, rank: int, world_size: int):
        if trainer.cfg.compile:
            raise ValueError("torchrun runs do not compile the networks: use --no-compile")
        if not trainer.model.supports_device_step:
            raise ValueError(f"data-parallel training supports the models with one optimiser "
                             f"and no iteration-dependent term, not {trainer.model.name!r}")
        if trainer.cfg.batch_size % world_size:
            raise ValueError(f"batch_size {trainer.cfg.batch_size} is not a multiple of the "
                             f"{world_size} processes")
        super().__init__(trainer)
        self.rank, self.world = rank, world_size
        self.rows = trainer.cfg.batch_size // world_size

    def _mine(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor[self.rank * self.rows:(self.rank + 1) * self.rows]

    def _update(self, trainer) -> Dict[str, Any]:
        t, cfg, model, sched = trainer.t, trainer.cfg, trainer.model, trainer.schedule
        trainer.begin_update()
        if cfg.fresh_optimizer_per_stage and sched.optimizer_reset(t):
            trainer.optimizer = trainer.new_optimizer()
        x = self._mine(trainer.draw_batch())
        model.train()
        model.set_iteration(t)
        on = model.code_active(t)
        betas = sched.betas(t)
        counts = None
        with self._networks(trainer):
            mu, scale = model.encode(x)
            # the global batch's noise, drawn as a single run draws it, this rank's rows
            eps = torch.randn((cfg.batch_size, model.latent_dim), generator=trainer.z_gen,
                              device=mu.device, dtype=mu.dtype)
            post = Posterior(mu, scale, mu + model.posterior_std(scale) * self._mine(eps))
            if model.uses_discrete_step and on:
                u = code_loglik(model, x, post.z).to(post.z.device)
                gathered = [torch.empty_like(u) for _ in range(self.world)]
                dist.all_gather(gathered, u.contiguous())
                labels = kernels.assign(torch.cat(gathered), model.config.pairwise_lambda)
                d = one_hot_codes(self._mine(labels).to(post.z.device), model.num_classes,
                                  post.z.dtype)
                counts = [int(c) for c in torch.bincount(labels.cpu(),
                                                         minlength=model.num_classes).tolist()]
            else:
                d = model.zero_code(x.shape[0], like=post.z)
            terms = model.loss_terms(x, d, betas, posterior=post)
        # the logged values and the finiteness check are the global batch's (a mean of means)
        stats = torch.cat([torch.stack([terms["loss"], terms["recon"], terms["kl"]]).detach(),
                           terms["kl_per_dim"].detach()]).double()
        dist.all_reduce(stats)
        stats /= self.world
        for i, name in enumerate(("loss", "recon", "kl")):
            if not math.isfinite(float(stats[i])):
                raise NonFiniteLoss(t, name, float(stats[i]))
        trainer.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        grads = [p.grad for p in model.vae_parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
        trainer.updating = True
        trainer.optimizer.step()
        trainer.t = t + 1
        trainer.updating = False
        m = model.latent_dim
        return {"t": t, "loss": float(stats[0]), "recon": float(stats[1]), "kl": float(stats[2]),
                "kl_per_dim": [float(v) for v in stats[3:3 + m]],
                "betas": [float(b) for b in betas], "relieved": int(sched.relieved(t)),
                "discrete_on": bool(sched.discrete_on(t)), "class_counts": counts, "extra": {}}


def agree_to_stop(flag: bool) -> bool:
    """Whether any rank wants to stop (one all-reduce): all ranks stop after the same update."""
    value = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
