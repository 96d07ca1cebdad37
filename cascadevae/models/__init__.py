"""Models of the paper: one VAE base class and its variants (beta-VAE, AnchorVAE,
CascadeVAE-C/-D, CascadeVAE, and the baselines JointVAE, FactorVAE, beta-TCVAE), each with its
config section, the networks of appendix B and the alternating discrete step.

    from cascadevae.models import MODELS, build_model
    cfg = MODELS["cascade"].Config(latent_dim=6, num_classes=3, beta_low=1.0,
                                   pairwise_lambda_official=0.001)
    model = build_model(cfg, image_size=64)
    post = model.posterior(x)                             # encode once, sample z once
    d = model.decoder_code(x, post.z, t, train=True)      # the alternating step from t_d on
    terms = model.loss_terms(x, d, model.schedule.betas(t), posterior=post)
"""
from .config import (IMAGE_SIZES, STD_PARAMS, TC_ESTIMATORS, AnchorFields, BetaFields,
                     CascadeFields, CodeFields, DiscreteStepFields, FactorFields, JointFields,
                     ModelConfig, TCFields)
from .discrete import (DiscreteStep, all_code_inputs, bernoulli_loglik_torch, code_loglik,
                       discrete_step, evaluation_codes)
from .networks import Decoder, Encoder
from .registry import (MODELS, build_model, config_from_dict, model_class, model_names,
                       register, traits)
from .vae import VAE, Posterior
from .paper import AnchorVAE, BetaVAE, CascadeVAE, CascadeVAEC, CascadeVAED  # noqa: E402
from .baselines import BetaTCVAE, FactorVAE, JointVAE  # noqa: E402

__all__ = [
    "ModelConfig", "CodeFields", "CascadeFields", "DiscreteStepFields", "BetaFields",
    "AnchorFields", "JointFields", "FactorFields", "TCFields", "IMAGE_SIZES", "STD_PARAMS",
    "TC_ESTIMATORS", "VAE", "BetaVAE", "AnchorVAE", "CascadeVAEC", "CascadeVAED", "CascadeVAE",
    "JointVAE", "FactorVAE", "BetaTCVAE", "MODELS", "register", "model_class", "model_names",
    "config_from_dict", "traits", "Posterior", "build_model", "Encoder", "Decoder",
    "DiscreteStep", "discrete_step", "evaluation_codes", "code_loglik", "all_code_inputs",
    "bernoulli_loglik_torch",
]
