"""The report command: fake run directories with known numbers in, Markdown / JSON / figure
out; one tiny trained and evaluated run end to end."""
import json
import math

import numpy as np
import pytest
from PIL import Image

from cascadevae import evaluate, report, train
from cascadevae.presets import get_preset

PROTOCOL = {"protocol": "paper", "disentanglement_protocol": "paper",
            "disentanglement_num_votes": 800, "disentanglement_batch": 100,
            "disentanglement_kl_pruning": True, "disentanglement_num_variance_samples": 10000,
            "accuracy_mapping": "one_to_one", "accuracy_target": "shape factor",
            "eval_split": "full grid", "eval_num_images": 10000}


def make_run(root, name, preset="dsprites", seed=0, iterations=None, dataset=None,
             selection="final checkpoint", eval_file="eval.json", **values):
    """A run directory as train + evaluate leave it, with the given metric values."""
    path = root / name
    path.mkdir(parents=True)
    overrides = {k: values.pop(k) for k in ("latent_dim",) if k in values}
    cfg = get_preset(preset, seed=seed, **overrides)
    if iterations is not None:
        cfg = cfg.scaled(iterations)
    cfg.save(path)
    dataset = dataset or cfg.dataset
    (path / "run.json").write_text(json.dumps({"dataset": dataset, "preset": preset,
                                               "command": "python -m cascadevae.train"}))
    (path / "summary.json").write_text(json.dumps({"status": "finished",
                                                   "iterations": cfg.iterations}))
    if eval_file:
        ev = dict(PROTOCOL, t=cfg.iterations, selection=selection, dataset=dataset,
                  model=cfg.model_name, seed=0)
        if not dataset.startswith("dsprites"):
            ev.update(accuracy_target="class labels", eval_split="test")
        ev.update(values)
        (path / eval_file).write_text(json.dumps(ev))
    return path


@pytest.fixture
def demo(tmp_path):
    """runs/demo: 3 CascadeVAE m=6 seeds, 2 beta-VAE m=10 seeds, 1 CascadeVAE m=4 seed."""
    root = tmp_path / "runs" / "demo"
    for seed, (s, a, tc) in enumerate([(90.0, 80.0, 0.1), (80.0, 60.0, 0.2), (100.0, 70.0, 0.3)]):
        make_run(root, f"cascade-{seed}", seed=seed, disentanglement_score=s,
                 accuracy_unsupervised=a, tc_estimate=tc, kl_total=20.0 + seed, mi_total=5.0)
    for seed, (s, tc) in enumerate([(70.0, 1.5), (74.0, 2.5)]):
        make_run(root / "baselines", f"beta-{seed}", preset="beta-vae", seed=seed,
                 disentanglement_score=s, tc_estimate=tc, kl_total=30.0, mi_total=6.0)
    make_run(root, "cascade-m4", latent_dim=4, seed=0, disentanglement_score=95.0,
             accuracy_unsupervised=99.0, tc_estimate=0.05, kl_total=15.0, mi_total=4.0)
    return root


def _groups(rep):
    return {(g["model"], g["m"]): g for t in rep["tables"] for g in t["groups"]}


