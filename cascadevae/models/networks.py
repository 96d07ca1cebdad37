"""Encoder and decoder networks of the paper's appendix B (Table 5 for 64x64 inputs, Table 6
for 32x32), which follow Dupont's JointVAE architecture.

Every 4x4 convolution has stride 2 and padding 1, so it halves the side exactly (the official
TensorFlow code's 'SAME' padding), and every 4x4 transposed convolution doubles it. Both
tables reach a 64 x 4 x 4 feature map: 64 -> 32 -> 16 -> 8 -> 4 with four convolutions,
32 -> 16 -> 8 -> 4 with three. Weights use torch's default initialisation.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn

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
        return self.fc(self.convs(x))


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
        return self.deconvs(self.fc(inputs))
