"""Timing helpers shared by the benchmarks: matmul throughput, medians, peak memory, and the
record of the machine each benchmark ran on (its BLAS, GEMM throughput and load)."""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env

# isort: split
import json
import os
import platform
import resource
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import _common, _run

# The GEMM that machine() times with numpy and with jax: n × n × n, median of GEMM_REPEATS.
GEMM_N = 2048
GEMM_REPEATS = 3
# Thread settings that change either library's speed; recorded when set.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")


def median_time(fn, repeats: int = 3) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls (``fn`` must block)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def matmul_gflops(dtype, n: int = 1536, repeats: int = 5) -> float:
    """Measured GFLOP/s of one jitted n×n×n GEMM in ``dtype`` (median of ``repeats``).

    float64 is timed with x64 switched on for the measurement (without it jax would compute
    in float32)."""
    with jax.enable_x64(jnp.dtype(dtype) == jnp.float64 or jax.config.jax_enable_x64):
        a = jnp.asarray(np.random.default_rng(0).random((n, n)), dtype)
        f = jax.jit(lambda x: x @ x)
        f(a).block_until_ready()
        seconds = median_time(lambda: f(a).block_until_ready(), repeats)
    return 2 * n**3 / seconds / 1e9


def numpy_matmul_gflops(dtype, n: int = GEMM_N, repeats: int = GEMM_REPEATS) -> float:
    """Measured GFLOP/s of ``np.matmul`` on n×n ``dtype`` matrices (median of ``repeats``,
    after one call to warm up): the BLAS that scikit-learn's dense products go through."""
    a = np.random.default_rng(0).random((n, n)).astype(dtype)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    seconds = median_time(lambda: np.matmul(a, a, out=out), repeats)
    return 2 * n**3 / seconds / 1e9


def gemm_gflops(n: int = GEMM_N, repeats: int = GEMM_REPEATS) -> dict:
    """GEMM GFLOP/s of numpy and of jax, float32 and float64, same size and repeats."""
    dtypes = ("float32", "float64")
    return {
        "n": n,
        "repeats": repeats,
        "numpy": {d: numpy_matmul_gflops(d, n, repeats) for d in dtypes},
        "jax": {d: matmul_gflops(jnp.dtype(d), n, repeats) for d in dtypes},
    }


def in_new_process(module: str, argv: list[str], cache: Path) -> dict:
    """Run ``python -m <module> <argv>`` with JAX's persistent compilation cache in ``cache``
    (``JAXNMF_BENCH_CACHE``; the module enables it) and return the JSON object its last line
    prints: a timing of a first call in a new process, which compiles only what the cache
    lacks (the issue's "compile once per machine"). The child inherits this process's
    environment, fair BLAS settings included."""
    import subprocess
    import sys

    env = dict(os.environ, JAXNMF_BENCH_CACHE=str(cache))
    out = subprocess.run(
        [sys.executable, "-m", module, *argv], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cache_entries(cache: Path) -> int:
    """The number of programs in a persistent compilation cache folder (0 when absent)."""
    return sum(1 for _ in Path(cache).glob("*")) if Path(cache).is_dir() else 0


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the platform has none."""
    try:
        return [float(x) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def load_1min() -> float:
    """The 1-minute load average now (NaN where the platform has none)."""
    return (load_average() or [float("nan")])[0]


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def machine(gemm: bool = True) -> dict:
    """The machine and the process a benchmark runs in; call it when the benchmark starts.

    Besides the platform: the BLAS libraries as threadpoolctl sees them (``blas``: internal
    API, version, architecture = OpenBLAS's kernel coretype, threads, file), what
    :mod:`._fair_env` did about the OpenBLAS overrides (``fair_env``), thread settings from the
    environment, numpy's and jax's GEMM throughput (``gemm_gflops``, a few seconds; with
    ``gemm=False`` the caller adds it later, from :func:`gemm_gflops`) and the load average;
    :func:`write_json` adds the load average at the end.
    """
    record = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "numpy": np.__version__,
        "device": str(jax.devices()[0].device_kind),
        # other work on the machine slows both sides; quote numbers from quiet runs
        "load_average_1min": os.getloadavg()[0],
        "load_average": {"start": load_average()},  # 1, 5, 15 min; "end" added by write_json
        "fair_env": _fair_env.STATE,
        "thread_variables": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
        "blas": _run.blas(),
    }
    if gemm:
        record["gemm_gflops"] = gemm_gflops()
    return record


def print_machine(mach: dict) -> None:
    """A few lines: the OpenBLAS overrides removed, the BLAS kernels in use and the GEMM
    throughput of both libraries."""
    env = mach.get("fair_env", {})
    present = ", ".join(f"{k}={v}" for k, v in env.get("present_in_parent", {}).items())
    if not env.get("fair", True):
        print(f"  WARNING: numpy loaded with {present} set: scikit-learn handicapped")
    elif present:
        print(f"  removed from the environment before numpy loaded: {present}")
    blas = mach.get("blas")
    if isinstance(blas, list):
        for lib in blas:
            if lib.get("user_api") == "blas":
                print(
                    f"  BLAS {lib.get('internal_api')} {lib.get('version')}: kernels "
                    f"{lib.get('architecture')}, {lib.get('num_threads')} threads "
                    f"({Path(lib.get('filepath') or '?').name})"
                )
    g = mach.get("gemm_gflops")
    if g:
        rates = [f"{lib} {d} {v:.0f}" for lib in ("numpy", "jax") for d, v in g[lib].items()]
        print(f"  GEMM {g['n']}², GFLOP/s: " + ", ".join(rates))


def write_json(name: str, payload: dict, out: str = "results/benchmarks") -> Path:
    """Write ``payload`` to ``<out>/<name>.json`` atomically. A benchmark ends when it writes
    its result: the load average then is stored as ``payload["machine"]["load_average"]["end"]``.
    """
    if isinstance(payload.get("machine"), dict):
        payload["machine"].setdefault("load_average", {})["end"] = load_average()
    path = Path(out) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_common._jsonable(payload), indent=2, allow_nan=False)
    _common._atomic_write(path, lambda f: f.write(text.encode()))
    return path
