"""The alternating discrete step: one batched decoder pass equals S separate passes, u equals
an independent float64 computation, the codes are the exact solver's on that u, lambda' is
converted once, zeros before t_d, and evaluation codes are the per-item argmax."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cascadevae_ext
from cascadevae.models import (MODELS, all_code_inputs, bernoulli_loglik_torch, build_model,
                               code_loglik, discrete_step, evaluation_codes)


def make(size=32, S=4, m=5, lam_official=0.002, name="cascade", seed=0):
    torch.manual_seed(seed)
    cfg = MODELS[name].Config(latent_dim=m, num_classes=S, pairwise_lambda_official=lam_official,
                              discrete_warmup=2, relieve_every=1)
    return build_model(cfg, size)


def batch(B, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(B, 1, size, size, generator=g) > 0.6).float()


def separate_loglik64(model, x, z):
    """u from S separate decoder passes, the likelihood in float64 with torch."""
    B, S = x.shape[0], model.num_classes
    cols = []
    with torch.no_grad():
        for k in range(S):
            d = F.one_hot(torch.full((B,), k), S).float()
            logits = model.decode(z, d).reshape(B, -1).double()
            xd = x.reshape(B, -1).double()
            cols.append((xd * logits - F.softplus(logits)).sum(-1))
    return torch.stack(cols, dim=1)


def test_all_code_inputs_layout():
    z = torch.arange(6.0).reshape(2, 3)
    z_rep, codes = all_code_inputs(z, 4)
    assert z_rep.shape == (8, 3) and codes.shape == (8, 4)
    for b in range(2):
        for k in range(4):
            assert torch.equal(z_rep[b * 4 + k], z[b])
            assert torch.equal(codes[b * 4 + k], F.one_hot(torch.tensor(k), 4).float())


@pytest.mark.parametrize("size", [32, 64])
def test_batched_pass_equals_separate_passes(size):
    model = make(size, S=3)
    B = 5
    z = torch.randn(B, model.latent_dim)
    z_rep, codes = all_code_inputs(z, 3)
    with torch.no_grad():
        joint = model.decode(z_rep, codes).reshape(B, 3, -1)
        for k in range(3):
            sep = model.decode(z, F.one_hot(torch.full((B,), k), 3).float()).reshape(B, -1)
            assert torch.allclose(joint[:, k], sep, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size, S", [(32, 4), (64, 3)])
def test_u_and_codes_match_independent_computation(size, S):
    model = make(size, S=S)
    B = 12
    x = batch(B, size)
    post = model.posterior(x)
    lam = model.config.pairwise_lambda
    step = discrete_step(model, x, post.z, lam, return_u=True)
    u_ref = separate_loglik64(model, x, post.z)
    assert step.u.shape == (B, S) and step.u.dtype == torch.float32
    assert torch.allclose(step.u.double(), u_ref, rtol=1e-5, atol=1e-2)
    # The labels are the exact solver's answer on the u the step computed.
    assert np.array_equal(step.labels.numpy(), cascadevae_ext.assign(step.u, lam))
    assert step.labels.dtype == torch.int64 and step.labels.shape == (B,)
    assert torch.equal(step.codes, F.one_hot(step.labels, S).float())
    # ... and optimal for the float64 u up to float32 rounding of u.
    u64 = u_ref.numpy()
    best = cascadevae_ext.assign(u64, lam)
    got = cascadevae_ext.objective(u64, lam, step.labels.numpy())
    opt = cascadevae_ext.objective(u64, lam, best)
    assert got == pytest.approx(opt, abs=1e-3 * B)


def test_strong_lambda_balances_the_classes():
    model = make(32, S=4)
    x = batch(16, 32)
    post = model.posterior(x)
    step = discrete_step(model, x, post.z, lam=1e6)
    assert torch.bincount(step.labels, minlength=4).tolist() == [4, 4, 4, 4]


def test_step_uses_no_encoder_and_no_gradient(monkeypatch):
    model = make(32, S=3)
    x = batch(4, 32)
    post = model.posterior(x)

    def fail(*args, **kwargs):
        raise AssertionError("the discrete step must not run the encoder")

    monkeypatch.setattr(model.encoder, "forward", fail)
    step = discrete_step(model, x, post.z, return_u=True)
    assert not step.u.requires_grad and not step.codes.requires_grad
    assert all(p.grad is None for p in model.parameters())
    # The sampled z is reused by the gradient step, which still backpropagates to the encoder.
    terms = model.loss_terms(x, step.codes, np.full(5, 10.0), posterior=post)
    terms["loss"].backward()
    assert model.encoder.fc[-1].weight.grad is not None


def test_lambda_converted_once(monkeypatch):
    """An appendix (official, unordered-pair) lambda' reaches the solver halved, once."""
    seen = []
    real_assign = cascadevae_ext.assign

    def spy(u, lam, *args, **kwargs):
        seen.append(lam)
        return real_assign(u, lam, *args, **kwargs)

    monkeypatch.setattr(cascadevae_ext, "assign", spy)
    model = make(32, S=3, lam_official=0.002)
    x = batch(4, 32)
    z = model.posterior(x).z
    discrete_step(model, x, z)  # default: the config's converted value
    discrete_step(model, x, z, model.config.pairwise_lambda)
    model.decoder_code(x, z, 2, train=True)
    assert seen == [pytest.approx(0.001)] * 3
    discrete_step(model, x, z, lam=0.25)  # an explicit (ordered-pair) value passes unchanged
    assert seen[-1] == 0.25


