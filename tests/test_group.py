"""Seeds trained together (--seeds): seed k of a group equals the single-seed run with seed k
bit for bit (fp32, CPU), with the discrete steps solved in one batched assign call; a group
stops and resumes as its runs do."""
import json

import pytest
import torch

from cascadevae import kernels, train
from cascadevae.run_dir import RunDir

BASE = ["--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress", "--device", "cpu",
        "--mi-every", "0", "--no-eval", "--no-figures", "--threads", "1", "--log-every", "1"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CASCADEVAE_CACHE", str(tmp_path / "cache"))


def _same_run(a, b):
    pa, pb = RunDir(a).load_checkpoint()["model"], RunDir(b).load_checkpoint()["model"]
    assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
    ma, mb = RunDir(a).read_metrics(), RunDir(b).read_metrics()
    assert [(r["t"], r["loss"], r["class_counts"]) for r in ma] == \
        [(r["t"], r["loss"], r["class_counts"]) for r in mb]


@pytest.mark.parametrize("preset", ["mnist", "joint-vae-mnist"])
def test_seed_k_of_a_group_equals_the_single_seed_run(tmp_path, monkeypatch, preset):
    calls = []
    real = kernels.assign

    def spy(u, lam, *a, **k):
        calls.append(tuple(u.shape))
        return real(u, lam, *a, **k)

    monkeypatch.setattr(kernels, "assign", spy)
    group = tmp_path / "group"
    assert train.main(BASE + ["--preset", preset, "--iters", "6", "--seeds", "1,3",
                              "--out", str(group)]) == 0
    if preset == "mnist":   # the discrete step is on from t = 0: one (2, 8, 10) call per update
        assert calls == [(2, 8, 10)] * 6
    calls.clear()
    for seed in (1, 3):
        single = tmp_path / f"single-{seed}"
        assert train.main(BASE + ["--preset", preset, "--iters", "6", "--seed", str(seed),
                                  "--out", str(single)]) == 0
        _same_run(group / f"seed-{seed}", single)
        info = json.loads((group / f"seed-{seed}" / "run.json").read_text())
        assert json.loads((group / f"seed-{seed}" / "config.json").read_text())["seed"] == seed
        assert "--seeds 1,3" in info["command"]


def test_a_group_stops_and_resumes_exactly(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    args = BASE + ["--preset", "mnist", "--iters", "8", "--seeds", "1-2"]
    assert train.main(args + ["--out", str(full)]) == 0
    assert train.main(args + ["--out", str(part), "--stop-at", "5"]) == 0
    assert [RunDir(part / f"seed-{k}").load_checkpoint()["t"] for k in (1, 2)] == [5, 5]
    assert train.main(["--resume", str(part), "--no-progress", "--no-eval"]) == 0
    for k in (1, 2):
        _same_run(part / f"seed-{k}", full / f"seed-{k}")
        assert json.loads((part / f"seed-{k}" / "summary.json").read_text())["status"] == "finished"


def test_seed_k_of_a_bf16_group_equals_the_single_bf16_run(tmp_path):
    # each seed's networks run as in a single run, so bfloat16 autocast gives the same bits too
    args = BASE + ["--preset", "mnist", "--iters", "4", "--precision", "bf16"]
    assert train.main(args + ["--seeds", "1-2", "--out", str(tmp_path / "group")]) == 0
    assert train.main(args + ["--seed", "2", "--out", str(tmp_path / "single")]) == 0
    _same_run(tmp_path / "group" / "seed-2", tmp_path / "single")


def test_seeds_and_seed_together_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        train.main(BASE + ["--preset", "mnist", "--seeds", "1-2", "--seed", "3",
                           "--out", str(tmp_path / "g")])
