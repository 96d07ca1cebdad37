"""Small model configs for the tests: every model buildable with few arguments, tiny networks
for the baselines' extra parts."""
import numpy as np
import torch

from cascadevae.models import MODELS, build_model

DISCRETE = {name for name, cls in MODELS.items() if cls.has_discrete_code}
#: the baselines' own fields, small and fast (a 3-layer discriminator of 32 units)
BASELINE_KW = {
    "joint-vae": dict(capacity_continuous=(0.0, 5.0, 100, 30.0),
                      capacity_discrete=(0.0, 5.0, 100, 30.0), gumbel_temperature=0.67),
    "factor-vae": dict(tc_weight=35.0, discriminator_hidden=32, discriminator_layers=3,
                       discriminator_learning_rate=1e-4, discriminator_adam_betas=(0.5, 0.9)),
    "beta-tcvae": dict(mi_weight=1.0, tc_weight=6.0, dim_kl_weight=1.0, tc_estimator="mws",
                       dataset_size=1000),
}
#: loss_terms keys beyond recon, kl_per_dim, kl and loss
EXTRA_TERMS = {
    "joint-vae": {"capacity_continuous", "capacity_discrete", "kl_continuous", "kl_discrete",
                  "capacity_target_continuous", "capacity_target_discrete"},
    "factor-vae": {"tc_penalty", "tc_estimate"},
    "beta-tcvae": {"mi_penalty", "tc_penalty", "dim_kl_penalty", "mi_estimate", "tc_estimate",
                   "dim_kl_estimate"},
}


def make_config(name, **kw):
    """The model's config section with small defaults (m = 5, S = 3, tiny baselines); keyword
    fields the model does not have are left out, so one set of keywords serves every model."""
    fields = set(MODELS[name].Config.field_names())
    kw = {k: v for k, v in kw.items() if k in fields}
    kw.setdefault("latent_dim", 5)
    if name in DISCRETE:
        kw.setdefault("num_classes", 3)
    for key, value in BASELINE_KW.get(name, {}).items():
        kw.setdefault(key, value)
    return MODELS[name].Config(**kw)


def make_model(name, image_size=32, seed=0, **kw):
    torch.manual_seed(seed)
    return build_model(make_config(name, **kw), image_size)


def binary_batch(batch, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 1, size, size, generator=g) > 0.7).float()


def betas_for(model):
    cascade = model.Config.schedule_kind == "cascade"
    return None if not cascade else np.linspace(10.0, 1.0, model.latent_dim)