def test_zero_codes_before_warmup(monkeypatch):
    calls = []
    monkeypatch.setattr(cascadevae_ext, "assign",
                        lambda *a, **k: calls.append(1) or np.zeros(4, np.int64))
    model = make(32, S=3)
    x = batch(4, 32)
    z = model.posterior(x).z
    d = model.decoder_code(x, z, 1, train=True)   # t_d = 2
    assert d.shape == (4, 3) and torch.equal(d, torch.zeros(4, 3)) and not calls
    inp = model.decoder_input(z, d)
    assert torch.equal(inp[:, :5], z) and torch.equal(inp[:, 5:], torch.zeros(4, 3))
    d = model.decoder_code(x, z, 2, train=True)
    assert calls and torch.equal(d, F.one_hot(torch.zeros(4, dtype=torch.int64), 3).float())
    # A model without a discrete code always gets the empty code.
    no_code = build_model(MODELS["cascade-c"].Config(latent_dim=5), 32)
    assert no_code.decoder_code(x, z, 2, train=True).shape == (4, 0)
    with pytest.raises(ValueError, match="no discrete code"):
        discrete_step(no_code, x, z, 0.1)


def test_evaluation_codes_are_argmax_at_mean():
    model = make(32, S=4)
    x = batch(10, 32)
    labels, u = evaluation_codes(model, x, return_u=True)
    mu = model.encode(x)[0].detach()
    u_ref = separate_loglik64(model, x, mu)
    assert torch.allclose(u.double(), u_ref, rtol=1e-5, atol=1e-2)
    assert torch.equal(labels, u.argmax(dim=1))
    assert torch.equal(evaluation_codes(model, x), labels)
    # No pairwise term: a strong lambda' in the config changes nothing.
    strong = make(32, S=4, lam_official=1e6)
    assert torch.equal(evaluation_codes(strong, x), labels)


def test_torch_fallback_matches_kernel():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(3, 4, 50, generator=g) * 5
    x = (torch.rand(3, 50, generator=g) > 0.5).float()
    ref = torch.from_numpy(cascadevae_ext.bernoulli_loglik(logits, x))
    assert torch.allclose(bernoulli_loglik_torch(logits, x), ref, rtol=1e-5, atol=1e-4)


def test_float64_model_uses_torch_path():
    model = make(32, S=3).double()
    x = batch(4, 32).double()
    z = model.posterior(x).z
    u = code_loglik(model, x, z)
    assert u.dtype == torch.float64
    assert torch.allclose(u, separate_loglik64(model, x, z), rtol=1e-10)
    step = discrete_step(model, x, z, 0.1)
    assert step.codes.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_step_matches_cpu():
    model = make(32, S=3)
    x = batch(8, 32)
    z = model.posterior(x).z.detach()
    cpu = discrete_step(model, x, z, 0.01, return_u=True)
    model_gpu = model.cuda()
    gpu = discrete_step(model_gpu, x.cuda(), z.cuda(), 0.01, return_u=True)
    assert gpu.labels.device.type == "cuda" and gpu.codes.device.type == "cuda"
    assert torch.allclose(gpu.u.cpu(), cpu.u, rtol=1e-4, atol=1e-2)
    labels, _ = evaluation_codes(model_gpu, x.cuda(), return_u=True)
    assert labels.device.type == "cuda"
