"""The native kernels in Python, one entry point each: :func:`assign` (the exact discrete
assignment) and :func:`bernoulli_loglik` (the fused likelihood of every image under every code)
take numpy arrays or torch tensors on the CPU or on a CUDA device and run where the data are.
Everything in the package calls these two; ``cascadevae_ext.assign`` stays the low-level entry
for people who call the solver directly.

CPU inputs go to ``cascadevae_ext.assign`` / ``cascadevae_ext.bernoulli_loglik`` unchanged
(numpy in, numpy out; torch in, torch out). CUDA tensors go to the extension's CUDA kernels
with raw device pointers, element strides and torch's current stream for the tensor's device:
the launch returns at once and the host never waits for the GPU, so the calls can sit inside a
captured CUDA graph (see :mod:`cascadevae.device_step`). The outputs are allocated here with
``torch.empty`` on the input's device, so they come from torch's caching allocator (and from
a graph's private pool during capture). Logits the native likelihood kernels do not take
(float64 or float16, on either device; CUDA tensors in a build without CUDA kernels) get the
same formula in torch (:func:`bernoulli_loglik_torch`), in the logits' dtype.

What the CUDA path refuses (each with a message that says what to do):

* a build of ``cascadevae_ext`` without CUDA kernels, for assign (RuntimeError);
* tensors on different devices, or on a device other than the CPU and CUDA (ValueError);
* dtypes the kernels do not take (TypeError): u float32/float64; x float32 next to
  float32/bfloat16 logits;
* logits or x that are not contiguous along the pixel axis (ValueError: pass
  ``.contiguous()``); other strides, and any strides of u, are read in place;
* an assignment too large for one block's shared memory (``assign_fits_device``): with
  ``method="device"`` a ValueError; with ``method="auto"`` it is solved on the CPU instead,
  which copies u to the host and so synchronises (the only host sync on this path).

Scores on the device are not checked for finiteness (that needs a host sync): a NaN counts as
the worst score there. A CUDA training step checks its loss on the device instead.
"""
from __future__ import annotations

import functools
from typing import Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

import cascadevae_ext as _ext

__all__ = ["assign", "bernoulli_loglik", "bernoulli_loglik_torch", "HAVE_CUDA_KERNELS",
           "assign_fits_device", "LOGLIK_VARIANTS"]

#: Whether this build of cascadevae_ext contains the CUDA kernels.
HAVE_CUDA_KERNELS: bool = bool(_ext.build_info()["cuda_compiled"])
NO_CUDA_MESSAGE = "this build of cascadevae_ext has no CUDA kernels (built without a CUDA toolkit)"
#: ``variant`` of the CUDA likelihood kernel: "fast" (hardware exp2/log2, default) or "precise"
#: (the CPU kernel's float32 routines).
LOGLIK_VARIANTS = ("fast", "precise")
_CPU_METHODS = ("cpu", "ssp", "warm", "lemon", "device_core")
#: logits dtypes of the native likelihood kernels (CPU and CUDA); other floats get the torch formula
_NATIVE_LOGITS = (torch.float32, torch.bfloat16)

ArrayLike = Union[np.ndarray, torch.Tensor]


def _require_cuda_kernels() -> None:
    if not HAVE_CUDA_KERNELS:
        raise RuntimeError(NO_CUDA_MESSAGE + ": reinstall cascadevae on a machine with the CUDA "
                           "toolkit (nvcc), or move the tensors to the CPU")


def _same_device(**arrays) -> torch.device:
    """The one device all arguments are on (numpy arrays count as CPU); ValueError if they
    differ or if it is neither the CPU nor a CUDA device."""
    placed = {name: (v.device if torch.is_tensor(v) else torch.device("cpu"))
              for name, v in arrays.items()}
    if len(set(placed.values())) > 1:
        where = ", ".join(f"{name} on {d}" for name, d in placed.items())
        raise ValueError(f"arguments are on different devices ({where}); put them on one device "
                         "(e.g. x.to(logits.device))")
    device = next(iter(placed.values()))
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"{', '.join(placed)} on device {device}: the kernels run on CPU and CUDA "
                         "tensors")
    return device


