"""Presets against the paper's appendix B and Table 1/3/4, the official-code preset, overrides,
serialisation, lambda' conversion and the scaled budget."""
import json
import pickle

import numpy as np
import pytest

from cascadevae.assignment import lam_from_official
from cascadevae.presets import PRESETS, TrainConfig, get_preset, preset_names
from cascadevae.schedule import AnchorSchedule, CascadeSchedule, ConstantSchedule

# Numbers as read from the paper. Appendix B preamble: batch 64, beta_h 10.
# (S, learning rate, lambda' (as printed), r, t_d, iterations) from B.1-B.4;
# (m, beta_l) from the results tables (Table 1 dSprites, Table 3 MNIST, Table 4 FashionMNIST).
APPENDIX_B = {
    "dsprites": (3, 3e-4, 0.001, 20_000, 100_000, 300_000),       # B.1
    "mnist": (10, 3e-4, 0.1, 10_000, 0, 120_000),                 # B.2
    "fashion-mnist": (10, 1e-4, 0.1, 10_000, 0, 120_000),         # B.3
    "chairs": (3, 1e-4, 0.01, 20_000, 60_000, 150_000),           # B.4
}
M_BETA_L = {
    "dsprites": (6, 1.0),        # Table 1, CascadeVAE beta_l = 1.0, m = 6
    "mnist": (10, 1.0),          # Table 3, m = 10; beta_l not in the paper (our choice)
    "fashion-mnist": (10, 1.0),  # Table 4, m = 10; beta_l not in the paper (our choice)
    "chairs": (7, 1.0),          # neither in the paper (our choice)
}


@pytest.mark.parametrize("name", list(APPENDIX_B))
def test_appendix_b_values(name):
    c = get_preset(name)
    S, lr, lam, r, td, iters = APPENDIX_B[name]
    assert c.name == name and c.dataset == name and c.model_name == "cascade"
    assert c.model.num_classes == S
    assert c.learning_rate == lr
    assert c.model.pairwise_lambda_official == lam
    assert c.model.relieve_every == r
    assert c.model.discrete_warmup == td
    assert c.iterations == iters
    assert c.batch_size == 64 and c.model.beta_high == 10.0
    assert (c.model.latent_dim, c.model.beta_low) == M_BETA_L[name]
    assert c.model.schedule_variant == "paper"
    assert c.adam_betas == (0.9, 0.999) and c.weight_decay == 0.0
    assert not c.fresh_optimizer_per_stage
    assert "B." in c.source


def test_dsprites_baselines_table1():
    # Table 1 rows: beta-VAE beta 4.0 m 10; AnchorVAE beta_l 7.0, 5 of 20 dims;
    # CascadeVAE-C beta_l 1.0 m 10; CascadeVAE-D beta 1.0 m 4.
    b = get_preset("beta-vae")
    assert (b.model_name, b.model.latent_dim, b.model.beta) == ("beta-vae", 10, 4.0)
    assert "num_classes" not in b.model.field_names()   # a model carries only its own fields
    assert isinstance(b.schedule(), ConstantSchedule)
    a = get_preset("anchor-vae")
    assert (a.model_name, a.model.latent_dim, a.model.beta_low, a.model.beta_high) == ("anchor-vae", 20, 7.0, 10.0)
    assert a.model.anchor_dims == (0, 1, 2, 3, 4)
    assert isinstance(a.schedule(), AnchorSchedule)
    cc = get_preset("cascade-c")
    assert (cc.model_name, cc.model.latent_dim, cc.model.beta_low, cc.model.relieve_every) == (
        "cascade-c", 10, 1.0, 20_000)
    assert cc.model.discrete_warmup_or_none is None
    assert not {"num_classes", "discrete_warmup"} & set(cc.model.field_names())
    s = cc.schedule()
    assert isinstance(s, CascadeSchedule) and not s.discrete_on(10**6)
    cd = get_preset("cascade-d")
    assert (cd.model_name, cd.model.latent_dim, cd.model.beta, cd.model.num_classes) == ("cascade-d", 4, 1.0, 3)
    s = cd.schedule()
    assert isinstance(s, ConstantSchedule)
    assert not s.discrete_on(99_999) and s.discrete_on(100_000)
    for c in (b, a, cc, cd):
        assert c.dataset == "dsprites" and "Table 1" in c.source


