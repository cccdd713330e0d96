"""Sweeps with a stopping tolerance on the batched executor: packing the running members.

With a tolerance, the members of a sweep stop at very different iterations, and a batched
``while_loop`` runs until its slowest member stops. :mod:`jaxnmf._fused` skips buckets whose
members have all stopped and, in calls big enough to pay for the compilations, packs the
running members into smaller buckets (``_fused.COMPACT_FLOOR``, ``COMPACT_MIN_FLOPS``).

The sweep is consensus NMF's (``jn.consensus``'s default solver and cNMF's stopping rule):
scanpy's PBMC data (``pbmc68k_reduced().raw.X``, 700 cells × 765 genes, float32), ranks
5..15 × 30 seeds, HALS, ``max_iter=1000``, ``tol=0``, ``pg_tol=1e-4``. Each configuration runs
in its own process (cold: the first call, compile included; warm: the second):

* ``packed``: the library's default;
* ``unpacked``: packing off (``COMPACT_MIN_FLOPS = inf``), and with it the skipping of
  buckets whose members have all stopped (small calls run that way).

Writes ``results/benchmarks/sweep_stopping.json``. About 5 minutes on the 2-core CPU.

    python -m experiments.benchmarks.sweep_stopping [--seeds 30]
"""

from __future__ import annotations

# First, before numpy: this process drops the OpenBLAS kernel overrides (why: _fair_env).
from experiments.benchmarks import _fair_env

# isort: split
import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

from experiments.benchmarks._bench import machine, print_machine, write_json

CONFIGS = ("packed", "unpacked")


def pbmc() -> np.ndarray:
    """scanpy's bundled PBMC counts, cells × genes, float32, non-negative."""
    import scanpy as sc

    X = sc.datasets.pbmc68k_reduced().raw.X
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, np.float32)
    return np.maximum(X, 0)


def child(config: str, seeds: int) -> dict:
    warnings.simplefilter("ignore")
    import jaxnmf as jn
    from jaxnmf import _fused

    if config == "unpacked":
        _fused.COMPACT_MIN_FLOPS = float("inf")
    X = pbmc()
    kw = dict(solver="hals", max_iter=1000, tol=0.0, pg_tol=1e-4)
    out = {"config": config}
    for label in ("cold", "warm"):
        t = time.perf_counter()
        sw = jn.sweep(X, list(range(5, 16)), list(range(seeds)), **kw)
        out[label] = {"seconds": time.perf_counter() - t, "compile_seconds": sw.compile_time}
    n_iter = np.asarray(sw.n_iter)
    out.update(shape=list(X.shape), mean_iter=float(n_iter.mean()), max_iter=int(n_iter.max()))
    out["final_loss_sum"] = float(np.sum(sw.final_loss))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--out", default="results/benchmarks")
    parser.add_argument("--child", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.seeds)))
        return
    rec = {"benchmark": "sweep_stopping", "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    rec["machine"] = machine()
    print_machine(rec["machine"])
    env = _fair_env.cleaned(os.environ)
    for config in CONFIGS:
        cmd = [sys.executable, "-m", "experiments.benchmarks.sweep_stopping", "--child", config]
        cmd += ["--seeds", str(args.seeds)]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd=_fair_env.REPO_ROOT, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{config} child failed:\n{proc.stderr[-3000:]}")
        r = rec[config] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{config:9s} cold {r['cold']['seconds']:6.1f} s ({r['cold']['compile_seconds']:.1f} "
            f"compiling), warm {r['warm']['seconds']:6.1f} s; mean {r['mean_iter']:.0f} of up to "
            f"{r['max_iter']} iterations"
        )
    rec["warm_ratio_unpacked_over_packed"] = (
        rec["unpacked"]["warm"]["seconds"] / rec["packed"]["warm"]["seconds"]
    )
    print(f"wrote {write_json('sweep_stopping', rec, args.out)}")


if __name__ == "__main__":
    main()
