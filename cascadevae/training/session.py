"""One training run from start to summary, shared by the command line (:mod:`.cli`) and the
Python API (:func:`cascadevae.fit`): it writes the run directory's config.json and run.json,
builds the trainer, the step and the callbacks, runs the loop, evaluates the final checkpoint
and writes summary.json. The run directory layout is in :mod:`cascadevae.run_dir`.
"""
from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch

from .. import acceleration
from ..config import TrainConfig
from ..run_dir import RunDir, RunDirError, TrainingLock
from . import callbacks as cb
from .loop import Loop
from .step import DeviceUpdate, EagerStep
from .trainer import Trainer

DEFAULT_LOG_EVERY, DEFAULT_CHECKPOINT_EVERY = 100, 5000
DEFAULT_MI_IMAGES = 500
MI_POINTS_PER_RUN = 25
EXIT_OK, EXIT_NONFINITE, EXIT_INTERRUPTED, EXIT_USAGE = 0, 3, 130, 2


def default_mi_every(iterations: int, log_every: int) -> int:
    """About ``MI_POINTS_PER_RUN`` monitor points per run, on multiples of ``log_every``."""
    step = (int(iterations) // MI_POINTS_PER_RUN) // int(log_every) * int(log_every)
    return max(int(log_every), step)


@dataclass
class RunOptions:
    """How a run logs, checkpoints and ends (not hyperparameters: they do not change the bits
    of the trained model). ``mi_every`` None: about 25 monitor points per run; 0: none."""
    log_every: int = DEFAULT_LOG_EVERY
    checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY
    mi_every: Optional[int] = None
    mi_images: int = DEFAULT_MI_IMAGES
    keep_checkpoints: bool = False
    figures: bool = True
    progress: bool = True
    evaluate: bool = True
    eval_max_images: int = 10000
    eval_votes: int = 800
    device_step: Optional[str] = None
    tensorboard: bool = False
    stop_at: Optional[int] = None


@contextlib.contextmanager
def _released_on_error(lock: Optional[TrainingLock]):
    """Release ``lock`` if the block raises (a session that was never built trains nothing)."""
    try:
        yield
    except BaseException:
        if lock is not None:
            lock.release()
        raise


class Session:
    """A run directory with its trainer, ready to train (:meth:`new` or :meth:`resumed`)."""

    def __init__(self, run: RunDir, trainer: Trainer, dataset, data_name: str,
                 options: RunOptions, resumed: bool, world: Optional[Dict[str, int]] = None,
                 lock: Optional[TrainingLock] = None):
        self.run, self.trainer, self.dataset = run, trainer, dataset
        # held from before the directory is touched until finish(): one trainer per run
        self.lock = lock
        self.data_name, self.options, self.resumed = data_name, options, resumed
        # a torchrun launch (training.distributed): rank 0 alone writes the run directory
        self.world = world
        self.writes = world is None or world["rank"] == 0
        self.status: Optional[str] = None
        self.message = ""
        self.metrics: Optional[Dict[str, float]] = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def new(cls, cfg: TrainConfig, dataset, *, data_name: str, image_size: int,
            out: os.PathLike, device: torch.device, options: RunOptions, threads: int,
            data_dir=None, lazy: bool = False, preset: str = "", command: str = "",
            data_options: Optional[Dict[str, Any]] = None,
            world: Optional[Dict[str, int]] = None) -> "Session":
        if world is not None and world["rank"] != 0:   # another rank: nothing to write
            if options.mi_every is None:
                options.mi_every = default_mi_every(cfg.iterations, options.log_every)
            trainer = Trainer(cfg, dataset, image_size, device)
            return cls(RunDir(out, create=True), trainer, dataset, data_name, options,
                       resumed=False, world=world)
        run = RunDir(out, create=True)
        lock = run.lock_for_training(command)
        with _released_on_error(lock):
            present = run.run_files()
            if present:
                raise RunDirError(f"{run.path} already holds a run ({', '.join(present)}); "
                                  f"resume it with --resume {run.path}, or choose another --out")
            run.remove_stale_temp()
            if options.mi_every is None:
                options.mi_every = default_mi_every(cfg.iterations, options.log_every)
            trainer = Trainer(cfg, dataset, image_size, device)
            trainer.cfg.save(run.path)  # with what the trainer filled in (beta-TCVAE's N, auto)
            run.write_json("run.json", {
                "dataset": data_name, "dataset_source": dataset.source, "image_size": image_size,
                "data_dir": None if data_dir is None else os.fspath(data_dir),
                "data_options": dict(data_options or {}),
                "lazy_data": bool(lazy), "device": str(device), "log_every": options.log_every,
                "checkpoint_every": options.checkpoint_every, "preset": preset,
                "mi_every": options.mi_every, "mi_images": options.mi_images,
                "keep_checkpoints": bool(options.keep_checkpoints),
                "precision": trainer.cfg.precision, "compile": trainer.cfg.compile,
                "threads": threads, "native_bf16": acceleration.native_bf16(device),
                "command": command, "schedule": trainer.schedule.to_dict(),
                "world_size": 1 if world is None else world["world_size"]})
        return cls(run, trainer, dataset, data_name, options, resumed=False, world=world,
                   lock=lock)

    @classmethod
    def resumed(cls, run: RunDir, cfg: TrainConfig, dataset, *, data_name: str,
                image_size: int, device: torch.device, options: RunOptions,
                world: Optional[Dict[str, int]] = None) -> "Session":
        writes = world is None or world["rank"] == 0
        lock = run.lock_for_training("python -m cascadevae.train --resume "
                                     f"{run.path}") if writes else None
        with _released_on_error(lock):
            trainer = Trainer(cfg, dataset, image_size, device)
            if writes:
                run.remove_stale_temp()
            if run.has_checkpoint():
                trainer.load_state(run.load_checkpoint(map_location=device))
                if writes:
                    run.truncate_metrics(trainer.t)
                    cb.say(f"resuming {run.path} at t={trainer.t} of {cfg.iterations}")
            else:
                cb.say(f"no checkpoint in {run.path}: starting it from t=0")
                if writes:
                    run.truncate_metrics(0)
            if options.mi_every is None:
                options.mi_every = default_mi_every(cfg.iterations, options.log_every)
        return cls(run, trainer, dataset, data_name, options, resumed=True, world=world,
                   lock=lock)

    # -- training -----------------------------------------------------------------------------
    def callbacks(self, step) -> List[cb.Callback]:
        o, run, trainer = self.options, self.run, self.trainer
        out: List[cb.Callback] = []
        if not self.writes:
            return out
        bar = None
        if o.progress:
            bar = cb.ProgressBar(trainer.cfg.iterations)
            out.append(bar)
        out.append(cb.CompileNote(run, bar))
        if o.mi_every:
            from ..monitor import InformationMonitor
            out.append(cb.InformationMonitor(InformationMonitor(
                self.dataset, trainer.device, num_images=o.mi_images)))
        out.append(cb.MetricsLog(run))
        if o.tensorboard:
            out.append(cb.TensorBoard(run))
        out.append(cb.Checkpoints(run, keep=o.keep_checkpoints))
        if o.figures:
            out.append(cb.Figures(run, self.dataset, information=bool(o.mi_every),
                                  title=f"{trainer.cfg.model_name} on {self.data_name}"))
        return out

    def make_loop(self) -> Loop:
        """The step and the loop of this run (with its callbacks), not yet started."""
        o, trainer = self.options, self.trainer
        if self.world is not None:
            from .distributed import DataParallelStep
            step = DataParallelStep(trainer, self.world["rank"], self.world["world_size"])
        elif o.device_step is None:
            step = EagerStep(trainer)
        else:
            step = DeviceUpdate(trainer, o.device_step)
        if o.device_step:
            cb.say(f"device step: {o.device_step} (values read every {o.log_every} updates)")
        end = trainer.cfg.iterations if o.stop_at is None else min(trainer.cfg.iterations, o.stop_at)
        loop = Loop(trainer, step, end=end, log_every=o.log_every,
                    checkpoint_every=o.checkpoint_every, mi_every=o.mi_every or 0,
                    callbacks=self.callbacks(step))
        if self.world is not None:   # every rank stops after the same update
            from .distributed import agree_to_stop
            loop.should_stop = lambda: agree_to_stop(loop.signals.hit is not None)
        return loop

    def train(self) -> int:
        """Train to the end (or ``stop_at``), evaluate a finished run, write summary.json;
        returns the command's exit code."""
        try:
            loop = self.make_loop()
            started = time.time()
            return self.finish(loop, loop.run(), started)
        finally:
            self.release()

    def release(self) -> None:
        """Let another process train this run directory (idempotent)."""
        if self.lock is not None:
            self.lock.release()

    def finish(self, loop: Loop, status: str, started: float) -> int:
        """After the loop: say how it ended, evaluate a finished run, write summary.json;
        the exit code."""
        o, trainer, run = self.options, self.trainer, self.run
        cfg = trainer.cfg
        message, code = loop.message, EXIT_OK
        if status == "non-finite":
            code = EXIT_NONFINITE
            cb.say(f"error: {message}")
        elif status == "interrupted":
            code = EXIT_INTERRUPTED
            if message.startswith("interrupted after"):
                message += f", resume with: python -m cascadevae.train --resume {run.path}"
            if loop.signal_name in ("SIGTERM", "SIGHUP"):
                code = 128 + int(getattr(signal, loop.signal_name))  # the shell's convention
            cb.say(message)
        elif trainer.t < cfg.iterations:
            status = "stopped"
            message = (f"stopped after {trainer.t} updates (--stop-at); resume with: "
                       f"python -m cascadevae.train --resume {run.path}")
            cb.say(message)
        if not self.writes:
            self.status, self.message = status, message
            return code
        if self.world is not None:   # the other ranks are done: evaluate alone
            import torch.distributed as dist
            dist.destroy_process_group()
        if status == "finished" and o.evaluate:
            self.metrics = self._final_evaluation()
        self.status, self.message = status, message
        self._summary(loop, status, message)
        self.release()
        if status == "finished":
            seg = trainer.t - loop.start_t
            cb.say(f"done: {trainer.t} updates ({seg / max(time.time() - started, 1e-9):.1f} "
                   f"it/s this session); summary in {run.summary_path}")
        return code

    def _final_evaluation(self) -> Optional[Dict[str, Any]]:
        """Evaluate the final checkpoint as ``python -m cascadevae.evaluate`` does (eval.json
        and the evaluation figures); summary.json's ``metrics``, or None if it failed."""
        from ..evaluate import summary_metrics, write_evaluation
        o = self.options
        cb.say("evaluating the final checkpoint (skip with --no-eval) ...")
        try:
            res = write_evaluation(self.run.path, device=self.trainer.device,
                                   max_images=o.eval_max_images, num_votes=o.eval_votes,
                                   progress=o.progress, figures=o.figures)
        except Exception as exc:  # noqa: BLE001  (the trained run is intact; redo it later)
            cb.say(f"warning: evaluation failed: {type(exc).__name__}: {exc}; run "
                   f"python -m cascadevae.evaluate {self.run.path}")
            return None
        metrics = summary_metrics(res)
        cb.say("  " + "  ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
        return metrics

    def _summary(self, loop: Loop, status: str, message: str) -> None:
        last, final = loop.last, None
        if last is not None:
            final = {k: last[k] for k in ("t", "loss", "recon", "kl", "kl_per_dim", "relieved",
                                          "discrete_on", "class_counts")}
        self.run.write_json("summary.json", {
            "status": status, "message": message, "iterations": self.trainer.t,
            "target_iterations": self.trainer.cfg.iterations, "final": final,
            "wall_seconds": loop.wall(), "dataset_source": self.dataset.source,
            "metrics": self.metrics,
            "eval_file": None if self.metrics is None else "eval.json"})