def test_dsprites_official():
    c = get_preset("dsprites-official")
    assert c.learning_rate == 1e-4 and c.model.beta_low == 0.1 and c.model.beta_high == 10.0
    assert c.model.discrete_warmup == 80_000 and c.model.relieve_every == 20_000
    assert c.model.schedule_variant == "official" and c.fresh_optimizer_per_stage
    assert c.weight_decay == 4e-5 and c.model.pairwise_lambda_official == 0.001
    assert c.adam_betas == (0.9, 0.999) and c.batch_size == 64 and c.iterations == 300_000
    assert c.model.latent_dim == 6 and c.model.num_classes == 3
    s = c.schedule()
    assert [s.relieved(t) for t in (0, 20_000, 40_000, 60_000, 80_000, 100_000, 120_000)] == \
        [1, 2, 3, 4, 4, 5, 6]
    assert not s.discrete_on(79_999) and s.discrete_on(80_000)
    cc = get_preset("cascade-c-official").schedule()
    assert cc.fully_relieved_at() == 180_000


def test_lambda_converted_once():
    for c in PRESETS.values():
        if not hasattr(c.model, "pairwise_lambda_official"):
            continue
        assert c.model.pairwise_lambda == lam_from_official(c.model.pairwise_lambda_official)
        assert c.model.pairwise_lambda == c.model.pairwise_lambda_official / 2
    assert get_preset("dsprites").model.pairwise_lambda == 0.0005
    # the dict holds the official value only: a round trip cannot convert twice
    d = get_preset("mnist").to_dict()["model"]
    assert "pairwise_lambda" not in d and d["pairwise_lambda_official"] == 0.1
    assert TrainConfig.from_dict(get_preset("mnist").to_dict()).model.pairwise_lambda == 0.05
    # models without the discrete step have no lambda' at all
    assert not hasattr(get_preset("beta-vae").model, "pairwise_lambda_official")


def test_round_trip_json_and_pickle(tmp_path):
    for c in PRESETS.values():
        d = json.loads(json.dumps(c.to_dict()))
        assert TrainConfig.from_dict(d) == c
        assert TrainConfig.from_json(c.to_json()) == c
        assert pickle.loads(pickle.dumps(c)) == c
    c = get_preset("dsprites-official")
    path = c.save(tmp_path)
    assert path.endswith("config.json")
    assert TrainConfig.load(tmp_path) == c
    s1, s2 = c.schedule(), TrainConfig.load(path).schedule()
    for t in range(0, 300_000, 5_000):
        np.testing.assert_array_equal(s1.betas(t), s2.betas(t))
        assert s1.discrete_on(t) == s2.discrete_on(t)


