"""Per-iteration overhead: a dense MU and HALS iteration against its two products with V.

Question (issue: fast sweeps, the per-iteration target): an iteration of ``jn.fit`` with
``solver="mu"`` or ``"hals"`` (Frobenius, float32, ``tol=0``) does two products with V,
``V Hᵀ`` ``(m, k)`` and ``Wᵀ V`` ``(k, n)``, plus O((m + n) k²) of its own work. How much
longer is the iteration than those two products timed alone in the same run, on
2000 × 1000 and 100000 × 1000, k = 20? What is left above them is overhead the library owns
(the issue asks for at most 1.3×). Reported beside it, for each shape:

* the products alone: ``H Vᵀ`` and ``Wᵀ V`` in the blocks' rows form ``(k, m)`` and
  ``(k, n)``, in a compiled ``fori_loop``, one after the other as in an iteration (a scalar of each
  product feeds the next, so XLA can neither hoist them out nor run them side by side);
* the ideal at peak GEMM rate: the iteration's flops (4mnk + 4(m + n)k²) over this
  process's measured float32 GEMM throughput (``_bench.matmul_gflops``);
* scikit-learn's ``mu`` and ``cd`` per iteration, same data and initial factors.

A ``jax.profiler`` trace of a 10-iteration fit splits each jaxnmf iteration into its two
products and everything else, inside the same compiled program (:func:`profile_split`): the
products' own speed depends on what else a program holds (alone in a loop of their own they ran
up to twice as fast here), so that split is the measure of what the library adds.

Every time per iteration is differential, ``(t(10 + n_iter) - t(10)) / n_iter`` with
medians of ``--repeats`` calls (:func:`experiments.benchmarks.solvers_vs_sklearn.per_iteration`):
fixed per-call costs (validation, dispatch, compilation) cancel. The process drops the
machine's OpenBLAS kernel overrides before numpy loads (``_fair_env``), so scikit-learn runs
on its best kernels, and records the machine and the load. Writes
``results/benchmarks/iteration_overhead.json``. Runtime on the 2-core CPU: about 4 minutes
(``--quick``: 2000 × 1000 only, about 1 minute).

    python -m experiments.benchmarks.iteration_overhead [--quick] [--repeats 3]
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env  # noqa: F401

# isort: split
import argparse
import collections
import functools
import glob
import gzip
import json
import tempfile
import time

import numpy as np

from experiments.benchmarks._bench import (
    load_1min,
    machine,
    matmul_gflops,
    print_machine,
    write_json,
)
from experiments.benchmarks.solvers_vs_sklearn import ITER_FLOPS, _differential, per_iteration

SHAPES = ((2000, 1000), (100_000, 1000))
K = 20


@functools.cache
def _products_loop(n_iter: int):
    import jax
    import jax.numpy as jnp

    @jax.jit
    def loop(V, Wt, H):
        def body(_, c):
            Wt, H = c
            # in the blocks' rows form, (k, m) and (k, n): the fastest layout of the two
            # products in a compiled loop here (W.T @ V with W (m, k) ran 1.5x slower at
            # 100000 x 1000), and the one jaxnmf's blocks use
            # one after the other, as in an iteration (W's update needs H Vᵀ, then H's needs
            # the new W's Wᵀ V), through a scalar that XLA cannot hoist out of the loop: two
            # independent products ran side by side and took 1.5-2.4x their sum here (both
            # stream V through the same caches)
            Wt = Wt + 1e-30 * jnp.sum(H @ V.T)
            return Wt, H + 1e-30 * jnp.sum(Wt @ V)

        return jax.lax.fori_loop(0, n_iter, body, (Wt, H))

    return loop


def products_alone(X, k: int, repeats: int, n_iter: int, rng) -> float:
    """Seconds per iteration of ``V Hᵀ`` and ``Wᵀ V`` alone, differential as the fits'."""
    import jax

    V = jax.device_put(X)
    Wt = jax.device_put(rng.random((k, X.shape[0]), np.float32))
    H = jax.device_put(rng.random((k, X.shape[1]), np.float32))

    def run(it):
        return jax.block_until_ready(_products_loop(it)(V, Wt, H))

    run(10), run(10 + n_iter)  # compile both lengths
    return _differential(run, n_iter, repeats)[0]


