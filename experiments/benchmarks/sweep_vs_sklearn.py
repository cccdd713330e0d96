"""Rank survey benchmark: one ``jaxnmf.sweep`` call against scikit-learn in a Python loop.

Question: how long does a rank survey (digits, 1797 × 64, ranks 2..20 × 10 seeds, 200
iterations, Frobenius) take with one compiled sweep, against scikit-learn fitting the same
grid member by member, and how close is it to the machine's ideal time (the grid's
floating-point work divided by the measured matmul throughput)?

Feeds: the README's benchmark table and figure 7. Runtime on a 2-core CPU: about 2 minutes
(``--seeds 2`` for a quick look). Writes ``results/benchmarks/sweep_vs_sklearn.json``.
Runs in its own process, without the machine's OpenBLAS kernel overrides (``_fair_env``);
``machine`` in the JSON records the BLAS, numpy's and jax's GEMM throughput and the load.

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

import numpy as np

from experiments.benchmarks._bench import (
    machine,
    matmul_gflops,
    peak_rss_gib,
    print_machine,
    write_json,
)


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
    wall = time.perf_counter() - t0
    return wall, sw


def main(argv=None):
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
    parser.add_argument(
        "--out", default="results/benchmarks", help="folder of the result JSON file"
    )
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    from sklearn.datasets import load_digits

    X64 = load_digits().data.astype(np.float64)
    m, n = X64.shape
    ranks = list(range(2, 21))
    seeds = list(range(args.seeds))
    flops = grid_flops(m, n, ranks, len(seeds), args.max_iter)
    out = {
        "machine": machine(),
        "grid": {
            "m": m,
            "n": n,
            "ranks": ranks,
            "seeds": seeds,
            "max_iter": args.max_iter,
            "gflop": flops / 1e9,
        },
        "runs": [],
    }
    print(
        f"grid: digits {m}×{n}, ranks 2..20 × {len(seeds)} seeds, {args.max_iter} iterations:"
        f" {flops / 1e9:.0f} GFLOP"
    )
    print_machine(out["machine"])
    for dtype in args.dtypes.split(","):
        X = X64.astype(dtype)
        import jax.numpy as jnp

        gflops = matmul_gflops(jnp.dtype(dtype))
        ideal = flops / (gflops * 1e9)
        print(f"\n[{dtype}] matmul {gflops:.1f} GFLOP/s -> ideal {ideal:.2f} s")
        sk_time = float("nan")
        if not args.skip_sklearn:
            sk_time, _ = run_sklearn(X, ranks, seeds, args.max_iter, tol=0.0)
            print(f"  scikit-learn cd loop: {sk_time:.2f} s ({sk_time / ideal:.1f}× ideal)")
        for solver in args.solvers.split(","):
            wall, sw = run_jaxnmf(X, ranks, seeds, args.max_iter, 0.0, solver)
            run_time = wall - sw.compile_time
            row = {
                "dtype": dtype,
                "solver": solver,
                "gflops_machine": gflops,
                "ideal_s": ideal,
                "sklearn_cd_s": sk_time,
                "jaxnmf_total_s": wall,
                "jaxnmf_compile_s": sw.compile_time,
                "jaxnmf_run_s": run_time,
                "speedup_vs_sklearn": sk_time / wall,
                "total_over_ideal": wall / ideal,
                "fraction_of_matmul_peak": ideal / run_time,
            }
            out["runs"].append(row)
            if np.isnan(sk_time):  # --skip-sklearn
                versus = "scikit-learn not run"
            elif sk_time >= wall:
                versus = f"{sk_time / wall:.2g}× faster than scikit-learn"
            else:
                versus = f"{wall / sk_time:.2g}× slower than scikit-learn"
            print(
                f"  jaxnmf {solver}: {wall:.2f} s total ({sw.compile_time:.2f} s compile, "
                f"{run_time:.2f} s run) = {wall / ideal:.2f}× ideal; {versus}; "
                f"{100 * ideal / run_time:.0f}% of matmul peak while running"
            )
        # Per-member stopping at scikit-learn's default tolerance.
        if not args.skip_sklearn:
            sk_tol, sk_iters = run_sklearn(X, ranks, seeds, args.max_iter, tol=1e-4)
            wall, sw = run_jaxnmf(X, ranks, seeds, args.max_iter, 1e-4, "hals")
            out["runs"].append(
                {
                    "dtype": dtype,
                    "solver": "hals",
                    "tol": 1e-4,
                    "sklearn_cd_s": sk_tol,
                    "jaxnmf_total_s": wall,
                    "sklearn_mean_iter": float(np.mean(sk_iters)),
                    "jaxnmf_mean_iter": float(np.mean(sw.n_iter)),
                }
            )
            print(
                f"  tol=1e-4 (each member stops on its own): scikit-learn {sk_tol:.2f} s "
                f"(mean {np.mean(sk_iters):.0f} it), jaxnmf hals {wall:.2f} s "
                f"(mean {np.mean(sw.n_iter):.0f} it, max {np.max(sw.n_iter)})"
            )

    if args.survey_large:
        import jax.numpy as jnp

        import jaxnmf as jn

        rng = np.random.default_rng(0)
        V = (rng.random((5000, 30)) @ rng.random((30, 1000))).astype(np.float32)
        large_ranks, large_seeds, large_iter = range(2, 31), range(20), 20
        large_flops = grid_flops(5000, 1000, large_ranks, len(large_seeds), large_iter)
        large_ideal = large_flops / (matmul_gflops(jnp.float32) * 1e9)
        t0 = time.perf_counter()
        sw = jn.sweep(V, large_ranks, large_seeds, solver="mu", max_iter=large_iter, tol=0.0)
        seconds = time.perf_counter() - t0
        out["survey_large"] = {
            "shape": [5000, 1000],
            "ranks": [2, 30],
            "seeds": len(large_seeds),
            "max_iter": large_iter,
            "gflop": large_flops / 1e9,
            "ideal_s": large_ideal,
            "seconds": seconds,
            "compile_s": sw.compile_time,
            "members": int(sw.W.shape[0] * sw.W.shape[1]),
            "peak_rss_gib": peak_rss_gib(),
        }
        print(
            f"\nsurvey 5000×1000 float32, ranks 2..30 × 20 seeds, {large_iter} MU iterations "
            f"({large_flops / 1e9:.0f} GFLOP, ideal {large_ideal:.1f} s): {seconds:.1f} s "
            f"({sw.compile_time:.1f} s compile), peak RSS {peak_rss_gib():.2f} GiB"
        )
    path = write_json("sweep_vs_sklearn", out, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
