"""Checkpoint figures: files from a tiny run, --no-figures, traversal / discrete grids."""
import numpy as np
import torch
from PIL import Image
from torch import nn

from cascadevae import figures, train
from cascadevae.presets import TrainConfig

BASE = ["--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress", "--device", "cpu",
        "--mi-every", "0", "--no-eval",
        "--iters", "6", "--checkpoint-every", "3"]


def _png(path):
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
    assert 150 <= w <= 3000 and 80 <= h <= 3000, (path, w, h)
    return w, h


def test_run_writes_figures_and_no_figures_writes_none(tmp_path):
    out = tmp_path / "run"
    assert train.main(BASE + ["--out", str(out)]) == 0
    fig = out / "figures"
    names = sorted(p.name for p in fig.iterdir())
    # The default preset is CascadeVAE; the discrete figure appears only at checkpoints after
    # the (scaled) warm-up t_d, when the decoder has been trained with codes.
    schedule = TrainConfig.load(out).schedule()
    expected = [f"{s}_t{t:06d}.png" for s in ("recon", "traversal") for t in (3, 6)]
    expected += [f"discrete_t{t:06d}.png" for t in (3, 6) if schedule.discrete_on(t - 1)]
    expected += ["recon.png", "traversal.png"] + (["discrete.png"] if schedule.discrete_on(5) else [])
    expected = sorted(expected)
    assert any(n.startswith("discrete_") for n in expected), "the run should reach t_d"
    assert names == expected
    for name in names:
        _png(fig / name)
    assert (fig / "recon.png").read_bytes() == (fig / "recon_t000006.png").read_bytes()

    out2 = tmp_path / "run2"
    assert train.main(BASE + ["--out", str(out2), "--no-figures"]) == 0
    assert (out2 / "checkpoint.pt").exists() and not (out2 / "figures").exists()


class _Z0Model(nn.Module):
    """Decoder output depends only on z_0 (and on the code, if any)."""
    name = "toy"

    def __init__(self, m=4, S=0, size=8):
        super().__init__()
        self.latent_dim, self.num_classes, self.size = m, S, size
        self.has_discrete_code = S > 0
        self.w = nn.Parameter(torch.linspace(-1, 1, size * size))
        self.calls = 0

    def encode(self, x):
        b = x.shape[0]
        mu = x.reshape(b, -1)[:, :self.latent_dim] * 0.1
        return mu, torch.ones_like(mu)

    def kl_per_item_dim(self, mu, scale):
        return 0.5 * mu * mu + torch.arange(self.latent_dim, dtype=mu.dtype)

    def decode(self, z, d=None):
        self.calls += 1
        logits = z[:, :1] * self.w * 3
        if d is not None:
            logits = logits + d.argmax(1, keepdim=True).to(z.dtype)
        return logits.reshape(-1, 1, self.size, self.size)


def test_continuous_traversal_varies_only_the_traversed_dim():
    model = _Z0Model(m=4)
    model.train()
    x = torch.rand(1, 1, 8, 8)
    kl = np.array([0.1, 3.0, 2.0, 0.5])
    trav = figures.continuous_traversal(model, x, 2.0, steps=5, kl=kl)
    assert model.training and model.calls == 1            # one batched decoder call
    assert trav.images.shape == (4, 5, 8, 8)
    np.testing.assert_allclose(trav.values, np.linspace(-2, 2, 5), atol=1e-6)
    assert list(trav.order) == [1, 2, 3, 0]
    row0 = trav.images[0]
    assert np.ptp(row0, axis=0).max() > 0.1               # row 0 changes along the traversal
    for j in (1, 2, 3):
        np.testing.assert_allclose(trav.images[j], trav.images[j][:1].repeat(5, 0), atol=0)
    # the middle of row 0 is z_0 = 0
    np.testing.assert_allclose(row0[2], 0.5, atol=1e-6)


def test_discrete_traversal_rows_per_code():
    model = _Z0Model(m=3, S=3)
    x = torch.rand(4, 1, 8, 8)
    grid = figures.discrete_traversal(model, x)
    assert grid.shape == (3, 4, 8, 8)
    assert not np.allclose(grid[0], grid[1]) and not np.allclose(grid[1], grid[2])
    with torch.no_grad():
        mu, _ = model.encode(x)
        want = torch.sigmoid(model.decode(mu, torch.eye(3)[[2] * 4]))[:, 0].numpy()
    np.testing.assert_allclose(grid[2], want, atol=1e-6)


def test_limits_and_indices_are_fixed():
    assert figures.traversal_limit(64) == 1.2 and figures.traversal_limit(32) == 2.0
    a = figures.figure_indices(5000, 12)
    state = np.random.get_state()[1].copy()
    b = figures.figure_indices(5000, 12)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(state, np.random.get_state()[1])
    assert len(set(a.tolist())) == 12


def test_information_curves(tmp_path):
    from cascadevae.schedule import CascadeSchedule

    sched = CascadeSchedule(3, 10.0, 1.0, 10, discrete_warmup=20)
    recs = [{"t": t, "loss": 1.0} for t in range(0, 40, 5)]
    assert figures.information_curves(recs, sched, tmp_path / "none.png") is None
    for i, r in enumerate(recs):
        r["mi_per_dim"] = [0.1 * i, 0.05 * i, 0.0]
        if r["t"] >= 20:
            r["mi_discrete"] = 0.9
    path = figures.information_curves(recs, sched, tmp_path / "info.png", title="test")
    assert path == tmp_path / "info.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
