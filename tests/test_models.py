"""Models: config round trips, the appendix-B network tables, shapes and finite losses for every
variant and both image sizes, the KL and reconstruction formulas, the variants' betas."""
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cascadevae.models import (MODELS, VAE, build_model, config_from_dict, model_names,
                               register, traits)
from model_helpers import EXTRA_TERMS, betas_for, binary_batch, make_config, make_model


# ---- config ------------------------------------------------------------------------------

def test_config_round_trip_and_pickle():
    cfg = MODELS["anchor-vae"].Config(latent_dim=7, beta_high=10.0, beta_low=0.5,
                                      anchor_dims=[4, 1], std_param="logvar")
    assert cfg.anchor_dims == (1, 4)
    d = cfg.to_dict()
    assert d == {"name": "anchor-vae", "latent_dim": 7, "std_param": "logvar",
                 "beta_high": 10.0, "beta_low": 0.5, "anchor_dims": [1, 4]}
    assert config_from_dict(d) == cfg
    assert pickle.loads(pickle.dumps(cfg)) == cfg


@pytest.mark.parametrize("name, kw, match", [
    ("beta-vae", {"latent_dim": 0}, "latent_dim"),
    ("cascade", {"num_classes": 1}, "num_classes"),
    ("cascade", {"beta_low": -1.0}, "beta_low"),
    ("cascade", {"beta_high": float("nan")}, "beta_high"),
    ("cascade", {"beta_low": 11.0}, "beta_l"),
    ("beta-vae", {"std_param": "exp"}, "std_param"),
    ("anchor-vae", {"anchor_dims": (0, 10)}, "anchor_dims"),
    ("anchor-vae", {"anchor_dims": (1, 1)}, "anchor_dims"),
    ("cascade", {"pairwise_lambda_official": -0.1}, "pairwise_lambda_official"),
    ("cascade", {"discrete_warmup": -1}, "discrete_warmup"),
])
def test_config_rejects_bad_values(name, kw, match):
    with pytest.raises(ValueError, match=match):
        MODELS[name].Config(**kw)


def test_config_unknown_and_unused_fields():
    with pytest.raises(ValueError, match=r"has no fields \['latnet_dim'\]"):
        config_from_dict({"name": "beta-vae", "latnet_dim": 3})
    # a model carries only its own fields: beta-VAE has no num_classes, no lambda'
    with pytest.raises(TypeError):
        MODELS["beta-vae"].Config(num_classes=3)
    with pytest.raises(ValueError, match="no fields"):
        MODELS["beta-vae"].Config().replace(pairwise_lambda_official=0.1)
    with pytest.raises(ValueError, match="unknown model"):
        config_from_dict({"name": "vae"})


def test_pairwise_lambda_is_half_the_official_value():
    cfg = MODELS["cascade"].Config(pairwise_lambda_official=0.001)
    assert cfg.pairwise_lambda == pytest.approx(0.0005)


def test_build_model_checks():
    with pytest.raises(ValueError, match="image_size"):
        build_model(MODELS["cascade"].Config(), 28)
    with pytest.raises(TypeError, match="config section"):
        build_model({"name": "beta-vae"}, 32)
    with pytest.raises(TypeError, match="takes a"):
        MODELS["beta-vae"](MODELS["cascade"].Config(), 32)


def test_registry_traits():
    assert tuple(MODELS) == model_names()
    flags = {name: (cls.Config.schedule_kind, cls.has_discrete_code, cls.uses_discrete_step,
                    cls.supports_device_step) for name, cls in MODELS.items()}
    assert flags == {"beta-vae": ("constant", False, False, True),
                     "anchor-vae": ("anchor", False, False, True),
                     "cascade-c": ("cascade", False, False, True),
                     "cascade-d": ("constant", True, True, True),
                     "cascade": ("cascade", True, True, True),
                     "joint-vae": ("none", True, False, False),
                     "factor-vae": ("constant", False, False, False),
                     "beta-tcvae": ("none", False, False, False)}
    table = traits()
    assert table["cascade"]["label"] == "CascadeVAE" and "num_classes" in table["cascade"]["fields"]
    for name in MODELS:
        model = make_model(name)
        assert isinstance(model, VAE) and model.name == name and type(model) is MODELS[name]
        assert model.config.model_name == name


