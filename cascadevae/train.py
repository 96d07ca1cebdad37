"""Train a model of the paper: ``python -m cascadevae.train --preset dsprites``.

One update t (counted from 0, see :mod:`cascadevae.schedule`):

1. a batch of indices from the run's data-order generator (numpy, seeded from the config
   seed, its state checkpointed), uniformly with replacement;
2. ``model.posterior(x)``: encode once, sample z once (from the run's own torch generator);
3. the codes d: the discrete step (exact assignment with lambda') once ``discrete_on(t)``,
   zeros before t_d and for models without a discrete code;
4. ``model.loss_terms(x, d, schedule.betas(t), posterior=post)``, backward, one Adam step
   (``weight_decay`` as Adam's coupled L2 term, i.e. an L2 penalty added to the loss);
5. with ``fresh_optimizer_per_stage``, a new Adam state whenever ``optimizer_reset(t)``.

The run directory (``--out``) gets config.json, run.json, metrics.jsonl, checkpoint.pt and
summary.json (see :mod:`cascadevae.run_dir`). ``--resume RUN_DIR`` continues a run exactly
(bitwise on CPU). Ctrl-C writes a checkpoint and exits; a non-finite loss stops the run and
keeps the last good checkpoint. Every checkpoint also writes figures into RUN_DIR/figures/
(reconstructions, traversals; see :mod:`cascadevae.figures`) unless ``--no-figures``.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import datetime as _dt
import math
import os
import shlex
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from . import acceleration
from . import data as data_mod
from .models import ModelConfig, build_model
from .models import discrete as discrete_mod
from .models.config import ALL_BASELINE_FIELDS
from .presets import TrainConfig, get_preset, preset_names
from .run_dir import RunDir, rng_states, set_rng_states

#: --dataset name -> (TrainConfig.dataset, image size)
DATASET_CHOICES: Dict[str, tuple] = {
    "dsprites": ("dsprites", 64),
    "chairs": ("chairs", 64),
    "mnist": ("mnist", 32),
    "mnist5k": ("mnist", 32),
    "fashion-mnist": ("fashion-mnist", 32),
}
_IMAGE_SIZE = {"dsprites": 64, "chairs": 64, "mnist": 32, "fashion-mnist": 32}

DEFAULT_LOG_EVERY, DEFAULT_CHECKPOINT_EVERY = 100, 5000
DEFAULT_MI_IMAGES = 500
MI_POINTS_PER_RUN = 25
EXIT_OK, EXIT_NONFINITE, EXIT_INTERRUPTED, EXIT_USAGE = 0, 3, 130, 2


class NonFiniteLoss(RuntimeError):
    def __init__(self, t: int, term: str, value: float):
        self.t, self.term, self.value = t, term, value
        super().__init__(f"non-finite {term} ({value}) at iteration t={t} (update {t + 1}); "
                         "stopping, the last good checkpoint is kept")


# ---------------------------------------------------------------------------------------------
# command line

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cascadevae.train", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="dsprites", choices=preset_names(),
                   help="training configuration (default: dsprites)")
    p.add_argument("--dataset", choices=sorted(DATASET_CHOICES),
                   help="override the preset's dataset (image size follows: 64 for dsprites "
                        "and chairs, 32 for the MNISTs)")
    p.add_argument("--model", help="override the preset's model name")
    p.add_argument("--seed", type=int, help="override the config seed")
    p.add_argument("--iters", type=int, help="number of updates; smaller than the preset's "
                   "budget scales r and t_d proportionally (TrainConfig.scaled)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, ...")
    p.add_argument("--precision", choices=acceleration.PRECISIONS,
                   help="network arithmetic: bf16 runs them under bfloat16 autocast (float32 "
                        "weights, Adam, losses); auto (default) picks bf16 where the device "
                        "does bfloat16 natively (CPU with AMX, CUDA >= 8.0), else fp32")
    p.add_argument("--compile", dest="compile", action="store_const", const=True,
                   help="compile the networks with torch.compile (default: auto, on only where "
                        "it was measured to pay; see docs/performance.md)")
    p.add_argument("--no-compile", dest="compile", action="store_const", const=False,
                   help="never compile")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads (default: OMP_NUM_THREADS, else the free cores: the cores "
                        "minus the machine's load, at least 1)")
    data_mod.add_data_dir_argument(p)
    p.add_argument("--lazy-data", action="store_true",
                   help="procedural dSprites: render each batch instead of the whole grid")
    p.add_argument("--out", help="run directory (default runs/<preset>-<dataset>-<timestamp>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override any TrainConfig field (repeatable), e.g. --set batch_size=8")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--log-every", type=int, metavar="N",
                   help="append to metrics.jsonl every N updates (default 100; a resumed run keeps its own)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="write checkpoint.pt every N updates (default 5000; a resumed run keeps its own)")
    p.add_argument("--stop-at", type=int, metavar="T",
                   help="stop (with a checkpoint, resumable) once T updates are done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true",
                   help="do not write figures into RUN_DIR/figures/ at each checkpoint")
    p.add_argument("--keep-checkpoints", action="store_true",
                   help="also keep every checkpoint's weights in RUN_DIR/checkpoints/ (for "
                        "python -m cascadevae.evaluate --all-checkpoints)")
    p.add_argument("--mi-every", type=int, metavar="N",
                   help="log I(x; z_j) on a fixed image set every N updates (default: about 25 "
                        "times per run, a multiple of --log-every; 0 turns it off)")
    p.add_argument("--mi-images", type=int, default=DEFAULT_MI_IMAGES, metavar="N",
                   help=f"images for the I(x; z_j) monitor (default {DEFAULT_MI_IMAGES})")
    p.add_argument("--device-step", choices=("eager", "graphs"),
                   help="run each update with cascadevae.device_step (no host sync inside an "
                        "update; values read every --log-every updates); 'graphs' replays it as "
                        "CUDA graphs (CUDA only). Models: " + ", ".join(DEVICE_STEP_MODELS))
    p.add_argument("--no-eval", action="store_true",
                   help="skip the evaluation at the end (eval.json, summary.json's metrics)")
    p.add_argument("--eval-max-images", type=int, default=10000, metavar="N",
                   help="evaluation images at the end (default 10000; see cascadevae.evaluate)")
    p.add_argument("--eval-votes", type=int, default=800, metavar="M",
                   help="disentanglement score votes at the end (dSprites; default 800)")
    return p


def parse_value(text: str) -> Any:
    """A --set value: a Python literal (numbers, tuples, lists, None, True/False), else the
    string itself; 'null'/'true'/'false' are accepted too."""
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_overrides(items: Sequence[str]) -> Dict[str, Any]:
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


def resolve_config(args: argparse.Namespace) -> tuple:
    """(TrainConfig, dataset name for :func:`cascadevae.data.load`, notes to print)."""
    notes: List[str] = []
    cfg = get_preset(args.preset)
    data_name = cfg.dataset
    over: Dict[str, Any] = {}
    if args.dataset:
        data_name = args.dataset
        over["dataset"] = DATASET_CHOICES[args.dataset][0]
    if args.model:
        over["model"] = args.model
    if args.seed is not None:
        over["seed"] = args.seed
    over.update(parse_overrides(args.overrides))
    if over:
        cfg = cfg.replace(**over)
    if args.precision is not None:
        cfg = cfg.replace(precision=args.precision)
    if args.compile is not None:
        cfg = cfg.replace(compile=args.compile)
    if args.iters is not None:
        if args.iters < cfg.iterations:
            cfg = cfg.scaled(args.iters)
            notes.append(f"scaled schedule: iterations {args.iters}, r {cfg.relieve_every}, "
                         f"t_d {cfg.discrete_warmup} (x{cfg.budget_scale:.4g} of the paper's "
                         "budget; not the paper's schedule)")
        elif args.iters > cfg.iterations:
            cfg = cfg.replace(iterations=args.iters)
            notes.append(f"iterations raised to {args.iters}; schedule (r, t_d) unchanged")
    return cfg, data_name, notes


def model_config(cfg: TrainConfig, image_size: int) -> ModelConfig:
    defaults = ModelConfig()
    pick = lambda v, d: d if v is None else v  # noqa: E731
    mc = ModelConfig(model=cfg.model, image_size=image_size, latent_dim=cfg.latent_dim,
                     num_classes=cfg.num_classes,
                     beta_high=pick(cfg.beta_high, defaults.beta_high),
                     beta_low=pick(cfg.beta_low, defaults.beta_low),
                     beta=pick(cfg.beta, defaults.beta), anchor_dims=tuple(cfg.anchor_dims),
                     pairwise_lambda_official=cfg.pairwise_lambda_official,
                     **{n: getattr(cfg, n) for n in ALL_BASELINE_FIELDS})
    # lambda' is converted once, by the model config; the discrete step uses that value.
    assert mc.pairwise_lambda == cfg.pairwise_lambda
    return mc


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_dataset(data_name: str, data_dir: Optional[str], lazy: bool):
    options = {"lazy": True} if lazy and data_name == "dsprites" else {}
    return data_mod.load(data_name, data_dir=data_dir, **options)


# ---------------------------------------------------------------------------------------------
# training

class _SigintFlag:
    """First Ctrl-C: finish the current update, checkpoint, exit. Second: raise at once."""

    def __init__(self):
        self.hit = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.hit:
            raise KeyboardInterrupt
        self.hit = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Trainer:
    """One training run's state and update. ``cfg.dataset_size`` left None by a model that
    needs it (beta-TCVAE) is filled from ``len(dataset)`` here; ``self.cfg`` (checkpointed) and
    ``self.model_config`` (run.json) record the value used."""

    #: loss_terms keys every model returns; the others go to the record's "extra"
    BASE_TERMS = ("recon", "kl_per_dim", "kl", "loss")

    def __init__(self, cfg: TrainConfig, dataset, image_size: int, device: torch.device):
        cfg = cfg.with_dataset_size(len(dataset)).resolved(device)
        self.cfg = cfg
        self.dataset = dataset
        self.device = device
        self.schedule = cfg.schedule()
        self.model_config = model_config(cfg, image_size)
        torch.manual_seed(cfg.seed)
        self.model = build_model(self.model_config).to(device)
        self.z_gen = torch.Generator(device=device)
        self.z_gen.manual_seed(cfg.seed + 1)
        self.data_rng = np.random.default_rng(cfg.seed)
        self.optimizer = self.new_optimizer()
        self.extra_optimizers = self.new_extra_optimizers()
        self.t = 0               # updates done
        self.elapsed = 0.0       # wall seconds of earlier segments
        self.updating = False    # inside optimizer.step(): parameters half-written
        self._pre = None
        # compiled networks, used only inside step() (evaluation, figures and the monitor
        # run the plain modules, so their other batch sizes never trigger a recompile)
        self._compiled: Optional[Dict[str, torch.nn.Module]] = None
        self.compile_seconds: Optional[float] = None
        if cfg.compile:
            self._compiled = {name: torch.compile(getattr(self.model, name), dynamic=False)
                              for name in ("encoder", "decoder")}

    def rollback_interrupted(self) -> bool:
        """After an interrupt inside :meth:`step`: undo its RNG draws (and a fresh optimizer)
        so the state equals the one after update t - 1. False when the interrupt hit the
        parameter update itself; that state cannot be saved."""
        if self.updating:
            return False
        if self._pre is not None:
            z_state, data_state, optimizer = self._pre
            self.z_gen.set_state(z_state)
            self.data_rng.bit_generator.state = data_state
            self.optimizer = optimizer
        return True

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

    def _draw_batch(self) -> torch.Tensor:
        """The next batch of the run's data order, on the device."""
        images, _ = self.dataset.sample_batch(self.cfg.batch_size, self.data_rng)
        return torch.from_numpy(np.ascontiguousarray(images)).to(self.device)

    # -- checkpoints --------------------------------------------------------------------------
    def state(self, elapsed: float) -> Dict[str, Any]:
        return {"t": self.t, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "extra_optimizers": {n: o.state_dict() for n, o in self.extra_optimizers.items()},
                "model_config": self.model_config.to_dict(), "config": self.cfg.to_dict(),
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

    # -- one update ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _update_context(self):
        """The networks and arithmetic of an update: bfloat16 autocast for precision bf16,
        and the compiled encoder and decoder in place of the plain ones for compile."""
        saved = {}
        if self._compiled is not None:
            for name, module in self._compiled.items():
                saved[name] = self.model._modules[name]
                self.model._modules[name] = module
        try:
            with acceleration.autocast(self.device, self.cfg.precision):
                yield
        finally:
            self.model._modules.update(saved)

    def step(self) -> Dict[str, Any]:
        if self._compiled is not None and self.compile_seconds is None:
            return self._first_compiled_step()
        return self._step()

    def _first_compiled_step(self) -> Dict[str, Any]:
        """The first update compiles the networks: timed, and on a compiler failure rolled
        back and redone eagerly (``cfg.compile`` then becomes False, with one warning)."""
        t0 = time.perf_counter()
        try:
            rec = self._step()
        except Exception as exc:
            if not type(exc).__module__.startswith(("torch._dynamo", "torch._inductor")):
                raise
            if not self.rollback_interrupted():
                raise
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            _say(f"warning: torch.compile failed ({type(exc).__name__}: {first}); training "
                 "without compilation (--no-compile silences this)")
            self._compiled = None
            self.cfg = self.cfg.replace(compile=False)
            return self._step()
        self.compile_seconds = time.perf_counter() - t0
        return rec

    def _step(self) -> Dict[str, Any]:
        t, cfg, sched = self.t, self.cfg, self.schedule
        # what an interrupted update must roll back to (see rollback_interrupted)
        self._pre = (self.z_gen.get_state(), self.data_rng.bit_generator.state, self.optimizer)
        if cfg.fresh_optimizer_per_stage and sched.optimizer_reset(t):
            self.optimizer = self.new_optimizer()
        x = self._draw_batch()
        self.model.train()
        self.model.set_iteration(t)
        on = sched.discrete_on(t)
        betas = sched.betas(t)
        with self._update_context():
            post = self.model.posterior(x, generator=self.z_gen)
            # lam=None: the model config's pairwise_lambda (converted from the official value)
            d = discrete_mod.training_codes(self.model, x, post.z, on)
            terms = self.model.loss_terms(x, d, betas, posterior=post)
        for name in ("recon", "kl", "loss"):
            value = float(terms[name].detach())
            if not math.isfinite(value):
                raise NonFiniteLoss(t, name, value)
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.updating = True
        self.optimizer.step()
        extra = {k: float(v.detach()) for k, v in terms.items() if k not in self.BASE_TERMS}
        with self._update_context():
            extra.update(self.model.extra_update(post, self.extra_optimizers, self._draw_batch,
                                                 self.z_gen))
        self.t = t + 1
        self.updating = False
        counts = None
        if on and self.model.uses_discrete_step and d.shape[1] > 0:
            counts = [int(c) for c in d.detach().sum(dim=0).round().cpu().tolist()]
        return {"t": t, "loss": float(terms["loss"].detach()),
                "recon": float(terms["recon"].detach()), "kl": float(terms["kl"].detach()),
                "kl_per_dim": [float(v) for v in terms["kl_per_dim"].detach().cpu().tolist()],
                "betas": [float(b) for b in betas], "relieved": int(sched.relieved(t)),
                "discrete_on": bool(on), "class_counts": counts, "extra": extra}


# ---------------------------------------------------------------------------------------------

def _say(msg: str) -> None:
    print(msg, flush=True)


#: models whose update DeviceStep reproduces (no extra optimiser, no iteration-dependent term)
DEVICE_STEP_MODELS = ("beta-vae", "anchor-vae", "cascade-c", "cascade-d", "cascade")


def make_device_step(trainer: Trainer, mode: str):
    """A :class:`cascadevae.device_step.DeviceStep` on the trainer (``mode`` "eager" or
    "graphs"), which takes over its optimiser (state carried over, e.g. after a resume)."""
    from .device_step import DeviceStep
    if trainer.cfg.model not in DEVICE_STEP_MODELS:
        raise ValueError(f"--device-step supports the models {list(DEVICE_STEP_MODELS)}, not "
                         f"{trainer.cfg.model!r} (its update has an extra optimiser or a term "
                         "that depends on the iteration)")
    if mode == "graphs" and trainer.device.type != "cuda":
        raise ValueError(f"--device-step graphs needs a CUDA device, got {trainer.device}")
    dstep = DeviceStep.from_trainer(trainer, use_graphs=(mode == "graphs"))
    trainer.optimizer = dstep.optimizer
    return dstep


def device_update(trainer: Trainer, dstep) -> None:
    """One update through the DeviceStep: queued on the device, nothing read back."""
    images, _ = trainer.dataset.sample_batch(trainer.cfg.batch_size, trainer.data_rng)
    trainer.updating = True
    dstep.step(trainer.t, images)
    trainer.t += 1
    trainer.updating = False
    return None


def device_record(dstep, t: int) -> Dict[str, Any]:
    """Update t's values from the DeviceStep (waits for the device); raises NonFiniteLoss for
    the first non-finite update since the last read."""
    bad = dstep.first_nonfinite()
    if bad is not None:
        raise NonFiniteLoss(bad, "loss", float("nan"))
    return dict(dstep.record(t), extra={})


def _compile_note(trainer: Trainer, run: RunDir, bar) -> None:
    """After the first compiled update: say what it cost (once), or record the fallback."""
    if trainer.compile_seconds is not None:
        msg = (f"compiled the networks in {trainer.compile_seconds:.1f} s (first update only; "
               "--no-compile skips it)")
    else:
        msg = "compilation failed; continuing without it (config.json updated)"
        trainer.cfg.save(run.path)
    (bar.write if bar is not None else _say)(msg)


def _postfix(rec: Dict[str, Any]) -> Dict[str, Any]:
    post = {"loss": f"{rec['loss']:.1f}", "recon": f"{rec['recon']:.1f}",
            "kl": f"{rec['kl']:.2f}", "relieved": rec["relieved"]}
    if rec["class_counts"] is not None:
        post["classes"] = "/".join(map(str, rec["class_counts"]))
    return post


def default_mi_every(iterations: int, log_every: int) -> int:
    """About ``MI_POINTS_PER_RUN`` monitor points per run, on multiples of ``log_every``."""
    step = (int(iterations) // MI_POINTS_PER_RUN) // int(log_every) * int(log_every)
    return max(int(log_every), step)


def _final_evaluation(run: RunDir, args: argparse.Namespace,
                      device: torch.device) -> Optional[Dict[str, Any]]:
    """Evaluate the final checkpoint as ``python -m cascadevae.evaluate`` does (eval.json and
    the evaluation figures); returns summary.json's ``metrics``, or None if it failed."""
    from .evaluate import summary_metrics, write_evaluation
    _say("evaluating the final checkpoint (skip with --no-eval) ...")
    try:
        res = write_evaluation(run.path, device=device, max_images=args.eval_max_images,
                               num_votes=args.eval_votes, progress=not args.no_progress,
                               figures=not args.no_figures)
    except Exception as exc:  # the trained run is intact; evaluation can be redone
        _say(f"warning: evaluation failed: {type(exc).__name__}: {exc}; run "
             f"python -m cascadevae.evaluate {run.path}")
        return None
    metrics = summary_metrics(res)
    _say("  " + "  ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
    return metrics


def _summary(run: RunDir, trainer: Trainer, status: str, last: Optional[Dict[str, Any]],
             source: str, wall: float, message: str = "",
             metrics: Optional[Dict[str, float]] = None) -> None:
    final = None
    if last is not None:
        final = {k: last[k] for k in ("t", "loss", "recon", "kl", "kl_per_dim", "relieved",
                                      "discrete_on", "class_counts")}
    run.write_json("summary.json", {
        "status": status, "message": message, "iterations": trainer.t,
        "target_iterations": trainer.cfg.iterations, "final": final,
        "wall_seconds": wall, "dataset_source": source, "metrics": metrics,
        "eval_file": None if metrics is None else "eval.json"})


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag in ("log_every", "checkpoint_every", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    device = resolve_device(args.device)

    if args.resume:
        run = RunDir(args.resume)
        for flag in ("dataset", "model", "seed", "iters", "out"):
            if getattr(args, flag) is not None:
                parser.error(f"--{flag} cannot change a resumed run (its config is in "
                             f"{args.resume}/config.json)")
        if args.overrides:
            parser.error("--set cannot change a resumed run")
        cfg = TrainConfig.load(run.path)
        # precision and compilation change the bits: a resumed run keeps what it used
        if args.precision is not None and (acceleration.resolve_precision(args.precision, device)
                                           != cfg.precision):
            parser.error(f"--precision {args.precision} differs from the run's precision "
                         f"{cfg.precision!r} (config.json); a resumed run keeps its precision")
        if args.compile is not None and bool(args.compile) != bool(cfg.compile):
            parser.error(f"--{'' if args.compile else 'no-'}compile differs from the run's "
                         f"compile={cfg.compile} (config.json); a resumed run keeps it")
        info = run.read_json("run.json")
        if args.threads is None and info.get("threads"):
            args.threads = int(info["threads"])
        data_name, image_size = info["dataset"], int(info["image_size"])
        data_dir = args.data_dir if args.data_dir is not None else info.get("data_dir")
        lazy = bool(info.get("lazy_data", False)) or args.lazy_data
        # a resumed run logs and checkpoints as it was started, unless told otherwise
        if args.log_every is None:
            args.log_every = info.get("log_every")
        if args.checkpoint_every is None:
            args.checkpoint_every = info.get("checkpoint_every")
        if args.mi_every is None:
            args.mi_every = info.get("mi_every")
        if "mi_images" in info:
            args.mi_images = info["mi_images"]
        args.keep_checkpoints = args.keep_checkpoints or bool(info.get("keep_checkpoints"))
        notes: List[str] = []
    else:
        try:
            cfg, data_name, notes = resolve_config(args)
        except ValueError as exc:
            parser.error(str(exc))
        image_size = _IMAGE_SIZE[cfg.dataset]
        data_dir, lazy = args.data_dir, args.lazy_data
        out = args.out or os.path.join(
            "runs", f"{args.preset}-{data_name}-{_dt.datetime.now():%Y%m%d-%H%M%S}")
        run = RunDir(out, create=True)
        if run.has_checkpoint():
            parser.error(f"{out} already holds a run; use --resume {out} or another --out")

    args.log_every = args.log_every or DEFAULT_LOG_EVERY
    args.checkpoint_every = args.checkpoint_every or DEFAULT_CHECKPOINT_EVERY
    if args.mi_every is None:
        args.mi_every = default_mi_every(cfg.iterations, args.log_every)
    if args.mi_every < 0 or args.mi_images < 2:
        parser.error(f"--mi-every must be >= 0 (got {args.mi_every}) and --mi-images >= 2 "
                     f"(got {args.mi_images})")
    if args.device_step and cfg.model not in DEVICE_STEP_MODELS:
        parser.error(f"--device-step supports the models {list(DEVICE_STEP_MODELS)}, not "
                     f"{cfg.model!r}")
    if args.device_step == "graphs" and device.type != "cuda":
        parser.error(f"--device-step graphs needs a CUDA device, got {device}")
    for note in notes:
        _say(note)
    threads = args.threads or acceleration.default_threads()
    torch.set_num_threads(threads)
    dataset = load_dataset(data_name, data_dir, lazy)
    _say(f"dataset: {data_name} ({len(dataset)} images {dataset.image_shape}) from "
         f"{dataset.source}")
    if tuple(dataset.image_shape[-2:]) != (image_size, image_size):
        _say(f"error: dataset images are {dataset.image_shape}, the model expects "
             f"{image_size}x{image_size}")
        return EXIT_USAGE

    if cfg.resolved(device).compile:
        reason = acceleration.compiler_available()
        if reason:
            _say(f"warning: torch.compile is unavailable here ({reason}); training without "
                 "compilation (--no-compile silences this)")
            cfg = cfg.replace(compile=False)
    trainer = Trainer(cfg, dataset, image_size, device)
    if args.resume:
        if run.has_checkpoint():
            trainer.load_state(run.load_checkpoint(map_location=device))
            run.truncate_metrics(trainer.t)
            _say(f"resuming {run.path} at t={trainer.t} of {cfg.iterations}")
        else:
            _say(f"no checkpoint in {run.path}: starting it from t=0")
            run.truncate_metrics(0)
    else:
        trainer.cfg.save(run.path)  # with what the trainer filled in (beta-TCVAE's N)
        run.write_json("run.json", {
            "dataset": data_name, "dataset_source": dataset.source, "image_size": image_size,
            "data_dir": None if data_dir is None else os.fspath(data_dir),
            "lazy_data": bool(lazy), "device": str(device), "log_every": args.log_every,
            "checkpoint_every": args.checkpoint_every, "preset": args.preset,
            "mi_every": args.mi_every, "mi_images": args.mi_images,
            "keep_checkpoints": bool(args.keep_checkpoints),
            "precision": trainer.cfg.precision, "compile": trainer.cfg.compile,
            "threads": threads, "native_bf16": acceleration.native_bf16(device),
            "command": "python -m cascadevae.train " + shlex.join(argv),
            "model_config": trainer.model_config.to_dict(),
            "schedule": trainer.schedule.to_dict()})
    _say(f"run directory: {run.path}  device: {device}  model: {cfg.model}  "
         f"iterations: {cfg.iterations}")
    _say(f"precision {trainer.cfg.precision}, compile {'on' if trainer.cfg.compile else 'off'}, "
         f"{threads} thread{'s' if threads > 1 else ''}"
         + ("" if args.resume else f" (requested precision {cfg.precision}, compile "
            f"{cfg.compile}; see docs/performance.md)"))

    end = cfg.iterations if args.stop_at is None else min(cfg.iterations, args.stop_at)
    start_wall = time.time()
    seg_start_t = trainer.t
    last: Optional[Dict[str, Any]] = None
    status, message, code = "finished", "", EXIT_OK

    def wall() -> float:
        return trainer.elapsed + (time.time() - start_wall)

    monitor = None
    if args.mi_every:
        from .monitor import InformationMonitor
        monitor = InformationMonitor(dataset, device, num_images=args.mi_images)

    def checkpoint() -> None:
        state = trainer.state(wall())
        run.save_checkpoint(state)
        if args.keep_checkpoints:
            run.save_weights(state)
        if not args.no_figures:
            try:
                from .figures import information_curves, write_figures
                write_figures(trainer.model, dataset, run.path / "figures", trainer.t,
                              image_size=image_size, device=device, model_name=cfg.model,
                              discrete_active=trainer.schedule.discrete_on(max(trainer.t - 1, 0)))
                if monitor is not None:
                    information_curves(run.read_metrics(), trainer.schedule,
                                       run.path / "figures" / "information.png",
                                       title=f"{cfg.model} on {data_name}")
            except Exception as exc:  # a figure must never stop a run
                _say(f"warning: figures at t={trainer.t} failed: {type(exc).__name__}: {exc}")

    dstep = None
    if args.device_step:
        dstep = make_device_step(trainer, args.device_step)
        _say(f"device step: {args.device_step} (values read every {args.log_every} updates)")

    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.iterations, initial=trainer.t, dynamic_ncols=True, unit="it")
    with _SigintFlag() as sigint:
        try:
            while trainer.t < end:
                if dstep is None:
                    first_compiled = trainer._compiled is not None and trainer.compile_seconds is None
                    rec = trainer.step()
                    trainer._pre = None
                    if first_compiled:
                        _compile_note(trainer, run, bar)
                else:
                    rec = device_update(trainer, dstep)
                done = trainer.t
                measure = monitor is not None and (done % args.mi_every == 0 or done == end)
                logged = (measure or done % args.log_every == 0 or done == end
                          or done == seg_start_t + 1)
                checkpointed = done % args.checkpoint_every == 0 or done == end
                if rec is None and (logged or checkpointed):
                    rec = device_record(dstep, done - 1)  # the only reads: a host sync
                if bar is not None:
                    bar.update(1)
                    if rec is not None:
                        bar.set_postfix(_postfix(rec), refresh=False)
                if rec is None:
                    continue
                last = rec
                if measure:
                    rec.update(monitor.measure(trainer.model, bool(rec["discrete_on"])))
                if logged:
                    run.append_metrics(dict(rec, seconds=round(wall(), 3)))
                if checkpointed:
                    checkpoint()
                if sigint.hit and trainer.t < end:
                    raise KeyboardInterrupt
        except NonFiniteLoss as exc:
            status, message, code = "non-finite", str(exc), EXIT_NONFINITE
            _say(f"error: {exc}")
        except KeyboardInterrupt:
            if not trainer.rollback_interrupted():
                # interrupted inside an update: the parameters may be half-updated, so keep the
                # last checkpoint rather than writing this state
                message = (f"interrupted during update t={trainer.t}; kept the last checkpoint")
            else:
                checkpoint()
                message = (f"interrupted after {trainer.t} updates; checkpoint written, resume "
                           f"with: python -m cascadevae.train --resume {run.path}")
            status, code = "interrupted", EXIT_INTERRUPTED
            _say(message)
        finally:
            if bar is not None:
                bar.close()
    if status == "finished" and trainer.t < cfg.iterations:
        status = "stopped"
        message = (f"stopped after {trainer.t} updates (--stop-at); resume with: "
                   f"python -m cascadevae.train --resume {run.path}")
        _say(message)
    metrics = None
    if status == "finished" and not args.no_eval:
        metrics = _final_evaluation(run, args, device)
    _summary(run, trainer, status, last, dataset.source, wall(), message, metrics)
    if status == "finished":
        seg = trainer.t - seg_start_t
        _say(f"done: {trainer.t} updates ({seg / max(time.time() - start_wall, 1e-9):.1f} it/s "
             f"this session); summary in {run.summary_path}")
    return code


if __name__ == "__main__":
    sys.exit(main())
