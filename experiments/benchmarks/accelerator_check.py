"""The prepared accelerator check of the sweeps issue: jaxnmf on the default device (a GPU
where one is lent) against scikit-learn on the same machine's CPUs, float32, cold and warm.

Three measurements, each in this one process (so "cold" is the first call of a process
without the persistent compilation cache):

1. the digits survey: ranks 2..20 × 10 seeds, 200 iterations, ``tol=0``, MU and HALS,
   against scikit-learn's ``cd`` loop over the same grid;
2. a 5000 × 1000 survey: ranks 2..30 × 20 seeds, 20 MU iterations (planted rank 20 plus
   noise), against scikit-learn's ``cd`` loop over the members of ``--sklearn-seeds`` seeds
   (the whole grid would take minutes on the CPUs): its time for those seeds
   (``sklearn_cd_s``) and that time scaled to the whole grid (``sklearn_scaled_s``);
3. one 20000 × 5000 fit, k = 50, 100 iterations (MU and HALS) against scikit-learn's ``cd``
   with ``max_iter=100``, ``tol=0``.

Meant to run in under 5 minutes on the lent H200 (16 CPU cores for scikit-learn):

    PYTHONPATH=. python -m experiments.benchmarks.accelerator_check --out $OUT

``--quick`` shrinks every problem (a check of the script itself: 31 s on a 2-core CPU).
Both survey loops are :mod:`.sweep_vs_sklearn`'s (``run_sklearn``, ``run_jaxnmf``). The
process drops the machine's OpenBLAS kernel overrides before numpy loads (``_fair_env``) and
records the machine: its devices, BLAS, GEMM rates and load. Writes
``<out>/accelerator_check.json``.
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env  # noqa: F401

# isort: split
import argparse
import time
import warnings

import jax
import numpy as np

from experiments.benchmarks._bench import load_1min, machine, print_machine, write_json
from experiments.benchmarks.sweep_vs_sklearn import run_jaxnmf, run_sklearn


def _timed(fn):
    """``(seconds, result)`` of ``fn()``, its arrays ready."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    return time.perf_counter() - t0, out


def _sklearn_cd_loop(X, ranks, seeds, max_iter) -> float:
    """Seconds for scikit-learn's ``cd`` over every (rank, seed), ``tol=0``."""
    return run_sklearn(X, ranks, seeds, max_iter, 0.0)[0]


def _survey(X, ranks, seeds, max_iter, solver, repeats=2) -> dict:
    """jaxnmf's sweep of the grid, ``tol=0``: cold (first call) and warm (the median of the
    rest)."""
    times = [run_jaxnmf(X, ranks, seeds, max_iter, 0.0, solver)[0] for _ in range(repeats)]
    return {"cold_s": times[0], "warm_s": float(np.median(times[1:]))}


def _planted(m, n, k, seed=0):
    rng = np.random.default_rng(seed)
    V = rng.random((m, k), dtype=np.float32) @ rng.random((k, n), dtype=np.float32)
    return V + 0.1 * rng.random((m, n), dtype=np.float32)


def run(quick: bool = False, sklearn_seeds: int = 2) -> dict:
    """The three measurements (see the module docstring); a JSON-ready dict."""
    from sklearn.datasets import load_digits

    import jaxnmf as jn

    record = {"machine": machine(), "devices": [str(d) for d in jax.devices()]}
    record["load_start"] = load_1min()
    print_machine(record["machine"])
    print(f"devices: {record['devices']}")

    # 1. digits survey
    X = load_digits().data.astype(np.float32)
    ranks, seeds, it = list(range(2, 21)), list(range(3 if quick else 10)), 50 if quick else 200
    sk = _sklearn_cd_loop(X, ranks, seeds, it)
    digits = {"ranks": ranks, "seeds": len(seeds), "max_iter": it, "sklearn_cd_s": sk}
    for solver in ("mu", "hals"):
        digits[solver] = _survey(X, ranks, seeds, it, solver)
        d = digits[solver]
        print(
            f"digits survey {solver}: {d['cold_s']:.2f} s cold, {d['warm_s']:.2f} s warm; "
            f"scikit-learn cd loop {sk:.2f} s ({sk / d['cold_s']:.1f}× / {sk / d['warm_s']:.1f}×)"
        )
    record["digits_survey"] = digits

    # 2. 5000 × 1000 survey, ranks 2..30 × 20 seeds, 20 MU iterations
    m, n = (1000, 500) if quick else (5000, 1000)
    V = _planted(m, n, 20)
    ranks, seeds, it = list(range(2, 31)), list(range(4 if quick else 20)), 20
    large = {"shape": [m, n], "ranks": ranks, "seeds": len(seeds), "max_iter": it}
    large["mu"] = _survey(V, ranks, seeds, it, "mu")
    some = seeds[:sklearn_seeds]
    sk = _sklearn_cd_loop(V, ranks, some, it)
    large["sklearn_cd_seeds"] = len(some)
    large["sklearn_cd_s"] = sk
    large["sklearn_scaled_s"] = sk * len(seeds) / len(some)
    d = large["mu"]
    print(
        f"{m}×{n} survey mu: {d['cold_s']:.2f} s cold, {d['warm_s']:.2f} s warm; scikit-learn "
        f"cd loop {sk:.2f} s for {len(some)} of {len(seeds)} seeds "
        f"(scaled to the grid: {large['sklearn_scaled_s']:.1f} s)"
    )
    record["large_survey"] = large

    # 3. one 20000 × 5000 fit, k = 50, 100 iterations
    m, n, k, it = (4000, 1000, 50, 30) if quick else (20000, 5000, 50, 100)
    V = _planted(m, n, k, seed=1)
    big = {"shape": [m, n], "k": k, "max_iter": it}
    for solver in ("mu", "hals"):
        call = lambda solver=solver: jn.fit(V, k, solver=solver, max_iter=it, tol=0.0).W
        cold, _ = _timed(call)
        warm, _ = _timed(call)
        big[solver] = {"cold_s": cold, "warm_s": warm}
    from sklearn.decomposition import NMF

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        NMF(k, solver="cd", init="random", random_state=0, max_iter=it, tol=0.0).fit(V)
        big["sklearn_cd_s"] = time.perf_counter() - t0
    for solver in ("mu", "hals"):
        d = big[solver]
        print(
            f"{m}×{n} fit k={k} {solver}: {d['cold_s']:.2f} s cold, {d['warm_s']:.2f} s warm; "
            f"scikit-learn cd {big['sklearn_cd_s']:.2f} s"
        )
    record["large_fit"] = big
    record["load_end"] = load_1min()
    return record


def main(argv=None):
    """The command line: :func:`run`, then the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small problems: check the script")
    parser.add_argument("--sklearn-seeds", type=int, default=2, help="seeds of the large survey")
    parser.add_argument("--out", default="results/benchmarks", help="folder of the JSON file")
    args = parser.parse_args(argv)
    rec = run(args.quick, args.sklearn_seeds)
    print(f"\nwrote {write_json('accelerator_check', rec, args.out)}")


if __name__ == "__main__":
    main()