def measure(m: int, n: int, k: int, repeats: int, n_iter: int, gflops: float) -> dict:
    """One shape: every library's seconds per iteration, the products alone and the ideal."""
    rng = np.random.default_rng(0)
    X = rng.random((m, n), dtype=np.float32)
    t0 = time.perf_counter()
    rows = per_iteration(X, k, "frobenius", repeats, n_iter, np.random.default_rng(1))
    products = products_alone(X, k, repeats, n_iter, np.random.default_rng(2))
    ideal = ITER_FLOPS["frobenius"](m, n, k) / (gflops * 1e9)
    out = {
        "shape": [m, n],
        "k": k,
        "n_iter": n_iter,
        "products_s_per_iter": products,
        "ideal_s_per_iter": ideal,
        "wall_s": None,
    }
    for label, row in rows.items():
        t = row["s_per_iter"]
        out[label] = {
            **row,
            "over_products": t / products if products > 0 else float("nan"),
            "over_ideal": t / ideal,
        }
    for ours in ("jaxnmf_mu", "jaxnmf_hals"):
        for theirs in ("sklearn_mu", "sklearn_cd"):
            out[ours][f"over_{theirs}"] = rows[ours]["s_per_iter"] / rows[theirs]["s_per_iter"]
        out[ours]["profile"] = profile_split(X, k, ours.removeprefix("jaxnmf_"))
    out["wall_s"] = time.perf_counter() - t0
    return out


def profile_split(X, k: int, solver: str, n_iter: int = 10) -> dict:
    """Inside one fit's compiled loop, per iteration: the time of its two largest operations
    (the products with V) and of all the others, from a ``jax.profiler`` trace of a fit of
    ``n_iter`` iterations (XLA:CPU records each operation it runs). The products' speed
    depends on what else the program holds, so this split, not the products timed in a loop
    of their own, says what the library adds to them. Tracing costs a little per operation,
    so "all else" is an upper bound where the operations are many and small (HALS's row
    sweeps run 2k of them an iteration)."""
    import jax

    import jaxnmf as jn

    rng = np.random.default_rng(3)
    W0 = (0.1 * rng.random((X.shape[0], k))).astype(np.float32)
    H0 = (0.1 * rng.random((k, X.shape[1]))).astype(np.float32)

    def fit():
        return jn.fit(X, k, solver=solver, init=(W0, H0), max_iter=n_iter, tol=0.0)

    fit()  # compiled outside the trace
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            fit()
        (path,) = glob.glob(f"{d}/**/perfetto_trace.json.gz", recursive=True)
        with gzip.open(path) as f:
            events = json.load(f)["traceEvents"]
    total, count = collections.defaultdict(float), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "run_compiled" in e.get("args", {}).get("hlo_module", ""):
            total[e["name"]] += e["dur"] * 1e-6
            count[e["name"]] += 1
    # the loop's operations run once an iteration (or a multiple: the row sweeps' steps)
    loop = {name: t / n_iter for name, t in total.items() if count[name] % n_iter == 0}
    products = sorted(loop.values(), reverse=True)[:2]
    return {
        "n_iter": n_iter,
        "products_s_per_iter": float(sum(products)),
        "other_s_per_iter": float(sum(loop.values()) - sum(products)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2000 × 1000 only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-iter", type=int, default=30, help="iterations in the difference")
    parser.add_argument("--out", default="results/benchmarks")
    args = parser.parse_args(argv)
    import jax.numpy as jnp

    mach, load0 = machine(), load_1min()
    print_machine(mach)
    gflops = matmul_gflops(jnp.float32)
    rec = {
        "benchmark": "iteration_overhead",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": mach,
        "matmul_gflops_float32": gflops,
        "shapes": [],
    }
    for m, n in SHAPES[:1] if args.quick else SHAPES:
        r = measure(m, n, K, args.repeats, args.n_iter, gflops)
        rec["shapes"].append(r)
        print(
            f"{m} × {n}, k = {K}: products alone {1e3 * r['products_s_per_iter']:.2f} ms, "
            f"ideal {1e3 * r['ideal_s_per_iter']:.2f} ms"
        )
        for label in ("jaxnmf_mu", "jaxnmf_hals", "sklearn_mu", "sklearn_cd"):
            row = r[label]
            line = (
                f"  {label:12s} {1e3 * row['s_per_iter']:8.2f} ms/it = "
                f"{row['over_products']:4.2f}× the products, {row['over_ideal']:4.2f}× ideal"
            )
            if label.startswith("jaxnmf"):
                line += f", {row['over_sklearn_cd']:4.2f}× scikit-learn's cd"
                prof = row["profile"]
                line += (
                    f"; profiled: products {1e3 * prof['products_s_per_iter']:.2f} ms, "
                    f"all else {1e3 * prof['other_s_per_iter']:.2f} ms an iteration"
                )
            print(line)
    rec["load_average"] = [load0, load_1min()]
    print(f"wrote {write_json('iteration_overhead', rec, args.out)}")


if __name__ == "__main__":
    main()