def _stream(device: torch.device) -> int:
    return torch.cuda.current_stream(device).cuda_stream


@functools.lru_cache(maxsize=None)
def _max_shared_bytes(device_index: int) -> int:
    return int(_ext._cuda_max_shared_bytes(device_index))


def assign_fits_device(n: int, S: int, device: Union[int, torch.device, None] = None) -> bool:
    """Whether the CUDA assign can take problems of n items and S classes on ``device``: its
    per-problem state (``cascadevae_ext._assign_shared_bytes(n, S)``, about 12 S^2 + 12 n bytes)
    must fit in one block's shared memory (227 KiB on an H100, 163 KiB on an A100; so S = 64
    fits with n up to about 15000, S = 128 with n up to about 3000)."""
    if not HAVE_CUDA_KERNELS:
        return False
    if device is None:
        index = torch.cuda.current_device()
    elif isinstance(device, int):
        index = device
    else:
        device = torch.device(device)
        index = device.index if device.index is not None else torch.cuda.current_device()
    return _ext._assign_shared_bytes(int(n), int(S)) <= _max_shared_bytes(index)


def _lam_value(lam) -> float:
    if torch.is_tensor(lam) and lam.device.type != "cpu":
        raise TypeError(f"lam is a tensor on {lam.device}; pass a Python number (reading a device "
                        "tensor would synchronise with the GPU)")
    return lam


def _check_scores_tensor(u: torch.Tensor) -> Tuple[int, int, int, Tuple[int, int, int]]:
    """(G, n, S, element strides (g, i, k)) of a CUDA score tensor; raises for bad dtype/shape."""
    if u.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"u has dtype {u.dtype}; the CUDA assign takes torch.float32 or torch.float64 "
                        "(convert with u.float())")
    if u.dim() not in (2, 3):
        raise ValueError(f"u must have shape (n, S) or (G, n, S), got {u.dim()} dimensions, shape "
                         f"{tuple(u.shape)}")
    S = u.shape[-1]
    if S == 0:
        raise ValueError(f"u has S = 0 classes (shape {tuple(u.shape)}); S must be at least 1")
    if u.dim() == 2:
        return 1, u.shape[0], S, (0, u.stride(0), u.stride(1))
    return u.shape[0], u.shape[1], S, (u.stride(0), u.stride(1), u.stride(2))


def _assign_cuda(u: torch.Tensor, lam, return_prices: bool):
    _require_cuda_kernels()
    G, n, S, (sg, si, sk) = _check_scores_tensor(u)
    batched = u.dim() == 3
    labels = torch.empty((G, n) if batched else (n,), dtype=torch.int64, device=u.device)
    prices = (torch.empty((G, S) if batched else (S,), dtype=torch.float64, device=u.device)
              if return_prices else None)
    _ext._assign_cuda(u.data_ptr(), "float64" if u.dtype == torch.float64 else "float32", G, n, S,
                      sg, si, sk, lam, labels.data_ptr(), 0 if prices is None else prices.data_ptr(),
                      u.device.index, _stream(u.device))
    return (labels, prices) if return_prices else labels


