"""Speed against scikit-learn: a rank survey as one sweep, and the time to reach a target.

Question: how long does jaxnmf take, compilation included, against scikit-learn on the same
machine and in the same process, (1) for a rank survey (digits 1797 × 64, ranks 2..20 × some
seeds, Frobenius, tol = 0) done as one ``jaxnmf.sweep`` call against scikit-learn's ``cd``
solver in a Python loop, with the ideal time (the grid's floating-point work divided by the
measured matmul throughput) for scale, and (2) to reach an objective within 1e-3 relative of
the best any solver reached, from the same initial factors, on a random 600 × 400 (quick) or
2000 × 1000 matrix (k = 10 or 20) and on digits (k = 10)?

Two parts, each written to ``parts/<part>.npz`` / ``.json`` when done and reused on a restart:

* ``sweep``: ``experiments.benchmarks.sweep_vs_sklearn.main`` with the config's seeds,
  iterations, dtypes and solvers (it also times both at scikit-learn's tol = 1e-4).
* ``time_to_target``: ``experiments.benchmarks.solvers_vs_sklearn``. With
  ``time_to_target.solvers = null`` (full variant) its ``main`` runs as is (per-iteration
  times, KL, time to target with every solver); with a list of solvers (smoke variant) only
  the time-to-target benchmark runs, with those jaxnmf solvers, on the same problems, and
  scikit-learn's search for the iterations needed stops at ``sklearn_max_iter``.

Both benchmarks write their JSON into the run folder (``sweep_vs_sklearn.json``,
``solvers_vs_sklearn.json``); ``meta.json`` holds the same payloads under ``"sweep"`` and
``"time_to_target"``, each with the 1-minute load average before and after it (on a shared
machine other processes slow both libraries, scikit-learn's threaded BLAS/OpenMP calls most).
Timings vary from run to run, so they stay out of the hashed array
file: ``arrays.npz`` holds only the grid and names the timings refer to. The benchmarks use
their own fixed seeds (NumPy ``default_rng(0)`` for the random matrix, ``default_rng(2)`` for
the initial factors, seeds 0..n-1 of ``sweep``); ``root_seed`` is recorded but unused.

Feeds: ``paper_figures/fig_07_speed.py`` (Figure 7).

Expected runtime (2-core CPU, including compilation): smoke 50–56 s measured on this
project's shared 2-core machine while other jobs kept its load average at 4–5 (sweep ≈ 25 s,
time to target ≈ 25 s; scikit-learn's threaded calls suffer most from the load), about half
of that expected on an idle machine; full ≈ 6 min idle (the benchmarks' own estimates: sweep
≈ 2–3 min, solvers ≈ 3 min). GPU: scikit-learn still runs on the CPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from . import _common

NAME = "speed"
PARTS = ("sweep", "time_to_target")
SWEEP_JSON = "sweep_vs_sklearn.json"
SOLVERS_JSON = "solvers_vs_sklearn.json"


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


def _load_average() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # not on every platform
        return None


def _read(path: Path) -> dict:
    # The benchmarks write NaN for "not measured" / "not reached"; json reads it back.
    return json.loads(Path(path).read_text())


def _sweep(cfg: dict, out_dir: Path) -> tuple[dict, dict]:
    import jax

    from experiments.benchmarks import sweep_vs_sklearn

    argv = [
        "--seeds",
        str(int(cfg["seeds"])),
        "--max-iter",
        str(int(cfg["max_iter"])),
        "--dtypes",
        ",".join(cfg["dtypes"]),
        "--solvers",
        ",".join(cfg["solvers"]),
        "--out",
        str(out_dir),
    ]
    x64 = bool(jax.config.jax_enable_x64)
    try:
        sweep_vs_sklearn.main(argv)  # switches x64 on (for the float64 rows)
    finally:
        jax.config.update("jax_enable_x64", x64)
    payload = _read(out_dir / SWEEP_JSON)
    grid = payload.get("grid", {})
    arrays = {
        "sweep_ranks": np.asarray(grid.get("ranks", []), np.int64),
        "sweep_seeds": np.asarray(grid.get("seeds", []), np.int64),
        "sweep_max_iter": np.int64(grid.get("max_iter", cfg["max_iter"])),
        "sweep_dtypes": np.asarray(cfg["dtypes"], np.str_),
        "sweep_solvers": np.asarray(cfg["solvers"], np.str_),
    }
    return arrays, payload


def _time_to_target_subset(cfg: dict, out_dir: Path) -> None:
    """The time-to-target benchmark of ``solvers_vs_sklearn`` only, with fewer solvers (its
    ``main`` without the per-iteration and KL measurements); same problems, same seeds."""
    import jax.numpy as jnp
    from sklearn.datasets import load_digits

    from experiments.benchmarks import _bench, solvers_vs_sklearn

    quick = bool(cfg["quick"])
    m, n, k = (600, 400, 10) if quick else (2000, 1000, 20)
    X = np.random.default_rng(0).random((m, n)).astype(np.float32)
    gflops = _bench.matmul_gflops(jnp.float32)
    out = {
        "machine": _bench.machine(),
        "matmul_gflops_float32": gflops,
        "per_iteration": {},
        "time_to_target": [],
        "solvers_subset": list(cfg["solvers"]),
    }
    digits = load_digits().data.astype(np.float32)
    max_iter = 300 if quick else 1000
    sk_max_iter = int(cfg.get("sklearn_max_iter") or 4 * max_iter)
    out["max_iter"] = {"jaxnmf": max_iter, "sklearn": sk_max_iter}
    for name, data, kk in (("random", X, k), ("digits", digits, 10)):
        res = solvers_vs_sklearn.time_to_target(
            name,
            data,
            kk,
            list(cfg["solvers"]),
            max_iter,
            np.random.default_rng(2),
            sk_max_iter=sk_max_iter,
        )
        out["time_to_target"].append(res)
        print(
            f"  [time to target] {name} {data.shape}, k={kk}: "
            + ", ".join(f"{lbl} {row['seconds']:.3f} s" for lbl, row in res["solvers"].items()),
            flush=True,
        )
    _bench.write_json(SOLVERS_JSON[: -len(".json")], out, str(out_dir))


def _time_to_target(cfg: dict, out_dir: Path) -> tuple[dict, dict]:
    from experiments.benchmarks import solvers_vs_sklearn

    if cfg.get("solvers") is None:
        argv = ["--repeats", str(int(cfg["repeats"])), "--out", str(out_dir)]
        solvers_vs_sklearn.main(argv + (["--quick"] if cfg["quick"] else []))
    else:
        _time_to_target_subset(cfg, out_dir)
    payload = _read(out_dir / SOLVERS_JSON)
    problems = payload.get("time_to_target", [])
    labels = sorted({lbl for p in problems for lbl in p.get("solvers", {})})
    arrays = {
        "ttt_data": np.asarray([str(p.get("data")) for p in problems], np.str_),
        "ttt_shapes": np.asarray([p.get("shape", [0, 0]) for p in problems], np.int64),
        "ttt_ranks": np.asarray([int(p.get("k", 0)) for p in problems], np.int64),
        "ttt_solvers": np.asarray(labels, np.str_),
    }
    return arrays, payload


def main(config: dict, out_dir: Path) -> dict:
    """Run both benchmarks (each a resumable part); write ``arrays.npz`` and ``meta.json``."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = _common.Parts(out_dir, config)
    arrays, payloads, skipped = {}, {}, {}
    benchmarks = {"sweep": _sweep, "time_to_target": _time_to_target}

    def compute(tag, cfg):
        # The machine may be shared: the load around a benchmark says how far to trust it.
        before = _load_average()
        arrays, payload = benchmarks[tag](cfg, out_dir)
        return arrays, {**payload, "load_average_1min": [before, _load_average()]}

    for tag in PARTS:
        cfg = config[tag]
        if not cfg.get("enabled", True):
            skipped[tag] = f"disabled in the config ({tag}.enabled=false)"
            continue
        a, payload = parts.run(tag, lambda tag=tag, cfg=cfg: compute(tag, cfg))
        arrays.update(a)
        payload = dict(payload)
        payload.pop("wall_seconds", None)  # Parts' own record; kept in meta["parts"]
        payloads[tag] = payload
    for part, reason in skipped.items():
        print(f"  skipped {part}: {reason}", flush=True)
    arrays["parts"] = np.asarray(sorted(payloads), dtype=np.str_)
    meta = {
        "experiment": NAME,
        "config": config,
        "seeds": {
            "root_seed": int(config["root_seed"]),
            "derivation": "unused: the benchmarks fix their own seeds (sweep seeds 0..n-1 with "
            "init='random' for jaxnmf and random_state=s for scikit-learn; time to target: "
            "the random matrix from numpy default_rng(0), the initial factors from "
            "default_rng(2))",
        },
        "skipped": skipped,
        **payloads,  # "sweep", "time_to_target": the benchmarks' JSON, timings included
        "timing_note": "wall-clock seconds on a shared machine, in one process, scikit-learn "
        "and jaxnmf alternating; they differ from run to run (and are not in arrays.npz)",
        "parts": parts.record,
        "wall_seconds": time.perf_counter() - t0,
        **_common.environment(),
    }
    _common.write_results(out_dir, arrays, meta)
    return meta
