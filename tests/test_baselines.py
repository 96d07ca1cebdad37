"""The baselines JointVAE, FactorVAE and beta-TCVAE: their terms against the papers' formulas,
and each one trained end to end on tiny data (finite losses, its own terms moving as intended,
exact resume, evaluation)."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cascadevae.training import Trainer
from cascadevae import evaluate, train
from cascadevae.models import build_model, config_from_dict
from cascadevae.models import baseline_terms as bt
from cascadevae.models import discrete as discrete_mod
from cascadevae.presets import TrainConfig, get_preset
from cascadevae.run_dir import RunDir
from model_helpers import BASELINE_KW, binary_batch, make_config, make_model

PRESETS = {"joint-vae": "joint-vae-mnist", "factor-vae": "factor-vae",
           "beta-tcvae": "beta-tcvae"}
# tiny runs: MNIST-5k at batch 8, a small discriminator
BASE = ["--dataset", "mnist5k", "--set", "batch_size=8", "--no-progress", "--device", "cpu",
        "--no-figures", "--mi-every", "0", "--no-eval"]
SMALL_D = ["--set", "discriminator_hidden=64", "--set", "discriminator_layers=3"]


def _train(out, model, *extra):
    args = BASE + ["--preset", PRESETS[model], "--out", str(out), *extra]
    if model == "factor-vae":
        args += SMALL_D
    return train.main(args)


# ---- configs -------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kw, match", [
    ("factor-vae", {"tc_weight": None}, "tc_weight"),
    ("joint-vae", {"capacity_continuous": (5.0, 1.0, 10, 1.0)}, "capacity_continuous"),
    ("joint-vae", {"capacity_discrete": (0.0, 1.0, 0, 1.0)}, "capacity_discrete"),
    ("joint-vae", {"capacity_discrete": (0.0, 1.0, 10)}, "capacity_discrete"),
    ("joint-vae", {"gumbel_temperature": 0.0}, "gumbel_temperature"),
    ("factor-vae", {"discriminator_layers": 1}, "discriminator_layers"),
    ("factor-vae", {"discriminator_adam_betas": (0.5,)}, "discriminator_adam_betas"),
    ("factor-vae", {"tc_weight": -1.0}, "tc_weight"),
    ("beta-tcvae", {"tc_estimator": "exact"}, "tc_estimator"),
    ("beta-tcvae", {"dataset_size": 1.5}, "dataset_size"),
])
def test_baseline_fields_validated(name, kw, match):
    with pytest.raises(ValueError, match=match) as err:
        make_config(name, **kw)
    assert repr(list(kw.values())[0]) in str(err.value)   # the bad value is named


def test_a_model_has_only_its_own_fields():
    from cascadevae.models import MODELS
    with pytest.raises(TypeError):
        MODELS["beta-vae"].Config(tc_weight=1.0)
    with pytest.raises(TypeError):
        MODELS["joint-vae"].Config(tc_estimator="mws")
    assert "dataset_size" in MODELS["beta-tcvae"].Config.field_names()


@pytest.mark.parametrize("name", list(BASELINE_KW))
def test_baseline_config_round_trip(name):
    cfg = make_config(name)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert config_from_dict(d) == cfg


# ---- JointVAE ------------------------------------------------------------------------------

def test_joint_vae_capacity_targets_rise_and_discrete_cap_is_log_k():
    model = make_model("joint-vae", num_classes=3, capacity_continuous=(1.0, 5.0, 100, 30.0),
                       capacity_discrete=(0.0, 5.0, 100, 10.0))
    targets = [model.capacity_targets(t) for t in (0, 50, 100, 1000)]
    assert [c for c, _ in targets] == pytest.approx([1.0, 3.0, 5.0, 5.0])
    assert [c for _, c in targets] == pytest.approx([0.0, 0.5 * math.log(3), math.log(3),
                                                     math.log(3)])
    # the loss reads t from set_iteration, and each term is gamma |KL - C(t)|
    x = binary_batch(4, 32)
    post = model.posterior(x, torch.Generator().manual_seed(0))
    for t in (0, 50):
        model.set_iteration(t)
        terms = model.loss_terms(x, None, None, posterior=post)
        c_z, c_c = model.capacity_targets(t)
        assert float(terms["capacity_target_continuous"]) == pytest.approx(c_z)
        assert float(terms["capacity_target_discrete"]) == pytest.approx(c_c)
        terms = {k: v.detach() for k, v in terms.items()}
        assert float(terms["capacity_continuous"]) == pytest.approx(
            30.0 * abs(float(terms["kl_continuous"]) - c_z), rel=1e-5)
        assert float(terms["capacity_discrete"]) == pytest.approx(
            10.0 * abs(float(terms["kl_discrete"]) - c_c), rel=1e-5, abs=1e-6)
        assert float(terms["kl"]) == 0.0  # the KL enters through the capacities only
        assert torch.allclose(terms["loss"], terms["recon"] + terms["capacity_continuous"]
                              + terms["capacity_discrete"])
    assert float(terms["kl_continuous"]) == pytest.approx(float(terms["kl_per_dim"].sum()))


def test_joint_vae_gumbel_softmax_sample_at_the_temperature():
    x = binary_batch(6, 32)
    for tau in (0.67, 5.0):
        model = make_model("joint-vae", num_classes=4, gumbel_temperature=tau)
        post = model.posterior(x, torch.Generator().manual_seed(3))
        g = torch.Generator().manual_seed(3)
        torch.randn(post.mu.shape, generator=g)        # z's noise is drawn first
        u = torch.rand(post.code_logits.shape, generator=g)
        want = F.softmax((post.code_logits - torch.log(-torch.log(u))) / tau, dim=1)
        assert torch.allclose(post.code, want, atol=1e-6)
        assert torch.allclose(post.code.sum(dim=1), torch.ones(6))
        # the decoder gets concat(z, relaxed code) when training passes d=None
        terms = model.loss_terms(x, None, None, posterior=post)
        ref = model.recon_loss(model.decode(post.z, post.code), x)
        assert torch.allclose(terms["recon"], ref)


def test_categorical_kl_against_torch_distributions():
    logits = torch.randn(5, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=logits),
                                            torch.distributions.Categorical(
                                                probs=torch.full((5, 4), 0.25)))
    assert torch.allclose(bt.categorical_kl_uniform(logits), ref)
    assert torch.allclose(bt.categorical_kl_uniform(torch.tensor([[1e4, 0.0, 0.0]])),
                          torch.tensor([math.log(3)]))


def test_joint_vae_evaluation_code_is_argmax_of_logits(monkeypatch):
    def no_likelihood(*a, **k):
        raise AssertionError("JointVAE's code must not come from the likelihood argmax")

    monkeypatch.setattr(discrete_mod, "code_loglik", no_likelihood)
    model = make_model("joint-vae", latent_dim=3, num_classes=5)
    x = binary_batch(8, 32)
    logits = model.encoder(x)[:, 6:]
    assert logits.shape == (8, 5)
    assert torch.equal(model.evaluation_codes(x), logits.argmax(dim=1))
    # the continuous head is unchanged: encode() reads the first 2m outputs only
    mu, std = model.encode(x)
    assert torch.equal(mu, model.encoder(x)[:, :3]) and std.shape == (8, 3)


def test_joint_vae_never_runs_the_discrete_step(monkeypatch):
    def no_assign(*a, **k):
        raise AssertionError("JointVAE must not run the alternating step")

    monkeypatch.setattr(discrete_mod.cascadevae_ext, "assign", no_assign)
    model = make_model("joint-vae")
    x = binary_batch(4, 32)
    assert model.decoder_code(x, model.posterior(x).z, 0, train=True) is None


def test_cascade_evaluation_codes_go_through_the_model():
    model = make_model("cascade")
    x = binary_batch(6, 32)
    assert torch.equal(model.evaluation_codes(x), discrete_mod.evaluation_codes(model, x))
    with pytest.raises(ValueError, match="no discrete code"):
        make_model("factor-vae").evaluation_codes(x)


# ---- FactorVAE -----------------------------------------------------------------------------

def test_factor_vae_tc_term_leaves_the_discriminator_alone():
    model = make_model("factor-vae", tc_weight=7.0)
    x = binary_batch(4, 32)
    post = model.posterior(x)
    terms = model.loss_terms(x, None, None, posterior=post)
    d_z = model.discriminator(post.z)
    assert torch.allclose(terms["tc_estimate"], (d_z[:, 0] - d_z[:, 1]).mean())
    assert torch.allclose(terms["tc_penalty"], 7.0 * terms["tc_estimate"])
    assert torch.allclose(terms["loss"], terms["recon"] + terms["kl"] + terms["tc_penalty"])
    terms["loss"].backward()
    assert all(p.grad is None for p in model.discriminator.parameters())
    assert all(p.requires_grad for p in model.discriminator.parameters())
    assert model.encoder.fc[-1].weight.grad.abs().sum() > 0
    d_ids = {id(p) for p in model.discriminator.parameters()}
    assert not any(id(p) in d_ids for p in model.vae_parameters())
    layers = [m for m in model.discriminator.modules() if isinstance(m, torch.nn.Linear)]
    assert [l.out_features for l in layers] == [32, 32, 2]


def test_permute_dims_shuffles_each_dim_separately():
    z = torch.arange(40.0).reshape(8, 5)
    perm = bt.permute_dims(z, torch.Generator().manual_seed(0))
    for j in range(5):
        assert sorted(perm[:, j].tolist()) == z[:, j].tolist()
    rows = {tuple(r) for r in z.tolist()}
    assert any(tuple(r) not in rows for r in perm.tolist())


def test_factor_vae_discriminator_learns_and_both_losses_move():
    # The update order: VAE backward + step, then D on z.detach() and a second batch's permuted
    # z. A D backward through the VAE graph after the VAE step would raise an in-place error.
    from cascadevae.data import load
    m = 4
    cfg = get_preset("factor-vae", latent_dim=m, batch_size=16, discriminator_hidden=64,
                     discriminator_layers=3, discriminator_learning_rate=1e-3)
    trainer = Trainer(cfg, load("mnist5k"), 32, torch.device("cpu"))
    # A fresh encoder's q(z) is nearly factorial (noise dominates), leaving D nothing to
    # learn: make every mu_j the same function of x and sigma tiny, so q(z) is far from it.
    last = trainer.model.encoder.fc[-1]
    with torch.no_grad():
        last.weight[1:m] = last.weight[0]
        last.bias[1:m] = last.bias[0]
        last.weight[m:] = 0.0
        last.bias[m:] = -10.0
    d_before = [p.detach().clone() for p in trainer.model.discriminator.parameters()]
    recs = [trainer.step() for _ in range(30)]
    acc = [r["extra"]["discriminator_accuracy"] for r in recs]
    d_loss = [r["extra"]["discriminator_loss"] for r in recs]
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["extra"]["tc_penalty"]) for r in recs)
    assert np.mean(acc[3:]) > 0.55 and max(acc) > 0.75, acc
    assert np.mean(d_loss[-10:]) < d_loss[0] - 0.005, d_loss
    assert np.mean([r["loss"] for r in recs[-5:]]) < recs[0]["loss"]
    assert any(not torch.equal(a, b) for a, b in
               zip(d_before, trainer.model.discriminator.parameters()))
    assert trainer.extra_optimizers["discriminator"].param_groups[0]["betas"] == (0.5, 0.9)


# ---- beta-TCVAE ----------------------------------------------------------------------------

def _brute_force(z, mu, log_std, n, estimator):
    """The three estimates with explicit loops over items, posteriors and dims (float64)."""
    b, m = z.shape

    def log_normal(v, mean, ls):
        return -0.5 * ((v - mean) / math.exp(ls)) ** 2 - 0.5 * math.log(2 * math.pi) - ls

    def logsumexp(values):
        top = max(values)
        return top + math.log(sum(math.exp(v - top) for v in values))

    def log_w(i, j):
        if estimator == "mws":
            return -math.log(n * b)
        return -math.log(n) if i == j else math.log((n - 1) / (n * (b - 1)))

    mi = tc = dim_kl = 0.0
    for i in range(b):
        own = sum(log_normal(z[i, d], mu[i, d], log_std[i, d]) for d in range(m))
        joint = logsumexp([sum(log_normal(z[i, d], mu[j, d], log_std[j, d]) for d in range(m))
                           + log_w(i, j) for j in range(b)])
        product = sum(logsumexp([log_normal(z[i, d], mu[j, d], log_std[j, d]) + log_w(i, j)
                                 for j in range(b)]) for d in range(m))
        prior = sum(log_normal(z[i, d], 0.0, 0.0) for d in range(m))
        mi += (own - joint) / b
        tc += (joint - product) / b
        dim_kl += (product - prior) / b
    return mi, tc, dim_kl


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_kl_decomposition_matches_brute_force(estimator):
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(5, 3, generator=g, dtype=torch.float64)
    log_std = 0.3 * torch.randn(5, 3, generator=g, dtype=torch.float64) - 0.5
    z = mu + torch.exp(log_std) * torch.randn(5, 3, generator=g, dtype=torch.float64)
    parts = bt.kl_decomposition(z, mu, log_std, 1000, estimator)
    want = _brute_force(z.numpy(), mu.numpy(), log_std.numpy(), 1000, estimator)
    assert [float(v) for v in parts] == pytest.approx(want, rel=1e-10, abs=1e-10)
    # the three parts add up to the single-sample KL estimate log q(z|x) - log p(z)
    own = bt.gaussian_log_density(z, mu, log_std).sum(1)
    prior = bt.gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    assert float(sum(parts)) == pytest.approx(float((own - prior).mean()), rel=1e-12)


def test_mss_over_the_whole_dataset_is_the_exact_mixture():
    g = torch.Generator().manual_seed(2)
    mu = torch.randn(6, 2, generator=g, dtype=torch.float64)
    log_std = torch.zeros(6, 2, dtype=torch.float64)
    z = mu + torch.randn(6, 2, generator=g, dtype=torch.float64)
    parts = bt.kl_decomposition(z, mu, log_std, 6, "mss")
    pairwise = bt.gaussian_log_density(z[:, None], mu[None], log_std[None]).sum(2)
    log_qz = torch.logsumexp(pairwise, dim=1) - math.log(6)
    own = bt.gaussian_log_density(z, mu, log_std).sum(1)
    assert float(parts.mi) == pytest.approx(float((own - log_qz).mean()), rel=1e-12)


def test_tc_estimate_needs_an_explicit_dataset_size():
    z = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="dataset_size"):
        bt.kl_decomposition(z, z, z, 3, "mws")
    with pytest.raises(ValueError, match="tc_estimator"):
        bt.kl_decomposition(z, z, z, 10, "mc")
    model = make_model("beta-tcvae", dataset_size=50_000, tc_estimator="mss")
    x = binary_batch(4, 32)
    terms = model.loss_terms(x)
    for key in ("mi_estimate", "tc_estimate", "dim_kl_estimate"):
        assert torch.isfinite(terms[key])
    assert float(terms["kl"].detach()) == 0.0
    assert torch.allclose(terms["loss"], terms["recon"] + terms["mi_penalty"]
                          + terms["tc_penalty"] + terms["dim_kl_penalty"])
    # a preset that leaves N None gets the training set's size from the trainer, recorded
    cfg = get_preset("beta-tcvae")
    assert cfg.model.dataset_size is None
    assert cfg.with_dataset_size(123).model.dataset_size == 123
    assert cfg.replace(dataset_size=77).with_dataset_size(123).model.dataset_size == 77
    plain = get_preset("beta-vae")
    assert plain.with_dataset_size(123) == plain   # a model without N is left alone


# ---- end to end ----------------------------------------------------------------------------

@pytest.mark.parametrize("model", list(PRESETS))
def test_trains_resumes_exactly_and_evaluates(model, tmp_path, capsys):
    full, part = tmp_path / "full", tmp_path / "part"
    assert _train(full, model, "--iters", "12", "--log-every", "1") == 0
    assert _train(part, model, "--iters", "12", "--log-every", "1", "--stop-at", "7") == 0
    assert RunDir(part).load_checkpoint()["t"] == 7
    assert train.main(["--resume", str(part), "--no-progress", "--device", "cpu", "--no-eval",
                       "--no-figures"]) == 0
    a, b = RunDir(full).load_checkpoint(), RunDir(part).load_checkpoint()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    ma, mb = RunDir(full).read_metrics(), RunDir(part).read_metrics()
    assert [r["t"] for r in mb] == list(range(12))
    assert [r["loss"] for r in ma] == [r["loss"] for r in mb]
    assert [r["extra"] for r in ma] == [r["extra"] for r in mb]
    for r in ma:
        assert np.isfinite(r["loss"]) and all(np.isfinite(v) for v in r["extra"].values())

    extra = [r["extra"] for r in ma]
    if model == "joint-vae":
        # the preset's 2.5e4 capacity iterations of 93,800 scale to 3 of 12
        assert TrainConfig.load(full).model.capacity_continuous == (0.0, 5.0, 3, 30.0)
        cont = [e["capacity_target_continuous"] for e in extra]
        disc = [e["capacity_target_discrete"] for e in extra]
        assert cont[:4] == pytest.approx([0.0, 5 / 3, 10 / 3, 5.0]) and cont[-1] == 5.0
        assert disc[:4] == pytest.approx([0.0, math.log(10) / 3, 2 * math.log(10) / 3,
                                          math.log(10)])
        assert disc[-1] == pytest.approx(math.log(10))  # C_max 5 capped at log K
        assert all(r["class_counts"] is None and not r["discrete_on"] for r in ma)
    elif model == "factor-vae":
        assert a["extra_optimizers"].keys() == {"discriminator"}
        assert len({e["discriminator_loss"] for e in extra}) > 1
    else:
        assert TrainConfig.load(full).model.dataset_size == 4000  # MNIST-5k's training split
        assert a["config"]["model"]["dataset_size"] == 4000
        assert len({e["tc_estimate"] for e in extra}) > 1

    capsys.readouterr()
    assert evaluate.main([str(full), "--max-images", "100", "--no-progress"]) == 0
    res = json.loads((full / "eval.json").read_text())
    assert res["model"] == model and res["t"] == 12 and np.isfinite(res["tc_estimate"])
    if model == "joint-vae":
        assert 0.0 <= res["accuracy_unsupervised"] <= 100.0 and sum(res["code_counts"]) == 100
    else:
        assert "accuracy_unsupervised" not in res


def test_joint_vae_on_dsprites_scores_with_its_code_and_draws_figures(tmp_path):
    out = tmp_path / "run"
    assert train.main(["--preset", "joint-vae-dsprites", "--lazy-data", "--set", "batch_size=4",
                       "--iters", "3", "--no-progress", "--device", "cpu",
                       "--out", str(out), "--mi-every", "0", "--no-eval"]) == 0
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert "discrete.png" in names and "recon.png" in names
    res = evaluate.evaluate_run(out, num_votes=10, batch=10, max_images=50,
                                num_variance_samples=200, progress=False)
    assert res["disentanglement_discrete_dim"] and 0.0 <= res["disentanglement_score"] <= 100.0
    assert res["accuracy_target"] == "shape factor"


def test_every_baseline_preset_builds_its_model():
    for name in ("joint-vae-dsprites", "joint-vae-mnist", "joint-vae-fashion-mnist",
                 "factor-vae", "beta-tcvae"):
        cfg = get_preset(name).with_dataset_size(737_280)
        model = build_model(cfg.model, 64 if cfg.dataset == "dsprites" else 32)
        assert model.name == cfg.model_name
