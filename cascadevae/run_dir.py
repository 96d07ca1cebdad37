"""A training run's directory: config, metrics log, checkpoints, summary, and the guarantees
that nothing in it is lost or mixed.

Layout::

    RUN_DIR/config.json         the resolved TrainConfig (``TrainConfig.load(RUN_DIR)`` reads it)
    RUN_DIR/run.json            dataset name and source, image size, device, command line
    RUN_DIR/metrics.jsonl       one JSON object per logged iteration
    RUN_DIR/checkpoint.pt       the latest checkpoint
    RUN_DIR/checkpoint.prev.pt  the one before it (a fallback if the latest is damaged)
    RUN_DIR/summary.json        written when a run ends (finished, interrupted, stopped or
                                non-finite); with the final evaluation's ``metrics``
    RUN_DIR/checkpoints/        with ``--keep-checkpoints``: t00010000.pt, ... the weights of
                                every checkpoint (no optimiser or RNG state: for evaluation)
    RUN_DIR/eval.json           ``python -m cascadevae.evaluate`` (final checkpoint)
    RUN_DIR/train.lock          while a process trains the run: who (pid, host, since, command)

Every file is written to a temporary file in the same directory and moved into place with
``os.replace``, so a crash mid-write never leaves a truncated file; a temporary file left by a
killed process is removed at the next start (:meth:`RunDir.remove_stale_temp`). A full disk
is reported in one line naming the file, and the previous file stays intact.

One process trains a run directory at a time: training holds an exclusive lock on
RUN_DIR/train.lock (:class:`TrainingLock`) from before it touches the directory until it ends,
so a second ``--resume`` of a run that is still training (from another shell, a second queue
script, a sweep started twice) fails at once, naming the process that holds it, instead of
truncating the metrics log under the first and overwriting its checkpoints. The operating
system releases the lock when its process dies, so a killed run never leaves it held.

A checkpoint carries a SHA-256 of its payload (:func:`save_checked` / :func:`load_checked`):
a truncated, empty or garbled file is recognised on load, and :meth:`RunDir.load_checkpoint`
falls back to checkpoint.prev.pt with a warning, or fails with :class:`CheckpointError` naming
the file and what is wrong with it.
"""
from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

PathLike = Union[str, "os.PathLike[str]"]

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
CHECKPOINT_FILE = "checkpoint.pt"
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.pt"
SUMMARY_FILE = "summary.json"
LOCK_FILE = "train.lock"
WEIGHTS_DIR = "checkpoints"
#: files a training run writes; a new run refuses a directory holding any of them
RUN_FILES = (CONFIG_FILE, RUN_FILE, METRICS_FILE, CHECKPOINT_FILE, PREVIOUS_CHECKPOINT_FILE,
             SUMMARY_FILE)
CHECKED_FORMAT = "cascadevae-checkpoint-v1"


class RunDirError(Exception):
    """A run directory cannot be written or read as asked (the message says why and what to
    do; the command line prints it as one line)."""


class CheckpointError(RunDirError):
    """A checkpoint file is missing, damaged or not a checkpoint."""


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


def _atomic_write_bytes(path: Path, write, what: str = "") -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise RunDirError(f"no space left on device while writing "
                              f"{what or path.name} to {path}; the previous "
                              f"{what or 'file'} is intact") from None
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


# ---- checked checkpoint files ------------------------------------------------------------------

def checked_bytes(obj: Any) -> bytes:
    """``obj`` serialised by torch.save, wrapped with the SHA-256 of that payload."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    out = io.BytesIO()
    torch.save({"format": CHECKED_FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
                "payload": payload}, out)
    return out.getvalue()


def load_checked(path: PathLike, map_location: Optional[Any] = "cpu") -> Dict[str, Any]:
    """A checkpoint file written by :func:`checked_bytes` (checksum verified), or a plain
    torch.save file of earlier versions. Raises :class:`CheckpointError` naming the file and
    the problem (missing, empty, truncated or garbled, checksum mismatch)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file {str(path)!r}")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: the checkpoint file is empty (0 bytes)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001  (torch raises many kinds for a damaged file)
        raise CheckpointError(f"{path}: not a readable checkpoint ({size} bytes; "
                              f"truncated or garbled: {type(exc).__name__})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(obj).__name__})")
    if obj.get("format") != CHECKED_FORMAT:
        return obj  # an unchecked checkpoint of an earlier version
    payload = obj.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != obj.get("sha256"):
        raise CheckpointError(f"{path}: checksum mismatch, the checkpoint is damaged")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: its payload does not load "
                              f"({type(exc).__name__})") from None


