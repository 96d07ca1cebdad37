"""The Python API: the README's example runs as written (with fewer updates), fit takes a
preset or a config, a dataset name, an array or a torch Dataset, and a run loads back."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import cascadevae as cv

README = Path(__file__).resolve().parent.parent / "README.md"
FAST = dict(progress=False, figures=False, mi_every=0, threads=1, batch_size=8)


def readme_python_example() -> str:
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    example = [b for b in blocks if "cv.fit(" in b]
    assert example, "the README's Python API example is missing"
    return example[0]


def test_readme_example_runs(tmp_path, monkeypatch):
    """The block as written, except 2,000 updates become 10 and batch 8 (the code path is the
    same)."""
    code = readme_python_example()
    assert 'iters=2000' in code and 'out="runs/demo"' in code
    code = code.replace("iters=2000", "iters=10, batch_size=8, progress=False, mi_every=0")
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    run, codes, z = scope["run"], scope["codes"], scope["z"]
    assert codes.shape == (100,) and codes.dtype == np.int64 and codes.max() < 10
    assert z.shape == (100, 10) and np.all(np.isfinite(z))
    assert run.status == "finished" and set(run.metrics) == {"unsupervised_accuracy"}
    assert run.config.model_name == "cascade" and (tmp_path / "runs/demo/eval.json").exists()


def test_fit_on_own_images_and_torch_dataset(tmp_path):
    rng = np.random.default_rng(0)
    arr = (rng.random((64, 32, 32)) < 0.3).astype(np.float32)
    run = cv.fit("beta-vae", dataset=arr, iters=4, out=tmp_path / "array", **FAST)
    assert run.status == "finished" and run.metrics is None   # no labels: nothing to score
    assert run.config.dataset == "custom" and run.model.encode(arr[:5]).shape == (5, 10)
    assert run.model.reconstruct(arr[:2]).shape == (2, 32, 32)
    with pytest.raises(ValueError, match="no discrete code"):
        run.model.predict_codes(arr[:2])

    class Images(torch.utils.data.Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            return torch.as_tensor(arr[i])[None], i   # (image, label) pairs

    run = cv.fit("cascade-d", dataset=Images(), iters=4, out=tmp_path / "torch",
                 latent_dim=3, discrete_warmup=0, **FAST)
    assert run.model.predict_codes(arr[:7]).shape == (7,)
    loaded = cv.load_run(tmp_path / "torch")
    assert loaded.config == run.config and loaded.config.model.latent_dim == 3
    assert len(loaded.history()) >= 2


def test_fit_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        cv.fit("beta-vae", dataset=np.full((8, 32, 32), 255.0), iters=2, out=tmp_path / "a")
    with pytest.raises(ValueError, match="32x32 or 64x64"):
        cv.fit("beta-vae", dataset=np.zeros((8, 28, 28)), iters=2, out=tmp_path / "b")
    with pytest.raises(TypeError, match="preset name or a TrainConfig"):
        cv.fit(42, dataset="mnist5k")
    cv.fit("mnist", dataset="mnist5k", iters=2, out=tmp_path / "c", evaluate=False, **FAST)
    with pytest.raises(ValueError, match="already holds a run"):
        cv.fit("mnist", dataset="mnist5k", iters=2, out=tmp_path / "c", **FAST)