def test_numbers_match_hand_computation_and_groups_split_by_model_and_m(demo, capsys):
    assert report.main([str(demo)]) == 0
    printed = capsys.readouterr().out
    rep = json.loads((demo / "report.json").read_text())
    g = _groups(rep)
    assert sorted(g) == [("beta-vae", 10), ("cascade", 4), ("cascade", 6)]
    c6 = g["cascade", 6]
    assert c6["num_runs"] == 3 and c6["seeds"] == [0, 1, 2] and c6["S"] == 3
    assert c6["iterations"] == 300_000 and c6["beta"] == "beta_l=1"
    score = c6["metrics"]["disentanglement_score"]
    assert score == pytest.approx({"n": 3, "mean": 90.0, "std": 10.0, "best": 100.0})
    acc = c6["metrics"]["accuracy_unsupervised"]
    assert acc == pytest.approx({"n": 3, "mean": 70.0, "std": 10.0, "best": 80.0})
    tc = c6["metrics"]["tc_estimate"]
    assert tc == pytest.approx({"n": 3, "mean": 0.2, "std": 0.1}) and "best" not in tc
    assert c6["metrics"]["kl_total"]["mean"] == pytest.approx(21.0)
    assert [r["seed"] for r in c6["runs"]] == [0, 1, 2]
    assert c6["runs"][1]["disentanglement_score"] == 80.0
    assert c6["runs"][1]["run_dir"].endswith("cascade-1")
    beta = g["beta-vae", 10]
    assert beta["metrics"]["disentanglement_score"] == pytest.approx(
        {"n": 2, "mean": 72.0, "std": math.sqrt(8.0), "best": 74.0})
    assert "accuracy_unsupervised" not in beta["metrics"]
    assert g["cascade", 4]["metrics"]["disentanglement_score"]["std"] is None

    md = (demo / "report.md").read_text()
    assert "| CascadeVAE | beta_l=1 | 6 | 3 | 300000 | 3 | 90.00 (10.00) | 100.00 | " \
           "70.00 (10.00) | 80.00 | 0.200 (0.100) | 21.000 (1.000) | 5.000 (0.000) |" in md
    assert "| beta-VAE | beta=4 | 10 | 0 | 300000 | 2 | 72.00 (2.83) | 74.00 |  |  |" in md
    assert "| 95.00 (n/a) | 95.00 |" in md
    assert "sample standard deviation" in md and "final checkpoint" in md
    assert "disentanglement_num_votes=800" in md and "eval_num_images=10000" in md
    assert "Iterations per run: 300000. The paper's budget on dsprites: 300000" in md
    assert "Warning" not in md
    # the printed summary has the group table; the per-run table is in the file only
    assert "| CascadeVAE | beta_l=1 | 6 |" in printed and "cascade-1" not in printed
    assert "cascade-1" in md and rep["std"] == "sample" and rep["std_ddof"] == 1
    assert rep["selection"] == "final checkpoint" and rep["figures"] == ["tc_vs_score.png"]


def test_figure_is_a_png_of_sensible_size(demo):
    report.main([str(demo), "--out", str(demo / "out"), "--title", "demo"])
    path = demo / "out" / "tc_vs_score.png"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and 400 <= im.size[0] <= 2000 and 300 <= im.size[1] <= 2000
    # the three cascade groups / models each get a legend entry
    series = report.figure_series(json.loads((demo / "out" / "report.json").read_text())
                                  ["tables"][0])
    assert sorted(len(s.points) for s in series) == [1, 2, 3]


def test_no_figure_with_fewer_than_two_points_and_columns_follow_the_dataset(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "d0", disentanglement_score=90.0, tc_estimate=0.1, kl_total=1.0,
             mi_total=1.0)
    make_run(root, "m0", preset="mnist", dataset="mnist5k", accuracy_unsupervised=81.0,
             tc_estimate=0.4, kl_total=2.0, mi_total=1.5)
    report.main([str(root)])
    assert not list(root.glob("*.png"))
    rep = json.loads((root / "report.json").read_text())
    assert [t["dataset"] for t in rep["tables"]] == ["dsprites", "mnist5k"]
    mnist = rep["tables"][1]
    assert mnist["metrics"] == ["accuracy_unsupervised", "tc_estimate", "kl_total", "mi_total"]
    assert mnist["paper_iterations"] == 120_000
    md = (root / "report.md").read_text()
    mnist_md = md.split("## mnist5k")[1]
    assert "disent. score" not in mnist_md and "accuracy % mean (std)" in mnist_md


def test_selection_mismatch_is_refused(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "a", disentanglement_score=90.0)
    make_run(root, "b", selection="best checkpoint by label", disentanglement_score=99.0)
    assert report.main([str(root)]) == 2
    err = capsys.readouterr().err
    assert "b/eval.json" in err and "'best checkpoint by label'" in err and "never mixes" in err
    assert not (root / "report.md").exists()
    make_run(root, "c", eval_file="eval_best_by_label.json", disentanglement_score=1.0)
    with pytest.raises(report.ReportError, match="'final checkpoint'"):
        report.report_runs([root / "c"], selection="best-by-label")


def test_best_by_label_reads_only_its_own_file(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "a", disentanglement_score=80.0, tc_estimate=0.1)  # eval.json only
    make_run(root, "b", eval_file="eval_best_by_label.json",
             selection="best checkpoint by label", disentanglement_score=99.0, tc_estimate=0.2)
    make_run(root, "c", eval_file="eval_best_by_label.json",
             selection="best checkpoint by label", disentanglement_score=97.0, tc_estimate=0.3)
    assert report.main([str(root), "--selection", "best-by-label"]) == 0
    assert "a: no eval_best_by_label.json" in capsys.readouterr().err
    rep = json.loads((root / "report_best_by_label.json").read_text())
    assert rep["selection"] == "best checkpoint by label"
    score = rep["tables"][0]["groups"][0]["metrics"]["disentanglement_score"]
    assert score["n"] == 2 and score["mean"] == pytest.approx(98.0) and score["best"] == 99.0
    assert (root / "tc_vs_score_best_by_label.png").is_file()
    assert "not unsupervised results" in (root / "report_best_by_label.md").read_text()
    assert not (root / "report.md").exists()


