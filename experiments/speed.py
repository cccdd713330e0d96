"""Speed against scikit-learn: a rank survey as one sweep, and the time to reach a target.

Question: how long does jaxnmf take, compilation included, against scikit-learn on the same
machine and in the same process (one per benchmark), (1) for a rank survey (digits 1797 × 64,
ranks 2..20 × some seeds, Frobenius, tol = 0) done as one ``jaxnmf.sweep`` call against
scikit-learn's ``cd`` solver in a Python loop, with the ideal time (the grid's floating-point
work divided by the measured matmul throughput) for scale, and (2) to reach an objective
within 1e-3 relative of the best any solver reached, from the same initial factors, on a
random 600 × 400 (quick) or 2000 × 1000 matrix (k = 10 or 20) and on digits (k = 10)?

Two parts, each written to ``parts/<part>.npz`` / ``.json`` when done and reused on a restart:

* ``sweep``: ``python -m experiments.benchmarks.sweep_vs_sklearn`` with the config's seeds,
  iterations, dtypes and solvers (it also times both at scikit-learn's tol = 1e-4).
* ``time_to_target``: ``python -m experiments.benchmarks.solvers_vs_sklearn``. With
  ``time_to_target.solvers = null`` (full variant) it runs as is (per-iteration times, KL,
  time to target with every solver); with a list of solvers (smoke variant) only the
  time-to-target benchmark runs (``--only-time-to-target``), with those jaxnmf solvers, on the
  same problems, and scikit-learn's search for the iterations needed stops at
  ``sklearn_max_iter``.

Each benchmark runs in a child process (``experiments.benchmarks._fair_env.run_module``) whose
environment lacks ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``. This project's machines set
them for old OpenBLAS builds; they make numpy's and scipy's OpenBLAS, which scikit-learn
computes with, run slower kernels (float32 GEMM 72 instead of 195 GFLOP/s on the 2-core AMD
EPYC), and OpenBLAS reads them when it loads: in this process (``python -m experiments``
imports numpy first) removing them would come too late.

Both benchmarks write their JSON into the run folder (``sweep_vs_sklearn.json``,
``solvers_vs_sklearn.json``); ``meta.json`` holds the same payloads under ``"sweep"`` and
``"time_to_target"``, each with the 1-minute load average before and after it (on a shared
machine other processes slow both libraries, scikit-learn's threaded BLAS/OpenMP calls most)
and, under ``"machine"``, the benchmark process's record: its BLAS libraries (threadpoolctl:
kernels, version, threads), which OpenBLAS variables were removed, numpy's and jax's GEMM
GFLOP/s and the 1/5/15-minute load average at its start and end. Timings vary from run to
run, so they stay out of the hashed array file: ``arrays.npz`` holds only the grid and names
the timings refer to. The benchmarks use their own fixed seeds (NumPy ``default_rng(0)`` for
the random matrix, ``default_rng(2)`` for the initial factors, seeds 0..n-1 of ``sweep``);
``root_seed`` is recorded but unused.

Feeds: ``paper_figures/fig_07_speed.py`` (Figure 7).

Expected runtime (2-core CPU, including compilation): smoke 50–56 s measured on this
project's shared 2-core machine while other jobs kept its load average at 4–5 (sweep ≈ 25 s,
time to target ≈ 25 s; scikit-learn's threaded calls suffer most from the load), about half
of that expected on an idle machine; full ≈ 6 min idle (the benchmarks' own estimates: sweep
≈ 2–3 min, solvers ≈ 3 min). Each benchmark's own process adds its start (importing jax and
scikit-learn, 4.6 s) and its machine record (numpy's and jax's GEMMs, 10 s), both measured at
load 4.8; one smoke run after that change took 2.1 min at load 3–6 (sweep 39 s, time to
target 88 s), not comparable with the figures above.
GPU: scikit-learn still runs on the CPU.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from . import _common
from .benchmarks import _fair_env

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
        str(out_dir.resolve()),  # the benchmark runs from the repository root
    ]
    _fair_env.run_module("experiments.benchmarks.sweep_vs_sklearn", argv)
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


def _time_to_target(cfg: dict, out_dir: Path) -> tuple[dict, dict]:
    argv = ["--repeats", str(int(cfg["repeats"])), "--out", str(out_dir.resolve())]
    argv += ["--quick"] if cfg["quick"] else []
    if cfg.get("solvers") is not None:
        # The time-to-target benchmark only, with these solvers; same problems, same seeds.
        argv += ["--only-time-to-target", "--solvers", ",".join(cfg["solvers"])]
        if cfg.get("sklearn_max_iter"):
            argv += ["--sklearn-max-iter", str(int(cfg["sklearn_max_iter"]))]
    _fair_env.run_module("experiments.benchmarks.solvers_vs_sklearn", argv)
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
        "timing_note": "wall-clock seconds on a shared machine, each benchmark in its own "
        "process (environment without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE), scikit-learn "
        "and jaxnmf alternating in it; they differ from run to run (and are not in arrays.npz)",
        "parts": parts.record,
        "wall_seconds": time.perf_counter() - t0,
        **_common.environment(),
    }
    _common.write_results(out_dir, arrays, meta)
    return meta