def test_replace_validates():
    c = get_preset("dsprites")
    d = c.replace(beta_low=2.0, latent_dim=4, seed=3)
    assert (d.model.beta_low, d.model.latent_dim, d.seed) == (2.0, 4, 3)
    assert c.model.beta_low == 1.0  # frozen original untouched
    assert get_preset("mnist", beta_low=0.5).model.beta_low == 0.5
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['beta_lo'\].*beta_low"):
        c.replace(beta_lo=2.0)
    with pytest.raises(ValueError, match="latent_dim"):
        c.replace(latent_dim="6")
    with pytest.raises(ValueError, match="iterations"):
        c.replace(iterations=3e5)
    with pytest.raises(ValueError, match="learning_rate"):
        c.replace(learning_rate=0.0)
    with pytest.raises(ValueError, match="beta_l"):
        c.replace(beta_low=11.0)
    with pytest.raises(ValueError, match="fresh_optimizer_per_stage"):
        c.replace(fresh_optimizer_per_stage=1)
    with pytest.raises(ValueError, match="adam_betas"):
        c.replace(adam_betas=(0.9,))
    # switching the model keeps the shared fields and takes the new model's defaults
    f = c.replace(model="factor-vae")
    assert f.model_name == "factor-vae" and f.model.latent_dim == 6 and f.model.tc_weight == 35.0
    with pytest.raises(ValueError, match="unknown model 'vq-vae'"):
        c.replace(model="vq-vae")
    with pytest.raises(ValueError, match="schedule_variant"):
        c.replace(schedule_variant="tf")
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['beta'\]"):
        c.replace(beta=4.0)
    with pytest.raises(ValueError, match="beta = None"):
        get_preset("beta-vae").replace(beta=None)
    with pytest.raises(ValueError, match="num_classes"):
        c.replace(num_classes=1)
    with pytest.raises(ValueError, match=r"\['discrete_warmup'\]"):
        get_preset("cascade-c").replace(discrete_warmup=10)
    with pytest.raises(ValueError, match="anchor_dims"):
        c.replace(anchor_dims=(0,))
    with pytest.raises(ValueError, match="whole stages"):
        get_preset("dsprites-official").replace(discrete_warmup=90_000)
    with pytest.raises(ValueError, match="dataset"):
        c.replace(dataset="celeba")


def test_unknown_preset_lists_names():
    with pytest.raises(ValueError) as e:
        get_preset("dsprite")
    for name in preset_names():
        assert name in str(e.value)
    assert set(preset_names()) >= {"dsprites", "mnist", "fashion-mnist", "chairs",
                                   "dsprites-official", "beta-vae", "anchor-vae",
                                   "cascade-c", "cascade-d", "joint-vae-dsprites",
                                   "joint-vae-mnist", "joint-vae-fashion-mnist", "factor-vae",
                                   "beta-tcvae"}


def test_scaled_budget():
    c = get_preset("dsprites").scaled(3_000)
    assert (c.iterations, c.model.relieve_every, c.model.discrete_warmup) == (3_000, 200, 1_000)
    assert c.budget_scale == pytest.approx(0.01)
    assert "scaled schedule" in c.source
    assert c.learning_rate == 3e-4 and c.model.latent_dim == 6  # nothing else changes
    o = get_preset("dsprites-official").scaled(3_000)
    assert (o.model.relieve_every, o.model.discrete_warmup) == (200, 800)
    s = o.schedule()
    assert [s.relieved(t) for t in (0, 200, 400, 600, 800, 1_000, 1_200)] == [1, 2, 3, 4, 4, 5, 6]
    assert not s.discrete_on(799) and s.discrete_on(800)
    # r that does not divide evenly: rounded, t_d kept a whole number of stages
    odd = get_preset("dsprites-official").scaled(1_000)
    assert odd.model.relieve_every == 67 and odd.model.discrete_warmup == 4 * 67
    tiny = get_preset("mnist").scaled(5)
    assert tiny.model.relieve_every == 1 and tiny.model.discrete_warmup == 0
    assert not hasattr(get_preset("beta-vae").scaled(100).model, "relieve_every")
    twice = get_preset("chairs").scaled(15_000).scaled(1_500)
    assert twice.budget_scale == pytest.approx(0.01) and twice.model.relieve_every == 200
    with pytest.raises(ValueError, match="iterations"):
        get_preset("dsprites").scaled(0)


