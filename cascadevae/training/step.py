"""One training update, behind one interface the loop does not look inside:

* :meth:`update(trainer)` makes update t = ``trainer.t`` (advancing ``trainer.t``) and returns
  its record (losses, per-dim KL, betas, class counts), or None when reading it back would
  cost a device synchronisation;
* :meth:`read(trainer)` returns the last update's record (a sync on a device step).

:class:`EagerStep` is the default: the model's forward, the discrete step, backward and Adam
in plain torch, under bfloat16 autocast for precision bf16 and with torch.compile'd networks
for compile. :class:`DeviceUpdate` runs :class:`cascadevae.device_step.DeviceStep` (no host
sync inside an update; CUDA graphs with ``use_graphs``).

A non-finite loss raises :class:`NonFiniteLoss` (the loop stops and keeps the last good
checkpoint).
"""
from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Dict, Optional

import torch

from .. import acceleration


class NonFiniteLoss(RuntimeError):
    def __init__(self, t: int, term: str, value: float):
        self.t, self.term, self.value = t, term, value
        super().__init__(f"non-finite {term} ({value}) at iteration t={t} (update {t + 1}); "
                         "stopping, the last good checkpoint is kept")


#: loss_terms keys every model returns; the others go to the record's "extra"
BASE_TERMS = ("recon", "kl_per_dim", "kl", "loss")


def _check_finite(values: torch.Tensor, t: int, what: str) -> None:
    """Stop update t as non-finite (NonFiniteLoss) when ``values`` hold a NaN or infinity."""
    if not bool(torch.isfinite(values).all()):
        raise NonFiniteLoss(t, what, float("nan"))


class EagerStep:
    """The update in plain torch (see the module docstring). With ``trainer.cfg.compile`` the
    encoder and decoder run compiled inside the update only (evaluation, figures and the
    monitor use the plain modules, so their batch sizes never recompile); the first compiled
    update is timed (:attr:`compile_seconds`), and where compilation fails it is rolled back,
    redone eagerly and ``trainer.cfg.compile`` becomes False (:attr:`compile_failed`)."""

    def __init__(self, trainer):
        self._compiled: Optional[Dict[str, torch.nn.Module]] = None
        self.compile_seconds: Optional[float] = None
        self.compile_failed: Optional[str] = None
        if trainer.cfg.compile:
            self._compiled = {name: torch.compile(getattr(trainer.model, name), dynamic=False)
                              for name in ("encoder", "decoder")}

    @property
    def first_compiled_update_pending(self) -> bool:
        return self._compiled is not None and self.compile_seconds is None

    @contextlib.contextmanager
    def _networks(self, trainer):
        """The networks and arithmetic of an update: bfloat16 autocast for precision bf16,
        and the compiled encoder and decoder in place of the plain ones for compile."""
        model, saved = trainer.model, {}
        if self._compiled is not None:
            for name, module in self._compiled.items():
                saved[name] = model._modules[name]
                model._modules[name] = module
        try:
            with acceleration.autocast(trainer.device, trainer.cfg.precision):
                yield
        finally:
            model._modules.update(saved)

    def update(self, trainer) -> Dict[str, Any]:
        if not self.first_compiled_update_pending:
            return self._update(trainer)
        t0 = time.perf_counter()
        try:
            rec = self._update(trainer)
        except Exception as exc:
            if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise
            if not trainer.rollback_interrupted():
                raise
            self.compile_failed = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"
            self._compiled = None
            trainer.cfg = trainer.cfg.replace(compile=False)
            return self._update(trainer)
        self.compile_seconds = time.perf_counter() - t0
        return rec

    def read(self, trainer) -> Dict[str, Any]:
        raise RuntimeError("the eager step returns every record from update()")

    @staticmethod
    def _codes(model, x, z, t):
        """The decoder's code for update t; non-finite values reaching the discrete step
        (from diverged parameters) stop the run the documented way, not in a kernel error."""
        if model.uses_discrete_step and model.code_active(t):
            _check_finite(z, t, "z (the discrete step's input)")
        try:
            return model.decoder_code(x, z, t, train=True)
        except ValueError:
            if all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise
            raise NonFiniteLoss(t, "discrete-step scores u (non-finite parameters)",
                                float("nan")) from None

    def _update(self, trainer) -> Dict[str, Any]:
        pending = self.begin(trainer)
        with self._networks(trainer):
            d = self._codes(trainer.model, pending["x"], pending["post"].z, pending["t"])
        return self.finish(trainer, pending, d)

    # The two halves of an update, for a group of seeds whose discrete steps are solved in one
    # batched assign call (cascadevae.training.group): begin() up to the scores u, finish()
    # from the codes on. begin + codes + finish is exactly _update.
    def begin(self, trainer, scores: bool = False) -> Dict[str, Any]:
        """Draw the batch and z of update t (and with ``scores`` the discrete step's u when
        the code is active)."""
        t, cfg, model, sched = trainer.t, trainer.cfg, trainer.model, trainer.schedule
        trainer.begin_update()
        if cfg.fresh_optimizer_per_stage and sched.optimizer_reset(t):
            trainer.optimizer = trainer.new_optimizer()
        x = trainer.draw_batch()
        model.train()
        model.set_iteration(t)
        pending = {"t": t, "x": x, "on": model.code_active(t), "betas": sched.betas(t), "u": None}
        with self._networks(trainer):
            pending["post"] = model.posterior(x, generator=trainer.z_gen)
            if scores and model.uses_discrete_step and pending["on"]:
                from ..models.discrete import code_loglik
                z = pending["post"].z
                _check_finite(z, t, "z (the discrete step's input)")
                u = code_loglik(model, x, z)
                # this seed stops the documented way, not the group's batched assign
                _check_finite(u, t, "discrete-step scores u (non-finite parameters)")
                pending["u"] = u
        return pending

    def finish(self, trainer, pending: Dict[str, Any], d) -> Dict[str, Any]:
        """The loss with codes d, backward, Adam, the extra update; the record of update t."""
        t, model, sched = pending["t"], trainer.model, trainer.schedule
        x, post, betas, on = pending["x"], pending["post"], pending["betas"], pending["on"]
        with self._networks(trainer):
            terms = model.loss_terms(x, d, betas, posterior=post)
        for name in ("recon", "kl", "loss"):
            value = float(terms[name].detach())
            if not math.isfinite(value):
                raise NonFiniteLoss(t, name, value)
        trainer.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        trainer.updating = True
        trainer.optimizer.step()
        extra = {k: float(v.detach()) for k, v in terms.items() if k not in BASE_TERMS}
        with self._networks(trainer):
            extra.update(model.extra_update(post, trainer.extra_optimizers, trainer.draw_batch,
                                            trainer.z_gen))
        trainer.t = t + 1
        trainer.updating = False
        counts = None
        if model.uses_discrete_step and on and d is not None and d.shape[1] > 0:
            counts = [int(c) for c in d.detach().sum(dim=0).round().cpu().tolist()]
        return {"t": t, "loss": float(terms["loss"].detach()),
                "recon": float(terms["recon"].detach()), "kl": float(terms["kl"].detach()),
                "kl_per_dim": [float(v) for v in terms["kl_per_dim"].detach().cpu().tolist()],
                "betas": [float(b) for b in betas], "relieved": int(sched.relieved(t)),
                "discrete_on": bool(sched.discrete_on(t)), "class_counts": counts,
                "extra": extra}


