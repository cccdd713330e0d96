"""Solver benchmark: time per iteration, time to a target objective, KL, against scikit-learn.

Questions (issue: same harness and benchmarks):
  1. Time per iteration of jaxnmf's mu and hals on a dense 2000 × 1000 float32 matrix, k = 20,
     against the ideal (the iteration's floating-point work / the measured matmul GFLOP/s) and
     against scikit-learn's mu and cd, same data, same process.
  2. Time to reach a target objective (within 1e-3 relative of the best any solver reached) on
     that matrix and on digits (k = 10): every jaxnmf solver against scikit-learn's cd and mu,
     all from the same initial factors.
  3. KL: jaxnmf mu against scikit-learn's mu (beta_loss="kullback-leibler"), time per iteration;
     the same for Itakura–Saito and β = 1.5.

Feeds: the README's benchmark table and figure 7 (through the speed experiment, which calls
:func:`run`). Runtime on a 2-core CPU: ~3 minutes (``--quick``: ~1 minute). The command line
writes ``results/benchmarks/solvers_vs_sklearn.json``. Medians of
``--repeats`` runs; compilation is excluded from per-iteration times and reported apart.
Runs in its own process, without the machine's OpenBLAS kernel overrides (``_fair_env``);
``machine`` in the JSON records the BLAS, numpy's and jax's GEMM throughput and the load.

    python -m experiments.benchmarks.solvers_vs_sklearn [--quick]
    # time to target only, some solvers, scikit-learn's search capped (the speed smoke run):
    python -m experiments.benchmarks.solvers_vs_sklearn --quick --only-time-to-target \
        --solvers mu,hals,accelerated_hals --sklearn-max-iter 300
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env  # noqa: F401

# isort: split
import argparse
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from experiments import _run
from experiments.benchmarks._bench import (
    load_1min,
    machine,
    matmul_gflops,
    median_time,
    print_machine,
    write_json,
)

_T = {"metadata": _run.META}  # a timing (or machine) field: JSON, outside the hashed arrays

# The jaxnmf solvers of the time-to-target benchmark (``--solvers`` runs some of them).
SOLVERS = ("mu", "hals", "accelerated_hals", "accelerated_mu", "nesterov", "anls", "pg")

ITER_FLOPS = {
    # per iteration, W and H updates: 4mnk for VHᵀ and WᵀV, 4(m+n)k² for the Gram products
    "frobenius": lambda m, n, k: 4 * m * n * k + 4 * (m + n) * k * k,
    # KL MU: WH (2mnk), then (V/WH)Hᵀ and Wᵀ(V/WH) (4mnk), for each of the two updates
    "kl": lambda m, n, k: 2 * (2 * m * n * k) + 4 * m * n * k,
    # other β (IS included): WH, then both parts of the gradient, posHᵀ and negHᵀ (and
    # Wᵀpos, Wᵀneg), as neither part is constant: 6mnk for each of the two updates
    "is": lambda m, n, k: 12 * m * n * k,
    "beta=1.5": lambda m, n, k: 12 * m * n * k,
}
# loss name -> (jaxnmf's loss, scikit-learn's beta_loss)
LOSSES = {
    "frobenius": ("frobenius", "frobenius"),
    "kl": ("kl", "kullback-leibler"),
    "is": ("is", "itakura-saito"),
    "beta=1.5": (1.5, 1.5),
}


def _sk_fit(X, W0, H0, solver, beta, max_iter):
    from sklearn.decomposition import non_negative_factorization

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W, H, _ = non_negative_factorization(
            X,
            W0.copy(),
            H0.copy(),
            n_components=W0.shape[1],
            init="custom",
            solver=solver,
            beta_loss=beta,
            max_iter=max_iter,
            tol=0.0,
        )
    return W, H


def _differential(run, n_iter, repeats):
    """Seconds per iteration as (t(10 + n_iter) - t(10)) / n_iter, medians of ``repeats``:
    fixed per-call costs (validation, dispatch, scikit-learn's thread-pool set-up) cancel."""
    short = median_time(lambda: run(10), repeats)
    long = median_time(lambda: run(10 + n_iter), repeats)
    return max(long - short, 0.0) / n_iter, short


def per_iteration(X, k, loss, repeats, n_iter, rng):
    """Median seconds per iteration of jaxnmf and scikit-learn, same init, tol = 0."""
    import jaxnmf as jn

    m, n = X.shape
    scale = np.sqrt(X.mean() / k)
    W0 = (scale * np.abs(rng.standard_normal((m, k)))).astype(X.dtype)
    H0 = (scale * np.abs(rng.standard_normal((k, n)))).astype(X.dtype)
    ours, beta = LOSSES[loss]
    rows = {}
    # (label, solver, eval_every): for KL/β the objective costs about as much as an MU update,
    # and scikit-learn's mu evaluates it every 10 iterations; eval_every=10 does the same.
    runs = [("mu", "mu", 1), ("hals", "hals", 1)] if loss == "frobenius" else [("mu", "mu", 1)]
    if loss != "frobenius":
        runs.append(("mu_eval_every_10", "mu", 10))
    for label, solver, every in runs:

        def run(it, solver=solver, every=every):
            return jn.fit(
                X,
                k,
                loss=ours,
                solver=solver,
                init=(W0, H0),
                max_iter=it,
                tol=0.0,
                eval_every=every,
            )

        t0 = time.perf_counter()
        run(10), run(10 + n_iter)  # compile both lengths (max_iter is static)
        compile_s = time.perf_counter() - t0
        t, short = _differential(run, n_iter, repeats)
        rows[f"jaxnmf_{label}"] = {
            "s_per_iter": t,
            "call_10_iter_s": short,
            "compile_s": compile_s,
        }
    for solver in ["mu", "cd"] if loss == "frobenius" else ["mu"]:

        def run(it, solver=solver):
            return _sk_fit(X, W0, H0, solver, beta, it)

        t, short = _differential(run, n_iter, repeats)
        rows[f"sklearn_{solver}"] = {"s_per_iter": t, "call_10_iter_s": short}
    return rows


def _sk_objective_at(X, W0, H0, solver, n_iter):
    W, H = _sk_fit(X, W0, H0, solver, "frobenius", n_iter)
    return float(np.sum((X.astype(np.float64) - W.astype(np.float64) @ H) ** 2))


def sklearn_time_to_target(X, W0, H0, solver, target, max_iter):
    """Smallest iteration count whose objective is <= target (doubling, then bisection on the
    deterministic runs), and the time of one run of that length."""
    lo, hi = 0, 1
    while _sk_objective_at(X, W0, H0, solver, hi) > target:
        lo, hi = hi, hi * 2
        if hi > max_iter:
            return float("nan"), None
    while hi - lo > max(1, hi // 50):  # 2 % resolution on the iteration count is plenty
        mid = (lo + hi) // 2
        if _sk_objective_at(X, W0, H0, solver, mid) <= target:
            hi = mid
        else:
            lo = mid
    seconds = median_time(lambda: _sk_fit(X, W0, H0, solver, "frobenius", hi), 3)
    return seconds, hi


def time_to_target(name, X, k, solvers, max_iter, rng, sk_max_iter):
    import jaxnmf as jn

    m, n = X.shape
    scale = np.sqrt(X.mean() / k)
    W0 = (scale * np.abs(rng.standard_normal((m, k)))).astype(X.dtype)
    H0 = (scale * np.abs(rng.standard_normal((k, n)))).astype(X.dtype)
    cmp = jn.compare(
        X, k, solvers=solvers, init=(W0, H0), seeds=[0], max_iter=max_iter, tol=0.0, chunk=5
    )
    best = cmp.best_loss()
    target = best * (1 + 1e-3)
    out = {
        "data": name,
        "shape": [m, n],
        "k": k,
        "best_objective": best,
        "target": target,
        "solvers": {},
    }
    for label, trace in cmp.traces.items():
        f = trace.losses[0]
        hit = np.nonzero(f <= target)[0]
        row = {
            "compile_s": trace.compile_seconds,
            "final": float(np.nanmin(f)),
            "iterations": None,
            "seconds": float("nan"),
        }
        if hit.size:
            # Time a whole call of that length, as for scikit-learn (compiled beforehand).
            iters = int(hit[0] + 1)
            solver = solvers[list(cmp.traces).index(label)]
            kw = dict(solver=solver, init=(W0, H0), max_iter=iters, tol=0.0)
            jn.fit(X, k, **kw)
            row.update(
                iterations=iters,
                seconds=median_time(lambda kw=kw: jn.fit(X, k, **kw), 3),
                loop_seconds=float(trace.seconds_per_iteration()[0][hit[0]]),
            )
        out["solvers"][f"jaxnmf_{label}"] = row
    for solver in ("cd", "mu"):
        seconds, iters = sklearn_time_to_target(X, W0, H0, solver, target, sk_max_iter)
        out["solvers"][f"sklearn_{solver}"] = {"iterations": iters, "seconds": seconds}
    return out


@dataclass(frozen=True)
class SolverBenchmark:
    """Per-iteration times (one row per loss and library/solver) and the time to a target
    objective (problems × solvers). Labels and shapes are arrays; times, objectives,
    iteration counts (NaN: target not reached) and the machine are JSON fields."""

    shape: np.ndarray  # (2,) of the random matrix
    k: int
    max_iter_jaxnmf: int
    max_iter_sklearn: int
    solvers: np.ndarray  # the jaxnmf solvers of the time to target
    per_iter_loss: np.ndarray  # (n_rows,)
    per_iter_label: np.ndarray  # (n_rows,) e.g. "jaxnmf_mu", "sklearn_cd"
    ttt_data: np.ndarray  # (n_problems,)
    ttt_shape: np.ndarray  # (n_problems, 2)
    ttt_k: np.ndarray
    ttt_labels: np.ndarray  # (n_labels,) jaxnmf solvers, then sklearn_cd, sklearn_mu
    matmul_gflops_float32: float = field(**_T)
    per_iter_s: np.ndarray = field(**_T)
    per_iter_compile_s: np.ndarray = field(**_T)  # NaN for scikit-learn
    per_iter_ideal_s: np.ndarray = field(**_T)
    ttt_best_objective: np.ndarray = field(**_T)  # (n_problems,)
    ttt_target: np.ndarray = field(**_T)
    ttt_seconds: np.ndarray = field(**_T)  # (n_problems, n_labels)
    ttt_iterations: np.ndarray = field(**_T)
    ttt_compile_s: np.ndarray = field(**_T)
    ttt_final: np.ndarray = field(**_T)
    load_average: list = field(**_T)  # 1-minute load at the start and the end
    machine: dict = field(**_T)


def run(
    quick: bool = False,
    repeats: int = 3,
    solvers=SOLVERS,
    only_time_to_target: bool = False,
    sklearn_max_iter: int | None = None,
) -> SolverBenchmark:
    """Per-iteration times (unless ``only_time_to_target``) and the time to target on the
    random matrix and on digits. ``sklearn_max_iter``: scikit-learn's cap in the search for
    the iterations that reach the target (default 4 × jaxnmf's 300 with ``quick``, else 1000)."""
    import jax.numpy as jnp
    from sklearn.datasets import load_digits

    solvers = list(solvers)
    unknown = sorted(set(solvers) - set(SOLVERS))
    if unknown:
        raise ValueError(f"solvers: unknown {unknown}; known: {', '.join(SOLVERS)}")
    rng = np.random.default_rng(0)
    m, n, k = (600, 400, 10) if quick else (2000, 1000, 20)
    X = rng.random((m, n)).astype(np.float32)
    mach, load0 = machine(), load_1min()
    gflops = matmul_gflops(jnp.float32)
    max_iter = 300 if quick else 1000
    sk_max_iter = sklearn_max_iter or 4 * max_iter
    print(f"matmul throughput (float32): {gflops:.1f} GFLOP/s")
    print_machine(mach)
    rows = []  # one per loss and library/solver
    for loss in () if only_time_to_target else LOSSES:
        ideal = ITER_FLOPS[loss](m, n, k) / (gflops * 1e9)
        # Itakura–Saito is undefined at V = 0: the same matrix, floored (both libraries)
        data = np.maximum(X, np.float32(1e-6)) if loss == "is" else X
        n_iter = 20 if quick else 50
        found = per_iteration(data, k, loss, repeats, n_iter, np.random.default_rng(1))
        for label, row in found.items():
            rows.append(
                {"loss": loss, "label": label, "s": row["s_per_iter"], "ideal_s": ideal, **row}
            )
            print(
                f"  [{loss}] {label:24s} {1e3 * row['s_per_iter']:7.2f} ms/it "
                f"= {row['s_per_iter'] / ideal:4.2f}× ideal"
            )
    digits = load_digits().data.astype(np.float32)
    problems = [
        time_to_target(name, data, kk, solvers, max_iter, np.random.default_rng(2), sk_max_iter)
        for name, data, kk in (("random", X, k), ("digits", digits, 10))
    ]
    labels = [f"jaxnmf_{s}" for s in solvers] + ["sklearn_cd", "sklearn_mu"]

    def grid(key):
        return np.asarray([[p["solvers"][lbl].get(key) for lbl in labels] for p in problems], float)

    for p in problems:
        print(f"\n[time to target] {p['data']} {p['shape']}, k={p['k']}:")
        for label, row in p["solvers"].items():
            print(f"  {label:24s} {row['seconds']:8.3f} s  ({row['iterations']} iterations)")

    def column(items, key, dtype=None):
        return np.asarray([x.get(key, np.nan) for x in items], dtype)

    labels_ = ("loss", "label")
    return SolverBenchmark(
        shape=np.asarray([m, n]), k=k, max_iter_jaxnmf=max_iter, max_iter_sklearn=sk_max_iter,
        solvers=np.asarray(solvers, np.str_), ttt_labels=np.asarray(labels, np.str_),
        matmul_gflops_float32=gflops, load_average=[load0, load_1min()], machine=mach,
        **{f"per_iter_{key}": column(rows, key, np.str_ if key in labels_ else float)
           for key in ("loss", "label", "s", "compile_s", "ideal_s")},
        **{f"ttt_{key}": column(problems, key)
           for key in ("data", "shape", "k", "best_objective", "target")},
        **{f"ttt_{key}": grid(key) for key in ("seconds", "iterations", "compile_s", "final")},
    )  # fmt: skip


def main(argv=None):
    """The command line: :func:`run`, then the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems, fewer repeats")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--solvers",
        default=",".join(SOLVERS),
        help="comma-separated jaxnmf solvers for the time to target",
    )
    parser.add_argument(
        "--only-time-to-target",
        action="store_true",
        help="skip the per-iteration and KL measurements",
    )
    parser.add_argument(
        "--sklearn-max-iter",
        type=int,
        default=None,
        help="scikit-learn's iteration cap in the search for the count that "
        "reaches the target (default: 4 × jaxnmf's 300 with --quick, else 1000)",
    )
    parser.add_argument("--out", default="results/benchmarks", help="folder of the JSON file")
    args = parser.parse_args(argv)
    try:
        rec = run(
            args.quick,
            args.repeats,
            args.solvers.split(","),
            args.only_time_to_target,
            args.sklearn_max_iter,
        )
    except ValueError as e:
        parser.error(str(e))
    print(f"\nwrote {write_json('solvers_vs_sklearn', _run.to_json(rec), args.out)}")


if __name__ == "__main__":
    main()
