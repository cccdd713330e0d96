"""How often does each rank-selection criterion pick the planted rank?

Planted problems ``V = W H + noise`` (``m × n`` = 60 × 60 by default; every sample dominated
by one of the k components, so that consensus clustering has classes to find) for planted
ranks 3..12 × three noise models × ``--draws`` draws:

* ``gaussian``: ``max(V + σ · mean(V) · N(0, 1), 0)``, σ = 0.1;
* ``poisson``: ``Poisson(c · V)`` with c such that the mean count is 20;
* ``uniform``: ``V + U(0, 2σ · mean(V))``, additive noise with positive mean σ · mean(V).

Each problem gets one :func:`jaxnmf.sweep` over ranks 2..15 × ``--seeds`` seeds (HALS on the
imputation majorizer, 10% of the entries held out), then :func:`jaxnmf.rank_selection` with
bi-cross-validation (2 × 2 folds). Every criterion's pick and ``suggest()``'s recommendation
are tallied into confusion tables (rows: planted rank, columns: picked rank), printed and
written as JSON.

Runtime: about 2-4 s per problem on a 2-core CPU after the first compilations (every problem
has the same shapes and grid, so the compiled programs are shared). The defaults (5 draws:
150 problems) take 10-20 minutes; ``--draws 20`` is the issue's full design.

Usage::

    python scripts/planted_rank_accuracy.py [--draws 5] [--seeds 4] [--out results/planted.json]
"""

# ruff: noqa: N803, N806

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

NOISES = ("gaussian", "poisson", "uniform")
CRITERIA = (
    "recommended",
    "heldout_rmse",
    "heldout_rmse_1se",
    "bcv",
    "bcv_1se",
    "cophenetic",
    "dispersion",
    "silhouette",
    "pac",
)


def planted(rank: int, noise: str, rng, m: int = 60, n: int = 60, sigma: float = 0.1):
    """One planted problem ``(m, n)`` of ``rank``, non-negative."""
    W = rng.exponential(1.0, (m, rank)) * (rng.random((m, rank)) < 0.6)
    W += 0.01
    labels = rng.permutation(np.arange(n) % rank)  # every component leads some samples
    H = 0.2 * rng.random((rank, n))
    H[labels, np.arange(n)] += 1.0
    V = W @ H
    scale = V.mean()
    if noise == "gaussian":
        return np.maximum(V + sigma * scale * rng.standard_normal(V.shape), 0)
    if noise == "poisson":
        c = 20.0 / scale
        return rng.poisson(c * V).astype(float)
    if noise == "uniform":
        return V + rng.uniform(0, 2 * sigma * scale, V.shape)
    raise ValueError(noise)


def picks_for(V, ranks, seeds, max_iter):
    import jaxnmf as jn

    # HALS on the imputation majorizer, rank_selection(V)'s default: about 3× faster than
    # exact masked HALS on these problems, with the same fixed points
    solver = jn.solvers.hals(masked="impute")
    sw = jn.sweep(V, ranks, seeds, solver=solver, max_iter=max_iter, tol=1e-5, heldout=0.1)
    table = jn.rank_selection(sw, bicv=2, tol=1e-5)
    rec = table.suggest()
    out = {"recommended": int(rec)}
    out.update(rec.picks)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--max-iter", type=int, default=500)
    parser.add_argument("--planted", type=int, nargs="+", default=list(range(3, 13)))
    parser.add_argument("--out", type=Path, default=Path("results/planted_rank_accuracy.json"))
    args = parser.parse_args(argv)

    candidate = list(range(2, 16))
    seeds = list(range(args.seeds))
    counts = {
        noise: {c: np.zeros((len(args.planted), len(candidate)), int) for c in CRITERIA}
        for noise in NOISES
    }
    t0 = time.perf_counter()
    done, total = 0, len(NOISES) * len(args.planted) * args.draws
    for ni, noise in enumerate(NOISES):
        for pi, k in enumerate(args.planted):
            for draw in range(args.draws):
                rng = np.random.default_rng([ni, k, draw])
                V = planted(k, noise, rng)
                picks = picks_for(V.astype(np.float32), candidate, seeds, args.max_iter)
                for c in CRITERIA:
                    if c in picks:
                        counts[noise][c][pi, candidate.index(picks[c])] += 1
                done += 1
                if done % 10 == 0:
                    el = time.perf_counter() - t0
                    print(f"{done}/{total} problems, {el:.0f} s", file=sys.stderr, flush=True)

    # a copy: vars() is the namespace itself, and args.out must stay a Path
    settings = {**vars(args), "out": str(args.out)}
    report = {"candidate_ranks": candidate, "planted_ranks": args.planted, "args": settings}
    report["seconds"] = time.perf_counter() - t0
    report["confusion"] = {
        noise: {c: m.tolist() for c, m in per.items()} for noise, per in counts.items()
    }
    print(f"planted ranks {args.planted}, {args.draws} draws each, {args.seeds} seeds")
    print("accuracy (fraction of draws whose pick is the planted rank):")
    header = f"{'criterion':>18} " + " ".join(f"{n:>9}" for n in NOISES) + f" {'all':>6}"
    print(header)
    accuracy = {}
    for c in CRITERIA:
        hits = [_hits(counts[n][c], args.planted, candidate) for n in NOISES]
        n_each = len(args.planted) * args.draws
        accuracy[c] = {n: h / n_each for n, h in zip(NOISES, hits, strict=True)}
        accuracy[c]["all"] = sum(hits) / (n_each * len(NOISES))
        row = " ".join(f"{accuracy[c][n]:9.2f}" for n in NOISES)
        print(f"{c:>18} {row} {accuracy[c]['all']:6.2f}")
    report["accuracy"] = accuracy
    for noise in NOISES:
        for c in CRITERIA:
            print(f"\n{noise} / {c}: rows planted {args.planted}, columns picked {candidate}")
            for k, row in zip(args.planted, counts[noise][c], strict=True):
                print(f"  {k:>3} | " + " ".join(f"{v:2d}" if v else " ." for v in row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"\nwritten: {args.out} ({report['seconds']:.0f} s)")
    return 0


def _hits(confusion, planted_ranks, candidate) -> int:
    return int(sum(confusion[i, candidate.index(k)] for i, k in enumerate(planted_ranks)))


if __name__ == "__main__":
    sys.exit(main())
