"""Speed against scikit-learn: a rank survey as one sweep, and the time to reach a target.

Question: how long does jaxnmf take, compilation included, against scikit-learn on the same
machine and in the same process (one per benchmark), (1) for a rank survey (digits 1797 × 64,
ranks 2..20 × some seeds, Frobenius, tol = 0) done as one ``jaxnmf.sweep`` call against
scikit-learn's ``cd`` solver in a Python loop, with the ideal time (the grid's floating-point
work divided by the measured matmul throughput) for scale, and (2) to reach an objective
within 1e-3 relative of the best any solver reached, from the same initial factors, on a
random 600 × 400 (quick) or 2000 × 1000 matrix (k = 10 or 20) and on digits (k = 10)?

Two parts, each written to ``parts/<part>.npz`` / ``.json`` when done and reused on a restart;
each calls a benchmark function, which returns a typed record:

* ``sweep``: :func:`experiments.benchmarks.sweep_vs_sklearn.run` with the config's seeds,
  iterations, dtypes and solvers (it also times both at scikit-learn's tol = 1e-4).
* ``time_to_target``: :func:`experiments.benchmarks.solvers_vs_sklearn.run`. With
  ``time_to_target.solvers = null`` (full variant) it runs as is (per-iteration times, KL,
  time to target with every solver); with a list of solvers (smoke variant) only the time to
  target, with those jaxnmf solvers, on the same problems, and scikit-learn's search for the
  iterations needed stops at ``sklearn_max_iter``.

The experiment runs in one child process (``_run.run(..., clean_env=True)``) whose
environment lacks ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` when numpy loads, and which
has no compilation cache (compile times are those of a first call). This project's machines
set those variables for old OpenBLAS builds; they make numpy's and scipy's OpenBLAS, which
scikit-learn computes with, run slower kernels (float32 GEMM 72 instead of 195 GFLOP/s on the
2-core AMD EPYC), and OpenBLAS reads them when it loads: in the process of ``python -m
experiments`` (which has imported numpy) removing them would come too late.

Each record keeps its labels (grid, dtypes, solvers, problems) in ``arrays.npz`` and every
time, objective and iteration count, the 1-minute load average before and after, and the
machine (threadpoolctl's BLAS: kernel, version, threads; what was removed from the
environment; numpy's and jax's GEMM GFLOP/s) in ``meta.json`` (``records``): timings vary
from run to run and stay out of the hashed file. The benchmarks use their own fixed seeds
(NumPy ``default_rng(0)`` for the random matrix, ``default_rng(2)`` for the initial factors,
seeds 0..n-1 of ``sweep``); ``root_seed`` is recorded but unused.

Feeds: ``paper_figures/fig_07_speed.py`` (Figure 7).

Expected runtime (2-core CPU, including compilation): smoke ≈ 70 s measured on this project's
shared 2-core machine (sweep 14 s, time to target 50 s, the child process's start and its
machine records the rest); full ≈ 6 min idle (sweep ≈ 2–3 min, solvers ≈ 3 min).
GPU: scikit-learn still runs on the CPU.
"""

from __future__ import annotations

from pathlib import Path

from . import _run

NAME = "speed"


def get_config(variant: str) -> dict:
    """The full config of a run as a plain dict. ``variant``: ``"smoke"`` or ``"full"``."""
    smoke = variant == "smoke"
    return {
        "name": NAME,
        "variant": variant,
        "root_seed": 0,
        "sweep": {
            "enabled": True,
            "data": "sklearn.datasets.load_digits, ranks 2..20",
            "seeds": 1 if smoke else 10,
            "max_iter": 50 if smoke else 200,
            "dtypes": ["float32"] if smoke else ["float32", "float64"],
            "solvers": ["hals", "mu"],
        },
        "time_to_target": {
            "enabled": True,
            "quick": smoke,
            "repeats": 1 if smoke else 3,
            # null: the benchmark's own list (mu, hals, accelerated_hals, accelerated_mu,
            # nesterov, anls, pg) and its per-iteration and KL measurements.
            "solvers": ["mu", "hals", "accelerated_hals"] if smoke else None,
            # With a list of solvers: scikit-learn's iteration cap in the search for the count
            # that reaches the target (the benchmark's main uses 4 × jaxnmf's 300 or 1000).
            "sklearn_max_iter": 300 if smoke else None,
        },
    }


def parts(config: dict, run: _run.Run):
    """The two benchmarks, called in this (clean) process; each returns its record."""
    from .benchmarks import solvers_vs_sklearn, sweep_vs_sklearn

    sw, tt = config["sweep"], config["time_to_target"]
    kwargs = {"quick": tt["quick"], "repeats": int(tt["repeats"])}
    if tt["solvers"] is not None:  # the time to target only, with these solvers
        kwargs.update(solvers=tt["solvers"], only_time_to_target=True)
        kwargs.update(sklearn_max_iter=tt["sklearn_max_iter"])
    yield _run.Part(
        "sweep",
        sweep_vs_sklearn.SweepBenchmark,
        lambda: sweep_vs_sklearn.run(sw["seeds"], sw["max_iter"], sw["dtypes"], sw["solvers"]),
    )
    yield _run.Part(
        "time_to_target",
        solvers_vs_sklearn.SolverBenchmark,
        lambda: solvers_vs_sklearn.run(**kwargs),
    )


def main(config: dict, out_dir: Path) -> dict:
    """Run both benchmarks in a clean child process; write ``arrays.npz`` and ``meta.json``."""
    return _run.run(config, out_dir, parts, clean_env=True)
