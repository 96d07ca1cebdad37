"""Encoder and decoder networks of the paper's appendix B (Table 5 for 64x64 inputs, Table 6
for 32x32), which follow Dupont's JointVAE architecture.

Every 4x4 convolution has stride 2 and padding 1, so it halves the side exactly (the official
TensorFlow code's 'SAME' padding), and every 4x4 transposed convolution doubles it. Both
tables reach a 64 x 4 x 4 feature map: 64 -> 32 -> 16 -> 8 -> 4 with four convolutions,
32 -> 16 -> 8 -> 4 with three. Weights use torch's default initialisation.

The (transposed) convolutions run through :mod:`.conv_layout`, which computes each one in the
memory layout that is fastest for its shape on the CPU (the same function and gradients).
:meth:`Decoder.score_all_codes` is the discrete step's no-grad pass over every (item, code)
pair: the same function as the plain forward, with the first layer done once per item plus
a per-code column.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .conv_layout import conv, conv_transpose

#: Output channels of the encoder's 4x4 stride-2 convolutions, per input size.
ENCODER_CHANNELS: Dict[int, Tuple[int, ...]] = {64: (32, 32, 64, 64), 32: (32, 32, 64)}
#: Output channels of the decoder's 4x4 stride-2 transposed convolutions, per input size.
DECODER_CHANNELS: Dict[int, Tuple[int, ...]] = {64: (64, 32, 32, 1), 32: (32, 32, 1)}
#: Both tables' fully connected width and the feature map between the convs and the FCs.
HIDDEN = 256
FEATURE_SHAPE = (64, 4, 4)


def _check_size(image_size: int) -> None:
    if image_size not in ENCODER_CHANNELS:
        raise ValueError(f"image_size = {image_size!r} has no network table in the paper; "
                         f"use one of {sorted(ENCODER_CHANNELS)}")


class Encoder(nn.Module):
    """q_phi(z | x): image (B, 1, H, W) -> (B, 2m), the posterior mean and the raw scale head.

    64x64 (appendix B, Table 5, dSprites and Chairs)::

        4x4 conv 32, stride 2, ReLU       (B, 32, 32, 32)
        4x4 conv 32, stride 2, ReLU       (B, 32, 16, 16)
        4x4 conv 64, stride 2, ReLU       (B, 64,  8,  8)
        4x4 conv 64, stride 2, ReLU       (B, 64,  4,  4)
        64*4*4 x 256 fully connected, ReLU
        256 x 2m fully connected          (mu, raw scale)

    32x32 (Table 6, MNIST and FashionMNIST resized to 32x32): the same without the fourth
    convolution (32 -> 16 -> 8 -> 4 with 32, 32, 64 channels).

    "output dim" in the tables is 2m: m means and m scale parameters (see
    :class:`cascadevae.models.ModelConfig` ``std_param`` for how the second half is read).
    ``extra_outputs`` more units of the last layer follow them (JointVAE's categorical logits:
    one linear layer with 2m + K outputs is the same as separate linear heads on the 256-unit
    layer); 0 for every other model, whose encoder is then exactly the table's.
    """

    def __init__(self, image_size: int, latent_dim: int, extra_outputs: int = 0) -> None:
        super().__init__()
        _check_size(image_size)
        layers: List[nn.Module] = []
        in_ch = 1
        for out_ch in ENCODER_CHANNELS[image_size]:
            layers += [nn.Conv2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            in_ch = out_ch
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.extra_outputs = extra_outputs
        self.convs = nn.Sequential(*layers)
        c, h, w = FEATURE_SHAPE
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, HIDDEN), nn.ReLU(),
                                nn.Linear(HIDDEN, 2 * latent_dim + extra_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for layer in self.convs:
            h = conv(h, layer.weight, layer.bias) if isinstance(layer, nn.Conv2d) else layer(h)
        return self.fc(h)


class Decoder(nn.Module):
    """p_theta(x | z, d): decoder input (B, m + S) -> Bernoulli logits (B, 1, H, W).

    The input is concat(z, d) with d the one-hot discrete code (all zeros before the discrete
    warm-up t_d ends; S = 0 for models without a discrete code), as in the official code.

    64x64 (appendix B, Table 5)::

        (m + S) x 256 fully connected, ReLU
        256 x 64*4*4 fully connected, ReLU    reshaped to (B, 64, 4, 4)
        4x4 conv transpose 64, stride 2, ReLU (B, 64,  8,  8)
        4x4 conv transpose 32, stride 2, ReLU (B, 32, 16, 16)
        4x4 conv transpose 32, stride 2, ReLU (B, 32, 32, 32)
        4x4 conv transpose 1,  stride 2       (B,  1, 64, 64) logits

    32x32 (Table 6): the same with transposed convolutions 32, 32, 1 (4 -> 8 -> 16 -> 32).

    The tables end in a Sigmoid; here the last layer returns its pre-activation (the logits)
    and the sigmoid lives in the Bernoulli likelihood, which is then computed stably.
    """

    def __init__(self, image_size: int, latent_dim: int, num_classes: int = 0) -> None:
        super().__init__()
        _check_size(image_size)
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        c, h, w = FEATURE_SHAPE
        self.fc = nn.Sequential(nn.Linear(latent_dim + num_classes, HIDDEN), nn.ReLU(),
                                nn.Linear(HIDDEN, c * h * w), nn.ReLU(),
                                nn.Unflatten(1, FEATURE_SHAPE))
        layers: List[nn.Module] = []
        in_ch = c
        channels = DECODER_CHANNELS[image_size]
        for i, out_ch in enumerate(channels):
            layers.append(nn.ConvTranspose2d(in_ch, out_ch, kernel_size=4, stride=2, padding=1))
            if i + 1 < len(channels):
                layers.append(nn.ReLU())
            in_ch = out_ch
        self.deconvs = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self._deconvolve(self.fc(inputs))

    def _deconvolve(self, h: torch.Tensor) -> torch.Tensor:
        for layer in self.deconvs:
            if isinstance(layer, nn.ConvTranspose2d):
                h = conv_transpose(h, layer.weight, layer.bias)
            else:  # ReLU; in place where no gradient is recorded (the scoring pass)
                h = F.relu(h, inplace=not torch.is_grad_enabled())
        return h

    @torch.no_grad()
    def score_all_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, S, H*W) of item b under code e_k for every b and k: the plain forward on
        concat(z_b, e_k), without gradient, arranged for speed (see the module docstring).

        * First layer: W [z; e_k] + b = (W_z z + b) + W_d[:, k], so the (B, m) product is
          done once and code k adds column k of W_d; no (B*S, m + S) input is built.
        * The transposed convolutions as in :meth:`forward` (:mod:`.conv_layout`).

        The values equal the plain forward up to float rounding (the sums run in another
        order). Under CPU autocast the layers run in bfloat16 and the logits come out
        bfloat16."""
        if self.num_classes < 1:
            raise ValueError(f"score_all_codes needs a discrete code (S >= 1), got S = "
                             f"{self.num_classes}")
        batch, m, S = z.shape[0], self.latent_dim, self.num_classes
        first, _, second, _, unflatten = self.fc
        w_z, w_d = first.weight[:, :m], first.weight[:, m:]
        h = F.linear(z, w_z, first.bias)                          # (B, 256)
        h = (h.unsqueeze(1) + w_d.t().to(h.dtype).unsqueeze(0)).relu_()  # (B, S, 256)
        h = F.linear(h.reshape(batch * S, -1), second.weight, second.bias).relu_()
        logits = self._deconvolve(unflatten(h))
        return logits.reshape(batch, S, -1)
