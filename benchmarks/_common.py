"""Helpers shared by the benchmark scripts (imported as ``_common`` from benchmarks/): what the
machine is (:func:`machine_info`), and the instance families of the assignment benchmarks
(:func:`assign_problem`, :func:`assign_objective`).

Importing it puts the repository root first on ``sys.path``, so that every benchmark runs the
checkout's ``cascadevae`` package (with the installed ``cascadevae_ext``).
"""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Optional, Tuple

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


#: CPU flags that decide which arithmetic pays (bfloat16 on AMX, AVX-512 kernels)
FLAGS_OF_NOTE = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile")

#: what each optional part of :func:`machine_info` adds
MACHINE_EXTRAS = {
    "ext": "ext_build (cascadevae_ext.build_info()), ext_file, loglik_simd",
    "git": "git_commit, git_dirty (tracked files changed)",
    "ortools": "ortools (its version, or None)",
    "gpu": "device, capability, sms, memory_gib, torch_cuda, driver, max_shared_bytes (CUDA device 0)",
    "invocation": "command (this process's command line), date_utc",
}


def git_state() -> Tuple[Optional[str], Optional[bool]]:
    """(commit, whether tracked files differ from it) of the checkout, or (None, None)."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10, check=True).stdout.strip())
        return commit, dirty
    except Exception:  # noqa: BLE001 - informational only
        return None, None


def _gpu_info() -> dict:
    import cascadevae_ext
    import torch
    props = torch.cuda.get_device_properties(0)
    info = {"device": torch.cuda.get_device_name(0), "capability": list(torch.cuda.get_device_capability(0)),
            "sms": props.multi_processor_count, "memory_gib": round(props.total_memory / 2**30, 1),
            "torch_cuda": torch.version.cuda, "max_shared_bytes": cascadevae_ext._cuda_max_shared_bytes(0)}
    try:
        info["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                        capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001 - informational only
        info["driver"] = None
    return info


def machine_info(*extras: str, keys: Optional[Mapping[str, str]] = None) -> dict:
    """What a benchmark's numbers depend on: CPU model and flags, cores (all and usable), load,
    platform and versions; plus each part named in ``extras`` (see MACHINE_EXTRAS). ``keys``
    maps a script's own earlier key names to these fields (``{"cores": "logical_cpus"}``),
    so that the JSON it writes keeps the keys it always had."""
    import torch
    from cascadevae.acceleration import cpu_flags
    unknown = set(extras) - set(MACHINE_EXTRAS)
    if unknown:
        raise ValueError(f"unknown machine_info extras {sorted(unknown)}; known: {sorted(MACHINE_EXTRAS)}")
    flags = cpu_flags()
    try:
        load = list(os.getloadavg())
    except (AttributeError, OSError):
        load = None
    info = {"cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "cpu_flags_of_note": [f for f in FLAGS_OF_NOTE if f in flags],
            "load_avg_1min_at_start": load[0] if load else None, "load_average": load,
            "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)(),
            "numpy": np.__version__,
            "torch_parallel": torch.__config__.parallel_info().splitlines()[:4]}
    if "ext" in extras:
        import cascadevae_ext
        info.update(ext_build=cascadevae_ext.build_info(), ext_file=getattr(cascadevae_ext, "__file__", None),
                    loglik_simd=cascadevae_ext._loglik_simd())
    if "git" in extras:
        info["git_commit"], info["git_dirty"] = git_state()
    if "ortools" in extras:
        try:
            from importlib.metadata import version
            info["ortools"] = version("ortools")
        except Exception:  # noqa: BLE001 - not installed
            info["ortools"] = None
    if "gpu" in extras:
        info.update(_gpu_info())
    if "invocation" in extras:
        info["command"] = shlex.join([Path(sys.executable).name] + sys.argv)
        info["date_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    for old, field in (keys or {}).items():
        info[old] = info[field]
    return info


# ---- the assignment benchmarks' instance families ------------------------------------------------

#: the families, float32 scores as they come out of a float32 model
ASSIGN_FAMILIES = {
    "A": "u uniform [0, 1), lam = S / (2n) (strong penalty)",
    "B": "u = -(100 + 10 N(0, 1)), lam = 2^-11 (weak penalty, CascadeVAE-like)",
}


def assign_problem(family: str, n: int, S: int, seed: int, G: Optional[int] = None):
    """(u, lam) of family "A" or "B": u float32 (n, S), or a batch (G, n, S) of independent
    problems of one lam. Each (family, n, S, G, seed) draws its own stream. (tests/assign_helpers.py
    has the tests' dyadic variants, exact in double.)"""
    shape = (n, S) if G is None else (G, n, S)
    rng = np.random.default_rng([seed, n, S, ord(family)] if G is None else [seed, G, n, S, ord(family)])
    if family == "A":
        return rng.random(shape, dtype=np.float32), S / (2.0 * n)
    if family == "B":
        u = rng.standard_normal(shape, dtype=np.float32)
        u *= -10
        u -= 100
        return u, 2.0**-11
    raise ValueError(f"unknown family {family!r} (expected one of {', '.join(ASSIGN_FAMILIES)})")


def assign_objective(u: np.ndarray, lam: float, labels: np.ndarray) -> float:
    """sum_i u[i, d_i] - lam sum_k n_k (n_k - 1) in double; summed over the problems of a batch."""
    u = np.asarray(u)
    labels = np.asarray(labels)
    if u.ndim == 3:
        return float(sum(assign_objective(u[g], lam, labels[g]) for g in range(u.shape[0])))
    n, S = u.shape
    gain = float(np.sum(u[np.arange(n), labels], dtype=np.float64))
    c = np.bincount(labels, minlength=S).astype(np.float64)
    return gain - lam * float(np.sum(c * (c - 1)))