# ---- one trainer per run directory -------------------------------------------------------------

try:
    import fcntl
except ImportError:   # Windows: no flock; training goes on unlocked
    fcntl = None
#: flock's errors for "this file system does not lock" (some network file systems)
UNLOCKABLE = {getattr(errno, name) for name in ("ENOLCK", "EOPNOTSUPP", "ENOTSUP", "ENOSYS")
              if hasattr(errno, name)}


class TrainingLock:
    """An exclusive ``flock`` on RUN_DIR/train.lock, held by the process that trains the run.

    The file names its holder (JSON: pid, host, since, command) for the error a second trainer
    gets. :meth:`release` removes the file and drops the lock; the operating system drops it
    when the process dies (the file may then stay behind, unlocked, and the next trainer takes
    it over). Where ``fcntl`` is missing (Windows) the lock is a no-op."""

    def __init__(self, path: PathLike, command: str = ""):
        self.path = Path(path)
        self._fd: Optional[int] = None
        if fcntl is None:
            return
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in UNLOCKABLE:   # a file system without flock: go on unlocked
                    _warn(f"{self.path.parent}: this file system cannot lock {self.path.name} "
                          f"({os.strerror(exc.errno)}); nothing stops a second trainer of "
                          "this run directory")
                    try:
                        os.unlink(self.path)
                    except OSError:
                        pass
                    return
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                raise RunDirError(self._held_message()) from None
            # the holder may have released (and removed) the file between our open and our
            # flock: then we hold a lock on a file no one else will see; open it again
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self._fd = fd
        holder = {"pid": os.getpid(), "host": socket.gethostname(),
                  "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": command}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode("utf-8"))

    def _held_message(self) -> str:
        try:
            holder = json.loads(self.path.read_text(encoding="utf-8"))
            who = (f"pid {holder['pid']} on {holder['host']}, since {holder['since']}"
                   + (f": {holder['command']}" if holder.get("command") else ""))
            stop = f"kill -TERM {holder['pid']}"
        except (OSError, ValueError, KeyError, TypeError):
            who, stop = "a process that has not yet said which", "stop it"
        return (f"{self.path.parent} is being trained by another process ({who}); two "
                "trainers on one run directory would overwrite each other's checkpoints and "
                f"metrics. Wait for it to end, or stop it ({stop}: it writes a checkpoint "
                "first) and resume then")

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)   # while still holding it: no one can take the old file
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001  (interpreter shutdown)
            pass


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process: it exists
        return True
    return True


