"""Held-out rank survey benchmark (issue #15): the survey with ``heldout`` against the same
survey without it, and the held-out members' two paths (dense 0/1 mask, list of hidden
entries, :mod:`jaxnmf._holes`).

Question: how much does hiding a fraction of the entries cost a rank survey (digits, 1797 ×
64, ranks 2..20 × 5 seeds, 200 iterations, Frobenius, tol 1e-4 as ``jn.sweep``'s default)?
Target: held-out ≤ 1.5× the unmasked survey. Each time is the median of ``repeats`` calls
after a warm-up call; the warm-up's compile time is reported apart.

Runtime on a 2-core CPU: about 15 minutes (``--seeds 1 --max-iter 50`` for a quick look).
Writes ``results/benchmarks/heldout_survey.json``. Runs in its own process, without the
machine's OpenBLAS kernel overrides (``_fair_env``); ``machine`` records the load: the
machine is shared, quote numbers with it.

    python -m experiments.benchmarks.heldout_survey [--seeds 5] [--max-iter 200]
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env  # noqa: F401

# isort: split
import argparse
import time

import numpy as np

from experiments.benchmarks._bench import load_1min, machine, print_machine, write_json


def _time_survey(V, ranks, seeds, solver, max_iter, heldout, holes, repeats):
    import jax

    import jaxnmf as jn
    from jaxnmf import _compile, _run

    _run.HOLES = holes
    jax.clear_caches()  # the switch is read at trace time
    _compile.clear()
    call = lambda: jn.sweep(V, ranks, seeds, solver=solver, max_iter=max_iter, heldout=heldout)
    t0 = time.perf_counter()
    first = call()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return dict(
        solver=solver,
        heldout=heldout,
        path="holes" if holes and heldout > 0 else "dense",
        first_call_s=warm,
        compile_s=first.compile_time,
        median_s=float(np.median(times)),
        times_s=times,
        mean_iter=float(np.mean(first.n_iter)),
        load_1min=load_1min(),
    )


def run(seeds=5, max_iter=200, solvers=("hals", "mu"), heldout=0.1, repeats=3) -> dict:
    """Every (solver, path) row: unmasked, held-out on the dense mask, held-out on the list."""
    from jaxnmf.datasets import load_digits

    V = load_digits()[0].astype(np.float32)
    ranks, seed_list = list(range(2, 21)), list(range(seeds))
    mach = machine(gemm=False)
    print_machine(mach)
    rows = []
    for solver in solvers:
        for ho, holes in ((0.0, False), (heldout, False), (heldout, True)):
            row = _time_survey(V, ranks, seed_list, solver, max_iter, ho, holes, repeats)
            rows.append(row)
            print(
                f"  {solver} heldout={ho} [{row['path']}]: median {row['median_s']:.2f} s "
                f"(first call {row['first_call_s']:.2f} s, compile {row['compile_s']:.2f} s), "
                f"load {row['load_1min']:.1f}"
            )
    ratios = {}
    for solver in solvers:
        base = next(r for r in rows if r["solver"] == solver and r["heldout"] == 0)
        for r in rows:
            if r["solver"] == solver and r["heldout"] > 0:
                ratios[f"{solver}/{r['path']}"] = r["median_s"] / base["median_s"]
    print("  held-out / unmasked:", {k: round(v, 2) for k, v in ratios.items()})
    grid = dict(m=V.shape[0], n=V.shape[1], ranks=ranks, seeds=seed_list, max_iter=max_iter)
    return dict(grid=grid, heldout=heldout, rows=rows, ratios=ratios, machine=mach)


def main(argv=None):
    """The command line: :func:`run`, then the JSON file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--solvers", default="hals,mu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/benchmarks", help="folder of the JSON file")
    args = parser.parse_args(argv)
    rec = run(args.seeds, args.max_iter, args.solvers.split(","), repeats=args.repeats)
    print(f"\nwrote {write_json('heldout_survey', rec, args.out)}")


if __name__ == "__main__":
    main()
