"""The training command: end to end runs, exact resume, Ctrl-C, non-finite stop, schedule."""
import json

import numpy as np
import pytest
import torch

from cascadevae import train
from cascadevae.models import vae as vae_mod
from cascadevae.presets import TrainConfig
from cascadevae.run_dir import RunDir

BASE = ["--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress", "--device", "cpu",
        "--mi-every", "0", "--no-eval"]


def _run(out, *extra):
    return train.main(BASE + ["--out", str(out), *extra])


def _metrics(out):
    return RunDir(out).read_metrics()


def _params(out):
    return RunDir(out).load_checkpoint()["model"]


def test_end_to_end_writes_run_dir(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(out, "--iters", "10", "--log-every", "2", "--checkpoint-every", "5") == 0
    text = capsys.readouterr().out
    assert "scaled schedule" in text and "MNIST-5k" in text
    for name in ("config.json", "run.json", "metrics.jsonl", "checkpoint.pt", "summary.json"):
        assert (out / name).exists(), name
    cfg = TrainConfig.load(out)
    assert cfg.iterations == 10 and cfg.batch_size == 8 and cfg.dataset == "mnist"
    info = json.loads((out / "run.json").read_text())
    assert info["dataset"] == "mnist5k" and "MNIST-5k" in info["dataset_source"]
    assert "--iters 10" in info["command"]
    recs = _metrics(out)
    assert [r["t"] for r in recs] == [0, 1, 3, 5, 7, 9]
    r = recs[-1]
    assert len(r["kl_per_dim"]) == cfg.model.latent_dim and np.isfinite(r["loss"])
    assert {"recon", "kl", "relieved", "discrete_on", "class_counts", "seconds"} <= set(r)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["iterations"] == 10
    assert RunDir(out).load_checkpoint()["t"] == 10


def test_betas_and_discrete_follow_schedule(tmp_path):
    out = tmp_path / "run"
    assert _run(out, "--iters", "12", "--log-every", "1") == 0
    cfg = TrainConfig.load(out)
    sched = cfg.schedule()
    assert cfg.model.discrete_warmup is not None and 0 < cfg.model.discrete_warmup < 12
    recs = _metrics(out)
    assert len(recs) == 12
    for r in recs:
        t = r["t"]
        np.testing.assert_array_equal(r["betas"], sched.betas(t))
        assert r["relieved"] == sched.relieved(t)
        assert r["discrete_on"] == sched.discrete_on(t)
        if sched.discrete_on(t):
            assert r["class_counts"] is not None
            assert len(r["class_counts"]) == cfg.model.num_classes and sum(r["class_counts"]) == 8
        else:
            assert r["class_counts"] is None
    assert recs[0]["relieved"] < recs[-1]["relieved"]


def test_resume_is_bitwise_identical(tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["--iters", "12", "--log-every", "1", "--checkpoint-every", "100",
            "--set", "fresh_optimizer_per_stage=True"]
    assert _run(full, *args) == 0
    assert _run(part, *args, "--stop-at", "7") == 0
    assert "stopped after 7" in capsys.readouterr().out
    assert RunDir(part).load_checkpoint()["t"] == 7
    assert train.main(["--resume", str(part), "--no-progress", "--device", "cpu", "--no-eval"]) == 0
    a, b = _params(full), _params(part)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma, mb = _metrics(full), _metrics(part)
    assert [r["t"] for r in mb] == list(range(12))
    assert [r["loss"] for r in ma] == [r["loss"] for r in mb]


def test_keyboard_interrupt_checkpoints_and_resumes(tmp_path, monkeypatch, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["--iters", "10", "--checkpoint-every", "100"]
    assert _run(full, *args) == 0
    real = vae_mod.VAE.decoder_code
    calls = {"n": 0}

    def codes(*a, **kw):  # interrupt mid-update t=4, after its batch and z were drawn
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(vae_mod.VAE, "decoder_code", codes)
    assert _run(part, *args) == train.EXIT_INTERRUPTED
    assert "interrupted after 4 updates" in capsys.readouterr().out
    assert RunDir(part).load_checkpoint()["t"] == 4
    assert json.loads((part / "summary.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(vae_mod.VAE, "decoder_code", real)
    assert train.main(["--resume", str(part), "--no-progress", "--device", "cpu", "--no-eval"]) == 0
    a, b = _params(full), _params(part)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_non_finite_loss_stops_and_keeps_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real = vae_mod.VAE.loss_terms
    calls = {"n": 0}

    def loss_terms(self, *a, **kw):
        terms = real(self, *a, **kw)
        calls["n"] += 1
        if calls["n"] == 7:  # update t = 6
            terms["recon"] = terms["recon"] * float("nan")
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(vae_mod.VAE, "loss_terms", loss_terms)
    code = _run(out, "--iters", "10", "--checkpoint-every", "4", "--log-every", "1")
    assert code == train.EXIT_NONFINITE
    text = capsys.readouterr().out
    assert "t=6" in text and "non-finite recon" in text
    ck = RunDir(out).load_checkpoint()
    assert ck["t"] == 4
    for v in ck["model"].values():
        assert torch.isfinite(v).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "non-finite" and "t=6" in summary["message"]
    assert max(r["t"] for r in _metrics(out)) == 5


def test_dsprites_lazy_and_overrides(tmp_path, capsys):
    out = tmp_path / "run"
    code = train.main(["--dataset", "dsprites", "--lazy-data", "--set", "batch_size=4",
                       "--set", "latent_dim=3", "--iters", "3", "--no-progress",
                       "--device", "cpu", "--out", str(out), "--mi-every", "0", "--no-eval"])
    assert code == 0
    text = capsys.readouterr().out
    assert "procedural" in text.lower()
    cfg = TrainConfig.load(out)
    assert cfg.model.latent_dim == 3 and cfg.dataset == "dsprites"
    assert json.loads((out / "run.json").read_text())["image_size"] == 64


@pytest.mark.parametrize("flag, expected", [("--no-progress", False), (None, None)])
def test_no_progress_also_silences_the_data_loaders_bar(tmp_path, monkeypatch, flag, expected):
    # a batch job's log should not fill with the dSprites renderer's progress bar
    from cascadevae.training import cli
    seen = {}
    real_load = cli.data_mod.load

    def load(name, **options):
        seen.update(options)
        return real_load(name, **options)

    monkeypatch.setattr(cli.data_mod, "load", load)
    args = ["--dataset", "dsprites", "--lazy-data", "--set", "batch_size=4", "--set",
            "latent_dim=3", "--iters", "2", "--device", "cpu", "--out", str(tmp_path / "run"),
            "--mi-every", "0", "--no-eval", "--no-figures"] + ([flag] if flag else [])
    assert train.main(args) == 0
    assert seen.get("progress") is expected and seen.get("lazy") is True


def test_bad_override_and_existing_run(tmp_path):
    with pytest.raises(SystemExit):
        _run(tmp_path / "a", "--set", "no_such_field=1")
    out = tmp_path / "b"
    assert _run(out, "--iters", "2") == 0
    assert _run(out, "--iters", "2") == train.EXIT_USAGE   # one line: resume it or choose another


def test_monitor_logs_information_and_training_ends_with_evaluation(tmp_path, capsys):
    out = tmp_path / "run"
    code = train.main(["--preset", "mnist", "--dataset", "mnist5k", "--set", "batch_size=8",
                       "--no-progress", "--device", "cpu", "--out", str(out), "--iters", "8",
                       "--log-every", "4",
                       "--checkpoint-every", "4", "--mi-every", "2", "--mi-images", "30",
                       "--keep-checkpoints", "--eval-max-images", "60"])
    assert code == 0
    assert "evaluating the final checkpoint" in capsys.readouterr().out
    cfg = TrainConfig.load(out)
    recs = _metrics(out)
    measured = [r for r in recs if "mi_per_dim" in r]
    assert [r["t"] + 1 for r in measured] == [2, 4, 6, 8]
    for r in measured:
        assert len(r["mi_per_dim"]) == cfg.model.latent_dim
        # Monte Carlo noise can take an uninformative dim slightly below 0
        assert all(-0.05 <= v <= np.log(30) + 0.5 for v in r["mi_per_dim"])
        # preset mnist has t_d = 0: the code is active, I(x; d) = H(d) <= log S
        assert 0.0 <= r["mi_discrete"] <= np.log(cfg.model.num_classes) + 1e-9
    # kept weights, one per checkpoint, each loadable on its own
    kept = RunDir(out).kept_weights()
    assert [p.name for p in kept] == ["t00000004.pt", "t00000008.pt"]
    assert RunDir(out).load_checkpoint(path=kept[0])["t"] == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["eval_file"] == "eval.json"
    assert set(summary["metrics"]) == {"unsupervised_accuracy"}
    res = json.loads((out / "eval.json").read_text())
    assert summary["metrics"]["unsupervised_accuracy"] == res["accuracy_unsupervised"]
    assert res["t"] == 8 and res["eval_num_images"] == 60
    for name in ("information.png", "eval_traversal.png", "eval_recon.png", "eval_discrete.png"):
        assert (out / "figures" / name).stat().st_size > 1000, name


def test_default_monitor_interval():
    from cascadevae.training.session import default_mi_every
    assert default_mi_every(300000, 100) == 12000
    assert default_mi_every(2000, 100) == 100   # never more often than the log
    assert default_mi_every(10, 1) == 1


def test_device_step_eager_matches_the_plain_step(tmp_path):
    """--device-step eager (cascadevae.device_step, values read only at log points) trains the
    same run as the default step on the CPU: same logged values, same final weights."""
    plain, dev = tmp_path / "plain", tmp_path / "dev"
    args = ["--preset", "mnist", "--iters", "8", "--log-every", "4", "--checkpoint-every", "8"]
    assert _run(plain, *args) == 0
    assert _run(dev, *args, "--device-step", "eager") == 0
    a, b = _metrics(plain), _metrics(dev)
    assert [r["t"] for r in a] == [r["t"] for r in b] == [0, 3, 7]
    for ra, rb in zip(a, b):
        for key in ("loss", "recon", "kl", "class_counts", "betas", "discrete_on"):
            assert ra[key] == rb[key], key
    pa, pb = _params(plain), _params(dev)
    for name in pa:
        assert torch.equal(pa[name], pb[name]), name


def test_device_step_refusals(tmp_path, capsys):
    with pytest.raises(SystemExit):
        _run(tmp_path / "g", "--iters", "2", "--device-step", "graphs")
    assert "needs a CUDA device" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run(tmp_path / "j", "--preset", "joint-vae-mnist", "--iters", "2",
             "--device-step", "eager")
    assert "--device-step supports" in capsys.readouterr().err


def test_tensorboard_logs_the_metrics_log_scalars_and_the_figures(tmp_path):
    """--tensorboard is one more callback on the one logging path: the same scalars as
    metrics.jsonl, and the figures at each checkpoint."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    out = tmp_path / "run"
    assert train.main(["--preset", "mnist", "--dataset", "mnist5k", "--set", "batch_size=8",
                       "--iters", "6", "--log-every", "2", "--checkpoint-every", "3",
                       "--mi-every", "0", "--no-eval", "--no-progress", "--device", "cpu",
                       "--out", str(out), "--tensorboard"]) == 0
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    recs = _metrics(out)
    losses = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert losses == [(r["t"] + 1, pytest.approx(r["loss"], rel=1e-6)) for r in recs]
    assert "kl_per_dim/z0" in acc.Tags()["scalars"]
    assert {"figures/recon", "figures/traversal"} <= set(acc.Tags()["images"])
