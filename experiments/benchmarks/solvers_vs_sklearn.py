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

Feeds: the README's benchmark table and figure 7. Runtime on a 2-core CPU: ~3 minutes
(``--quick``: ~1 minute). Writes ``results/benchmarks/solvers_vs_sklearn.json``. Medians of
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

import numpy as np

from experiments.benchmarks._bench import (
    machine,
    matmul_gflops,
    median_time,
    print_machine,
    write_json,
)

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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems, fewer repeats")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--solvers",
        default=None,
        help="comma-separated jaxnmf solvers for the time to target "
        f"(default: {','.join(SOLVERS)})",
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
        help="scikit-learn's iteration cap when searching for the count that reaches the "
        "target (default: 4 × jaxnmf's 300 with --quick, else 1000)",
    )
    parser.add_argument(
        "--out", default="results/benchmarks", help="folder of the result JSON file"
    )
    args = parser.parse_args(argv)
    solvers = args.solvers.split(",") if args.solvers else list(SOLVERS)
    unknown = sorted(set(solvers) - set(SOLVERS))
    if unknown:
        parser.error(f"--solvers: unknown {unknown}; known: {', '.join(SOLVERS)}")
    import jax.numpy as jnp
    from sklearn.datasets import load_digits

    rng = np.random.default_rng(0)
    m, n, k = (600, 400, 10) if args.quick else (2000, 1000, 20)
    X = rng.random((m, n)).astype(np.float32)
    gflops = matmul_gflops(jnp.float32)
    max_iter = 300 if args.quick else 1000
    sk_max_iter = args.sklearn_max_iter or 4 * max_iter
    out = {
        "machine": machine(),
        "matmul_gflops_float32": gflops,
        "per_iteration": {},
        "time_to_target": [],
        "max_iter": {"jaxnmf": max_iter, "sklearn": sk_max_iter},
    }
    if args.solvers:
        out["solvers_subset"] = solvers
    print(f"matmul throughput (float32): {gflops:.1f} GFLOP/s")
    print_machine(out["machine"])

    n_iter = 20 if args.quick else 50
    for loss in () if args.only_time_to_target else LOSSES:
        ideal = ITER_FLOPS[loss](m, n, k) / (gflops * 1e9)
        # Itakura–Saito is undefined at V = 0: the same matrix, floored (both libraries)
        data = np.maximum(X, np.float32(1e-6)) if loss == "is" else X
        rows = per_iteration(data, k, loss, args.repeats, n_iter, np.random.default_rng(1))
        out["per_iteration"][loss] = {"shape": [m, n], "k": k, "ideal_s": ideal, **rows}
        print(
            f"\n[{loss}] {m}×{n}, k={k}: ideal {1e3 * ideal:.2f} ms/iteration "
            f"({ITER_FLOPS[loss](m, n, k) / 1e6:.0f} MFLOP)"
        )
        for name, row in rows.items():
            print(
                f"  {name:14s} {1e3 * row['s_per_iter']:7.2f} ms/it = "
                f"{row['s_per_iter'] / ideal:4.2f}× ideal"
            )
        if loss != "frobenius":
            for label in ("mu", "mu_eval_every_10"):
                ratio = rows[f"jaxnmf_{label}"]["s_per_iter"] / rows["sklearn_mu"]["s_per_iter"]
                print(f"  jaxnmf {label} / scikit-learn mu: {ratio:.2f}")

    digits = load_digits().data.astype(np.float32)
    for name, data, kk in (("random", X, k), ("digits", digits, 10)):
        res = time_to_target(
            name, data, kk, solvers, max_iter, np.random.default_rng(2), sk_max_iter=sk_max_iter
        )
        out["time_to_target"].append(res)
        print(f"\n[time to target] {name} {data.shape}, k={kk}: target = best × (1 + 1e-3)")
        for label, row in res["solvers"].items():
            print(f"  {label:24s} {row['seconds']:8.3f} s  ({row['iterations']} iterations)")
        ours = min(
            (
                r["seconds"]
                for lbl, r in res["solvers"].items()
                if lbl.startswith("jaxnmf") and np.isfinite(r["seconds"])
            ),
            default=np.nan,
        )
        cd = res["solvers"]["sklearn_cd"]["seconds"]
        print(f"  best jaxnmf / scikit-learn cd: {ours / cd:.2f}")
    path = write_json("solvers_vs_sklearn", out, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
