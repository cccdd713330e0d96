"""Timing helpers shared by the benchmarks: matmul throughput, medians, peak memory."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np


def median_time(fn, repeats: int = 3) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls (``fn`` must block)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_gflops(dtype, n: int = 1536, repeats: int = 5) -> float:
    """Measured GFLOP/s of one jitted n×n×n GEMM in ``dtype`` (median of ``repeats``)."""
    a = jnp.asarray(np.random.default_rng(0).random((n, n)), dtype)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    seconds = median_time(lambda: f(a).block_until_ready(), repeats)
    return 2 * n**3 / seconds / 1e9


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0].device_kind),
        # other work on the machine slows both sides; quote numbers from quiet runs
        "load_average_1min": os.getloadavg()[0],
    }


def write_json(name: str, payload: dict, out: str = "results/benchmarks") -> Path:
    path = Path(out) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    os.replace(tmp, path)
    return path