def test_register_checks_traits_against_fields():
    class NoConfig(VAE):
        name = "no-config"
    with pytest.raises(TypeError, match="own Config"):
        register(NoConfig)

    class Mismatch(VAE):
        name = "mismatch"
        has_discrete_code = True
        Config = MODELS["beta-vae"].Config
    with pytest.raises(TypeError, match="num_classes"):
        register(Mismatch)
    assert "mismatch" not in MODELS


def test_which_code_the_decoder_gets():
    x = binary_batch(4, 32)
    cascade = make_model("cascade", discrete_warmup=10, relieve_every=5)
    z = cascade.posterior(x).z
    assert not cascade.code_active(9) and cascade.code_active(10) and cascade.code_active(None)
    assert torch.equal(cascade.decoder_code(x, z, 9, train=True), torch.zeros(4, 3))
    trained = cascade.decoder_code(x, z, 10, train=True)
    assert trained.shape == (4, 3) and torch.equal(trained.sum(1), torch.ones(4))
    shown = cascade.decoder_code(x, z, 10, train=False)
    assert torch.equal(shown.argmax(1), cascade.evaluation_codes(x))
    joint = make_model("joint-vae")
    assert joint.code_active(0) and joint.decoder_code(x, z, 0, train=True) is None
    plain = make_model("beta-vae")
    assert not plain.code_active(None)
    assert plain.decoder_code(x, z, 5, train=True).shape == (4, 0)


# ---- network tables ----------------------------------------------------------------------

TABLES = {  # appendix B: Table 5 (64x64) and Table 6 (32x32)
    64: {"enc": [32, 32, 64, 64], "dec": [64, 32, 32, 1]},
    32: {"enc": [32, 32, 64], "dec": [32, 32, 1]},
}


