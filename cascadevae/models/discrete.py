"""The alternating discrete step of CascadeVAE (inner maximisation of eq. 6) and the
evaluation-time code assignment.

Training step, for a batch x and ONE sample z ~ q(z | x) shared with the gradient step::

    u[i, k] = log p_theta(x_i | z_i, e_k)         one decoder pass over the B*S pairs
    d = argmax_d  sum_i u[i, d_i] - lambda' sum_k n_k (n_k - 1)     (exact, min-cost flow)

lambda' here is always the paper's ordered-pair value (what ``cascadevae_ext.assign`` takes).

Both native steps run where the model is (:mod:`cascadevae.kernels`): on a CUDA model the
likelihood kernel and the exact assignment run on the GPU and u never goes to the host, so the
step has no host synchronisation (see :mod:`cascadevae.device_step` for a whole training step
captured as a CUDA graph).
The appendix's lambda' values are in the official code's unordered-pair convention and are
converted exactly once, by the model's config section (``DiscreteStepFields.pairwise_lambda``),
which is the default here. Which code the decoder gets at an update is
:meth:`cascadevae.models.VAE.decoder_code`.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import cascadevae_ext  # noqa: F401  (not called here; tests patch it through this module)
import torch

from .. import kernels
from ..kernels import bernoulli_loglik_torch  # noqa: F401  (re-exported: models.bernoulli_loglik_torch)
from .vae import VAE


class DiscreteStep(NamedTuple):
    """labels (B,) int64 and one-hot codes (B, S) on the model's device; u (B, S) float32
    (the per-code log-likelihoods the assignment used) when asked for, else None."""
    labels: torch.Tensor
    codes: torch.Tensor
    u: Optional[torch.Tensor] = None


def all_code_inputs(z: torch.Tensor, num_classes: int):
    """z (B, m) -> (z repeated, one-hot codes), both with B*S rows; row b*S + k pairs item b
    with code k."""
    batch = z.shape[0]
    # (an expand, not repeat_interleave: nothing here may read a size back from the GPU)
    z_rep = z.unsqueeze(1).expand(batch, num_classes, z.shape[1]).reshape(batch * num_classes, -1)
    eye = torch.eye(num_classes, device=z.device, dtype=z.dtype)
    codes = eye.expand(batch, num_classes, num_classes).reshape(batch * num_classes, num_classes)
    return z_rep, codes


@torch.no_grad()
def code_loglik(model: VAE, x: torch.Tensor, z: torch.Tensor, *,
                loglik_variant: str = "fast") -> torch.Tensor:
    """u (B, S): log p_theta(x_i | z_i, e_k) for every item and code, from one decoder pass
    over B*S inputs (no encoder pass, no gradient).

    On the CPU the pass is :meth:`Decoder.score_all_codes` (the same function, arranged for
    the CPU). u is computed where the logits are by :func:`cascadevae.kernels.bernoulli_loglik`:
    the fused native kernel for float32 or bfloat16 logits (CPU; CUDA when the extension has
    its CUDA kernels, ``loglik_variant`` picking its exp/log: "fast" or "precise"), u float32
    on the logits' device; otherwise the same formula in torch, in the logits' dtype.
    """
    num_classes = model.num_classes
    if num_classes < 1:
        raise ValueError(f"model {model.name!r} has no discrete code (S = {num_classes})")
    batch = x.shape[0]
    if z.device.type == "cpu":
        # the CPU arrangement of the same pass (Decoder.score_all_codes); on CUDA the plain
        # B*S forward below, which is what the captured device step was written against
        logits = model.decoder.score_all_codes(z.detach())
    else:
        z_rep, codes = all_code_inputs(z.detach(), num_classes)
        logits = model.decode(z_rep, codes).reshape(batch, num_classes, -1)
    # targets in the precision u is computed in (float32 at least, as the kernels read them),
    # pixels contiguous (as the CUDA kernel reads them; no copy where they already are)
    targets = x.reshape(batch, -1).to(torch.promote_types(logits.dtype, torch.float32))
    # as many kernel threads as torch uses (a 1-thread run must not take every core)
    return kernels.bernoulli_loglik(logits.contiguous(), targets.contiguous(),
                                    num_threads=torch.get_num_threads(), variant=loglik_variant)


def discrete_step(model: VAE, x: torch.Tensor, z: torch.Tensor, lam: Optional[float] = None,
                  *, method: str = "auto", return_u: bool = False,
                  loglik_variant: str = "fast") -> DiscreteStep:
    """Optimal codes for a batch: x (B, 1, H, W), z (B, m) the sample the gradient step will
    reuse. lam is lambda' in the ordered-pair convention (None: ``model.config.pairwise_lambda``,
    converted from the appendix value once, by the config section); method is passed to
    :func:`cascadevae.kernels.assign`, which solves where u is ("auto": the CUDA kernel for a
    CUDA model, the fastest CPU method on the CPU).
    """
    if lam is None:
        lam = model.config.pairwise_lambda
    u = code_loglik(model, x, z, loglik_variant=loglik_variant)
    labels = kernels.assign(u, float(lam), method=method)
    device = next(model.parameters()).device
    labels = labels.to(device)
    codes = one_hot_codes(labels, model.num_classes, z.dtype)
    return DiscreteStep(labels, codes, u if return_u else None)


def one_hot_codes(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot codes (B, S) from labels (B,), as F.one_hot would give them, but by comparison
    with arange(S): no range check of the labels, hence no host sync on CUDA."""
    classes = torch.arange(num_classes, device=labels.device)
    return (labels.unsqueeze(1) == classes).to(dtype)


@torch.no_grad()
def evaluation_codes(model: VAE, x: torch.Tensor, *, return_u: bool = False,
                     mu: Optional[torch.Tensor] = None):
    """Evaluation-time codes, as the official code assigns them: z = mu (no sampling) and
    d_i = argmax_k log p(x_i | mu_i, e_k), per item, without the pairwise lambda' term (the
    batch-level class-size penalty is a training regulariser, not part of inference).
    ``mu``: the posterior means of x when already computed (saves an encoder pass).
    Returns labels (B,) int64 on the model's device, and u (B, S) if ``return_u``."""
    if mu is None:
        mu, _ = model.encode(x)
    u = code_loglik(model, x, mu)
    labels = u.argmax(dim=1).to(mu.device)
    return (labels, u) if return_u else labels
