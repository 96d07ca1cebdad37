"""What this machine runs fast: the training precision, whether to compile the networks, and
how many threads to use. The training command resolves its ``auto`` settings here once, at the
start of a run, and records the concrete values (config.json, run.json).

The rules follow measurements (benchmarks/bench_train.py, docs/performance.md):

* **precision** ``auto`` is ``bf16`` where the device multiplies bfloat16 natively at more
  than float32 speed, ``fp32`` elsewhere. On the CPU that means AMX (``amx_bf16``): oneDNN
  then runs bfloat16 convolutions and products several times faster than float32. AVX512-BF16
  alone is not enough: on a Xeon with ``avx512_bf16`` but no AMX, a bfloat16 2048^2 matmul ran
  at 150-161 GFLOP/s against 257-305 in float32 (2 threads), and a bfloat16 update was slower than a float32 one.
  On CUDA: compute capability 8.0 or newer (tensor cores with bfloat16).
* **compile** ``auto`` is off: it was not measured to pay anywhere. With float32 on the CPU
  the update is convolutions in oneDNN and the native kernels, which compilation leaves
  alone (the layout-aware layers and native calls break its graphs); measured on a Xeon
  without AMX it was 1.1-1.6x *slower* per update in bfloat16 than float32 eager, no faster
  in float32, and cost 17-40 s to compile the first time. ``--compile`` turns it on (it
  falls back to eager, with a warning, where torch.compile cannot run). The issue that asked
  for it measured 128 -> 84 ms on an AMX Xeon, but for the step before the layout work;
  re-measure there before changing this rule.
* **threads**: torch's default is every core, which on a shared machine oversubscribes it
  (OpenMP workers spin; updates became 10x slower while other jobs ran). The default here is
  the cores this process may use minus the machine's load, at least 1; ``OMP_NUM_THREADS`` or
  ``--threads`` override it.
"""
from __future__ import annotations

import functools
import os
from typing import FrozenSet, Union

import torch

PRECISIONS = ("auto", "fp32", "bf16")
COMPILE_CHOICES = ("auto", True, False)


@functools.lru_cache(maxsize=None)
def cpu_flags() -> FrozenSet[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16(device: Union[str, torch.device]) -> bool:
    """Whether ``device`` runs bfloat16 products natively and faster than float32 (see the
    module docstring): CPU with AMX-BF16, or CUDA with compute capability >= 8.0."""
    device = torch.device(device)
    if device.type == "cpu":
        return "amx_bf16" in cpu_flags()
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_capability(index) >= (8, 0)
    return False


def check_precision(value) -> str:
    if value not in PRECISIONS:
        raise ValueError(f"precision = {value!r}: expected one of {list(PRECISIONS)}")
    return value


def check_compile(value) -> Union[str, bool]:
    if value not in COMPILE_CHOICES or (value != "auto" and not isinstance(value, bool)):
        raise ValueError(f"compile = {value!r}: expected 'auto', True or False")
    return value


def resolve_precision(requested: str, device: Union[str, torch.device]) -> str:
    """``fp32`` or ``bf16`` for a requested ``auto`` / ``fp32`` / ``bf16`` on ``device``."""
    check_precision(requested)
    if requested != "auto":
        return requested
    return "bf16" if native_bf16(device) else "fp32"


def resolve_compile(requested: Union[str, bool], device: Union[str, torch.device],
                    precision: str) -> bool:
    """Whether to compile the training networks (``auto``: see the module docstring)."""
    check_compile(requested)
    if requested != "auto":
        return bool(requested)
    return False  # measured to pay nowhere yet (module docstring)


def compiler_available() -> str:
    """'' when torch.compile works here (a trivial function is compiled and run once; cached
    on disk by torch, so this costs a few seconds the first time only), else the reason."""
    try:
        fn = torch.compile(lambda t: t * 2 + 1, dynamic=False)
        out = fn(torch.ones(4))
        if not torch.equal(out, torch.full((4,), 3.0)):
            return "a compiled test function gave a wrong result"
    except Exception as exc:  # no C++ compiler, unsupported platform, ...
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
    return ""


def default_threads() -> int:
    """Threads for a training run: ``OMP_NUM_THREADS`` if set, else the cores this process may
    run on minus the machine's one-minute load average (rounded), at least 1."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        busy = int(round(os.getloadavg()[0]))
    except (AttributeError, OSError):
        busy = 0
    return max(1, min(cores, cores - busy))


def autocast(device: Union[str, torch.device], precision: str):
    """The autocast context of a training update: bfloat16 autocast on ``device`` for
    ``bf16``, a disabled (no-op) one for ``fp32``."""
    device = torch.device(device)
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=precision == "bf16")
