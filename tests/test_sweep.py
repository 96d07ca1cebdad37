"""A tiny sweep grid: the expected run directories and manifest, rerunning skips finished
points, and the report picks the best setting per model by the mean over seeds."""
import json

import pytest

from cascadevae import report, sweep

TRAIN = ["--", "--dataset", "mnist5k", "--set", "batch_size=8", "--mi-every", "0",
         "--no-figures", "--eval-max-images", "40"]


def test_grid_and_seed_parsing():
    assert sweep.parse_grid(["tc_weight=10,20", "beta=1"]) == [("tc_weight", [10, 20]),
                                                              ("beta", [1])]
    assert sweep.parse_seeds("1-3,7") == [1, 2, 3, 7]
    for bad in ("tc_weight", "=1", "beta="):
        with pytest.raises(ValueError, match="expected KEY=V1,V2"):
            sweep.parse_grid([bad])
    with pytest.raises(ValueError, match="twice"):
        sweep.parse_grid(["a=1", "a=2"])
    with pytest.raises(ValueError, match="seeds"):
        sweep.parse_seeds("2,2")


def test_a_bad_setting_fails_before_anything_runs(tmp_path, capsys):
    assert sweep.main(["--preset", "mnist", "--grid", "no_such=1,2", "--out",
                       str(tmp_path / "s")]) == 2
    assert "unknown TrainConfig fields ['no_such']" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_print_commands_for_a_cluster(tmp_path, capsys):
    assert sweep.main(["--preset", "mnist", "--grid", "beta_low=0.5,1", "--seeds", "1-3",
                       "--iters", "5", "--out", str(tmp_path / "s"), "--print-commands"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and all("-m cascadevae.train" in line for line in lines)
    assert any("--set beta_low=0.5" in line and "--seed 3" in line for line in lines)


def test_tiny_sweep_runs_and_reports_the_best_setting(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CASCADEVAE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sweep"
    args = ["--preset", "mnist", "--grid", "beta_low=0.5,1.0", "--seeds", "1-2", "--iters",
            "3", "--jobs", "2", "--out", str(out)] + TRAIN
    assert sweep.main(args) == 0
    runs = sorted(p.relative_to(out).as_posix() for p in out.glob("*/seed-*"))
    assert runs == ["beta_low=0.5/seed-1", "beta_low=0.5/seed-2", "beta_low=1.0/seed-1",
                    "beta_low=1.0/seed-2"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [p["status"] for p in manifest["points"]] == ["finished"] * 4
    assert manifest["grid"] == [["beta_low", [0.5, 1.0]]]
    config = json.loads((out / "beta_low=0.5" / "seed-2" / "config.json").read_text())
    assert config["model"]["beta_low"] == 0.5 and config["seed"] == 2
    # rerunning trains nothing more
    before = (out / "beta_low=0.5" / "seed-1" / "summary.json").read_text()
    assert sweep.main(args) == 0
    assert (out / "beta_low=0.5" / "seed-1" / "summary.json").read_text() == before
    capsys.readouterr()
    rep, text, _ = report.report_runs([out], best_setting="accuracy_unsupervised", figure=False)
    groups = rep["tables"][0]["groups"]
    assert sorted(g["setting"] for g in groups) == ["beta_low=0.5", "beta_low=1.0"]
    assert all(g["num_runs"] == 2 for g in groups)
    best = rep["best_settings"][0]
    means = {g["setting"]: g["metrics"]["accuracy_unsupervised"]["mean"] for g in groups}
    assert best["setting"] == max(means, key=means.get) and best["settings_compared"] == 2
    assert "## Best setting per model" in text and "as the paper chose" in text


def test_the_tc_figure_names_each_sweep_setting():
    def group(setting, tc, score):
        return {"model": "factor-vae", "model_name": "FactorVAE", "m": 10, "S": 0,
                "iterations": 1000, "setting": setting,
                "runs": [{report.TC: tc, report.SCORE: score}]}
    table = {"groups": [group("beta=1.0, tc_weight=10.0", 3.2, 55.0),
                        group("beta=2.0, tc_weight=10.0", 1.3, 47.0)]}
    labels = [s.label for s in report.figure_series(table)]
    assert labels == ["FactorVAE beta=1.0, tc_weight=10.0", "FactorVAE beta=2.0, tc_weight=10.0"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="flock locks: POSIX only")
def test_a_point_another_process_trains_is_refused_and_counted_failed(tmp_path, monkeypatch,
                                                                       capsys):
    from cascadevae.run_dir import RunDir
    monkeypatch.setenv("CASCADEVAE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "sweep"
    args = ["--preset", "mnist", "--grid", "beta_low=0.5,1.0", "--seeds", "1", "--iters", "3",
            "--out", str(out)] + TRAIN
    held = RunDir(out / "beta_low=0.5" / "seed-1", create=True).lock_for_training("the first sweep")
    try:
        assert sweep.main(args) == 1
        text = capsys.readouterr().out
        assert "1 failed" in text
        log = (out / "beta_low=0.5" / "seed-1" / "train.log").read_text()
        assert "is being trained by another process" in log and "the first sweep" in log
        assert (out / "beta_low=1.0" / "seed-1" / "summary.json").is_file()   # the other ran
    finally:
        held.release()
    assert sweep.main(args) == 0                          # once it is free, the rerun trains it
    assert json.loads((out / "manifest.json").read_text())["points"][0]["status"] == "finished"
