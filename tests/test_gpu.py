"""The GPU path on a CUDA device: skipped without one (or with a build of cascadevae_ext that
has no CUDA kernels).

* assign on the device reaches the CPU solver's objective, exactly (dyadic data), on the
  instance families of the CPU tests, and takes the same decisions as the host run of its
  core (method="device_core"); its prices certify; batches, layouts, limits;
* the likelihood kernel agrees with torch's float64 computation (float32 and bfloat16 logits,
  both variants, aligned and misaligned rows);
* the kernels launch on the current stream without a host sync and replay in a CUDA graph;
* the training step (cascadevae.device_step) replayed as CUDA graphs equals the same step run
  eagerly and stays close to Trainer.step with the CPU solver; no host sync inside it.
"""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cascadevae_ext as ce
from assign_helpers import TINY_LAMS, TINY_SHAPES, brute_force, make_instance, objective, tie_heavy
from cascadevae import kernels
from conftest import random_binary_images

pytestmark = pytest.mark.skipif(
    not (torch.cuda.is_available() and kernels.HAVE_CUDA_KERNELS),
    reason="needs a CUDA device and cascadevae_ext built with its CUDA kernels")

DEV = "cuda"


def device_labels(u, lam, **kw):
    labels = kernels.assign(torch.as_tensor(np.asarray(u), device=DEV), lam, "device", **kw)
    if kw.get("return_prices"):
        labels, prices = labels
        return labels.cpu().numpy(), prices.cpu().numpy()
    assert labels.device.type == "cuda" and labels.dtype == torch.int64
    return labels.cpu().numpy()


# ---- assign: exactness -----------------------------------------------------------------------------

@pytest.mark.parametrize("n,S", TINY_SHAPES)
def test_tiny_problems_match_brute_force(n, S):
    rng = np.random.default_rng(100 * n + S)
    for lam in TINY_LAMS:
        for _ in range(4):
            u = tie_heavy(rng, n, S)
            assert objective(u, lam, device_labels(u, lam)) == brute_force(u, lam), f"lam={lam}\nu={u!r}"


FAMILY_SHAPES = [(64, 3), (64, 10), (257, 2), (300, 7), (1024, 10), (1024, 32), (3, 10), (500, 1)]
FAMILIES = ("A", "B", "zero", "huge")


@pytest.mark.parametrize("n,S", FAMILY_SHAPES)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_families_match_cpu_solver(family, n, S, dtype):
    u, lam = make_instance(family, n, S, seed=7 * n + S + 1000 * FAMILIES.index(family))
    u = u.astype(dtype)  # dyadic with <= 20 significant bits: exact in float32
    want = objective(u, lam, ce.assign(u, lam, "ssp"))
    labels, prices = device_labels(u, lam, return_prices=True)
    assert objective(u, lam, labels) == want
    assert ce.check_prices(u, lam, labels, prices)
    # the warp runs the same decisions as the host run of its core
    assert np.array_equal(labels, ce.assign(u, lam, "device_core"))


def test_special_cases():
    rng = np.random.default_rng(0)
    u = rng.standard_normal((300, 1))
    assert np.all(device_labels(u, 0.25) == 0)
    for n in (1000, 4097):  # S = 2 with many items
        u, lam = make_instance("A", n, 2, seed=n)
        assert objective(u, lam, device_labels(u, lam)) == objective(u, lam, ce.assign(u, lam))
    u = rng.standard_normal((200, 9))  # lam = 0: every item takes its argmax
    np.testing.assert_array_equal(u[np.arange(200), device_labels(u, 0.0)], u.max(axis=1))
    u = rng.random((999, 13))  # a huge penalty balances the classes
    c = np.bincount(device_labels(u, 1e6), minlength=13)
    assert c.max() - c.min() <= 1
    labels, prices = kernels.assign(torch.zeros(0, 4, device=DEV), 0.5, "device", return_prices=True)
    assert labels.shape == (0,) and torch.all(prices == 0)
    assert kernels.assign(torch.zeros(0, 5, 3, device=DEV), 0.5, "device").shape == (0, 5)


def test_non_finite_scores_still_give_valid_labels():
    u = torch.tensor([[0.0, float("nan"), 1.0], [float("inf"), 0.0, -float("inf")], [0.5, 0.5, 0.5]], device=DEV)
    labels = kernels.assign(u, 0.1, "device").cpu()
    assert labels.min() >= 0 and labels.max() < 3 and labels[1] == 0


@pytest.mark.parametrize("n,S", [(64, 3), (64, 10)])
def test_batch_of_16_equals_per_problem(n, S):
    rng = np.random.default_rng(n + S)
    lam = 2.0**-3
    u = np.stack([tie_heavy(rng, n, S) for _ in range(16)])
    labels = kernels.assign(torch.from_numpy(u).to(DEV), lam, "device").cpu().numpy()
    assert labels.shape == (16, n)
    for g in range(16):
        assert objective(u[g], lam, labels[g]) == objective(u[g], lam, ce.assign(u[g], lam))