def assign(u: ArrayLike, lam, method: str = "auto", *, return_prices: bool = False,
           num_threads: int = 0):
    """Exact discrete assignment (see ``cascadevae_ext.assign`` for the problem and lam's
    convention), run where u is.

    numpy u: ``cascadevae_ext.assign`` itself (numpy labels). CPU tensor: the same, labels as an
    int64 tensor. CUDA tensor, ``method`` "auto" or "device": the CUDA kernel (int64 labels on
    u's device, no host sync); "device" raises where the kernel cannot run (no CUDA kernels in
    this build, problem too large for shared memory), "auto" then solves on the CPU with a copy
    each way (a host sync). CUDA tensor with a CPU method ("cpu": the CPU's "auto", or "ssp",
    "warm", "lemon", "device_core"): that solver on a host copy, labels back on u's device (a
    host sync).
    lam must be a Python number (or CPU scalar) for CUDA input. ``num_threads``: the CPU
    solver's threads for a batch (0: all cores; the labels do not depend on it).
    """
    device = _same_device(u=u)
    if device.type == "cpu":
        if method == "device":
            raise ValueError("method=\"device\" runs the CUDA kernel and needs u on a CUDA device; "
                             "u is on the CPU (use method=\"auto\" there)")
        method = "auto" if method == "cpu" else method
        out = _ext.assign(u, lam, method, return_prices=return_prices, num_threads=num_threads)
        if not torch.is_tensor(u):
            return out
        return tuple(torch.from_numpy(a) for a in out) if return_prices else torch.from_numpy(out)
    lam = _lam_value(lam)
    if method in ("auto", "device"):
        _check_scores_tensor(u)
        if method == "device":
            _require_cuda_kernels()
        n, S = u.shape[-2], u.shape[-1]
        if HAVE_CUDA_KERNELS and assign_fits_device(n, S, u.device):
            return _assign_cuda(u, lam, return_prices)
        if method == "device":
            need = _ext._assign_shared_bytes(n, S)
            raise ValueError(f"u has n = {n} items and S = {S} classes: the CUDA assign keeps a problem "
                             f"in shared memory and needs {need} bytes, more than the "
                             f"{_max_shared_bytes(u.device.index)} of one block on {u.device}; use "
                             "method=\"auto\" (solves it on the CPU, with a host sync) or u.cpu()")
        host_method = "auto"
    elif method in _CPU_METHODS:
        host_method = "auto" if method == "cpu" else method
    else:
        raise ValueError(f"method = {method!r} is not one of 'auto', 'device', "
                         + ", ".join(repr(m) for m in _CPU_METHODS))
    out = _ext.assign(u.detach().cpu(), lam, host_method, return_prices=return_prices,
                      num_threads=num_threads)
    if return_prices:
        return tuple(torch.from_numpy(a).to(u.device) for a in out)
    return torch.from_numpy(out).to(u.device)


def check_loglik_tensors(logits: torch.Tensor, x: torch.Tensor) -> Tuple[int, int, int]:
    """The CUDA likelihood kernel's argument checks on tensor metadata only (any device, so the
    checks run in CPU tests): dtypes, shapes, unit pixel strides. Returns (B, S, P)."""
    if logits.dtype not in (torch.float32, torch.bfloat16):
        raise TypeError(f"logits has dtype {logits.dtype}; the CUDA bernoulli_loglik takes "
                        "torch.float32 or torch.bfloat16 (convert with logits.float())")
    if x.dtype != torch.float32:
        raise TypeError(f"x has dtype {x.dtype}; the CUDA bernoulli_loglik takes torch.float32 "
                        "targets (convert with x.float())")
    if logits.dim() != 3:
        raise ValueError(f"logits must have shape (B, S, P), got {logits.dim()} dimensions, shape "
                         f"{tuple(logits.shape)}")
    B, S, P = logits.shape
    if x.dim() != 2 or tuple(x.shape) != (B, P):
        raise ValueError(f"x has shape {tuple(x.shape)} but logits has shape {tuple(logits.shape)}, so "
                         f"x must have shape (B, P) = ({B}, {P})")
    for name, t, axis in (("logits", logits, 2), ("x", x, 1)):
        if P > 1 and t.stride(axis) != 1:
            raise ValueError(f"{name} has stride {t.stride(axis)} along the pixel axis; the CUDA "
                             f"kernel reads pixels contiguously: pass {name}.contiguous()")
    return B, S, P


