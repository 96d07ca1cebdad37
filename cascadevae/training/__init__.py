"""The training layer: a run's state (:class:`Trainer`), one update behind one interface
(:mod:`.step`: eager, compiled or device), a loop that counts updates and calls callbacks
(:mod:`.loop`, :mod:`.callbacks`), a session that takes a run from config to summary
(:mod:`.session`), and the command line (:mod:`.cli`, ``python -m cascadevae.train``)."""
from .loop import Callback, Due, Loop
from .session import RunOptions, Session
from .step import DeviceUpdate, EagerStep, NonFiniteLoss
from .trainer import Trainer

__all__ = ["Trainer", "EagerStep", "DeviceUpdate", "NonFiniteLoss", "Loop", "Callback", "Due",
           "Session", "RunOptions"]
