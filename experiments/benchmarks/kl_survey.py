"""KL rank survey: one ``jaxnmf.sweep`` against scikit-learn's multiplicative updates in a loop.

Question (issue: fast sweeps for every loss): how long does a generalized Kullback–Leibler
rank survey take — digits (1797 × 64), ranks 2..20 × 5 seeds, 200 iterations, float32 — as
one compiled ``jaxnmf.sweep(loss="kl", solver="mu")`` against
``sklearn.decomposition.NMF(solver="mu", beta_loss="kullback-leibler")`` fitted member by
member, the same algorithm (Lee & Seung 2001's KL updates, Févotte & Idier's exponent 1)?

Fair terms: ``tol=0`` on both sides, so every member does exactly ``max_iter`` iterations.
scikit-learn evaluates its objective every 10 iterations; jaxnmf is timed both ways,
``eval_every=1`` (its default: the stopping rule reads every iteration) and
``eval_every=10`` (scikit-learn's cadence: for KL the objective costs about as much as an
update). Each side is the median of ``--repeats`` whole runs; jaxnmf's first run pays the
compilation (reported apart, ``compile_s``: it is zero in the later, in-process runs) and
``cold_s`` is that first run, compile included. The process drops the machine's OpenBLAS
kernel overrides before numpy loads (``_fair_env``) and records the BLAS, numpy's and jax's
GEMM throughput and the load (``machine``).

Compile once per machine: each cadence's sweep is also run as the first call of two new
processes with JAX's persistent compilation cache (:func:`jaxnmf.enable_compilation_cache`)
in ``--compile-cache`` (default ``<out>/.jax_cache``; ``--no-compile-cache`` skips this):
the first (``cache_fill_s``) compiles what the folder lacks and stores it, the second
(``cached_cold_s``) is what every later new process pays, tracing and loading included.
``cache_entries_at_start`` says whether the folder was empty.

Runtime on a 2-core CPU: about 3 minutes. :func:`run` returns a :class:`KLSurveyBenchmark`;
the command line writes ``results/benchmarks/kl_survey.json``.

    python -m experiments.benchmarks.kl_survey [--seeds 5] [--max-iter 200] [--repeats 3]
        [--compile-cache DIR | --no-compile-cache]
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env  # noqa: F401

# isort: split
import argparse
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments import _run
from experiments.benchmarks._bench import (
    cache_entries,
    in_new_process,
    load_1min,
    machine,
    print_machine,
    write_json,
)

_T = {"metadata": _run.META}  # a timing (or machine) field: JSON, outside the hashed arrays


@dataclass(frozen=True)
class KLSurveyBenchmark:
    """The KL survey timed, scikit-learn's loop and jaxnmf's sweep at two objective cadences.

    ``*_s`` are medians over the repeats; ``jaxnmf_cold_s`` is jaxnmf's first run (compile
    included) and ``jaxnmf_compile_s`` its compile time; ``ratio_*`` = scikit-learn / jaxnmf.
    ``final_loss_*`` are the mean objectives over the grid at the end (the same algorithm
    from different random starts: close, not equal)."""

    m: int
    n: int
    ranks: np.ndarray
    seeds: np.ndarray
    max_iter: int
    eval_every: np.ndarray  # (2,) the jaxnmf cadences timed
    sklearn_s: float = field(**_T)
    jaxnmf_s: list = field(**_T)  # per cadence, warm median
    jaxnmf_cold_s: list = field(**_T)
    jaxnmf_compile_s: list = field(**_T)
    ratio_warm: list = field(**_T)
    ratio_cold: list = field(**_T)
    cache_fill_s: list = field(**_T)  # per cadence; NaN without a cache folder
    cached_cold_s: list = field(**_T)
    ratio_cached_cold: list = field(**_T)
    cache_entries_at_start: int = field(**_T)
    final_loss_sklearn: float = field(**_T)
    final_loss_jaxnmf: float = field(**_T)
    load_average: list = field(**_T)  # 1-minute load at the start and the end
    machine: dict = field(**_T)


def _sklearn_loop(X, ranks, seeds, max_iter):
    """scikit-learn's MU-KL over the grid, member by member: ``(seconds, mean final loss)``."""
    from sklearn.decomposition import NMF

    losses = []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at tol=0
        for r in ranks:
            for s in seeds:
                model = NMF(
                    r, solver="mu", beta_loss="kullback-leibler", init="random",
                    random_state=s, max_iter=max_iter, tol=0.0,
                )  # fmt: skip
                model.fit(X)
                losses.append(model.reconstruction_err_)
    # reconstruction_err_ is sqrt(2 · KL): back to the divergence
    return time.perf_counter() - t0, float(np.mean(np.square(losses) / 2))


