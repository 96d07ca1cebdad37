"""The training loop: it counts updates and calls callbacks; it never looks inside the step.

Per update t (made by ``step.update``): the loop decides what is due after it (a log record,
an information-monitor point, a checkpoint), reads the record back from the step only when
something is due (a device step returns None otherwise), and calls every callback in order:
``on_update`` (each update, record or None), ``on_record`` (when a record was read: the
monitor adds its values first, the metrics log and trackers write them) and
``on_checkpoint`` (checkpoint, kept weights, figures). A signal (Ctrl-C, SIGTERM, ...) asks
the loop to stop after the current update: it checkpoints and returns "interrupted". An
interrupt inside an update rolls that update back first (:meth:`Trainer.rollback_interrupted`).
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from .step import NonFiniteLoss


@dataclass
class Due:
    """What update ``done`` (updates done so far) calls for."""
    log: bool
    measure: bool
    checkpoint: bool


class Callback:
    """Hooks of the loop; every method is optional."""

    def on_start(self, loop: "Loop") -> None: ...
    def on_update(self, loop: "Loop", rec: Optional[Dict[str, Any]]) -> None: ...
    def on_record(self, loop: "Loop", rec: Dict[str, Any], due: Due) -> None: ...
    def on_checkpoint(self, loop: "Loop") -> None: ...
    def on_end(self, loop: "Loop", status: str) -> None: ...


class Signals:
    """First SIGINT / SIGTERM / SIGHUP: stop after the current update (checkpoint, exit). A
    second one raises KeyboardInterrupt at once, except while a checkpoint is being written
    (:meth:`holding`): then it is noted and the save finishes first, so a checkpoint is never
    cut short. Installed only in the main thread."""

    SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                    if hasattr(signal, n))

    def __init__(self):
        self.hit: Optional[int] = None
        self.held = 0
        self._holding = False
        self._old: Dict[int, Any] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._old[sig] = signal.getsignal(sig)
                signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        if self._holding:
            self.held += 1
            print(f"\n{signal.Signals(signum).name} while a checkpoint is being written: "
                  "finishing the save first", file=sys.stderr, flush=True)
            self.hit = self.hit or signum
            return
        if self.hit is not None:
            raise KeyboardInterrupt
        self.hit = signum

    @contextlib.contextmanager
    def holding(self):
        """Signals arriving inside only set the flag (a checkpoint must not be cut short)."""
        was, self._holding = self._holding, True
        try:
            yield
        finally:
            self._holding = was

    @property
    def name(self) -> str:
        return signal.Signals(self.hit).name if self.hit is not None else "KeyboardInterrupt"

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


class Loop:
    """Runs ``step`` on ``trainer`` until ``end`` updates are done (see the module docstring).

    ``log_every``, ``checkpoint_every``, ``mi_every`` (0: never) say what is due when; the
    first update of a segment and the last are always logged, the last always checkpointed."""

    def __init__(self, trainer, step, *, end: int, log_every: int, checkpoint_every: int,
                 mi_every: int = 0, callbacks: Sequence[Callback] = ()):
        self.trainer, self.step = trainer, step
        self.end = int(end)
        self.log_every, self.checkpoint_every = int(log_every), int(checkpoint_every)
        self.mi_every = int(mi_every)
        self.callbacks: List[Callback] = list(callbacks)
        self.start_t = trainer.t
        self.start_wall = time.time()
        self.last: Optional[Dict[str, Any]] = None
        self.message = ""
        self.signals = Signals()
        self.signal_name: Optional[str] = None
        #: whether to stop after this update (a data-parallel run agrees across ranks)
        self.should_stop = lambda: self.signals.hit is not None

    def wall(self) -> float:
        """Wall seconds of the whole run so far (earlier segments included)."""
        return self.trainer.elapsed + (time.time() - self.start_wall)

    def due(self, done: int) -> Due:
        measure = self.mi_every > 0 and (done % self.mi_every == 0 or done == self.end)
        log = (measure or done % self.log_every == 0 or done == self.end
               or done == self.start_t + 1)
        return Due(log, measure, done % self.checkpoint_every == 0 or done == self.end)

    def _each(self, method: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, method)(self, *args)

    def checkpoint(self) -> None:
        """The checkpoint callbacks, with signals held until they are done."""
        with self.signals.holding():
            self._each("on_checkpoint")

    def after_update(self, rec: Optional[Dict[str, Any]]) -> None:
        """What follows update ``trainer.t - 1``: read its record if something is due, call
        the callbacks, checkpoint."""
        trainer = self.trainer
        trainer.end_update()
        due = self.due(trainer.t)
        if rec is None and (due.log or due.checkpoint):
            rec = self.step.read(trainer)  # the only reads of a device step
        self._each("on_update", rec)
        if rec is not None:
            self.last = rec
            self._each("on_record", rec, due)
            if due.checkpoint:
                self.checkpoint()

    def interrupted(self, signals: "Signals") -> str:
        """After a KeyboardInterrupt: roll back a half-made update, checkpoint; 'interrupted'."""
        trainer = self.trainer
        self.signal_name = signals.name
        if not trainer.rollback_interrupted():
            # inside an update: the parameters may be half-updated, so keep the last
            # checkpoint rather than writing this state
            self.message = (f"interrupted during update t={trainer.t} "
                            f"({self.signal_name}); kept the last checkpoint")
        else:
            self.checkpoint()
            self.message = (f"interrupted after {trainer.t} updates ({self.signal_name}); "
                            "checkpoint written")
        return "interrupted"

    def run(self) -> str:
        """'finished' (reached ``end``), 'interrupted' or 'non-finite'; ``self.message`` says
        more for the last two."""
        trainer = self.trainer
        self._each("on_start")
        status = "finished"
        with self.signals as signals:
            try:
                while trainer.t < self.end:
                    self.after_update(self.step.update(trainer))
                    if trainer.t < self.end and self.should_stop():
                        raise KeyboardInterrupt
            except NonFiniteLoss as exc:
                status, self.message = "non-finite", str(exc)
            except KeyboardInterrupt:
                status = self.interrupted(signals)
        self._each("on_end", status)
        return status
