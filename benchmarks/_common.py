"""Helpers shared by the benchmark scripts (imported as ``_common`` from benchmarks/)."""
import platform


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


def machine_info() -> dict:
    """What a benchmark's numbers depend on: CPU model and flags, cores, load, versions."""
    import os
    import numpy as np
    import torch
    from cascadevae.acceleration import cpu_flags
    flags = cpu_flags()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(),
            "cpu_flags_of_note": [f for f in FLAGS_OF_NOTE if f in flags],
            "load_avg_1min_at_start": load, "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__,
            "torch_parallel": torch.__config__.parallel_info().splitlines()[:4]}
