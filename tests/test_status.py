"""python -m cascadevae.status: each state read from the files a run writes, without loading a
checkpoint or taking the lock."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cascadevae import status, train
from cascadevae.run_dir import RunDir

ROOT = Path(__file__).resolve().parent.parent
BASE = ["--preset", "mnist", "--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress",
        "--device", "cpu", "--mi-every", "0", "--no-figures", "--log-every", "1",
        "--threads", "1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished run (evaluated) and a stopped one, trained once for the module."""
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CASCADEVAE_CACHE", str(root / "cache"))
        assert train.main(BASE + ["--iters", "6", "--eval-max-images", "50",
                                  "--out", str(root / "done")]) == 0
        assert train.main(BASE + ["--iters", "12", "--stop-at", "5", "--no-eval",
                                  "--out", str(root / "part")]) == 0
    return root


def test_finished_and_stopped_runs(runs):
    rows = {Path(r["run"]).name: r for r in map(status.run_status, [runs / "done", runs / "part"])}
    done, part = rows["done"], rows["part"]
    assert (done["state"], done["done"], done["target"], done["model"]) == ("finished", 6, 6,
                                                                            "cascade")
    assert done["evaluated"] and done["ms_per_update"] > 0 and done["seconds_left"] is None
    assert (part["state"], part["done"], part["target"]) == ("stopped", 5, 12)
    assert not part["evaluated"] and part["history"] == 0


def test_training_killed_and_unlocked_trainers(runs, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(runs / "part", run)
    time.sleep(0.05)
    hold = ("import sys, time\nfrom cascadevae.run_dir import RunDir\n"
            "lock = RunDir(sys.argv[1]).lock_for_training('x')\nprint('held', flush=True)\n"
            "time.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-c", hold, str(run)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        row = status.run_status(run)
        assert (row["state"], row["pid"]) == ("training", proc.pid)
        assert row["seconds_left"] == pytest.approx(7 * row["ms_per_update"] / 1000)
        assert f"training (pid {proc.pid})" in status.render([row])
    finally:
        proc.kill()
        proc.wait()
    # the lock file of a process that is gone, and a log newer than the summary
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"t": 5, "seconds": 1e3}) + "\n")
    assert status.run_status(run)["state"] == "killed"
    # no lock file (a trainer of an earlier version) and a log written just now: training?
    (run / "train.lock").unlink()
    assert status.run_status(run)["state"] == "training?"
    assert status.run_status(run, now=time.time() + 3600)["state"] == "killed"


def test_last_records_reads_the_end_and_skips_a_torn_line(tmp_path):
    log = tmp_path / "metrics.jsonl"
    with open(log, "w") as fh:
        for t in range(5000):                       # well over TAIL_BYTES
            fh.write(json.dumps({"t": t, "seconds": t / 10, "pad": "x" * 40}) + "\n")
        fh.write('{"t": 5000, "sec')                # killed mid-write
    records = status.last_records(log, 3)
    assert [r["t"] for r in records] == [4997, 4998, 4999]
    assert status.last_records(tmp_path / "none.jsonl") == []


def test_the_pace_is_the_median_interval(tmp_path):
    run = RunDir(tmp_path / "run", create=True)
    run.write_json("config.json", {"iterations": 1000, "model": {"name": "beta-vae"}})
    seconds = [0.0, 10, 20, 30, 330, 340]              # one interval paused for 300 s
    with open(run.path / "metrics.jsonl", "w") as fh:
        for k, sec in enumerate(seconds):
            fh.write(json.dumps({"t": 100 * k + 99, "seconds": sec}) + "\n")
    row = status.run_status(run.path)
    assert row["ms_per_update"] == pytest.approx(100.0) and row["done"] == 600
    assert row["state"] == "training?" and row["seconds_left"] == pytest.approx(40.0)


def test_the_command(runs, capsys):
    assert status.main([str(runs)]) == 0
    out = capsys.readouterr().out
    assert "6 / 6 (100 %)" in out and "finished" in out
    assert "5 / 12 (42 %)" in out and "stopped" in out
    assert status.main([str(runs / "part"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["state"] == "stopped"
    assert status.main([str(runs / "nothing-here")]) == 2
    assert "is not a directory" in capsys.readouterr().err