def test_strided_scores_are_read_in_place():
    rng = np.random.default_rng(4)
    u = np.stack([tie_heavy(rng, 40, 5) for _ in range(4)])
    lam = 2.0**-4
    t = torch.from_numpy(u).to(DEV)
    views = {
        "transposed-batch": t.transpose(0, 1).contiguous().transpose(0, 1),
        "class-stride": torch.repeat_interleave(t, 2, dim=2)[:, :, ::2],
        "fortran": t.permute(2, 1, 0).contiguous().permute(2, 1, 0),
        "float32": t.float(),
    }
    for name, view in views.items():
        assert torch.equal(view.double(), t), name
        labels = kernels.assign(view, lam, "device").cpu().numpy()
        for g in range(4):
            assert objective(u[g], lam, labels[g]) == objective(u[g], lam, ce.assign(u[g], lam)), name


def test_shared_memory_limit():
    n, S = 20000, 128
    assert not kernels.assign_fits_device(n, S, 0)
    u = torch.rand(n, S, device=DEV)
    with pytest.raises(ValueError, match="shared memory"):
        kernels.assign(u, 0.01, "device")
    got = kernels.assign(u, 0.01)  # "auto" solves it on the CPU
    assert got.device.type == "cuda"
    host = u.cpu().numpy()
    assert objective(host, 0.01, got.cpu().numpy()) == pytest.approx(
        objective(host, 0.01, ce.assign(host, 0.01)), rel=1e-12)


def test_argument_errors_on_cuda():
    with pytest.raises(TypeError, match="bfloat16"):
        kernels.assign(torch.zeros(4, 3, device=DEV, dtype=torch.bfloat16), 0.5)
    with pytest.raises(TypeError, match="Python number"):
        kernels.assign(torch.zeros(4, 3, device=DEV), torch.tensor(0.5, device=DEV))
    with pytest.raises(ValueError, match="different devices"):
        kernels.bernoulli_loglik(torch.zeros(2, 3, 5, device=DEV), torch.zeros(2, 5))
    with pytest.raises(TypeError, match="x has dtype"):
        kernels.bernoulli_loglik(torch.zeros(2, 3, 5, device=DEV), torch.zeros(2, 5, device=DEV).double())
    with pytest.raises(ValueError, match="contiguous"):
        kernels.bernoulli_loglik(torch.zeros(2, 5, 3, device=DEV).transpose(1, 2), torch.zeros(2, 5, device=DEV))
    with pytest.raises(ValueError, match="method"):
        kernels.assign(torch.zeros(4, 3, device=DEV), 0.5, "fast")


# ---- the likelihood kernel -------------------------------------------------------------------------

RTOL = 2e-6           # as the CPU kernel's tests: ~30 float32 ulps of the row's magnitude
FAST_ATOL_PER_PIXEL = 3e-7  # "fast": hardware log2 of each group's product, ~2^-22 absolute


def reference(logits, x):
    l64, x64 = logits.double(), x.double()
    t = x64[:, None, :].expand_as(l64)
    ref = -F.binary_cross_entropy_with_logits(l64, t, reduction="none").sum(-1)
    mag = ((t * l64).abs() + F.softplus(l64)).sum(-1)
    return ref, mag


def assert_loglik_close(out, logits, x, variant):
    ref, mag = reference(logits, x)
    P = logits.shape[2]
    tol = RTOL * mag + (FAST_ATOL_PER_PIXEL if variant == "fast" else 1e-30) * P + 1e-30
    err = (out.double() - ref).abs()
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert bool(torch.all(err <= tol)), f"max err {err.max().item():.3g}, worst err/tol {(err / tol).max().item():.3g}"


def make_loglik(B, S, P, dtype, seed=0, extremes=True):
    g = torch.Generator(device=DEV).manual_seed(seed)
    logits = torch.randn(B, S, P, generator=g, device=DEV) * 4
    if extremes and logits.numel() >= 64:
        flat = logits.view(-1)
        idx = torch.randint(0, flat.numel(), (32,), generator=g, device=DEV)
        flat[idx] = torch.tensor([80.0, -80.0, 1e4, -1e4, 87.5, -100.0, 0.0, -0.0] * 4, device=DEV)
    x = (torch.rand(B, P, generator=g, device=DEV) < 0.4).float()
    x[:, ::5] = torch.rand(B, x[:, ::5].shape[1], generator=g, device=DEV)
    return logits.to(dtype), x


@pytest.mark.parametrize("variant", kernels.LOGLIK_VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(64, 10, 1024), (512, 3, 4096), (5, 3, 33), (2, 2, 4097), (3, 1, 1),
                                   (7, 4, 12)])
