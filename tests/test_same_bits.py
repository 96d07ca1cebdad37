"""The training-layer restructure changed no behaviour: tiny runs of every model give the same
bits as the code before it (recorded in tests/data/golden_runs.json on one CPU and torch
build), and a config.json of the earlier flat format loads as the same config."""
import hashlib
import json
from pathlib import Path

import pytest
import torch

from cascadevae import train
from cascadevae.acceleration import cpu_flags
from cascadevae.config import TrainConfig
from cascadevae.presets import PRESETS
from cascadevae.run_dir import RunDir

DATA = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA / "golden_runs.json").read_text())
FLAGS = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma")))
SAME_MACHINE = GOLDEN["torch"] == torch.__version__ and GOLDEN["cpu_flags"] == FLAGS


@pytest.mark.skipif(not SAME_MACHINE, reason="the golden bits were recorded with torch "
                    f"{GOLDEN['torch']} on a CPU with {GOLDEN['cpu_flags']}; oneDNN's float "
                    "results differ across CPU types and torch builds")
@pytest.mark.parametrize("name", sorted(GOLDEN["runs"]))
def test_tiny_runs_give_the_recorded_bits(tmp_path, name):
    case = GOLDEN["runs"][name]
    out = tmp_path / name
    assert train.main(["--dataset", "mnist5k", "--set", "batch_size=8", "--iters", "9", "--seed",
                       "3", "--log-every", "1", "--checkpoint-every", "100", "--no-progress",
                       "--no-eval", "--no-figures", "--mi-every", "0", "--device", "cpu",
                       "--threads", "1", "--out", str(out)] + case["args"]) == 0
    ck = RunDir(out).load_checkpoint()
    h = hashlib.sha256()
    for k in sorted(ck["model"]):
        h.update(k.encode())
        h.update(ck["model"][k].numpy().tobytes())
    recs = RunDir(out).read_metrics()
    assert [r["loss"] for r in recs] == case["loss"]
    assert [r["class_counts"] for r in recs] == case["class_counts"]
    assert h.hexdigest() == case["params_sha256"]


@pytest.mark.parametrize("name", sorted(json.loads((DATA / "flat_presets.json").read_text())))
def test_flat_config_of_earlier_versions_loads_as_the_same_config(name):
    flat = json.loads((DATA / "flat_presets.json").read_text())[name]
    assert isinstance(flat["model"], str)   # the earlier format
    cfg = TrainConfig.from_dict(flat)
    assert cfg == PRESETS[name]
    # written anew, it is the nested form, and round-trips
    nested = cfg.to_dict()
    assert nested["model"]["name"] == flat["model"] and "latent_dim" not in nested
    assert TrainConfig.from_dict(json.loads(json.dumps(nested))) == cfg
