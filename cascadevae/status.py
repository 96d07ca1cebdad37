"""Where long runs stand: ``python -m cascadevae.status RUNS...``.

    python -m cascadevae.status ~/runs            # every run directory below ~/runs
    python -m cascadevae.status RUN_DIR --json    # the same as JSON

For each run directory (a path holding config.json, or every one below a directory, as
``report`` finds them): the model, the updates done of the run's target, its state, its pace
(the median ms per update over its last ten logging intervals, so one paused interval does not
count), the time left at that pace for a run that is training, and what has been evaluated.
Everything comes from files the run writes as it goes (metrics.jsonl's last records,
summary.json, train.lock, eval*.json); no checkpoint is loaded and no lock is taken, so it is
instant and never disturbs a run in progress.

The updates shown are the last logged one's; a run that was killed resumes from its last
checkpoint, up to ``--checkpoint-every`` updates earlier.

States: ``training`` (train.lock names a live process on this host, or a process on another
host), ``training?`` (no train.lock, but the log grew within five logging intervals, 10 min at
least: a trainer of a version before the lock), ``finished``, ``interrupted`` / ``stopped`` /
``non-finite`` (from summary.json: resume it), ``killed`` (no live trainer, and train.lock or
the log is newer than summary.json: killed or crashed before it could write it; resume it) and
``not started`` (no update logged).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .report import ReportError, find_run_dirs
from .run_dir import LOCK_FILE, METRICS_FILE, SUMMARY_FILE, RunDir, RunDirError

#: logged records the pace is measured over: the last 11, i.e. 10 logging intervals
SPEED_RECORDS = 11
#: bytes read from the end of metrics.jsonl (a record is 0.5-3 KB)
TAIL_BYTES = 1 << 16


def last_records(path: Path, count: int = SPEED_RECORDS) -> List[Dict[str, Any]]:
    """The last ``count`` complete records of a metrics log, oldest first, read from its end
    (a log of 3e5 updates is megabytes); a torn last line (a run killed mid-write) is skipped."""
    if not path.is_file():
        return []
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - TAIL_BYTES))
        lines = fh.read().splitlines()
    if size > TAIL_BYTES:
        lines = lines[1:]                  # the first line read is probably a partial one
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records[-count:]


def run_status(path: Path, now: Optional[float] = None) -> Dict[str, Any]:
    """One run's row (see the module's docstring for the states)."""
    now = time.time() if now is None else now
    run = RunDir(path)
    config = run.read_json("config.json")
    target = int(config.get("iterations", 0))
    records = last_records(run.path / METRICS_FILE)
    summary = run.read_json(SUMMARY_FILE) if (run.path / SUMMARY_FILE).is_file() else None
    holder = run.trainer()
    done = int(records[-1]["t"]) + 1 if records else 0       # a record's t is the update index
    if summary is not None and summary.get("status") == "finished":
        done = max(done, int(summary.get("iterations", 0)))
    # the median over the last logging intervals: one interval stretched by a pause (a
    # paused process, a checkpoint with figures, a suspended machine) does not set the pace
    paces = sorted(1000.0 * (b["seconds"] - a["seconds"]) / (b["t"] - a["t"])
                   for a, b in zip(records, records[1:]) if b["t"] > a["t"])
    ms = statistics.median(paces) if paces else None
    metrics_path = run.path / METRICS_FILE
    age = now - metrics_path.stat().st_mtime if records else None
    logged_after_summary = records and (summary is None or not _newer(run.path / SUMMARY_FILE,
                                                                      metrics_path))
    if holder is not None and holder["alive"]:
        state = "training"
    elif holder is None and logged_after_summary and age < _quiet_limit(run, ms):
        # no lock file, yet the log grows: a trainer of a version before train.lock
        state = "training?"
    elif logged_after_summary or (holder is not None and summary is not None
                                  and not _newer(run.path / SUMMARY_FILE, run.path / LOCK_FILE)):
        state = "killed"
    elif summary is not None:
        state = str(summary.get("status"))
    else:
        state = "not started"
    left = (target - done) * ms / 1000.0 if ms is not None and state.startswith("training") \
        else None
    history = run.path / "eval_history.json"
    return {
        "run": str(path), "model": (config.get("model") or {}).get("name"),
        "seed": config.get("seed"),
        "done": done, "target": target, "state": state, "ms_per_update": ms,
        "seconds_left": left,
        "last_log_age_s": age,
        "pid": None if holder is None else holder.get("pid"),
        "host": None if holder is None else holder.get("host"),
        "evaluated": (run.path / "eval.json").is_file(),
        "history": len(json.loads(history.read_text())) if history.is_file() else 0,
        "best_by_label": (run.path / "eval_best_by_label.json").is_file(),
    }


def _quiet_limit(run: RunDir, ms: Optional[float]) -> float:
    """How long a training run's log may stay unchanged: five logging intervals at its speed
    (a checkpoint, figures or the information monitor can delay a record), at least 10 min."""
    try:
        log_every = int(run.read_json("run.json").get("log_every") or 0)
    except RunDirError:
        log_every = 0
    return max(600.0, 5 * log_every * (ms or 0.0) / 1000.0)


def _newer(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_mtime >= b.stat().st_mtime
    except FileNotFoundError:
        return True


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def render(rows: Sequence[Dict[str, Any]]) -> str:
    """A Markdown table of :func:`run_status` rows."""
    head = ["run", "model", "seed", "updates", "state", "ms/update", "left", "last log",
            "evaluated"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        evaluated = ", ".join(name for name, on in (
            ("final", r["evaluated"]), (f"history {r['history']}", r["history"]),
            ("best by label", r["best_by_label"])) if on) or "no"
        state = r["state"] + (f" (pid {r['pid']})" if r["state"] == "training" and r["pid"]
                              else "")
        cells = [r["run"], str(r["model"]), str(r["seed"]),
                 f"{r['done']:,} / {r['target']:,} ({100.0 * r['done'] / max(r['target'], 1):.0f} %)",
                 state, "" if r["ms_per_update"] is None else f"{r['ms_per_update']:.0f}",
                 _duration(r["seconds_left"]),
                 "" if r["last_log_age_s"] is None else _duration(r["last_log_age_s"]) + " ago",
                 evaluated]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cascadevae.status",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", metavar="RUN_DIR",
                   help="a run directory, or a directory of runs (searched below)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rows = [run_status(path) for path in find_run_dirs(args.paths)]
    except (ReportError, RunDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
