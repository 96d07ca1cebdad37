"""Nothing lost under a signal or a fault, one-line errors: each case of the reliability
issue (SIGTERM, a second Ctrl-C while saving, Ctrl-C while loading, a torn metrics line, a
crashed run's directory, resuming a finished run, a full disk, damaged checkpoints, NaN with
the discrete step on, the command's errors, a small IDX dataset)."""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cascadevae import evaluate, train
from cascadevae.presets import TrainConfig
from cascadevae.run_dir import CheckpointError, RunDir, RunDirError, load_checked

ROOT = Path(__file__).resolve().parent.parent
BASE = ["--preset", "mnist", "--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress",
        "--device", "cpu", "--mi-every", "0", "--no-eval", "--no-figures"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADEVAE_CACHE", str(tmp_path / "cache"))


def _run(out, *extra):
    return train.main(BASE + ["--out", str(out), *extra])


def _params(out):
    return RunDir(out).load_checkpoint()["model"]


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _one_line_error(err: str, needle: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error: ") and needle in lines[-1], err
    assert "Traceback" not in err


# ---- signals -------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_checkpoint_at_the_last_update_and_resume_exactly(tmp_path, sig):
    out, full = tmp_path / "run", tmp_path / "full"
    args = ["--iters", "400", "--checkpoint-every", "1000", "--log-every", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "cascadevae.train", *BASE, "--out", str(out),
                             "--threads", "1", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until it is training
        if (out / "metrics.jsonl").exists() and len((out / "metrics.jsonl").read_text().splitlines()) > 5:
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    text, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + int(sig), text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and signal.Signals(sig).name in summary["message"]
    t = RunDir(out).load_checkpoint()["t"]
    assert 0 < t < 400 and summary["iterations"] == t
    # the checkpoint is the state after update t - 1: the resumed run equals an uninterrupted one
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval", "--threads", "1"]) == 0
    assert _run(full, "--threads", "1", *args) == 0
    assert _same(_params(out), _params(full))


def test_second_ctrl_c_while_saving_does_not_cut_the_checkpoint_short(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_save = RunDir.save_checkpoint
    calls = {"saves": 0}
    from cascadevae.training import step as step_mod
    real_update = step_mod.EagerStep._update

    def update(self, trainer):   # Ctrl-C during update t = 3
        rec = real_update(self, trainer)
        if trainer.t == 4:
            os.kill(os.getpid(), signal.SIGINT)
        return rec

    def save(self, state):       # and again while the interrupt's checkpoint is written
        calls["saves"] += 1
        os.kill(os.getpid(), signal.SIGINT)
        return real_save(self, state)

    monkeypatch.setattr(step_mod.EagerStep, "_update", update)
    monkeypatch.setattr(RunDir, "save_checkpoint", save)
    assert _run(out, "--iters", "10", "--checkpoint-every", "100") == train.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "while a checkpoint is being written: finishing the save first" in err
    assert calls["saves"] == 1 and RunDir(out).load_checkpoint()["t"] == 4
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"


def test_ctrl_c_while_loading_the_data_is_one_line_and_leaves_no_directory(tmp_path, monkeypatch, capsys):
    from cascadevae.training import cli

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_dataset", interrupted)
    out = tmp_path / "run"
    assert _run(out, "--iters", "4") == train.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted before training started" in err and "Traceback" not in err
    assert not out.exists()


# ---- the run directory ---------------------------------------------------------------------

def test_torn_last_metrics_line_is_dropped_on_resume(tmp_path, capsys):
    out, full = tmp_path / "run", tmp_path / "full"
    args = ["--iters", "8", "--log-every", "1"]
    assert _run(out, *args, "--stop-at", "5") == 0
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"t": 5, "loss": 12')          # a crash mid-append
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval"]) == 0
    assert "dropped a torn last line" in capsys.readouterr().err
    recs = RunDir(out).read_metrics()
    assert [r["t"] for r in recs] == list(range(8))
    assert _run(full, *args) == 0
    assert [r["loss"] for r in recs] == [r["loss"] for r in RunDir(full).read_metrics()]
    # a damaged line that is not the last is an error, not silently dropped
    lines = (out / "metrics.jsonl").read_text().splitlines()
    lines[2] = lines[2][:10]
    (out / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RunDirError, match="line 3 is not valid JSON"):
        RunDir(out).read_metrics()


def test_a_new_run_refuses_a_directory_holding_another_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--iters", "6", "--stop-at", "3") == 0
    assert _run(out, "--iters", "6") == 2
    _one_line_error(capsys.readouterr().err, f"resume it with --resume {out}")
    crashed = tmp_path / "crashed"      # crashed before its first checkpoint: a log only
    crashed.mkdir()
    (crashed / "metrics.jsonl").write_text('{"t": 0, "loss": 1.0}\n')
    assert _run(crashed, "--iters", "6") == 2
    _one_line_error(capsys.readouterr().err, "already holds a run (metrics.jsonl)")
    assert (crashed / "metrics.jsonl").read_text() == '{"t": 0, "loss": 1.0}\n'


HOLD_LOCK = ("import sys, time\n"
             "from cascadevae.run_dir import RunDir\n"
             "lock = RunDir(sys.argv[1]).lock_for_training('the other trainer')\n"
             "print('held', flush=True)\n"
             "time.sleep(300)\n")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock locks: POSIX only")
def test_a_run_that_another_process_trains_is_refused_and_left_untouched(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--iters", "12", "--stop-at", "6", "--log-every", "1") == 0
    assert not (out / "train.lock").exists()          # a run that ended lets go of its directory
    before = {name: (out / name).read_bytes() for name in ("metrics.jsonl", "checkpoint.pt")}
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(out)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert train.main(["--resume", str(out), "--no-progress", "--no-eval"]) == 2
        _one_line_error(capsys.readouterr().err,
                        f"is being trained by another process (pid {holder.pid} on ")
        other = tmp_path / "other"                        # a new run's directory, held
        other.mkdir()
        holder2 = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(other)], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True)
        try:
            assert holder2.stdout.readline().strip() == "held"
            assert _run(other, "--iters", "12") == 2
            _one_line_error(capsys.readouterr().err, "the other trainer")
            assert sorted(p.name for p in other.iterdir()) == ["train.lock"]
        finally:
            holder2.kill()
            holder2.wait()
        # the refused resume neither truncated the log nor touched the checkpoint
        assert {name: (out / name).read_bytes() for name in before} == before
    finally:
        holder.kill()                                     # dies holding it: no release, no unlink
        holder.wait()
    assert (out / "train.lock").exists()                  # left behind, but no longer locked
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval"]) == 0
    assert RunDir(out).load_checkpoint()["t"] == 12 and not (out / "train.lock").exists()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock locks: POSIX only")
def test_the_training_lock_is_exclusive_and_released_when_training_raises(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run", create=True)
    lock = run.lock_for_training("first")
    with pytest.raises(RunDirError, match=f"pid {os.getpid()} on .*: first"):
        run.lock_for_training("second")                   # exclusive within a process too
    lock.release()
    run.lock_for_training("third").release()
    from cascadevae.training.loop import Loop

    def crash(self):
        raise RuntimeError("a bug inside the training loop")
    monkeypatch.setattr(Loop, "run", crash)
    with pytest.raises(RuntimeError, match="a bug inside"):
        _run(tmp_path / "crashing", "--iters", "4")
    assert not (tmp_path / "crashing" / "train.lock").exists()
    run.lock_for_training("after the crash").release()
    RunDir(tmp_path / "crashing").lock_for_training("and there").release()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock locks: POSIX only")
def test_a_file_system_without_locks_trains_unlocked_with_a_warning(tmp_path, monkeypatch, capsys):
    import cascadevae.run_dir as run_dir

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))
    monkeypatch.setattr(run_dir.fcntl, "flock", no_locks)
    assert _run(tmp_path / "run", "--iters", "4") == 0
    assert "cannot lock train.lock" in capsys.readouterr().err
    assert RunDir(tmp_path / "run").load_checkpoint()["t"] == 4
    assert not (tmp_path / "run" / "train.lock").exists()


def test_resuming_a_finished_run_keeps_its_results(tmp_path, capsys):
    out = tmp_path / "run"
    assert train.main(BASE[:-2] + ["--out", str(out), "--iters", "4", "--eval-max-images", "50"]) == 0
    before = (out / "summary.json").read_text()
    assert json.loads(before)["metrics"] is not None
    capsys.readouterr()
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval"]) == 0
    assert "is complete (4 of 4 updates); nothing to train" in capsys.readouterr().out
    assert (out / "summary.json").read_text() == before


def test_disk_full_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert _run(out, "--iters", "6", "--stop-at", "3") == 0
    good = RunDir(out).load_checkpoint()["t"]
    real_fsync, real_save = os.fsync, RunDir.save_checkpoint
    saving = {"on": False}

    def full(fd):   # the disk fills up while the next checkpoint is written
        if saving["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    def save(self, state):
        saving["on"] = True
        try:
            return real_save(self, state)
        finally:
            saving["on"] = False

    monkeypatch.setattr(os, "fsync", full)
    monkeypatch.setattr(RunDir, "save_checkpoint", save)
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval",
                       "--checkpoint-every", "1"]) == 2
    _one_line_error(capsys.readouterr().err, "no space left on device while writing checkpoint to "
                    f"{out / 'checkpoint.pt'}; the previous checkpoint is intact")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert RunDir(out).load_checkpoint()["t"] == good
    assert not list(out.glob(".*.tmp"))


def test_orphaned_temporary_files_are_removed_at_the_next_start(tmp_path):
    out = tmp_path / "run"
    assert _run(out, "--iters", "6", "--stop-at", "3", "--keep-checkpoints") == 0
    for stale in (out / ".checkpoint.pt.abc123.tmp", out / "checkpoints" / ".t00000005.pt.x.tmp"):
        stale.write_bytes(b"partial")
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval"]) == 0
    assert not list(out.glob(".*.tmp")) and not list((out / "checkpoints").glob(".*.tmp"))


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbled", "flipped"])
def test_damaged_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, capsys):
    out, full = tmp_path / "run", tmp_path / "full"
    args = ["--iters", "8", "--checkpoint-every", "2"]
    assert _run(out, *args, "--stop-at", "6") == 0
    ck = out / "checkpoint.pt"
    data = bytearray(ck.read_bytes())
    assert load_checked(out / "checkpoint.prev.pt")["t"] == 4 and load_checked(ck)["t"] == 6
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    elif damage == "garbled":
        data = bytearray(os.urandom(len(data)))
    else:  # 200 flipped bytes inside the payload: it still unpickles, the checksum catches it
        rng = np.random.default_rng(0)
        for i in rng.choice(np.arange(len(data) // 4, len(data) - 100), 200, replace=False):
            data[i] ^= 0xFF
    ck.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_checked(ck)
    capsys.readouterr()
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval"]) == 0
    err = capsys.readouterr().err
    assert "using the previous checkpoint" in err and "(t=4)" in err
    assert _run(full, *args) == 0
    assert _same(_params(out), _params(full))   # redone from t = 4: nothing lost but time


def test_both_checkpoints_damaged_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--iters", "6", "--checkpoint-every", "2", "--stop-at", "4") == 0
    (out / "checkpoint.pt").write_bytes(b"")
    (out / "checkpoint.prev.pt").write_bytes(b"garbage")
    capsys.readouterr()
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval"]) == 2
    _one_line_error(capsys.readouterr().err, "the checkpoint file is empty")
    assert evaluate.main([str(out), "--no-progress"]) == 2
    _one_line_error(capsys.readouterr().err, "checkpoint.pt")


# ---- training faults -----------------------------------------------------------------------

def test_nan_with_the_discrete_step_on_stops_the_documented_way(tmp_path, monkeypatch, capsys):
    """The MNIST preset runs the discrete step from t = 0. A non-finite parameter (or a
    diverging learning rate) reaches the assignment's scores; that must end as the
    non-finite stop (exit 3, the last good checkpoint kept), not inside the kernel."""
    from cascadevae.training import step as step_mod
    real = step_mod.EagerStep._update

    def update(self, trainer):
        if trainer.t == 3:   # a NaN weight before update t = 3
            with torch.no_grad():
                trainer.model.decoder.fc[0].weight[0, 0] = float("nan")
        return real(self, trainer)

    monkeypatch.setattr(step_mod.EagerStep, "_update", update)
    out = tmp_path / "run"
    assert _run(out, "--iters", "10", "--checkpoint-every", "2") == train.EXIT_NONFINITE
    text = capsys.readouterr()
    assert "non-finite" in text.out and "t=3" in text.out and "Traceback" not in text.err
    assert json.loads((out / "summary.json").read_text())["status"] == "non-finite"
    ck = RunDir(out).load_checkpoint()
    assert ck["t"] == 2 and all(torch.isfinite(v).all() for v in ck["model"].values())
    monkeypatch.setattr(step_mod.EagerStep, "_update", real)
    diverged = tmp_path / "diverged"
    assert _run(diverged, "--iters", "10", "--set", "learning_rate=1e30") == train.EXIT_NONFINITE


# ---- one-line errors -----------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["--device", "bogus"], "is not a device"),
    (["--dataset", "mnist", "--data-dir", "/nonexistent/data"], "MNIST not found"),
    (["--resume", "/nonexistent/run"], "does not exist"),
])
def test_errors_are_one_line(tmp_path, capsys, args, needle):
    argv = ["--iters", "3", "--no-progress"] + args
    if "--resume" not in args:
        argv += ["--out", str(tmp_path / "run")]
    assert train.main(argv) == 2
    _one_line_error(capsys.readouterr().err, needle)
    assert not (tmp_path / "run").exists()   # a failed start leaves no directory