@pytest.mark.parametrize("size", [32, 64])
def test_network_structure_matches_table(size):
    m, S = 6, 3
    model = make_model("cascade", size, latent_dim=m, num_classes=S)
    convs = [l for l in model.encoder.modules() if isinstance(l, nn.Conv2d)]
    enc_fc = [l for l in model.encoder.modules() if isinstance(l, nn.Linear)]
    deconvs = [l for l in model.decoder.modules() if isinstance(l, nn.ConvTranspose2d)]
    dec_fc = [l for l in model.decoder.modules() if isinstance(l, nn.Linear)]
    assert [c.out_channels for c in convs] == TABLES[size]["enc"]
    assert [d.out_channels for d in deconvs] == TABLES[size]["dec"]
    for layer in convs + deconvs:
        assert layer.kernel_size == (4, 4) and layer.stride == (2, 2)
    assert [(l.in_features, l.out_features) for l in enc_fc] == [(64 * 4 * 4, 256), (256, 2 * m)]
    assert [(l.in_features, l.out_features) for l in dec_fc] == [(m + S, 256), (256, 64 * 4 * 4)]
    # Every conv halves the side, every transposed conv doubles it.
    h = torch.zeros(2, 1, size, size)
    sides = []
    for layer in model.encoder.convs:
        h = layer(h)
        if isinstance(layer, nn.Conv2d):
            sides.append(h.shape[-1])
    assert sides == [size // 2 ** (i + 1) for i in range(len(convs))]
    assert h.shape[1:] == (64, 4, 4)
    h = model.decoder.fc(torch.zeros(2, m + S))
    assert h.shape[1:] == (64, 4, 4)
    sides = []
    for layer in model.decoder.deconvs:
        h = layer(h)
        if isinstance(layer, nn.ConvTranspose2d):
            sides.append(h.shape[-1])
    assert sides == [4 * 2 ** (i + 1) for i in range(len(deconvs))]
    # ReLU after every hidden layer, none after the logits.
    assert isinstance(model.decoder.deconvs[-1], nn.ConvTranspose2d)
    assert isinstance(model.encoder.fc[-1], nn.Linear)


# ---- shapes, losses, gradients -----------------------------------------------------------

@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("std_param", ["softplus", "logvar"])
def test_shapes_loss_and_backward(name, size, std_param):
    m = 4
    model = make_model(name, size, latent_dim=m, std_param=std_param, anchor_dims=(0, 2))
    S = model.num_classes
    B = 4
    x = binary_batch(B, size)
    mu, scale = model.encode(x)
    assert mu.shape == scale.shape == (B, m)
    if std_param == "softplus":
        assert (scale > 0).all()
    post = model.posterior(x)
    assert post.z.shape == (B, m)
    d = torch.zeros(B, S)
    if S:
        d[torch.arange(B), torch.arange(B) % S] = 1.0
    logits = model.decode(post.z, d)
    assert logits.shape == (B, 1, size, size)
    terms = model.loss_terms(x, d, betas_for(model), posterior=post)
    assert set(terms) == {"recon", "kl_per_dim", "kl", "loss"} | EXTRA_TERMS.get(name, set())
    assert terms["kl_per_dim"].shape == (m,)
    for value in terms.values():
        assert torch.isfinite(value).all()
    terms["loss"].backward()
    grads = [p.grad for p in model.vae_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in model.encoder.parameters() for g in [g.grad])


def test_default_betas_are_the_schedule_s():
    m = 5
    kw = dict(latent_dim=m, beta_high=10.0, beta_low=0.7, beta=4.0, anchor_dims=(1, 3),
              relieve_every=2)
    x = binary_batch(2, 32)
    for name, want in (("beta-vae", [4.0] * m), ("cascade-d", [4.0] * m),
                       ("anchor-vae", [10.0, 0.7, 10.0, 0.7, 10.0])):
        model = make_model(name, **kw)
        assert model.schedule.betas(0).tolist() == want
        post = model.posterior(x)
        d = model.zero_code(2, like=post.z)
        explicit = model.loss_terms(x, d, want, posterior=post)["kl"]
        assert torch.equal(model.loss_terms(x, d, None, posterior=post)["kl"], explicit)
    cascade = make_model("cascade-c", **kw)
    cascade.set_iteration(3)   # None: the schedule's betas at the model's iteration
    post = cascade.posterior(x)
    assert torch.equal(cascade.loss_terms(x, None, None, posterior=post)["kl"],
                       cascade.loss_terms(x, None, cascade.schedule.betas(3), posterior=post)["kl"])
    assert cascade.schedule.betas(3).tolist() != cascade.schedule.betas(0).tolist()
    with pytest.raises(ValueError, match="betas"):
        cascade.loss_terms(x, None, torch.ones(3))


def test_kl_weighted_by_betas_and_loss_is_sum():
    model = make_model("cascade-c", latent_dim=3)
    x = binary_batch(3, 32)
    post = model.posterior(x)
    betas = np.array([10.0, 2.0, 0.5])
    terms = model.loss_terms(x, None, betas, posterior=post)
    expected_kl = (torch.tensor(betas, dtype=torch.float32) * terms["kl_per_dim"]).sum()
    assert torch.allclose(terms["kl"], expected_kl)
    assert torch.allclose(terms["loss"], terms["recon"] + terms["kl"])


@pytest.mark.parametrize("std_param", ["softplus", "logvar"])
def test_kl_zero_at_prior_and_matches_closed_form(std_param):
    model = make_model("beta-vae", latent_dim=3, std_param=std_param)
    mu = torch.zeros(4, 3)
    scale = torch.ones(4, 3) if std_param == "softplus" else torch.zeros(4, 3)
    assert torch.allclose(model.kl_per_item_dim(mu, scale), torch.zeros(4, 3), atol=1e-7)
    # Against torch.distributions for some other posterior.
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(4, 3, generator=g, dtype=torch.float64)
    std = torch.rand(4, 3, generator=g, dtype=torch.float64) + 0.1
    scale = std if std_param == "softplus" else torch.log(std ** 2)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, std),
                                            torch.distributions.Normal(0.0, 1.0))
    assert torch.allclose(model.kl_per_item_dim(mu, scale), ref, atol=1e-12)
    assert torch.allclose(model.posterior_std(scale), std, atol=1e-12)