def test_run_without_evaluation_is_skipped_with_a_warning(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "a", disentanglement_score=90.0)
    missing = make_run(root, "b", eval_file=None)
    assert report.main([str(root)]) == 0
    err = capsys.readouterr().err
    assert f"warning: skipping {missing}: no eval.json" in err
    assert f"python -m cascadevae.evaluate {missing}" in err
    assert json.loads((root / "report.json").read_text())["tables"][0]["groups"][0][
        "num_runs"] == 1
    assert f"Skipped: {missing}" in (root / "report.md").read_text()
    assert report.main([str(root), "--strict"]) == 2
    assert "no eval.json" in capsys.readouterr().err
    assert report.main([str(missing)]) == 2  # nothing left to report
    assert "no run has eval.json" in capsys.readouterr().err


def test_a_run_still_training_is_skipped_as_such(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "a", disentanglement_score=90.0)
    training = make_run(root, "b", eval_file=None)
    (training / "summary.json").unlink()         # a run mid-way has no summary yet
    assert report.main([str(root)]) == 0
    err = capsys.readouterr().err
    assert f"{training}: still training (summary status absent)" in err
    assert f"python -m cascadevae.train --resume {training}" in err


def test_directory_expansion_and_default_out(demo, tmp_path):
    found = report.find_run_dirs([demo, demo / "cascade-0"])
    assert [p.name for p in found] == ["beta-0", "beta-1", "cascade-0", "cascade-1",
                                       "cascade-2", "cascade-m4"]  # sorted paths, each once
    assert report.default_out_dir(demo) == demo
    assert report.default_out_dir(demo / "cascade-0") == demo
    report.main([str(demo / "cascade-0"), str(demo / "cascade-1")])
    assert (demo / "report.md").is_file()
    with pytest.raises(report.ReportError, match="no run directories"):
        (tmp_path / "empty" / "figures").mkdir(parents=True)
        report.find_run_dirs([tmp_path / "empty"])
    with pytest.raises(report.ReportError, match="not a directory"):
        report.find_run_dirs([tmp_path / "nope"])


def test_protocol_disagreement_is_flagged_and_refused_when_strict(tmp_path, capsys):
    root = tmp_path / "runs"
    make_run(root, "a", seed=0, disentanglement_score=90.0)
    make_run(root, "b", seed=1, disentanglement_score=70.0, disentanglement_num_votes=20)
    make_run(root, "c", seed=1, disentanglement_score=60.0, iterations=3000)
    assert report.main([str(root)]) == 0
    md = (root / "report.md").read_text()
    assert "runs disagree on disentanglement_num_votes: 20 (1 run), 800 (1 run)" in md
    assert "disentanglement_num_votes=20 / 800" in md
    # the scaled run is a group of its own, and its budget is stated against the paper's
    assert ("Iterations per run: 3000 (preset dsprites scaled by budget_scale 0.01 from its "
            "300000, r and t_d with it: not the paper's schedule), 300000." in md)
    assert report.main([str(root), "--strict"]) == 2
    assert "not comparable" in capsys.readouterr().err


def test_end_to_end_train_evaluate_report(tmp_path, capsys):
    run = tmp_path / "runs" / "tiny"
    assert train.main(["--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress",
                       "--no-figures", "--device", "cpu", "--iters", "4",
                       "--checkpoint-every", "4", "--out", str(run), "--mi-every", "0",
                       "--no-eval"]) == 0
    assert evaluate.main([str(run), "--max-images", "100", "--no-progress"]) == 0
    capsys.readouterr()
    assert report.main([str(tmp_path / "runs")]) == 0
    assert "| CascadeVAE | beta_l=1 | 6 | 3 | 4 | 1 |" in capsys.readouterr().out
    rep = json.loads((tmp_path / "runs" / "report.json").read_text())
    (table,) = rep["tables"]
    assert table["dataset"] == "mnist5k" and table["protocol"]["eval_num_images"] == [100]
    assert "disentanglement_score" not in table["metrics"]
    ev = json.loads((run / "eval.json").read_text())
    (r,) = table["groups"][0]["runs"]
    assert r["accuracy_unsupervised"] == pytest.approx(ev["accuracy_unsupervised"])
    assert r["t"] == 4 and table["groups"][0]["warnings"] == []


