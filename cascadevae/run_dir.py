"""A training run's directory: config, metrics log, atomic checkpoints, summary.

Layout::

    RUN_DIR/config.json      the resolved TrainConfig (``TrainConfig.load(RUN_DIR)`` reads it)
    RUN_DIR/run.json         dataset name and source, image size, device, command line
    RUN_DIR/metrics.jsonl    one JSON object per logged iteration
    RUN_DIR/checkpoint.pt    the latest good checkpoint (written atomically)
    RUN_DIR/summary.json     written when a run ends (finished, interrupted or stopped); with
                             the final evaluation's ``metrics`` when training ran it
    RUN_DIR/checkpoints/     with ``--keep-checkpoints``: t0001000.pt, ... the weights of every
                             checkpoint (no optimizer or RNG state: for evaluation, not resume)
    RUN_DIR/eval.json        ``python -m cascadevae.evaluate`` (final checkpoint)

Checkpoints are written to a temporary file in the same directory and moved into place with
``os.replace``, so a crash mid-write never leaves a truncated ``checkpoint.pt``.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch

PathLike = Union[str, "os.PathLike[str]"]

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
SUMMARY_FILE = "summary.json"
WEIGHTS_DIR = "checkpoints"


def _atomic_write_bytes(path: Path, write) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file moved into place."""
    _atomic_write_bytes(Path(path), lambda fh: fh.write(data))


def atomic_write_json(path: PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def rng_states() -> Dict[str, Any]:
    """The global torch / CUDA / numpy / python RNG states."""
    out = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
           "python": random.getstate()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: Dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(states["cuda"])
        except RuntimeError:  # a different number of devices: not restorable, not fatal
            pass


class RunDir:
    """Paths and I/O of one run directory."""

    def __init__(self, path: PathLike, create: bool = False):
        self.path = Path(path)
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise FileNotFoundError(f"run directory {str(self.path)!r} does not exist")

    # -- paths ---------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def run_path(self) -> Path:
        return self.path / RUN_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    # -- files ---------------------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.path / name, obj)

    def read_json(self, name: str) -> Any:
        with open(self.path / name, encoding="utf-8") as fh:
            return json.load(fh)

    def append_metrics(self, record: Dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")

    def read_metrics(self):
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def truncate_metrics(self, t: int) -> None:
        """Drop records of iterations >= t (logged after the checkpoint a resume starts
        from), so a resumed run's log has each iteration once."""
        records = [r for r in self.read_metrics() if r.get("t", -1) < t]
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode("utf-8")
        _atomic_write_bytes(self.metrics_path, lambda fh: fh.write(data))

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    def save_checkpoint(self, state: Dict[str, Any]) -> Path:
        """Write ``state`` (torch.save-able) atomically to checkpoint.pt."""
        _atomic_write_bytes(self.checkpoint_path, lambda fh: torch.save(state, fh))
        return self.checkpoint_path

    def save_weights(self, state: Dict[str, Any]) -> Path:
        """Keep the weights of the checkpoint ``state`` as checkpoints/tTTTTTTT.pt (atomic):
        ``t``, ``model``, ``image_size`` and ``config``, what evaluation needs."""
        folder = self.path / WEIGHTS_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"t{int(state['t']):08d}.pt"
        keep = {k: state[k] for k in ("t", "model", "image_size", "config")}
        _atomic_write_bytes(path, lambda fh: torch.save(keep, fh))
        return path

    def kept_weights(self):
        """The kept checkpoints' paths, oldest first."""
        folder = self.path / WEIGHTS_DIR
        return sorted(folder.glob("t*.pt")) if folder.is_dir() else []

    def load_checkpoint(self, map_location: Optional[Any] = "cpu",
                        path: Optional[PathLike] = None) -> Dict[str, Any]:
        """checkpoint.pt, or the checkpoint file ``path`` (e.g. one of :meth:`kept_weights`)."""
        path = self.checkpoint_path if path is None else Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no checkpoint in {str(self.path)!r}" if path ==
                                    self.checkpoint_path else f"no checkpoint file {str(path)!r}")
        return torch.load(path, map_location=map_location, weights_only=False)