def test_softplus_std_from_encoder_head():
    model = make_model("beta-vae", latent_dim=3)
    x = binary_batch(2, 32)
    raw = model.encoder(x)
    mu, std = model.encode(x)
    assert torch.allclose(mu, raw[:, :3]) and torch.allclose(std, F.softplus(raw[:, 3:]))
    model = make_model("beta-vae", latent_dim=3, std_param="logvar")
    raw = model.encoder(x)
    assert torch.allclose(model.encode(x)[1], raw[:, 3:])


def test_recon_is_bce_summed_over_pixels_over_batch():
    model = make_model("cascade-d")
    B = 4
    x = torch.rand(B, 1, 32, 32)  # fractional targets too
    post = model.posterior(x)
    d = F.one_hot(torch.tensor([0, 1, 2, 0]), 3).float()
    terms = model.loss_terms(x, d, None, posterior=post)
    logits = model.decode(post.z, d)
    ref = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum() / B
    assert torch.allclose(terms["recon"], ref, rtol=1e-6)


def test_reparameterise_uses_std_and_generator():
    model = make_model("beta-vae", latent_dim=3, std_param="logvar")
    mu, logvar = torch.zeros(1000, 3), torch.full((1000, 3), np.log(4.0))
    z1 = model.reparameterise(mu, logvar, torch.Generator().manual_seed(3))
    z2 = model.reparameterise(mu, logvar, torch.Generator().manual_seed(3))
    assert torch.equal(z1, z2)
    assert abs(z1.std().item() - 2.0) < 0.15


def test_hooks_for_extra_terms_and_modules():
    class WithExtra(MODELS["beta-vae"]):
        def __init__(self, config, image_size):
            super().__init__(config, image_size)
            self.critic = nn.Linear(config.latent_dim, 1)

        def extra_loss_terms(self, x, posterior, d, logits):
            return {"tc": self.critic(posterior.z).mean() * 0 + 1.5}

        def extra_modules(self):
            return {"critic": self.critic}

    torch.manual_seed(0)
    model = WithExtra(make_config("beta-vae", latent_dim=3), 32)
    terms = model.loss_terms(binary_batch(2, 32))
    assert torch.allclose(terms["loss"], terms["recon"] + terms["kl"] + 1.5)
    critic = {id(p) for p in model.critic.parameters()}
    vae = list(model.vae_parameters())
    assert vae and not any(id(p) in critic for p in vae)
    assert len(vae) + len(critic) == len(list(model.parameters()))


def test_decoder_input_zero_code_and_shape_check():
    model = make_model("cascade", latent_dim=4, num_classes=3)
    z = torch.randn(2, 4)
    inp = model.decoder_input(z, None)
    assert inp.shape == (2, 7) and torch.equal(inp[:, 4:], torch.zeros(2, 3))
    assert torch.equal(model.decoder_input(z, model.zero_code(2)), inp)
    with pytest.raises(ValueError, match="code d"):
        model.decoder_input(z, torch.zeros(2, 4))
    no_code = make_model("cascade-c", latent_dim=4)
    assert torch.equal(no_code.decoder_input(z, None), z)


def test_represent_is_mean():
    model = make_model("cascade-c", latent_dim=3)
    x = binary_batch(3, 32)
    assert torch.equal(model.represent(x), model.encode(x)[0])
