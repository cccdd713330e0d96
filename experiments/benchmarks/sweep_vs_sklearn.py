"""Rank survey benchmark: one ``jaxnmf.sweep`` call against scikit-learn in a Python loop.

Question: how long does a rank survey (digits, 1797 × 64, ranks 2..20 × 10 seeds, 200
iterations, Frobenius) take with one compiled sweep, against scikit-learn fitting the same
grid member by member, and how close is it to the machine's ideal time (the grid's
floating-point work divided by the measured matmul throughput)?

Feeds: the README's benchmark table and figure 7 (through the speed experiment, which calls
:func:`run`). Runtime on a 2-core CPU: about 2 minutes (``--seeds 2`` for a quick look). The
command line writes ``results/benchmarks/sweep_vs_sklearn.json``. Runs in its own process,
without the machine's OpenBLAS kernel overrides (``_fair_env``); ``machine`` records the
BLAS, numpy's and jax's GEMM throughput and the load.

    python -m experiments.benchmarks.sweep_vs_sklearn [--seeds 10] [--max-iter 200]
    python -m experiments.benchmarks.sweep_vs_sklearn --survey-large   # memory check
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env  # noqa: F401

# isort: split
import argparse
import time
import warnings
from dataclasses import dataclass, field, fields

import numpy as np

from experiments import _run
from experiments.benchmarks._bench import (
    load_1min,
    machine,
    matmul_gflops,
    peak_rss_gib,
    print_machine,
    write_json,
)

_T = {"metadata": _run.META}  # a timing (or machine) field: JSON, outside the hashed arrays


@dataclass(frozen=True)
class SweepBenchmark:
    """The rank survey timed: one row per (dtype, solver[, tol]) run.

    The grid and the row labels are arrays; every time, and the machine, are JSON fields
    (they differ from run to run). ``sklearn_s`` is scikit-learn's ``cd`` loop over the same
    grid (the same value for every solver of a dtype); a row with ``tol > 0`` lets every
    member stop on its own (scikit-learn's default rule, jaxnmf ``hals``).
    """

    m: int
    n: int
    ranks: np.ndarray
    seeds: np.ndarray
    max_iter: int
    gflop: float  # the grid's floating-point work of the updates
    dtype: np.ndarray  # (n_rows,)
    solver: np.ndarray
    tol: np.ndarray
    sklearn_s: np.ndarray = field(**_T)
    total_s: np.ndarray = field(**_T)  # jaxnmf, compilation included
    compile_s: np.ndarray = field(**_T)
    run_s: np.ndarray = field(**_T)
    ideal_s: np.ndarray = field(**_T)  # gflop / the measured matmul GFLOP/s
    gflops_machine: np.ndarray = field(**_T)
    sklearn_mean_iter: np.ndarray = field(**_T)  # tol > 0 rows; NaN elsewhere
    jaxnmf_mean_iter: np.ndarray = field(**_T)
    load_average: list = field(**_T)  # 1-minute load at the start and the end
    machine: dict = field(**_T)


def grid_flops(m: int, n: int, ranks, n_seeds: int, n_iter: int) -> float:
    """Work of the MU/HALS updates: per iteration 4mnk (VHᵀ, WᵀV) + 4(m+n)k² (Gram products)."""
    return float(sum(n_seeds * n_iter * (4 * m * n * k + 4 * (m + n) * k * k) for k in ranks))


def run_sklearn(X, ranks, seeds, max_iter, tol):
    from sklearn.decomposition import NMF

    t0 = time.perf_counter()
    iters = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at tol=0
        for r in ranks:
            for s in seeds:
                model = NMF(
                    r, solver="cd", init="random", random_state=s, max_iter=max_iter, tol=tol
                )
                model.fit(X)
                iters.append(model.n_iter_)
    return time.perf_counter() - t0, iters


def run_jaxnmf(X, ranks, seeds, max_iter, tol, solver):
    import jaxnmf as jn

    t0 = time.perf_counter()
    sw = jn.sweep(X, ranks, seeds, solver=solver, max_iter=max_iter, tol=tol, init="random")
    return time.perf_counter() - t0, sw


def run(
    seeds: int = 10,
    max_iter: int = 200,
    dtypes=("float32", "float64"),
    solvers=("hals", "mu"),
    skip_sklearn: bool = False,
) -> SweepBenchmark:
    """Time the digits rank survey (ranks 2..20 × ``seeds``) both ways, per dtype and solver,
    and once more at tol = 1e-4 with HALS. jax's x64 is on during the run (float64 rows)."""
    import jax
    import jax.numpy as jnp
    from sklearn.datasets import load_digits

    X64 = load_digits().data.astype(np.float64)
    (m, n), ranks, seed_list = X64.shape, list(range(2, 21)), list(range(seeds))
    flops = grid_flops(m, n, ranks, len(seed_list), max_iter)
    mach, load0, rows = machine(), load_1min(), []
    print(
        f"grid: digits {m}×{n}, ranks 2..20 × {seeds} seeds, {max_iter} it.: "
        f"{flops / 1e9:.0f} GFLOP"
    )
    print_machine(mach)
    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        for dtype in dtypes:
            X = X64.astype(dtype)
            gflops = matmul_gflops(jnp.dtype(dtype))
            ideal = flops / (gflops * 1e9)
            sk = np.nan if skip_sklearn else run_sklearn(X, ranks, seed_list, max_iter, 0.0)[0]
            base = dict(dtype=dtype, ideal_s=ideal, gflops_machine=gflops, sklearn_s=sk, tol=0.0)
            for solver in solvers:
                wall, sw = run_jaxnmf(X, ranks, seed_list, max_iter, 0.0, solver)
                times = dict(total_s=wall, compile_s=sw.compile_time, run_s=wall - sw.compile_time)
                rows.append({**base, "solver": solver, **times})
                print(
                    f"  [{dtype}] jaxnmf {solver}: {wall:.2f} s ({sw.compile_time:.2f} s "
                    f"compile); scikit-learn cd loop {sk:.2f} s; ideal {ideal:.2f} s"
                )
            if not skip_sklearn:  # each member stops on its own at scikit-learn's default tol
                sk_tol, sk_iters = run_sklearn(X, ranks, seed_list, max_iter, tol=1e-4)
                wall, sw = run_jaxnmf(X, ranks, seed_list, max_iter, 1e-4, "hals")
                iters = dict(
                    sklearn_mean_iter=np.mean(sk_iters), jaxnmf_mean_iter=np.mean(sw.n_iter)
                )
                rows.append(
                    {
                        **base,
                        "solver": "hals",
                        "tol": 1e-4,
                        "sklearn_s": sk_tol,
                        "total_s": wall,
                        **iters,
                    }
                )
                print(
                    f"  [{dtype}] tol=1e-4: scikit-learn {sk_tol:.2f} s, jaxnmf hals {wall:.2f} s"
                )
    finally:
        jax.config.update("jax_enable_x64", x64)

    # Every per-row field of the record, as a column over the rows (NaN where a row has none).
    labels = {"dtype", "solver"}
    per_row = {
        f.name: np.asarray(
            [r.get(f.name, np.nan) for r in rows], np.str_ if f.name in labels else float
        )
        for f in fields(SweepBenchmark)
        if f.name in rows[0] or f.name.endswith("mean_iter")
    }
    grid = dict(m=m, n=n, ranks=np.asarray(ranks), seeds=np.asarray(seed_list), max_iter=max_iter)
    end = dict(load_average=[load0, load_1min()], machine=mach)
    return SweepBenchmark(gflop=flops / 1e9, **grid, **end, **per_row)


def survey_large() -> dict:
    """The memory check: 5000×1000 float32, ranks 2..30 × 20 seeds, 20 MU iterations."""
    import jax.numpy as jnp

    import jaxnmf as jn

    rng = np.random.default_rng(0)
    V = (rng.random((5000, 30)) @ rng.random((30, 1000))).astype(np.float32)
    ranks, seeds, n_iter = range(2, 31), range(20), 20
    flops = grid_flops(5000, 1000, ranks, len(seeds), n_iter)
    ideal = flops / (matmul_gflops(jnp.float32) * 1e9)
    t0 = time.perf_counter()
    sw = jn.sweep(V, ranks, seeds, solver="mu", max_iter=n_iter, tol=0.0)
    seconds = time.perf_counter() - t0
    print(
        f"survey 5000×1000 float32, ranks 2..30 × 20 seeds, {n_iter} MU iterations "
        f"({flops / 1e9:.0f} GFLOP, ideal {ideal:.1f} s): {seconds:.1f} s "
        f"({sw.compile_time:.1f} s compile), peak RSS {peak_rss_gib():.2f} GiB"
    )
    return {
        "gflop": flops / 1e9,
        "ideal_s": ideal,
        "seconds": seconds,
        "compile_s": sw.compile_time,
        "peak_rss_gib": peak_rss_gib(),
    }


def main(argv=None):
    """The command line: :func:`run`, then the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--solvers", default="hals,mu")
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument(
        "--survey-large",
        action="store_true",
        help="also run the 5000×1000, ranks 2..30 × 20 seeds memory check",
    )
    parser.add_argument("--out", default="results/benchmarks", help="folder of the JSON file")
    args = parser.parse_args(argv)
    rec = run(
        args.seeds,
        args.max_iter,
        args.dtypes.split(","),
        args.solvers.split(","),
        args.skip_sklearn,
    )
    payload = _run.to_json(rec)
    if args.survey_large:
        payload["survey_large"] = survey_large()
    print(f"\nwrote {write_json('sweep_vs_sklearn', payload, args.out)}")


if __name__ == "__main__":
    main()