class RunDir:
    """Paths and I/O of one run directory."""

    def __init__(self, path: PathLike, create: bool = False):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{str(self.path)!r} is a file, not a run directory")
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_dir():
            raise RunDirError(f"run directory {str(self.path)!r} does not exist")

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
    def previous_checkpoint_path(self) -> Path:
        return self.path / PREVIOUS_CHECKPOINT_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK_FILE

    def lock_for_training(self, command: str = "") -> TrainingLock:
        """Take the run's :class:`TrainingLock`; :class:`RunDirError` naming the holder when
        another process trains this run."""
        return TrainingLock(self.lock_path, command)

    def trainer(self) -> Optional[Dict[str, Any]]:
        """The process that train.lock names (pid, host, since, command) with ``alive``: False
        when it is a process of this host that is gone (killed before it could release the
        lock); None without a lock file. Read only: asking takes no lock, so it never makes a
        starting trainer fail."""
        try:
            holder = json.loads(self.lock_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"alive": True}   # being written this instant by a starting trainer
        if not isinstance(holder, dict) or "pid" not in holder:
            return {"alive": True}
        here = holder.get("host") == socket.gethostname()
        holder["alive"] = _process_exists(int(holder["pid"])) if here else True
        return holder

    def run_files(self) -> List[str]:
        """The training-run files present (see ``RUN_FILES``)."""
        return [name for name in RUN_FILES if (self.path / name).exists()]

    def remove_stale_temp(self) -> List[Path]:
        """Remove temporary files (``.NAME.*.tmp``) that a killed writer left behind."""
        removed = []
        for folder in (self.path, self.path / WEIGHTS_DIR):
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    try:
                        tmp.unlink()
                        removed.append(tmp)
                    except OSError:
                        pass
        return removed

    # -- files ---------------------------------------------------------------------------
    def write_json(self, name: str, obj: Any) -> None:
        atomic_write_json(self.path / name, obj)

    def read_json(self, name: str) -> Any:
        path = self.path / name
        try:
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            raise RunDirError(f"{path} is missing") from None
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{path} is not valid JSON ({exc})") from None

    def append_metrics(self, record: Dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        try:
            with open(self.metrics_path, "a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise RunDirError(f"no space left on device while writing the metrics "
                                  f"log {self.metrics_path}") from None
            raise

    def read_metrics(self, repair: bool = False) -> List[Dict[str, Any]]:
        """The logged records. A torn last line (a crash mid-append) is dropped with a warning,
        and with ``repair`` removed from the file; a damaged line elsewhere is an error."""
        if not self.metrics_path.exists():
            return []
        with open(self.metrics_path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
        records = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if i < len(lines) - 1 and any(rest.strip() for rest in lines[i + 1:]):
                    raise RunDirError(f"{self.metrics_path}: line {i + 1} is not "
                                      "valid JSON") from None
                _warn(f"{self.metrics_path}: dropped a torn last line (a crash while it was "
                      "written)")
                if repair:
                    self._write_metrics(records)
        return records

    def _write_metrics(self, records) -> None:
        data = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode("utf-8")
        _atomic_write_bytes(self.metrics_path, lambda fh: fh.write(data), "metrics log")

    def truncate_metrics(self, t: int) -> None:
        """Drop records of iterations >= t (logged after the checkpoint a resume starts
        from), so a resumed run's log has each iteration once; a torn last line goes too."""
        self._write_metrics([r for r in self.read_metrics() if r.get("t", -1) < t])

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists() or self.previous_checkpoint_path.exists()

    def save_checkpoint(self, state: Dict[str, Any]) -> Path:
        """Write ``state`` (checked, see :func:`checked_bytes`) as checkpoint.pt, keeping the
        one it replaces as checkpoint.prev.pt. Both moves are atomic: at every moment one of
        the two files is a complete checkpoint."""
        data = checked_bytes(state)
        fd, tmp = tempfile.mkstemp(prefix=f".{CHECKPOINT_FILE}.", suffix=".tmp", dir=str(self.path))
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if self.checkpoint_path.exists():
                os.replace(self.checkpoint_path, self.previous_checkpoint_path)
            os.replace(tmp, self.checkpoint_path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise RunDirError(f"no space left on device while writing checkpoint "
                                  f"to {self.checkpoint_path}; the previous checkpoint is "
                                  "intact") from None
            raise
        return self.checkpoint_path

    def save_weights(self, state: Dict[str, Any]) -> Path:
        """Keep the weights of the checkpoint ``state`` as checkpoints/tTTTTTTT.pt (atomic,
        checked): ``t``, ``model``, ``image_size`` and ``config``, what evaluation needs."""
        folder = self.path / WEIGHTS_DIR
        folder.mkdir(exist_ok=True)
        path = folder / f"t{int(state['t']):08d}.pt"
        data = checked_bytes({k: state[k] for k in ("t", "model", "image_size", "config")})
        _atomic_write_bytes(path, lambda fh: fh.write(data), "kept weights")
        return path

    def kept_weights(self):
        """The kept checkpoints' paths, oldest first."""
        folder = self.path / WEIGHTS_DIR
        return sorted(folder.glob("t*.pt")) if folder.is_dir() else []

    def load_checkpoint(self, map_location: Optional[Any] = "cpu",
                        path: Optional[PathLike] = None) -> Dict[str, Any]:
        """checkpoint.pt (verified; falls back to checkpoint.prev.pt with a warning when the
        latest is damaged or missing), or the checkpoint file ``path`` (e.g. one of
        :meth:`kept_weights`). Raises :class:`CheckpointError` when nothing loads."""
        if path is not None:
            return load_checked(path, map_location)
        if not self.has_checkpoint():
            raise CheckpointError(f"no checkpoint in {str(self.path)!r}")
        try:
            return load_checked(self.checkpoint_path, map_location)
        except CheckpointError as latest:
            if not self.previous_checkpoint_path.exists():
                raise
            try:
                state = load_checked(self.previous_checkpoint_path, map_location)
            except CheckpointError as prev:
                raise CheckpointError(f"{latest}; and the previous one: {prev}") from None
            _warn(f"{latest}; using the previous checkpoint {self.previous_checkpoint_path} "
                  f"(t={state.get('t')}) instead")
            return state
