"""The paper's 4x4 stride-2 convolutions and transposed convolutions on the CPU, each computed in
the memory layout that oneDNN runs fastest for its shape, with the forward and the backward
chosen separately. Same functions and gradients as ``F.conv2d`` / ``F.conv_transpose2d``
(stride 2, padding 1), up to float rounding; CUDA tensors go to the plain ops unchanged.

Measured on a 2-core Xeon (AVX-512, no AMX), batch 64, one thread, ms (fwd | bwd)::

    transposed conv          NCHW           channels-last     used
    64->64,  4x4 -> 8x8      3.4 | 3.4      1.7 | 2.7         CL | CL
    64->32,  8x8 -> 16x16    5.3 | 4.6      2.3 | 6.9         CL | NCHW
    32->32, 16x16 -> 32x32  19.2 | 11.3     5.5 | 17.4        CL | NCHW
    32->1,  32x32 -> 64x64  14.2 | 15.7    13.5 | 3.3         native 1.2 | CL
    conv 1->32, 64 -> 32     1.4 | 1.6      1.7 | 7.4         NCHW
    conv 32->32, 32 -> 16    4.5 | 14.1     3.5 | 9.6         CL

(``python benchmarks/bench_train.py --layers`` prints this table for the machine it runs on.)
Hence the rules: a transposed convolution runs forward in channels-last (one output channel:
the native kernel of :func:`transposed_conv_1ch`), and backward in channels-last where it has 64 input
channels or one output channel, else in NCHW; a convolution runs in channels-last unless its
input has one channel. The rules are fixed, not tuned per run, so the same seed gives the same
bits on every run of a machine.
"""
from __future__ import annotations

from typing import Optional

import cascadevae_ext
import torch
import torch.nn.functional as F

CL = torch.channels_last
_STRIDE, _PAD, _DIL = [2, 2], [1, 1], [1, 1]


def _wide(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def transposed_conv_1ch(x: torch.Tensor, weight: torch.Tensor,
                        bias: Optional[torch.Tensor]) -> torch.Tensor:
    """The 4x4 stride-2 transposed convolution with ONE output channel (the decoders' last
    layer) on the CPU, by the native kernel ``cascadevae_ext.transposed_conv_1ch``: x (N, C,
    H, W) float32 or bfloat16 (channels-last makes its (N, H, W, C) view free) -> float32
    (N, 1, 2H, 2W). No gradient of its own (see :func:`conv_transpose`)."""
    n, c_in, height, width = x.shape
    rows = x.detach().permute(0, 2, 3, 1).contiguous()
    w = weight.detach().float().reshape(c_in, 16).contiguous()
    b = 0.0 if bias is None else float(bias.detach().float())
    out = cascadevae_ext.transposed_conv_1ch(rows, w, b, num_threads=torch.get_num_threads())
    return torch.from_numpy(out).view(n, 1, 2 * height, 2 * width)


def _transposed_forward(x: torch.Tensor, weight: torch.Tensor,
                        bias: Optional[torch.Tensor]) -> torch.Tensor:
    if weight.shape[1] == 1:
        return transposed_conv_1ch(x, weight, bias)
    return F.conv_transpose2d(x.contiguous(memory_format=CL), weight, bias, stride=2, padding=1)


def _backward_in_channels_last(weight: torch.Tensor) -> bool:
    c_in, c_out = weight.shape[0], weight.shape[1]
    return c_out == 1 or c_in >= 64


class _TransposedConv(torch.autograd.Function):
    """A 4x4 stride-2 transposed convolution whose forward and backward each run in their
    fastest layout (module docstring); the backward is aten's own convolution_backward."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        # the input's gradient goes back in the input's layout: the ReLU before this layer
        # saved its output in that layout, and its backward is slow on mixed layouts
        ctx.input_cl = x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=CL)
        return _transposed_forward(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        fmt = CL if _backward_in_channels_last(weight) else torch.contiguous_format
        grad = grad.to(x.dtype)  # the one-channel kernel returns float32 also for bfloat16 input
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1],
                ctx.has_bias and ctx.needs_input_grad[2]]
        gx, gw, gb = torch.ops.aten.convolution_backward(
            grad.contiguous(memory_format=fmt), x.contiguous(memory_format=fmt), weight,
            [weight.shape[1]] if ctx.has_bias else None, _STRIDE, _PAD, _DIL, True, [0, 0], 1,
            mask)
        if gx is not None:
            gx = gx.contiguous(memory_format=CL if ctx.input_cl else torch.contiguous_format)
        return gx, gw, gb


def _cpu_autocast_dtype() -> Optional[torch.dtype]:
    """The CPU autocast dtype when CPU autocast is on, else None (torch >= 2.1 spellings)."""
    if hasattr(torch, "get_autocast_dtype"):
        return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
    return torch.get_autocast_cpu_dtype() if torch.is_autocast_cpu_enabled() else None


def conv_transpose(x: torch.Tensor, weight: torch.Tensor,
                   bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride=2, padding=1)`` (4x4 kernels), in the
    fastest layouts on the CPU; differentiable. Under CPU autocast the arithmetic is
    bfloat16 (the operands are cast once here, as autocast would cast them)."""
    if x.device.type != "cpu":
        return F.conv_transpose2d(x, weight, bias, stride=2, padding=1)
    dtype = _cpu_autocast_dtype()
    if dtype is not None:
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        with torch.autocast("cpu", enabled=False):
            return _transposed_apply(x, weight, bias)
    return _transposed_apply(x, weight, bias)


def _transposed_apply(x, weight, bias):
    if x.dtype not in (torch.float32, torch.bfloat16) or weight.dtype != x.dtype:
        return F.conv_transpose2d(x, weight, bias, stride=2, padding=1)  # e.g. float64 checks
    if not torch.is_grad_enabled() or not (x.requires_grad or weight.requires_grad):
        return _transposed_forward(x, weight, bias)
    return _TransposedConv.apply(x, weight, bias)


def conv(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride=2, padding=1)``: channels-last on the CPU unless the
    input has one channel (then NCHW is faster, forward and backward). The output is
    channels-last either way, so the ReLU after it and that ReLU's backward see one layout
    (mixed layouts make threshold_backward several times slower)."""
    if x.device.type != "cpu":
        return F.conv2d(x, weight, bias, stride=2, padding=1)
    if x.shape[1] > 1:
        x = x.contiguous(memory_format=CL)
    return F.conv2d(x, weight, bias, stride=2, padding=1).contiguous(memory_format=CL)
