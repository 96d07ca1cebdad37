"""torchrun data-parallel training on the CPU (gloo, 2 processes): it equals a single-process
run on the concatenated batch (the same exact global assignment, the same class counts, losses
and weights up to float summation order), and a run resumed with the same world size is
bitwise the uninterrupted one."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cascadevae import train
from cascadevae.run_dir import RunDir

ROOT = Path(__file__).resolve().parent.parent
ARGS = ["--preset", "mnist", "--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress",
        "--mi-every", "0", "--no-figures", "--no-eval", "--log-every", "1", "--threads", "1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADEVAE_CACHE", str(tmp_path / "cache"))


def torchrun(*args, script=None, check=True, timeout=240):
    """2 processes under torchrun: ``python -m cascadevae.train ARGS``, or ``script ARGS``; this
    checkout's package first on the path. ``check``: assert that it succeeded."""
    target = [str(script)] if script is not None else ["-m", "cascadevae.train"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *target, *args]
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check:
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    return res


def test_two_processes_equal_one_on_the_concatenated_batch(tmp_path):
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    res = torchrun(*ARGS, "--iters", "6", "--no-compile", "--out", str(ddp))
    assert "rank 1 of 2, 4 of the batch's 8 images" in res.stdout
    assert train.main(ARGS + ["--iters", "6", "--out", str(single)]) == 0
    a, b = RunDir(ddp).read_metrics(), RunDir(single).read_metrics()
    assert [r["t"] for r in a] == [r["t"] for r in b] == list(range(6))
    for ra, rb in zip(a, b):
        # every rank solved the one assignment of the whole batch: the labels' class counts
        # are those of the single process's assignment, update after update
        assert ra["class_counts"] == rb["class_counts"]
        assert ra["loss"] == pytest.approx(rb["loss"], rel=1e-5)
    pa, pb = RunDir(ddp).load_checkpoint()["model"], RunDir(single).load_checkpoint()["model"]
    for k in pa:
        assert torch.allclose(pa[k], pb[k], rtol=1e-3, atol=1e-4), k
    assert RunDir(ddp).read_json("run.json")["world_size"] == 2


def test_resume_with_the_same_world_size_is_exact(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    torchrun(*ARGS, "--iters", "6", "--no-compile", "--out", str(full))
    torchrun(*ARGS, "--iters", "6", "--no-compile", "--out", str(part), "--stop-at", "3")
    assert RunDir(part).load_checkpoint()["t"] == 3
    torchrun("--resume", str(part), "--no-progress", "--no-eval")
    pa, pb = RunDir(full).load_checkpoint()["model"], RunDir(part).load_checkpoint()["model"]
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert [r["loss"] for r in RunDir(full).read_metrics()] == \
        [r["loss"] for r in RunDir(part).read_metrics()]


RANK_ZERO_FIRST = """
import os, sys, time
import torch.distributed as dist
from cascadevae.training import distributed
world = distributed.world_from_env()
distributed.init(__import__("torch").device("cpu"))
log = sys.argv[1]
with distributed.rank_zero_first(world):
    with open(log, "a") as fh:
        fh.write(f"{world['rank']} in\\n")
    if world["rank"] == 0:
        time.sleep(1.0)   # rank 1, were it not held back, would write in the meantime
        if os.path.exists(sys.argv[2]):
            raise RuntimeError("rank 0 fails inside the block")
    with open(log, "a") as fh:
        fh.write(f"{world['rank']} out\\n")
dist.destroy_process_group()
"""


@pytest.mark.parametrize("fails", [False, True])
def test_rank_zero_runs_the_data_loading_first(tmp_path, fails):
    # the dSprites cache is written by the first rank that loads the data: rank 0 must be done
    # with the block before the others enter it, and must release them when it raises
    script, log, flag = tmp_path / "first.py", tmp_path / "log.txt", tmp_path / "fail"
    script.write_text(RANK_ZERO_FIRST)
    if fails:
        flag.write_text("")
    res = torchrun(str(log), str(flag), script=script, check=False, timeout=120)
    lines = log.read_text().split()
    if fails:
        assert res.returncode != 0 and "rank 0 fails inside the block" in res.stderr
        assert lines[:2] == ["0", "in"] and "out" not in lines[:4]
    else:
        assert res.returncode == 0, res.stderr[-3000:]
        assert log.read_text().splitlines() == ["0 in", "0 out", "1 in", "1 out"]
