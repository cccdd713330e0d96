"""Convergence of MU, HALS, Lin's PG and projected Adam from the same starts, on digits.

Question: from identical initial factors and under one stopping rule (here none: tol = 0 and
a fixed ``max_iter``), how fast does each solver decrease the Frobenius objective per
iteration and per second, how close to a KKT point does it end, and what does its first
(compiling) call cost?

Data: scikit-learn's ``load_digits()`` (1797 × 64, values 0–16, float32), rank k = 10.
Initial factors per seed: drawn once with NumPy from the root seed, scaled like
scikit-learn's random init, ``sqrt(mean(V)/k) · |N(0, 1)|``, and passed to every solver as
``init=(W0, H0)``. Solvers: ``"mu"``, ``"hals"``, ``"pg"`` and
``jaxnmf.solvers.projected(optax.adam(adam_lr))``. Wall time is measured per fit after a
warm-up call with the same shapes (``tol`` is traced, so the warm-up uses a huge ``tol`` to
stop after one iteration and compile the same program); the warm-up time is reported as the
compile time.

Feeds: ``paper_figures/fig_02_convergence.py`` (Figure 2).

Expected runtime (2-core CPU, including compilation): smoke ≈ 4 s, full ≈ 10 s (measured
with the closed-form Armijo decrease of Lin's PG; PG is still the slowest solver per
iteration). GPU: dominated by compilation.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import _common

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


def _solver(name: str, config: dict):
    import optax

    import jaxnmf as jn

    if name == "adam":
        return jn.solvers.projected(optax.adam(float(config["adam_lr"])))
    return jn.solvers.as_solver(name)


def initial_factors(V: np.ndarray, k: int, root_seed: int, seed_index: int):
    """``sqrt(mean(V)/k) · |N(0, 1)|`` factors from the NumPy stream ``(seed_index,)``."""
    rng = _common.numpy_rng(root_seed, seed_index)
    m, n = V.shape
    scale = np.sqrt(V.mean(dtype=np.float64) / k)
    W0 = scale * np.abs(rng.standard_normal((m, k)))
    H0 = scale * np.abs(rng.standard_normal((k, n)))
    return W0.astype(V.dtype), H0.astype(V.dtype)


def main(config: dict, out_dir: Path) -> dict:
    """Run every solver from every seed's start; write ``arrays.npz`` and ``meta.json``."""
    import jaxnmf as jn

    t0 = time.perf_counter()
    root = int(config["root_seed"])
    k, max_iter, tol = int(config["rank"]), int(config["max_iter"]), float(config["tol"])
    names = list(config["solvers"])
    n_seeds = int(config["n_seeds"])
    V, _, _ = _common.load_digits()
    norm_sq = float(np.sum(V.astype(np.float64) ** 2))
    solvers = {name: _solver(name, config) for name in names}  # one object each: no recompiles
    inits = [initial_factors(V, k, root, i) for i in range(n_seeds)]
    fit_seeds = [_common.derive_seed(root, i, 1) for i in range(n_seeds)]  # unused: init given
    common = dict(loss=config["loss"], max_iter=max_iter)
    loss = jn.losses.as_loss(config["loss"])

    # Warm-up: same shapes, same static arguments, so the timed calls reuse the program.
    compile_s = np.zeros(len(names))
    for j, name in enumerate(names):
        t = time.perf_counter()
        jn.fit(V, k, solver=solvers[name], init=inits[0], tol=1e9, seed=fit_seeds[0], **common)
        compile_s[j] = time.perf_counter() - t
        print(f"  {name}: first call (compile + 1 iteration) {compile_s[j]:.2f} s", flush=True)

    ref_solver = _solver(config["reference_solver"], config)
    ref_iter = int(config["reference_max_iter"])
    reference_loss = np.zeros(n_seeds)
    for i in range(n_seeds):
        res = jn.fit(
            V,
            k,
            solver=ref_solver,
            init=inits[i],
            tol=0.0,
            seed=fit_seeds[i],
            loss=config["loss"],
            max_iter=ref_iter,
        )
        reference_loss[i] = res.loss
    print(
        f"  reference ({config['reference_solver']}, {ref_iter} it): rel. error "
        + ", ".join(f"{np.sqrt(v / norm_sq):.5f}" for v in reference_loss),
        flush=True,
    )

    shape = (len(names), n_seeds)
    losses = np.full((*shape, max_iter), np.nan)
    wall = np.zeros(shape)
    kkt, kkt0 = np.zeros(shape), np.zeros(shape)
    initial_loss = np.zeros(n_seeds)
    n_iter = np.zeros(shape, np.int64)
    status = np.empty(shape, dtype="<U16")
    for i in range(n_seeds):  # seeds outer, solvers inner: machine noise hits all alike
        W0, H0 = inits[i]
        initial_loss[i] = float(loss.value(V, W0, H0))
        kkt_init = float(jn.metrics.kkt_residual(V, W0, H0, config["loss"]))
        for j, name in enumerate(names):
            t = time.perf_counter()
            res = jn.fit(
                V, k, solver=solvers[name], init=(W0, H0), tol=tol, seed=fit_seeds[i], **common
            )
            wall[j, i] = time.perf_counter() - t
            losses[j, i, : res.n_iter] = res.losses
            kkt[j, i], kkt0[j, i] = res.kkt_residual, kkt_init
            n_iter[j, i], status[j, i] = res.n_iter, str(res.status)
            print(
                f"  seed {i} {name:>5}: {res.status} {res.n_iter} it, {wall[j, i]:.2f} s, "
                f"rel. error {np.sqrt(res.loss / norm_sq):.5f}, "
                f"KKT {res.kkt_residual:.3g} ({res.kkt_residual / kkt_init:.2e} of initial)",
                flush=True,
            )

    final = np.array(
        [[losses[j, i, n_iter[j, i] - 1] for i in range(n_seeds)] for j in range(len(names))]
    )
    arrays = {
        "solvers": np.asarray(names, dtype=np.str_),
        "losses": losses,  # (n_solvers, n_seeds, max_iter), Σ(V - WH)² after each iteration
        "initial_loss": initial_loss,  # (n_seeds,) at (W0, H0), shared by all solvers
        "reference_loss": reference_loss,  # (n_seeds,) after the long reference run
        "norm_V_sq": np.float64(norm_sq),  # ‖V‖_F²: rel. error = sqrt(loss / norm_V_sq)
        "kkt_residual": kkt,  # (n_solvers, n_seeds) ‖∇ᴾ f‖ at the result
        "initial_kkt_residual": kkt0,  # (n_solvers, n_seeds) ‖∇ᴾ f‖ at (W0, H0)
        # Timings are not arrays here (array files are hashed and must not vary between
        # runs): meta.json["timings"] has wall_seconds and compile_seconds.
        "n_iter": n_iter,
        "status": status,
        "seed_index": np.arange(n_seeds),
    }
    summaries = {
        name: {
            "median_rel_error": float(np.median(np.sqrt(final[j] / norm_sq))),
            "median_kkt_over_initial": float(np.median(kkt[j] / kkt0[j])),
            "median_wall_seconds": float(np.median(wall[j])),
            "compile_seconds": float(compile_s[j]),
            "status": sorted(set(status[j].tolist())),
        }
        for j, name in enumerate(names)
    }
    meta = {
        "experiment": NAME,
        "config": config,
        "seeds": {
            "root_seed": root,
            "derivation": "initial factors of seed i: numpy.random.default_rng("
            "SeedSequence(root_seed, spawn_key=(i,))), W0 then H0, each "
            "sqrt(mean(V)/k)·|N(0,1)|; jaxnmf.fit(seed=...) gets SeedSequence(root_seed, "
            "spawn_key=(i, 1)).generate_state(1)[0] >> 1 (unused: the init is given)",
            "seed_indices": list(range(n_seeds)),
            "fit_seeds": fit_seeds,
        },
        "results": summaries,
        "timings": {
            "wall_seconds": wall,  # (n_solvers, n_seeds), after warm-up
            "compile_seconds": compile_s,  # (n_solvers,) first call: compile + 1 iteration
        },
        "timing_note": "timings.wall_seconds[solver][seed]: one fit after a warm-up call with "
        "the same shapes, including host-side validation and the transfer of the result; "
        "timings.compile_seconds[solver]: the first call (compile + 1 iteration)",
        "wall_seconds": time.perf_counter() - t0,
        **_common.environment(),
    }
    _common.write_results(out_dir, arrays, meta)
    return meta
