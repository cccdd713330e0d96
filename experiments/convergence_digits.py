"""Convergence of MU, HALS, Lin's PG and projected Adam from the same starts, on digits.

Question: from identical initial factors and under one stopping rule (here none: tol = 0 and
a fixed ``max_iter``), how fast does each solver decrease the Frobenius objective per
iteration and per second, how close to a KKT point does it end, and what does its first
(compiling) call cost?

Data: scikit-learn's ``load_digits()`` (1797 × 64, values 0–16, float32), rank k = 10.
One ``jaxnmf.compare`` call runs every solver (``"mu"``, ``"hals"``, ``"pg"`` and
``jaxnmf.solvers.projected(optax.adam(adam_lr))``) from the same initial factors per seed
(``init="random"``: seed ``s`` gives the start that ``jaxnmf.fit(..., seed=s)`` would), under
the same stopping rule; its traces give the objective per iteration, the run time at
checkpoints (compilation timed apart) and the KKT residual at the start and the end. A long
HALS fit from each start estimates the objective's floor f*.

Feeds: ``paper_figures/fig_02_convergence.py`` (Figure 2).

Expected runtime (2-core CPU, including compilation): smoke ≈ 4 s, full ≈ 10 s (measured
with the closed-form Armijo decrease of Lin's PG; PG is still the slowest solver per
iteration). GPU: dominated by compilation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _run

NAME = "convergence_digits"


def get_config(variant: str) -> dict:
    """The full config of a run as a plain dict. ``variant``: ``"smoke"`` or ``"full"``."""
    smoke = variant == "smoke"
    return {
        "name": NAME,
        "variant": variant,
        "root_seed": 0,
        "data": "sklearn.datasets.load_digits",
        "loss": "frobenius",
        "rank": 10,
        "solvers": ["mu", "hals", "pg", "adam"],
        "adam_lr": 0.1,
        "n_seeds": 2 if smoke else 3,
        "max_iter": 60 if smoke else 200,
        "tol": 0.0,
        # A long HALS run from each start estimates the objective's floor f* for Figure 2.
        "reference_solver": "hals",
        "reference_max_iter": 1000 if smoke else 5000,
    }


@dataclass(frozen=True)
class Convergence:
    """Every solver from every seed's start: traces, KKT residuals, times."""

    solvers: np.ndarray  # (n_solvers,) names
    losses: np.ndarray  # (n_solvers, n_seeds, max_iter) Σ(V - WH)² after each iteration
    initial_loss: np.ndarray  # (n_seeds,) at the shared start
    reference_loss: np.ndarray  # (n_seeds,) after the long reference run
    norm_sq: float  # ‖V‖_F²: rel. error = sqrt(loss / norm_sq)
    kkt_residual: np.ndarray  # (n_solvers, n_seeds) ‖∇ᴾ f‖ at the result
    initial_kkt_residual: np.ndarray  # (n_solvers, n_seeds) ‖∇ᴾ f‖ at the start
    n_iter: np.ndarray  # (n_solvers, n_seeds)
    status: np.ndarray  # (n_solvers, n_seeds)
    seeds: np.ndarray  # (n_seeds,) the jaxnmf seeds of the starts
    # Run time of each fit (compilation excluded; jaxnmf.compare's clock) and each solver's
    # compilation: they differ from run to run, so they stay out of the hashed arrays.
    wall_seconds: np.ndarray = field(metadata=_run.META)  # (n_solvers, n_seeds)
    compile_seconds: np.ndarray = field(metadata=_run.META)  # (n_solvers,)


def _solver(name: str, config: dict):
    import optax

    import jaxnmf as jn

    if name == "adam":
        return jn.solvers.projected(optax.adam(float(config["adam_lr"])))
    return jn.solvers.as_solver(name)


def _last(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per row, the last entry where ``valid`` (checkpoints of seeds that stopped early are
    padded)."""
    idx = valid.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
    return values[np.arange(len(values)), idx]


def compute(config: dict, run: _run.Run) -> Convergence:
    """One ``jaxnmf.compare`` of every solver, and the reference runs."""
    import jaxnmf as jn

    V = jn.datasets.load_digits(np.float32)[0]
    k, names = int(config["rank"]), list(config["solvers"])
    seeds = [run.seed(i, 1) for i in range(int(config["n_seeds"]))]
    common = {"loss": config["loss"], "init": "random"}
    solvers = {n: _solver(n, config) for n in names}
    cmp = jn.compare(
        V, k, solvers, seeds=seeds, max_iter=config["max_iter"], tol=config["tol"], **common
    )
    # The floor f*: a long run of the reference solver from each seed's start.
    reference = _solver(config["reference_solver"], config)
    long = {"max_iter": config["reference_max_iter"], "tol": 0.0}
    ref = [jn.fit(V, k, solver=reference, seed=s, **long, **common).loss for s in seeds]
    traces = [cmp[n] for n in names]
    pairs = [(t, t.checkpoint_iter >= 0) for t in traces]
    result = Convergence(
        solvers=np.asarray(names, np.str_),
        losses=np.stack([t.losses for t in traces]).astype(np.float64),
        initial_loss=np.asarray(cmp.initial_loss, np.float64),
        reference_loss=np.minimum(np.asarray(ref, np.float64), cmp.best_loss()),
        norm_sq=float(np.sum(V.astype(np.float64) ** 2)),
        kkt_residual=np.stack([_last(t.checkpoint_kkt, v) for t, v in pairs]),
        initial_kkt_residual=np.stack([t.checkpoint_kkt[:, 0] for t in traces]),
        n_iter=np.stack([t.n_iter for t in traces]).astype(np.int64),
        status=np.asarray([[str(s) for s in t.status] for t in traces], np.str_),
        seeds=np.asarray(seeds, np.int64),
        wall_seconds=np.stack([_last(t.checkpoint_seconds, v) for t, v in pairs]),
        compile_seconds=np.asarray([t.compile_seconds for t in traces]),
    )
    for j, name in enumerate(names):
        rel = np.sqrt(result.losses[j, :, -1] / result.norm_sq)
        print(
            f"  {name:>5}: {result.status[j].tolist()}, rel. error {np.round(rel, 5).tolist()}, "
            f"run {np.round(result.wall_seconds[j], 3).tolist()} s, "
            f"compile {result.compile_seconds[j]:.2f} s",
            flush=True,
        )
    return result


def main(config: dict, out_dir: Path) -> dict:
    """Compare the solvers on digits; write ``arrays.npz`` and ``meta.json``."""
    return _run.run(config, out_dir, compute)
