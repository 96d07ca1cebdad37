"""The evaluation command: tiny trained runs in, eval.json out."""
import json

import numpy as np
import pytest

from cascadevae import evaluate, train
from cascadevae.presets import TrainConfig
from cascadevae.run_dir import RunDir

COMMON = ["--set", "batch_size=8", "--no-progress", "--no-figures", "--device", "cpu",
          "--iters", "6", "--checkpoint-every", "3", "--mi-every", "0", "--no-eval"]


def _train(out, *extra):
    assert train.main(COMMON + ["--out", str(out), *extra]) == 0
    return out


def test_mnist5k_run_writes_eval_json(tmp_path, capsys):
    out = _train(tmp_path / "run", "--dataset", "mnist5k")
    capsys.readouterr()
    assert evaluate.main([str(out), "--max-images", "200", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "final checkpoint t=6" in text
    res = json.loads((out / "eval.json").read_text())
    m = TrainConfig.load(out).model.latent_dim
    assert res["t"] == 6 and res["selection"] == "final checkpoint"
    assert res["dataset"] == "mnist5k" and res["eval_split"] == "test"
    # MI and TC are of the aggregate over the whole test split (1,000 images), not of the
    # 200 evaluated ones
    assert res["eval_num_images"] == 200 and res["mi_dataset_size"] == 1000
    assert res["tc_dataset_size"] == 1000 and np.isfinite(res["tc_estimate"])
    assert res["tc_estimator"] == "ksg" and res["tc_num_points"] == 200
    assert len(res["mi_per_dim"]) == m and len(res["kl_per_dim"]) == m
    assert all(np.isfinite(res["mi_per_dim"])) and min(res["kl_per_dim"]) >= 0
    assert 0.0 <= res["accuracy_unsupervised"] <= 100.0
    assert res["accuracy_target"] == "class labels" and sum(res["code_counts"]) == 200
    assert "disentanglement_score" not in res
    assert not list(out.glob(".eval.json.*"))  # the temp file was moved into place


def test_dsprites_run_gets_disentanglement_score(tmp_path):
    out = _train(tmp_path / "run", "--dataset", "dsprites", "--lazy-data")
    res = evaluate.evaluate_run(out, num_votes=20, batch=20, max_images=100,
                                num_variance_samples=500, progress=False)
    assert res["t"] == 6 and res["protocol"] == "paper"
    assert 0.0 <= res["disentanglement_score"] <= 100.0
    assert res["disentanglement_num_votes"] == 20 and res["disentanglement_kl_pruning"]
    assert res["disentanglement_discrete_dim"]
    assert 0.0 <= res["accuracy_unsupervised"] <= 100.0
    assert res["accuracy_target"] == "shape factor" and res["accuracy_num_classes"] == 3
    # the CLI path writes eval.json with the same seed-determined score
    assert evaluate.main([str(out), "--votes", "20", "--batch", "20", "--max-images", "100",
                          "--variance-samples", "500", "--no-progress"]) == 0
    saved = json.loads((out / "eval.json").read_text())
    assert saved["disentanglement_score"] == pytest.approx(res["disentanglement_score"])


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no checkpoint"):
        evaluate.main([str(tmp_path / "empty")])
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        evaluate.evaluate_run(tmp_path / "empty")


def test_all_checkpoints_and_best_by_label(tmp_path, capsys):
    out = _train(tmp_path / "run", "--dataset", "mnist5k", "--keep-checkpoints")
    capsys.readouterr()
    assert evaluate.main([str(out), "--max-images", "100", "--no-progress", "--no-figures",
                          "--best-by-label"]) == 0
    text = capsys.readouterr().out
    assert "best by label" in text
    final = json.loads((out / "eval.json").read_text())
    history = json.loads((out / "eval_history.json").read_text())
    best = json.loads((out / "eval_best_by_label.json").read_text())
    assert final["selection"] == "final checkpoint" and final["t"] == 6
    assert [r["t"] for r in history] == [3, 6]
    assert all(r["selection"] == "each checkpoint" for r in history)
    assert best["selection"] == "best checkpoint by label"
    assert best["selection_metric"] == "accuracy_unsupervised"
    assert best["accuracy_unsupervised"] == max(r["accuracy_unsupervised"] for r in history)
    assert best["selection_candidates"] == [3, 6]
    # the final evaluation does not depend on whether the history was asked for
    assert history[-1]["accuracy_unsupervised"] == final["accuracy_unsupervised"]


def test_history_reuses_the_final_evaluation_for_the_same_update(tmp_path, monkeypatch):
    out = _train(tmp_path / "run", "--dataset", "mnist5k", "--keep-checkpoints")
    opts = dict(max_images=100, progress=False)
    final = evaluate.evaluate_run(out, **opts)
    fresh = evaluate.evaluate_history(out, **opts)
    calls = []
    real = evaluate.evaluate_run
    monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, **k: calls.append(k) or real(*a, **k))
    reused = evaluate.evaluate_history(out, final=final, **opts)
    assert len(calls) == 1 and [r["t"] for r in reused] == [3, 6]   # only t = 3 is evaluated
    # the kept checkpoint of the last update holds checkpoint.pt's weights: same numbers
    drop = ("eval_seconds",)
    assert ({k: v for k, v in reused[-1].items() if k not in drop}
            == {k: v for k, v in fresh[-1].items() if k not in drop})


def test_keep_final_keeps_trainings_own_evaluation_when_the_options_match(tmp_path, monkeypatch,
                                                                         capsys):
    args = [a for a in COMMON if a != "--no-eval"]
    out = tmp_path / "run"
    assert train.main(args + ["--out", str(out), "--dataset", "mnist5k", "--keep-checkpoints",
                              "--eval-max-images", "100"]) == 0
    before = (out / "eval.json").read_text()
    calls = []
    real = evaluate.evaluate_run
    monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, **k: calls.append(k) or real(*a, **k))
    capsys.readouterr()
    assert evaluate.main([str(out), "--max-images", "100", "--no-progress", "--no-figures",
                          "--best-by-label", "--keep-final"]) == 0
    assert "kept" in capsys.readouterr().out and len(calls) == 1      # only t = 3
    assert (out / "eval.json").read_text() == before
    history = json.loads((out / "eval_history.json").read_text())
    assert [r["t"] for r in history] == [3, 6]
    # other options: the final checkpoint is evaluated again
    assert evaluate.main([str(out), "--max-images", "50", "--no-progress", "--no-figures",
                          "--keep-final"]) == 0
    assert len(calls) == 2 and json.loads((out / "eval.json").read_text())["eval_num_images"] == 50