def test_joint_vae_presets_follow_dupont():
    d = get_preset("joint-vae-dsprites")
    assert (d.model_name, d.dataset, d.model.latent_dim, d.model.num_classes) == ("joint-vae", "dsprites", 6, 3)
    assert d.model.capacity_continuous == (0.0, 40.0, 300_000, 150.0)
    assert d.model.capacity_discrete == (0.0, 1.1, 300_000, 150.0)
    assert (d.model.gumbel_temperature, d.learning_rate, d.batch_size) == (0.67, 5e-4, 64)
    # samples its code, no assignment, and no betas
    assert d.model.discrete_warmup_or_none is None and not d.model_class().uses_discrete_step
    assert not {"beta", "beta_low", "beta_high"} & set(d.model.field_names())
    np.testing.assert_array_equal(d.schedule().betas(0), np.zeros(6))  # KL via capacities only
    for name, dataset in (("joint-vae-mnist", "mnist"),
                          ("joint-vae-fashion-mnist", "fashion-mnist")):
        c = get_preset(name)
        assert (c.dataset, c.model.latent_dim, c.model.num_classes) == (dataset, 10, 10)
        assert c.model.capacity_continuous == c.model.capacity_discrete == (0.0, 5.0, 25_000, 30.0)
        assert (c.learning_rate, c.iterations, c.model.gumbel_temperature) == (5e-4, 93_800, 0.67)
    for name in ("joint-vae-dsprites", "joint-vae-mnist", "joint-vae-fashion-mnist"):
        assert "Dupont" in get_preset(name).source


def test_factor_vae_and_beta_tcvae_presets():
    f = get_preset("factor-vae")
    assert (f.model_name, f.dataset, f.model.latent_dim, f.model.beta, f.model.tc_weight) == (
        "factor-vae", "dsprites", 10, 1.0, 35.0)
    assert (f.learning_rate, f.adam_betas) == (1e-4, (0.9, 0.999))
    assert (f.model.discriminator_hidden, f.model.discriminator_layers) == (1000, 6)
    assert (f.model.discriminator_learning_rate, f.model.discriminator_adam_betas) == (1e-4, (0.5, 0.9))
    assert "Kim & Mnih" in f.source and "gamma=35" in f.source and "Table 1" in f.source
    assert isinstance(f.schedule(), ConstantSchedule) and f.schedule().beta == 1.0
    b = get_preset("beta-tcvae")
    assert (b.model_name, b.model.latent_dim, b.model.mi_weight, b.model.tc_weight, b.model.dim_kl_weight) == (
        "beta-tcvae", 10, 1.0, 6.0, 1.0)
    assert b.model.tc_estimator == "mws" and b.model.dataset_size is None and "our choice" in b.source
    assert b.replace(tc_estimator="mss").model.tc_estimator == "mss"


def test_baseline_fields_only_on_their_models():
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['tc_weight'\]"):
        get_preset("beta-vae").replace(tc_weight=1.0)
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['gumbel_temperature'\]"):
        get_preset("factor-vae").replace(gumbel_temperature=0.5)
    with pytest.raises(ValueError, match="tc_weight = None"):
        get_preset("factor-vae").replace(tc_weight=None)
    with pytest.raises(ValueError, match="joint-vae.capacity_continuous = "):
        get_preset("joint-vae-dsprites").replace(capacity_continuous=(0.0, 40.0, 0, 150.0))
    with pytest.raises(ValueError, match="beta-tcvae.tc_estimator = 'exact'"):
        get_preset("beta-tcvae").replace(tc_estimator="exact")
    with pytest.raises(ValueError, match="num_classes"):
        get_preset("joint-vae-dsprites").replace(num_classes=0)
    with pytest.raises(ValueError, match=r"\['discrete_warmup'\]"):
        get_preset("joint-vae-dsprites").replace(discrete_warmup=0)
    # lists (from JSON or --set) become tuples
    c = get_preset("joint-vae-dsprites").replace(capacity_discrete=[0, 2, 10, 5])
    assert c.model.capacity_discrete == (0.0, 2.0, 10, 5.0)


def test_scaled_budget_scales_the_capacities():
    c = get_preset("joint-vae-dsprites").scaled(3_000)
    assert c.model.capacity_continuous == (0.0, 40.0, 3_000, 150.0)
    assert c.model.capacity_discrete == (0.0, 1.1, 3_000, 150.0)
    assert "capacity_continuous num_iters 300000 -> 3000" in c.source
    m = get_preset("joint-vae-mnist").scaled(938)
    assert m.model.capacity_continuous[2] == 250 and m.model.capacity_discrete[2] == 250
    assert get_preset("joint-vae-mnist").scaled(1).model.capacity_continuous[2] == 1
