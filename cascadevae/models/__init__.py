"""Models of the paper: one VAE base class and its variants (beta-VAE, AnchorVAE,
CascadeVAE-C/-D, CascadeVAE, and the baselines JointVAE, FactorVAE, beta-TCVAE), their config,
the networks of appendix B and the alternating discrete step.

    from cascadevae.models import ModelConfig, build_model, discrete_step
    cfg = ModelConfig(model="cascade", image_size=64, latent_dim=6, num_classes=3,
                      beta_low=1.0, pairwise_lambda_official=0.001)
    model = build_model(cfg)
    post = model.posterior(x)                         # encode once, sample z once
    d = discrete_step(model, x, post.z).codes         # after t_d; model.zero_code(B) before
    terms = model.loss_terms(x, d, betas, posterior=post)
"""
from .config import IMAGE_SIZES, MODEL_NAMES, STD_PARAMS, TC_ESTIMATORS, ModelConfig
from .discrete import (DiscreteStep, all_code_inputs, bernoulli_loglik_torch, code_loglik,
                       discrete_step, evaluation_codes, training_codes)
from .networks import Decoder, Encoder
from .vae import (MODELS, VAE, AnchorVAE, BetaTCVAE, BetaVAE, CascadeVAE, CascadeVAEC,
                  CascadeVAED, FactorVAE, JointVAE, Posterior, build_model)

__all__ = [
    "ModelConfig", "MODEL_NAMES", "IMAGE_SIZES", "STD_PARAMS", "TC_ESTIMATORS",
    "VAE", "BetaVAE", "AnchorVAE", "CascadeVAEC", "CascadeVAED", "CascadeVAE", "JointVAE",
    "FactorVAE", "BetaTCVAE", "MODELS",
    "Posterior", "build_model", "Encoder", "Decoder",
    "DiscreteStep", "discrete_step", "training_codes", "evaluation_codes", "code_loglik",
    "all_code_inputs", "bernoulli_loglik_torch",
]