def bernoulli_loglik_torch(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_p x*l - softplus(l) for logits (B, S, P) and x (B, P): the formula of the native
    kernels, in torch and in the logits' dtype (materialises the (B, S, P) terms)."""
    x = x.to(logits.dtype).unsqueeze(1)
    return (x * logits - F.softplus(logits)).sum(dim=-1)


_NUMPY_FLOATS = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32,
                 np.dtype(np.float64): torch.float64}


def _logits_dtype(logits: ArrayLike):
    """logits' dtype as a torch dtype (numpy floats of native byte order too), else None."""
    if torch.is_tensor(logits):
        return logits.dtype
    return _NUMPY_FLOATS.get(getattr(logits, "dtype", None))


def _native_loglik_takes(logits: ArrayLike, device: torch.device) -> bool:
    """Whether the native kernel on ``device`` takes these logits. Anything that is not a
    float array (ints, lists, ...) goes to the kernel too, which names what is wrong."""
    if device.type == "cuda" and not HAVE_CUDA_KERNELS:
        return False
    dtype = _logits_dtype(logits)
    return dtype is None or not dtype.is_floating_point or dtype in _NATIVE_LOGITS


def bernoulli_loglik(logits: ArrayLike, x: ArrayLike, *, num_threads: int = 0,
                     variant: str = "fast"):
    """out[b, s] = sum_p x[b, p] logits[b, s, p] - softplus(logits[b, s, p]), run where the
    inputs are; no gradient.

    * numpy / CPU tensors with float32 logits (or a CPU bfloat16 tensor):
      ``cascadevae_ext.bernoulli_loglik`` (float32 or float64 x, checked to lie in [0, 1]);
      float32 (B, S) out, numpy for numpy logits, a tensor for a tensor.
    * CUDA tensors with float32 or bfloat16 logits: the CUDA kernel (float32 x, both
      contiguous along the pixel axis), float32 (B, S) out on the same device, launched on the
      current stream (no host sync).
    * other float logits (float64, float16) on either device, and CUDA tensors in a build
      without CUDA kernels: :func:`bernoulli_loglik_torch`, out in the logits' dtype (the
      values are not checked there).

    ``variant`` picks the CUDA kernel's exp/log ("fast": hardware exp2/log2, about 2^-22
    relative per term; "precise": the CPU kernel's float32 routines); ``num_threads`` is the
    CPU kernel's (0: all cores; the result does not depend on it).
    """
    device = _same_device(logits=logits, x=x)
    if not _native_loglik_takes(logits, device):
        lt, xt = (a if torch.is_tensor(a) else torch.as_tensor(np.ascontiguousarray(a)) for a in (logits, x))
        if lt.dim() != 3 or xt.dim() != 2 or tuple(xt.shape) != (lt.shape[0], lt.shape[2]):
            raise ValueError(f"logits must have shape (B, S, P) and x (B, P), got {tuple(lt.shape)} "
                             f"and {tuple(xt.shape)}")
        with torch.no_grad():
            out = bernoulli_loglik_torch(lt, xt)
        return out if torch.is_tensor(logits) else out.numpy()
    if device.type == "cpu":
        out = _ext.bernoulli_loglik(logits, x, num_threads=num_threads)
        return torch.from_numpy(out) if torch.is_tensor(logits) else out
    if variant not in LOGLIK_VARIANTS:
        raise ValueError(f"variant = {variant!r} is not one of {LOGLIK_VARIANTS}")
    _require_cuda_kernels()
    B, S, P = check_loglik_tensors(logits, x)
    out = torch.empty((B, S), dtype=torch.float32, device=logits.device)
    _ext._bernoulli_loglik_cuda(logits.data_ptr(), "bfloat16" if logits.dtype == torch.bfloat16
                                else "float32", B, S, P, logits.stride(0), logits.stride(1),
                                x.data_ptr(), x.stride(0), out.data_ptr(), variant,
                                logits.device.index, _stream(logits.device))
    return out