def _jaxnmf_sweep(X, ranks, seeds, max_iter, eval_every):
    import jaxnmf as jn

    t0 = time.perf_counter()
    sw = jn.sweep(
        X, ranks, seeds, loss="kl", solver="mu", max_iter=max_iter, tol=0.0, eval_every=eval_every
    )
    return time.perf_counter() - t0, sw


def _digits():
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float32)


def run(seeds: int = 5, max_iter: int = 200, repeats: int = 3, cache=None) -> KLSurveyBenchmark:
    """Time the survey both ways (see the module docstring); ``cache``: the persistent
    compilation cache folder of the new-process timings, or None to skip them."""
    X = _digits()
    (m, n), ranks, seed_list = X.shape, list(range(2, 21)), list(range(seeds))
    mach, load0 = machine(), load_1min()
    print(f"KL survey: digits {m}×{n}, ranks 2..20 × {seeds} seeds, {max_iter} it., float32")
    print_machine(mach)
    sk_runs = [_sklearn_loop(X, ranks, seed_list, max_iter) for _ in range(repeats)]
    sk = float(np.median([t for t, _ in sk_runs]))
    print(f"  scikit-learn mu loop: {sk:.2f} s (median of {repeats})")
    cadences = [1, 10]
    warm, cold, compile_s, final = [], [], [], np.nan
    for every in cadences:
        runs = [_jaxnmf_sweep(X, ranks, seed_list, max_iter, every) for _ in range(repeats)]
        cold.append(runs[0][0])
        compile_s.append(runs[0][1].compile_time)
        # the warm runs: the program is compiled (an in-process cache hit)
        warm.append(float(np.median([t for t, _ in runs[1:]])) if repeats > 1 else runs[0][0])
        final = float(np.mean(runs[0][1].final_loss))
        print(
            f"  jaxnmf sweep eval_every={every}: {warm[-1]:.2f} s warm, {cold[-1]:.2f} s cold "
            f"({compile_s[-1]:.2f} s compile); scikit-learn / jaxnmf {sk / warm[-1]:.2f} warm, "
            f"{sk / cold[-1]:.2f} cold"
        )
    entries = cache_entries(cache) if cache is not None else 0
    fill, cached = [], []
    for every in cadences:
        if cache is None:
            fill.append(float("nan"))
            cached.append(float("nan"))
            continue
        child = ["--child", str(every), "--seeds", str(seeds), "--max-iter", str(max_iter)]
        module = "experiments.benchmarks.kl_survey"
        fill.append(in_new_process(module, child, cache)["seconds"])
        cached.append(in_new_process(module, child, cache)["seconds"])
        print(
            f"  eval_every={every} in a new process with the compilation cache: "
            f"{fill[-1]:.2f} s filling it, {cached[-1]:.2f} s with it warm "
            f"(scikit-learn / jaxnmf {sk / cached[-1]:.2f})"
        )
    return KLSurveyBenchmark(
        m=m,
        n=n,
        ranks=np.asarray(ranks),
        seeds=np.asarray(seed_list),
        max_iter=max_iter,
        eval_every=np.asarray(cadences),
        sklearn_s=sk,
        jaxnmf_s=warm,
        jaxnmf_cold_s=cold,
        jaxnmf_compile_s=compile_s,
        ratio_warm=[sk / t for t in warm],
        ratio_cold=[sk / t for t in cold],
        cache_fill_s=fill,
        cached_cold_s=cached,
        ratio_cached_cold=[sk / t for t in cached],
        cache_entries_at_start=entries,
        final_loss_sklearn=float(np.median([f for _, f in sk_runs])),
        final_loss_jaxnmf=final,
        load_average=[load0, load_1min()],
        machine=mach,
    )


def main(argv=None):
    """The command line: :func:`run`, then the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/benchmarks", help="folder of the JSON file")
    parser.add_argument("--compile-cache", help="persistent cache folder (<out>/.jax_cache)")
    parser.add_argument("--no-compile-cache", action="store_true", help="skip those timings")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one timed sweep
    args = parser.parse_args(argv)
    if args.child is not None:  # a new process of in_new_process: time the first call
        import jaxnmf as jn

        jn.enable_compilation_cache(os.environ["JAXNMF_BENCH_CACHE"])
        X, seeds = _digits(), list(range(args.seeds))
        seconds, _ = _jaxnmf_sweep(X, list(range(2, 21)), seeds, args.max_iter, args.child)
        print(json.dumps({"seconds": seconds}))
        return
    cache = None
    if not args.no_compile_cache:
        cache = Path(args.compile_cache or Path(args.out) / ".jax_cache").resolve()
    rec = run(args.seeds, args.max_iter, args.repeats, cache)
    print(f"\nwrote {write_json('kl_survey', _run.to_json(rec), args.out)}")


if __name__ == "__main__":
    main()