def test_loglik_matches_torch(shape, dtype, variant):
    logits, x = make_loglik(*shape, dtype, seed=sum(shape))
    out = kernels.bernoulli_loglik(logits, x, variant=variant)
    assert out.device.type == "cuda"
    assert_loglik_close(out, logits, x, variant)


@pytest.mark.parametrize("variant", kernels.LOGLIK_VARIANTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loglik_layouts(variant, dtype):
    B, S, P = 6, 4, 300
    logits, x = make_loglik(B, S, P, dtype, seed=3)
    # misaligned rows (the scalar path), row strides that are not multiples of P, empty cases
    flat = torch.empty(B * S * P + 1, device=DEV, dtype=dtype)
    flat[1:] = logits.reshape(-1)
    misaligned = flat[1:].view(B, S, P)
    wide = torch.zeros(B, 2 * S, P + 3, device=DEV, dtype=dtype)
    wide[:, ::2, :P] = logits
    xwide = torch.zeros(B, P + 5, device=DEV)
    xwide[:, :P] = x
    for name, (l, xx) in {"misaligned": (misaligned, x), "strided": (wide[:, ::2, :P], xwide[:, :P])}.items():
        assert torch.equal(l, logits), name
        assert_loglik_close(kernels.bernoulli_loglik(l, xx, variant=variant), logits, x, variant)
    assert kernels.bernoulli_loglik(logits[:, :, :0], x[:, :0], variant=variant).abs().sum() == 0
    assert kernels.bernoulli_loglik(logits[:0], x[:0], variant=variant).shape == (0, S)


def test_loglik_nan_propagates_and_precise_is_close_to_cpu():
    logits, x = make_loglik(8, 3, 1000, torch.float32, seed=5, extremes=False)
    logits[2, 1, 7] = float("nan")
    for variant in kernels.LOGLIK_VARIANTS:
        out = kernels.bernoulli_loglik(logits, x, variant=variant).cpu()
        assert torch.isnan(out[2, 1]) and torch.isfinite(out).sum() == out.numel() - 1
    logits[2, 1, 7] = 0.0
    cpu = torch.from_numpy(ce.bernoulli_loglik(logits.cpu(), x.cpu()))
    gpu = kernels.bernoulli_loglik(logits, x, variant="precise").cpu()
    torch.testing.assert_close(gpu, cpu, rtol=2e-6, atol=1e-3)


def test_discrete_step_on_cuda_uses_the_kernels(monkeypatch):
    from cascadevae.models import ModelConfig, build_model, discrete_step
    torch.manual_seed(0)
    model = build_model(ModelConfig(model="cascade", image_size=32, latent_dim=5, num_classes=4)).to(DEV)
    x = (torch.rand(16, 1, 32, 32, device=DEV) > 0.6).float()
    z = model.posterior(x).z.detach()
    monkeypatch.setattr(ce, "assign", lambda *a, **k: pytest.fail("the CPU solver was called"))
    step = discrete_step(model, x, z, 0.01, return_u=True)
    assert step.u.device.type == "cuda" and step.u.dtype == torch.float32
    assert step.labels.device.type == "cuda"
    monkeypatch.undo()
    host = step.u.double().cpu().numpy()
    assert objective(host, 0.01, step.labels.cpu().numpy()) == pytest.approx(
        objective(host, 0.01, ce.assign(host, 0.01)), rel=1e-12, abs=1e-9)


# ---- streams, syncs, graphs ------------------------------------------------------------------------

@pytest.fixture
def sync_errors():
    """Within the test body, any synchronising CUDA call raises (torch's sync debug mode)."""
    torch.cuda.synchronize()
    yield lambda: torch.cuda.set_sync_debug_mode("error")
    torch.cuda.set_sync_debug_mode("default")


def test_kernels_run_on_the_current_stream_without_sync(sync_errors):
    u32, lam = make_instance("B", 64, 10, seed=1)
    u = torch.from_numpy(u32).to(DEV)
    logits, x = make_loglik(64, 10, 1024, torch.float32, seed=1)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        sync_errors()
        labels = kernels.assign(u, lam, "device")
        out = kernels.bernoulli_loglik(logits, x)
        torch.cuda.set_sync_debug_mode("default")
    side.synchronize()
    assert objective(u32, lam, labels.cpu().numpy()) == objective(u32, lam, ce.assign(u32, lam))
    assert_loglik_close(out, logits, x, "fast")


def test_kernels_replay_in_a_cuda_graph():
    B, S, P, lam = 64, 10, 1024, 2.0**-11
    logits, x = make_loglik(B, S, P, torch.float32, seed=2)
    static_l, static_x = logits.clone(), x.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capture stream
        kernels.assign(kernels.bernoulli_loglik(static_l, static_x), lam, "device")
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_u = kernels.bernoulli_loglik(static_l, static_x)
        static_labels = kernels.assign(static_u, lam, "device")
    for seed in (10, 11, 12):
        new_l, new_x = make_loglik(B, S, P, torch.float32, seed=seed)
        static_l.copy_(new_l)
        static_x.copy_(new_x)
        graph.replay()
        eager_u = kernels.bernoulli_loglik(new_l, new_x)
        torch.cuda.synchronize()
        assert torch.equal(static_u, eager_u)
        host = eager_u.double().cpu().numpy()
        assert objective(host, lam, static_labels.cpu().numpy()) == objective(host, lam, ce.assign(host, lam))


# ---- the training step -------------------------------------------------------------------------------

ITERS = 14  # dsprites-official scaled to 14 updates: discrete step from t = 4, Adam reset per stage


def make_trainer():
    from cascadevae.presets import get_preset
    from cascadevae.training import Trainer
    cfg = get_preset("dsprites-official").replace(batch_size=64).scaled(ITERS)
    return Trainer(cfg, random_binary_images(512, 64), 64, torch.device(DEV))


@pytest.fixture
def deterministic():
    old = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old


def run_device_step(use_graphs, sync_from=None, on_sync=None):
    from cascadevae.device_step import DeviceStep
    tr = make_trainer()
    step = DeviceStep.from_trainer(tr, use_graphs=use_graphs, warmup_steps=2)
    recs = []
    for t in range(ITERS):
        images, _ = tr.dataset.sample_batch(tr.cfg.batch_size, tr.data_rng)
        if sync_from is not None and t == sync_from:
            on_sync()
        step.step(t, images)
        if sync_from is None:
            recs.append(step.record(t))
    torch.cuda.set_sync_debug_mode("default")
    return tr, step, recs


# State after 14 updates, graph replay against the same step run eagerly: with deterministic
# cuDNN both run the same kernels on the same data, so parameters agree to float32 rounding
# (rtol 1e-5, atol 1e-6 are generous bounds; equality is expected).
GRAPH_RTOL, GRAPH_ATOL = 1e-5, 1e-6
# Against Trainer.step with the CPU solver (u copied to the host, labels back): the losses of
# all 14 updates within rtol 1e-3 (a non-capturable Adam computes its bias corrections on the
# host in double, so parameters drift apart by float32 roundings from the first update on).
TRAINER_RTOL = 1e-3


def test_graph_replay_equals_eager(deterministic):
    eager_tr, eager, eager_recs = run_device_step(use_graphs=False)
    graph_tr, graph, graph_recs = run_device_step(use_graphs=True)
    assert set(graph._graphs) == {True}  # the pre-t_d graph was dropped at the switch
    for a, b in zip(eager_recs, graph_recs):
        assert a["discrete_on"] == b["discrete_on"] and a["class_counts"] == b["class_counts"]
        assert b["loss"] == pytest.approx(a["loss"], rel=GRAPH_RTOL)
    for (name, a), b in zip(eager_tr.model.state_dict().items(), graph_tr.model.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=GRAPH_RTOL, atol=GRAPH_ATOL, msg=name)
    assert torch.equal(eager_tr.z_gen.get_state(), graph_tr.z_gen.get_state())
    assert graph.first_nonfinite() is None


def test_graph_replay_close_to_trainer_with_cpu_solver(deterministic, monkeypatch):
    from cascadevae.models import discrete as discrete_mod
    _, _, graph_recs = run_device_step(use_graphs=True)
    monkeypatch.setattr(discrete_mod, "training_codes",
                        functools.partial(discrete_mod.training_codes, method="cpu"))
    ref = make_trainer()
    ref_recs = [ref.step() for _ in range(ITERS)]
    for a, b in zip(ref_recs, graph_recs):
        assert a["discrete_on"] == b["discrete_on"]
        assert b["loss"] == pytest.approx(a["loss"], rel=TRAINER_RTOL)


def test_step_has_no_host_sync(sync_errors):
    # from t = 8 both graphs have been captured (capture itself synchronises once)
    _, step, _ = run_device_step(use_graphs=True, sync_from=8, on_sync=sync_errors)
    assert set(step._graphs) == {True}
    rec = step.record(ITERS - 1)
    assert rec["discrete_on"] and sum(rec["class_counts"]) == 64


def test_non_finite_update_is_flagged():
    from cascadevae.device_step import DeviceStep
    tr = make_trainer()
    step = DeviceStep.from_trainer(tr, use_graphs=True, warmup_steps=1)
    for t in range(ITERS):
        images, _ = tr.dataset.sample_batch(tr.cfg.batch_size, tr.data_rng)
        if t == 9:
            images = images.copy()
            images[3, 0, 5, 5] = np.nan
        step.step(t, images)
    assert step.first_nonfinite() == 9
