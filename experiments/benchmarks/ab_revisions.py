"""Before/after timing of jaxnmf at two git revisions, in one run, interleaved.

A change on the solver path must keep its speed (issue 14's "behaviour kept": per-iteration
medians and the rank survey within noise). Timing the two revisions in separate runs on a
shared machine compares two different loads; this script alternates them instead: it checks
the base revision out into a temporary worktree, then runs the same timing child process
against each revision in turn (``PYTHONPATH`` pointing at that revision), ``--rounds`` times,
and reports the median of each measurement per revision and their ratio.

Measured per child: seconds per iteration of MU and HALS on a dense 2000 × 1000 float32
matrix at k = 20 (the difference of 2 and 12 iterations of one compiled fit, so compilation
and set-up cancel), of KL MU on the same matrix, and the wall time of the digits survey
(ranks 2..20 × 10 seeds × 200 MU iterations, compile included, each child a fresh process).
With ``--heldout``, also the warm wall time of the held-out digits survey (ranks 2..20 × 5
seeds, 200 iterations, ``heldout=0.1``, HALS on the imputation majorizer) and of
:func:`jaxnmf.rank_selection` with its defaults (ranks 2..20 × 10 seeds).

``python -m experiments.benchmarks.ab_revisions --base 482d5f4 [--rounds 3] [--heldout]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from . import _fair_env

CHILD = r"""
import json, sys, time
import numpy as np
import jax
import jaxnmf as jn
from sklearn.datasets import load_digits

rng = np.random.default_rng(0)
V = rng.random((2000, 1000)).astype(np.float32)
out = {}

def per_iteration(solver, loss):
    def run(n):
        t = time.perf_counter()
        r = jn.fit(V, 20, solver=solver, loss=loss, max_iter=n, tol=0.0, seed=0)
        np.asarray(r.W)
        return time.perf_counter() - t
    run(2), run(12)  # compile both
    return min((run(12) - run(2)) / 10 for _ in range(3))

out["mu_s_per_it"] = per_iteration("mu", "frobenius")
out["hals_s_per_it"] = per_iteration("hals", "frobenius")
out["kl_mu_s_per_it"] = per_iteration("mu", "kl")
X = load_digits().data.astype(np.float32)
t = time.perf_counter()
sw = jn.sweep(X, range(2, 21), range(10), solver="mu", max_iter=200, tol=0.0)
np.asarray(sw.W)
out["digits_survey_s"] = time.perf_counter() - t
if "--heldout" in sys.argv:
    def warm(f):
        f()  # compiled by the first call
        t = time.perf_counter()
        f()
        return time.perf_counter() - t
    impute = jn.solvers.hals(masked="impute")
    out["heldout_survey_warm_s"] = warm(lambda: jn.sweep(
        X, range(2, 21), range(5), solver=impute, max_iter=200, tol=0.0, heldout=0.1))
    out["rank_selection_warm_s"] = warm(lambda: jn.rank_selection(X, range(2, 21), range(10)))
print(json.dumps(out))
"""


def _child(tree: Path, heldout: bool) -> dict:
    env = _fair_env.cleaned(os.environ)
    env["PYTHONPATH"] = str(tree)
    command = [sys.executable, "-c", CHILD] + (["--heldout"] if heldout else [])
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the revision to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="results/benchmarks/ab_revisions.json")
    parser.add_argument(
        "--heldout",
        action="store_true",
        help="also time a held-out HALS survey and rank_selection's defaults (warm)",
    )
    args = parser.parse_args(argv)
    root = _fair_env.REPO_ROOT
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "-C", str(root), "worktree", "add", "--detach", str(base), args.base],
            check=True,
            capture_output=True,
        )
        try:
            runs = {"base": [], "head": []}
            for _ in range(args.rounds):
                runs["base"].append(_child(base, args.heldout))
                runs["head"].append(_child(root, args.heldout))
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(base)])
    median = {
        side: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for side, rs in runs.items()
    }
    ratio = {key: median["head"][key] / median["base"][key] for key in median["base"]}
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    record = {
        "base": args.base,
        "head": head,
        "rounds": args.rounds,
        "median": median,
        "head_over_base": ratio,
        "runs": runs,
        "load_average": os.getloadavg(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2))
    for key in ratio:
        print(
            f"{key:18s} base {median['base'][key]:.4g}  head {median['head'][key]:.4g}  "
            f"head/base {ratio[key]:.3f}"
        )


if __name__ == "__main__":
    main()