def test_resume_of_a_file_or_an_empty_directory_and_out_a_file(tmp_path, capsys):
    afile = tmp_path / "f"
    afile.write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train.main(["--resume", str(afile)]) == 2
    _one_line_error(capsys.readouterr().err, "is a file, not a run directory")
    assert train.main(["--resume", str(empty)]) == 2
    _one_line_error(capsys.readouterr().err, "holds no run (no config.json)")
    assert _run(afile, "--iters", "2") == 2
    _one_line_error(capsys.readouterr().err, "is a file")


def test_cuda_without_cuda_is_one_line(capsys, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert train.main(["--device", "cuda", "--iters", "2", "--out", str(tmp_path / "r")]) == 2
    _one_line_error(capsys.readouterr().err, "no CUDA device here")


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(Exception, match="is not a device"):
        train.main(["--device", "bogus", "--debug"])


def test_bad_stop_at_and_unused_data_dir(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _run(tmp_path / "a", "--stop-at", "-1")
    assert "--stop-at must be >= 1, got -1" in capsys.readouterr().err
    assert _run(tmp_path / "b", "--iters", "2", "--data-dir", str(tmp_path)) == 0
    assert f"--data-dir {tmp_path} is not used: mnist5k is embedded" in capsys.readouterr().out


# ---- a dataset a user brings ---------------------------------------------------------------

def test_a_small_idx_set_trains_with_a_recorded_holdout(tmp_path, capsys):
    from test_data_mnist import write_mnist
    data = tmp_path / "data"
    write_mnist(data, n_train=300, n_test=40)       # the files directly in the folder
    out = tmp_path / "run"
    assert train.main(["--preset", "mnist", "--dataset", "mnist", "--data-dir", str(data),
                       "--holdout", "0.2", "--set", "batch_size=8", "--iters", "3",
                       "--no-progress", "--no-figures", "--mi-every", "0", "--out", str(out),
                       "--eval-max-images", "100"]) == 0
    cfg = TrainConfig.load(out)
    assert cfg.holdout == 0.2 and cfg.test_from == "holdout"
    info = json.loads((out / "run.json").read_text())
    assert info["data_options"] == {"holdout": 0.2, "test_from": "holdout"}
    assert "240" in info["dataset_source"] or "first 240" in info["dataset_source"]
    res = json.loads((out / "eval.json").read_text())
    assert res["eval_split"] == "test" and res["eval_num_images"] == 60   # 20 % of 300
    t10k = tmp_path / "t10k"
    assert train.main(["--preset", "mnist", "--dataset", "mnist", "--data-dir", str(data),
                       "--test-from", "t10k", "--set", "batch_size=8", "--iters", "2",
                       "--no-progress", "--no-figures", "--mi-every", "0", "--out", str(t10k),
                       "--eval-max-images", "100"]) == 0
    assert json.loads((t10k / "eval.json").read_text())["eval_num_images"] == 40
