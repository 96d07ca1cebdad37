"""Several seeds of one config trained together in one process (``train --seeds 1,2,3``):
each seed is an ordinary run (its own trainer, generators, Adam and run directory, laid out as
a single-seed run), the updates of all seeds are made in step, and the discrete steps of the
seeds are solved in ONE batched ``assign`` call on the (G, n, S) scores (threads over the
problems, the GIL released).

Seed k of a group equals the single-seed run with seed k bit for bit on the CPU
(tests/test_group.py): each seed's networks run as in a single run, and the exact batched
solve gives each problem the labels its own solve gives. The networks are not vmapped: on the
CPU, torch.func.vmap over the seeds' networks (grouped convolutions in oneDNN) measured about
2x slower than running them one after another (4 dSprites models, one thread).
"""
from __future__ import annotations

import time
from typing import Dict, List

import torch

from .. import kernels
from ..models.discrete import one_hot_codes
from .loop import Loop, Signals
from .step import EagerStep, NonFiniteLoss


def update_all(loops: List[Loop]) -> Dict[int, NonFiniteLoss]:
    """Update t of every seed's loop, the discrete steps solved together. A seed whose update
    is non-finite is left out of the rest of the update; returns {index: its NonFiniteLoss}."""
    failed: Dict[int, NonFiniteLoss] = {}
    pendings = {}
    for i, loop in enumerate(loops):
        if not isinstance(loop.step, EagerStep):
            raise ValueError("seed groups run the eager step (not --device-step)")
        try:
            pendings[i] = loop.step.begin(loop.trainer, scores=True)
        except NonFiniteLoss as exc:
            failed[i] = exc
    with_u = [i for i, p in pendings.items() if p["u"] is not None]
    codes = {}
    if with_u:
        u = torch.stack([pendings[i]["u"] for i in with_u])          # (G', n, S)
        lam = loops[with_u[0]].trainer.model.config.pairwise_lambda   # one config, one lambda'
        labels = kernels.assign(u, lam)
        for j, i in enumerate(with_u):
            model, z = loops[i].trainer.model, pendings[i]["post"].z
            codes[i] = one_hot_codes(labels[j].to(z.device), model.num_classes, z.dtype)
    for i, pending in pendings.items():
        loop = loops[i]
        trainer, model = loop.trainer, loop.trainer.model
        try:
            if i in codes:
                d = codes[i]
            else:
                with loop.step._networks(trainer):
                    d = loop.step._codes(model, pending["x"], pending["post"].z, pending["t"])
            rec = loop.step.finish(trainer, pending, d)
        except NonFiniteLoss as exc:
            failed[i] = exc
            continue
        loop.after_update(rec)
    return failed


def train_group(sessions) -> List[int]:
    """Train the sessions (one per seed) together; each then ends as a single run does
    (summary.json, final evaluation). A seed whose loss turns non-finite stops; the others go on.
    Returns each session's exit code; every session's run directory is released (its
    training lock) also when training raises."""
    try:
        return _train_together(sessions)
    finally:
        for session in sessions:
            session.release()


def _train_together(sessions) -> List[int]:
    loops = [s.make_loop() for s in sessions]
    signals = Signals()
    for loop in loops:
        loop.signals = signals
        loop._each("on_start")
    status = {id(loop): "finished" for loop in loops}
    started = time.time()
    with signals:
        try:
            while True:
                active = [lp for lp in loops if status[id(lp)] == "finished"
                          and lp.trainer.t < lp.end]
                if not active:
                    break
                for i, exc in update_all(active).items():
                    status[id(active[i])], active[i].message = "non-finite", str(exc)
                if signals.hit is not None:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            for lp in loops:
                if status[id(lp)] == "finished" and lp.trainer.t < lp.end:
                    status[id(lp)] = lp.interrupted(signals)
    codes = []
    for session, loop in zip(sessions, loops):
        loop._each("on_end", status[id(loop)])
        codes.append(session.finish(loop, status[id(loop)], started))
    return codes