def test_beta_column_of_the_baselines():
    from cascadevae.presets import get_preset
    from cascadevae.report import MODEL_NAMES, beta_label

    assert beta_label(get_preset("factor-vae")) == "gamma=35"
    assert beta_label(get_preset("joint-vae-dsprites")) == "C_z=40, C_c=1.1"
    assert beta_label(get_preset("beta-tcvae")).startswith("beta=")
    assert beta_label(get_preset("dsprites")) == "beta_l=1"
    assert MODEL_NAMES["joint-vae"] == "JointVAE" and MODEL_NAMES["factor-vae"] == "FactorVAE"


def test_both_selections_side_by_side_with_the_paper(tmp_path):
    """--selection both: final and best-by-label per group, the paper's row beside it."""
    from cascadevae.report_both import build_both, render_both
    root = tmp_path / "runs"
    for seed, (final, best) in enumerate([(80.0, 90.0), (70.0, 95.0)]):
        make_run(root, f"c{seed}", seed=seed, disentanglement_score=final,
                 accuracy_unsupervised=60.0)
        ev = json.loads((root / f"c{seed}" / "eval.json").read_text())
        ev.update(selection="best checkpoint by label", disentanglement_score=best)
        (root / f"c{seed}" / "eval_best_by_label.json").write_text(json.dumps(ev))
    make_run(root, "b0", preset="beta-vae", disentanglement_score=50.0)   # no best-by-label
    rep = build_both([root], kmeans=False)
    score = [t for t in rep["tables"] if t["metric"] == "disentanglement_score"][0]
    rows = {r["model"]: r for r in score["rows"]}
    c = rows["CascadeVAE"]
    assert c["final"]["mean"] == pytest.approx(75.0) and c["final"]["best"] == 80.0
    assert c["best_by_label"]["mean"] == pytest.approx(92.5) and c["best_by_label"]["best"] == 95.0
    assert c["paper"] == {"mean": 90.49, "std": 5.28, "best": 99.5, "table": "Table 1"}
    assert rows["beta-VAE"]["best_by_label"] is None
    assert rows["beta-VAE"]["paper"]["mean"] == 74.41          # Table 1, beta = 4, m = 10
    text = render_both(rep)
    assert "| CascadeVAE | beta_l=1 | 6 | 3 |" in text and "90.49 (5.28)" in text
    assert "best by label mean (std)" in text
    acc = [t for t in rep["tables"] if t["metric"] == "accuracy_unsupervised"][0]
    assert [r["model"] for r in acc["rows"]] == ["CascadeVAE"]
    assert acc["rows"][0]["paper"]["mean"] == 78.84 and acc["kmeans"] is None


def test_both_draws_the_metric_over_training_where_runs_have_a_history(tmp_path):
    from cascadevae.report_both import write_both
    root = tmp_path / "runs"
    make_run(root, "c0", seed=0, disentanglement_score=80.0)
    make_run(root, "b0", preset="beta-vae", disentanglement_score=50.0)
    history = [{"t": t, "disentanglement_score": v} for t, v in ((100, 60.0), (200, 80.0))]
    (root / "c0" / "eval_history.json").write_text(json.dumps(history))
    report, text, files = write_both([root], kmeans=False)
    png = root / "history_dsprites_disentanglement_score.png"
    assert png in files and png.stat().st_size > 1000
    assert "](history_dsprites_disentanglement_score.png)" in text
    assert not (root / "history_dsprites_accuracy_unsupervised.png").exists()  # no history


def test_kmeans_baseline_on_separable_pixels():
    from cascadevae.metrics import kmeans_accuracy
    rng = np.random.default_rng(0)
    centers = rng.random((3, 64)) * 4
    labels = rng.integers(0, 3, size=300)
    images = centers[labels] + 0.05 * rng.standard_normal((300, 64))
    res = kmeans_accuracy(images[:200], images[200:], labels[200:], 3, seeds=(0, 1), n_init=3)
    assert res["kmeans_accuracy"] == [100.0, 100.0] and res["kmeans_num_test"] == 100
    noise = rng.random((300, 64))
    chance = kmeans_accuracy(noise[:200], noise[200:], labels[200:], 3, seeds=(0,), n_init=2)
    assert chance["kmeans_mean"] < 60.0 and chance["kmeans_std"] is None