class DeviceUpdate:
    """The update through :class:`cascadevae.device_step.DeviceStep` (``mode`` "eager" or
    "graphs"): queued on the device, nothing read back until :meth:`read`. It takes over the
    trainer's optimiser (a capturable Adam, state carried over, e.g. after a resume)."""

    def __init__(self, trainer, mode: str):
        from ..device_step import DeviceStep
        if not trainer.model.supports_device_step:
            raise ValueError(f"--device-step supports the models {device_step_models()}, not "
                             f"{trainer.model.name!r} (its update has an extra optimiser or a "
                             "term that depends on the iteration)")
        if mode == "graphs" and trainer.device.type != "cuda":
            raise ValueError(f"--device-step graphs needs a CUDA device, got {trainer.device}")
        self.dstep = DeviceStep.from_trainer(trainer, use_graphs=(mode == "graphs"))
        trainer.optimizer = self.dstep.optimizer
        self.first_compiled_update_pending = False

    def update(self, trainer) -> None:
        images, _ = trainer.dataset.sample_batch(trainer.cfg.batch_size, trainer.data_rng)
        trainer.updating = True
        self.dstep.step(trainer.t, images)
        trainer.t += 1
        trainer.updating = False
        return None

    def read(self, trainer) -> Dict[str, Any]:
        """The last update's values (waits for the device); raises NonFiniteLoss for the first
        non-finite update since the last read."""
        bad = self.dstep.first_nonfinite()
        if bad is not None:
            raise NonFiniteLoss(bad, "loss", float("nan"))
        return dict(self.dstep.record(trainer.t - 1), extra={})


def device_step_models():
    from ..models import MODELS
    return [name for name, cls in MODELS.items() if cls.supports_device_step]