def test_history_leaves_out_where_an_interrupted_run_stopped(tmp_path):
    """Stopped at t = 4 and resumed: it kept t = 4 too, but the history (and so the best-by-label
    candidates) is that of the uninterrupted run, the grid 3, 6; while the run is still stopped,
    its latest checkpoint is in."""
    out = _train(tmp_path / "run", "--dataset", "mnist5k", "--keep-checkpoints", "--stop-at", "4")
    opts = dict(max_images=50, progress=False)
    assert evaluate.history_targets(out) == [(out / "checkpoints" / "t00000003.pt", 3), (None, 4)]
    assert train.main(["--resume", str(out), "--no-progress", "--no-eval", "--no-figures"]) == 0
    assert [p.name for p in RunDir(out).kept_weights()] == [f"t0000000{t}.pt" for t in (3, 4, 6)]
    history = evaluate.evaluate_history(out, **opts)
    assert [r["t"] for r in history] == [3, 6]
    assert history[-1]["checkpoint"] == "checkpoints/t00000006.pt"
    assert evaluate.best_by_label(history)["selection_candidates"] == [3, 6]


def test_an_interrupted_history_continues_where_it_stopped(tmp_path, monkeypatch):
    out = _train(tmp_path / "run", "--dataset", "mnist5k", "--keep-checkpoints")
    opts = dict(max_images=50, progress=False)
    real, calls = evaluate.evaluate_run, []

    def dies_on_the_second(*a, **k):
        calls.append(k)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(evaluate, "evaluate_run", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        evaluate.write_history(out, **opts)
    saved = json.loads((out / "eval_history.json").read_text())
    assert [r["t"] for r in saved] == [3]       # the finished checkpoint was written at once
    calls.clear()
    monkeypatch.setattr(evaluate, "evaluate_run",
                        lambda *a, **k: calls.append(k) or real(*a, **k))
    history = evaluate.write_history(out, keep_existing=True, **opts)
    assert len(calls) == 1 and [r["t"] for r in history] == [3, 6]    # only t = 6 evaluated
    assert history[0] == saved[0]
    assert json.loads((out / "eval_history.json").read_text()) == history
    # other options: nothing is reused; without keep_existing neither
    assert len(evaluate.write_history(out, keep_existing=True, max_images=40,
                                      progress=False)) == 2 and len(calls) == 3
    evaluate.write_history(out, **opts)
    assert len(calls) == 5


def test_all_checkpoints_needs_kept_weights(tmp_path):
    out = _train(tmp_path / "run", "--dataset", "mnist5k")
    with pytest.raises(SystemExit, match="--keep-checkpoints"):
        evaluate.main([str(out), "--max-images", "50", "--no-progress", "--no-figures",
                       "--all-checkpoints"])


def test_max_images_all_and_figures(tmp_path):
    out = _train(tmp_path / "run", "--dataset", "mnist5k")
    res = evaluate.write_evaluation(out, max_images=None, progress=False)
    assert res["eval_num_images"] == 1000  # the whole MNIST-5k test split
    assert res["mi_num_points"] == 1000 and sum(res["code_counts"]) == 1000
    assert (out / "figures" / "eval_traversal.png").exists()
    with pytest.raises(SystemExit):
        evaluate.main([str(out), "--max-images", "1"])


def test_best_by_label_needs_a_label_metric():
    with pytest.raises(ValueError, match="label-based metric"):
        evaluate.best_by_label([{"t": 1, "tc_estimate": 0.1}])


def test_code_left_out_of_the_score_before_t_d(tmp_path):
    """A checkpoint from before the discrete warm-up t_d ended: the decoder has only seen the
    all-zero code, so the code is not a dim of the disentanglement score (as officially)."""
    out = _train(tmp_path / "run", "--dataset", "dsprites", "--lazy-data", "--stop-at", "2")
    cfg = TrainConfig.load(out)
    assert cfg.model.discrete_warmup >= 2      # t = 2: updates 0 and 1 were before t_d
    res = evaluate.evaluate_run(out, num_votes=20, batch=20, max_images=100,
                                num_variance_samples=500, progress=False)
    assert res["t"] == 2 and res["disentanglement_discrete_dim"] is False
    assert max(res["disentanglement_active_dims"], default=-1) < cfg.model.latent_dim
    kept = evaluate.evaluate_run(out, num_votes=20, batch=20, max_images=100,
                                 num_variance_samples=500, progress=False, collapsed_code="keep")
    assert kept["disentanglement_collapsed_code"] == "keep"
    with pytest.raises(ValueError, match="collapsed_code"):
        evaluate.evaluate_run(out, collapsed_code="maybe", progress=False)


def test_evaluating_a_run_that_is_training_says_so(tmp_path, capsys):
    import os
    import socket
    out = _train(tmp_path / "run", "--dataset", "mnist5k")
    capsys.readouterr()
    # as a trainer of this host writes it (this process stands in: it is alive)
    (out / "train.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                "since": "now", "command": "train"}))
    assert evaluate.main([str(out), "--max-images", "100", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"is still training (pid {os.getpid()}): this evaluates its latest checkpoint" in err
    # a lock file left by a process that is gone says nothing
    (out / "train.lock").write_text(json.dumps({"pid": 2 ** 22 + 12345, "host":
                                                socket.gethostname(), "since": "then"}))
    assert RunDir(out).trainer()["alive"] is False
    assert evaluate.main([str(out), "--max-images", "100", "--no-progress"]) == 0
    assert "still training" not in capsys.readouterr().err
