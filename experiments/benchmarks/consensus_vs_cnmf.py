"""Consensus NMF end to end: ``jaxnmf.consensus`` against the ``cnmf`` package (1.7.1).

Question: on scanpy's PBMC data (``pbmc68k_reduced``, 700 cells × 765 genes, ``.raw.X``),
how long does cNMF's whole procedure take over ranks 5..15 × 100 replicates, with the
``cnmf`` package (prepare, factorize, combine, then consensus at every k) against one
``jaxnmf.consensus`` call, and how much memory does each use at its peak?

Each library runs in its own child process (its own peak RSS, ``VmHWM``), without the
machine's OpenBLAS kernel overrides (``_fair_env``):

* ``cnmf``: ``.raw.X`` is written to a temporary ``.h5ad`` (anndata); ``cNMF.prepare`` (its
  defaults: TPM, up to 2000 over-dispersed genes, genes scaled to unit variance, Frobenius,
  scikit-learn's ``cd`` with ``tol=1e-4, max_iter=1000``), ``factorize`` (one worker, its
  default), ``combine``, and ``consensus(k)`` for every k (defaults; ``show_clustering=False``:
  no clustergram figure is drawn). Each stage is timed.
* ``jaxnmf``: reads the matrix cNMF's ``prepare`` wrote (``cnmf_tmp/<name>.norm_counts.h5ad``),
  so both factorize the same data, and runs ``jn.consensus`` on it with the same grid (HALS,
  ``max_iter=1000``, ``tol=1e-4``, density threshold 0.5, L = 0.3 · replicates), compilation
  included. Without cnmf (``--skip-cnmf``) it factorizes ``.raw.X`` instead (recorded).
  ``--solver`` names jaxnmf's solver (default ``hals``, the algorithm of scikit-learn's
  ``cd``); several names run one jaxnmf child each against the same cnmf run, the first in
  the record's ``jaxnmf_*`` fields, the others in ``other_solvers``. ``accelerated_hals``
  (Gillis & Glineur 2012) repeats each factor's HALS sweep while it pays, so that it reaches
  the same projected-gradient tolerance in fewer products with V.

The stopping rules differ: jaxnmf's ``tol`` is on the objective's relative decrease (at
``tol=1e-4`` PBMC members stop after about 40 HALS iterations), scikit-learn's ``cd`` ``tol``
on the projected gradient relative to its first value (about 100..900 iterations here).
``--tol 0 --pg-tol 1e-4`` gives jaxnmf the projected-gradient rule instead (its norm is L2,
scikit-learn's L1); ``--matrix`` reruns jaxnmf alone on a kept ``norm_counts.h5ad``, or on
an ``.npy`` written by ``--save-matrix`` (cnmf's ``norm_counts`` as an array: on a lent
accelerator, which has neither scanpy nor anndata, ``PYTHONPATH=. python -m
experiments.benchmarks.consensus_vs_cnmf --matrix pbmc_norm.npy --tol 0 --pg-tol 1e-4``).

The record holds both wall times, cnmf's stage times, both peak RSS, the ratio, and both
stability curves (a check that they solved the same problem). Writes
``results/benchmarks/consensus_vs_cnmf.json``. Not part of the CI smoke job. Runtime on the
2-core CPU: cnmf's factorize dominates (1100 scikit-learn fits); ``--ranks 5..8
--replicates 20`` for a quick look.

    python -m experiments.benchmarks.consensus_vs_cnmf [--ranks 5..15] [--replicates 100]
        [--tol 1e-4] [--pg-tol 0] [--matrix norm_counts.h5ad|.npy] [--save-matrix X.npy]
        [--skip-cnmf] [--no-check] [--solver hals [accelerated_hals ...]]
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
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments import _run
from experiments.benchmarks._bench import load_1min, machine, print_machine, write_json

_T = {"metadata": _run.META}


@dataclass(frozen=True)
class ConsensusBenchmark:
    """One end-to-end run of each library on the same data and grid."""

    ranks: np.ndarray
    n_replicates: int
    shape: np.ndarray  # the matrix factorized (cells × genes)
    data: str  # "cnmf norm_counts", ".raw.X" or the --matrix file
    jaxnmf_tol: float  # jaxnmf's stopping rule (cnmf: scikit-learn's cd, tol=1e-4)
    jaxnmf_pg_tol: float
    jaxnmf_solver: str
    jaxnmf_stability: np.ndarray
    cnmf_stability: np.ndarray  # (0,) without cnmf
    jaxnmf_seconds: float = field(**_T)  # end to end, compilation included
    jaxnmf_compile_seconds: float = field(**_T)
    jaxnmf_mean_iter: float = field(**_T)
    jaxnmf_peak_rss_gib: float = field(**_T)
    cnmf_seconds: float = field(**_T)  # NaN without cnmf
    cnmf_stage_seconds: dict = field(**_T)
    cnmf_peak_rss_gib: float = field(**_T)
    speedup: float = field(**_T)  # cnmf / jaxnmf
    # solver -> its child's seconds, compile_seconds, mean_iter, peak_rss_gib, stability and
    # speedup, for the solvers after the first of --solver (same cnmf run)
    other_solvers: dict = field(**_T)
    load_average: list = field(**_T)  # 1-minute load at the start and the end
    machine: dict = field(**_T)
    date: str = field(**_T)


def peak_rss_gib() -> float:
    """This process's peak resident set, ``VmHWM`` (Linux keeps ``ru_maxrss`` across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# --- the children ---------------------------------------------------------------------------


def child_cnmf(folder: str, ranks: list[int], n_rep: int) -> dict:
    """cNMF's four steps, timed; runs in its own process."""
    warnings.simplefilter("ignore")
    t_all = time.perf_counter()
    from cnmf import cNMF

    stages, t = {}, time.perf_counter()
    obj = cNMF(output_dir=folder, name="pbmc")
    obj.prepare(
        counts_fn=str(Path(folder) / "counts.h5ad"), components=ranks, n_iter=n_rep, seed=14
    )
    stages["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    obj.factorize(worker_i=0, total_workers=1)
    stages["factorize"] = time.perf_counter() - t
    t = time.perf_counter()
    obj.combine()
    stages["combine"] = time.perf_counter() - t
    t, stability = time.perf_counter(), []
    for k in ranks:
        obj.consensus(k, show_clustering=False, close_clustergram_fig=True)
    stages["consensus"] = time.perf_counter() - t
    total = time.perf_counter() - t_all
    # stability as cNMF's k_selection_plot reports it (no density filter): after the timing
    t = time.perf_counter()
    for k in ranks:
        out = obj.consensus(k, skip_density_and_return_after_stats=True, show_clustering=False)
        stability.append(float(out.stats["silhouette"]))
    return {
        "seconds": total,
        "stages": stages,
        "stability_seconds": time.perf_counter() - t,
        "stability": stability,
        "peak_rss_gib": peak_rss_gib(),
    }


def _read_matrix(path) -> np.ndarray:
    """The cells × genes matrix at ``path``: an ``.npy`` file, or an ``.h5ad`` (its ``X``)."""
    if str(path).endswith(".npy"):
        return np.asarray(np.load(path), np.float32)
    import anndata

    X = anndata.read_h5ad(path).X
    return np.asarray(X.toarray() if hasattr(X, "toarray") else X, np.float32)


def child_jaxnmf(path: str, ranks: list[int], n_rep: int, stop: dict, check: bool) -> dict:
    """One ``jn.consensus`` call on the matrix at ``path`` (.h5ad or .npy), timed from the
    import; ``stop``: its ``tol``, ``pg_tol`` and ``solver``; ``check``: also the stability
    without the filter."""
    warnings.simplefilter("ignore")
    t = time.perf_counter()
    import jaxnmf as jn

    X = _read_matrix(path)
    cons = jn.consensus(X, ranks, range(n_rep), max_iter=1000, **stop)
    seconds = time.perf_counter() - t
    # cNMF's stability (no density filter), for the comparison: after the timing
    stability = []
    if check:
        kw = dict(max_iter=1000, density_threshold=2.0, **stop)
        stability = [
            float(s) for s in jn.consensus(X, ranks, range(n_rep), **kw).table["stability"]
        ]
    return {
        "seconds": seconds,
        "compile_seconds": float(cons.sweep.compile_time),
        "mean_iter": float(np.mean(cons.sweep.n_iter)),
        "shape": list(X.shape),
        "stability": stability,
        "peak_rss_gib": peak_rss_gib(),
    }


# what run() keeps of a jaxnmf child's record for the solvers after the first
_CHILD_KEYS = ("seconds", "compile_seconds", "mean_iter", "peak_rss_gib", "stability")


def _child(lib: str, *args) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "experiments.benchmarks.consensus_vs_cnmf",
        "--child",
        lib,
        *map(str, args),
    ]
    env = _fair_env.cleaned(os.environ)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=_fair_env.REPO_ROOT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{lib} child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- the run --------------------------------------------------------------------------------


def run(
    ranks,
    n_rep: int,
    skip_cnmf: bool = False,
    folder: str | None = None,
    *,
    tol: float = 1e-4,
    pg_tol: float = 0.0,
    matrix: str | None = None,
    check: bool = True,
    save_matrix: str | None = None,
    solvers=("hals",),
):
    """Both libraries end to end on the PBMC data; a :class:`ConsensusBenchmark`.

    ``tol``, ``pg_tol``: jaxnmf's stopping rule. ``matrix``: an ``.h5ad`` or ``.npy`` that
    jaxnmf factorizes instead (cnmf is then not run), e.g. a kept ``norm_counts.h5ad``; an
    ``.npy`` needs neither scanpy nor anndata (a lent accelerator has neither).
    ``save_matrix``: write the matrix jaxnmf factorized (cnmf's ``norm_counts`` when cnmf
    ran) to this ``.npy``, for such a run. ``solvers``: jaxnmf's solvers, one child each."""
    mach, load0 = machine(gemm=False), load_1min()
    ranks = [int(r) for r in ranks]
    stops = [json.dumps({"tol": tol, "pg_tol": pg_tol, "solver": s}) for s in solvers]
    grid = ",".join(map(str, ranks))
    if matrix is not None and str(matrix).endswith(".npy"):
        theirs = None
        runs = [_child("jaxnmf", Path(matrix).resolve(), grid, n_rep, s, int(check)) for s in stops]
    else:
        theirs, runs = _on_pbmc(grid, n_rep, skip_cnmf, folder, matrix, stops, check, save_matrix)
    ours = runs[0]
    nan = float("nan")
    speedup = lambda rec: theirs["seconds"] / rec["seconds"] if theirs else nan
    others = {
        s: {**{k: rec[k] for k in _CHILD_KEYS}, "speedup": speedup(rec)}
        for s, rec in zip(solvers[1:], runs[1:], strict=True)
    }
    return ConsensusBenchmark(
        ranks=np.asarray(ranks),
        n_replicates=n_rep,
        shape=np.asarray(ours["shape"]),
        data="cnmf norm_counts" if theirs is not None else (matrix or ".raw.X"),
        jaxnmf_tol=tol,
        jaxnmf_pg_tol=pg_tol,
        jaxnmf_solver=solvers[0],
        jaxnmf_stability=np.asarray(ours["stability"]),
        cnmf_stability=np.asarray(theirs["stability"] if theirs else []),
        jaxnmf_seconds=ours["seconds"],
        jaxnmf_compile_seconds=ours["compile_seconds"],
        jaxnmf_mean_iter=ours["mean_iter"],
        jaxnmf_peak_rss_gib=ours["peak_rss_gib"],
        cnmf_seconds=theirs["seconds"] if theirs else nan,
        cnmf_stage_seconds=theirs["stages"] if theirs else {},
        cnmf_peak_rss_gib=theirs["peak_rss_gib"] if theirs else nan,
        speedup=speedup(ours),
        other_solvers=others,
        load_average=[load0, load_1min()],
        machine=mach,
        date=time.strftime("%Y-%m-%d %H:%M:%S"),
    )


def _on_pbmc(grid, n_rep, skip_cnmf, folder, matrix, stops, check, save_matrix):
    """``(cnmf's record or None, jaxnmf's records)``: the PBMC counts written for cNMF's
    ``prepare``, cnmf end to end (when installed and not skipped), then jaxnmf on cnmf's
    ``norm_counts`` (or on ``matrix``, or on the counts), one child per entry of ``stops``."""
    import anndata
    import pandas as pd
    import scipy.sparse

    from experiments.consensus import load_pbmc

    X, genes, _ = load_pbmc()
    have_cnmf = not skip_cnmf and matrix is None and _installed("cnmf")
    with tempfile.TemporaryDirectory(dir=folder) as d:
        counts = anndata.AnnData(
            X=scipy.sparse.csr_matrix(X),
            obs=pd.DataFrame(index=[f"cell{i}" for i in range(X.shape[0])]),
            var=pd.DataFrame(index=genes),
        )
        counts.write_h5ad(Path(d) / "counts.h5ad")
        theirs = _child("cnmf", d, grid, n_rep) if have_cnmf else None
        norm = Path(d) / "pbmc" / "cnmf_tmp" / "pbmc.norm_counts.h5ad"
        path = norm if theirs is not None else Path(matrix or Path(d) / "counts.h5ad")
        if save_matrix is not None:
            np.save(save_matrix, _read_matrix(path))
        ours = [_child("jaxnmf", path, grid, n_rep, stop, int(check)) for stop in stops]
    return theirs, ours


def _installed(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _ranks(text: str) -> list[int]:
    if ".." in text:
        lo, hi = text.split("..")
        return list(range(int(lo), int(hi) + 1))
    return [int(r) for r in text.split(",")]


def main(argv=None):
    """The command line: :func:`run`, then the JSON file and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="5..15", help="e.g. 5..15 or 5,7,9")
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--skip-cnmf", action="store_true")
    parser.add_argument("--tol", type=float, default=1e-4, help="jaxnmf's tol")
    parser.add_argument("--pg-tol", type=float, default=0.0, help="jaxnmf's pg_tol")
    parser.add_argument("--matrix", help="an .h5ad or .npy for jaxnmf alone (cnmf not run)")
    parser.add_argument("--save-matrix", help="write the matrix jaxnmf factorized to this .npy")
    parser.add_argument("--no-check", action="store_true", help="no unfiltered stability")
    parser.add_argument(
        "--solver", nargs="+", default=["hals"], help="jaxnmf's solver(s), one child each"
    )
    parser.add_argument("--dir", default=None, help="parent of the temporary folder")
    parser.add_argument("--out", default="results/benchmarks", help="folder of the JSON file")
    parser.add_argument("--child", choices=("jaxnmf", "cnmf"), help=argparse.SUPPRESS)
    parser.add_argument("child_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        where, ranks, n_rep, *extra = args.child_args
        if args.child == "cnmf":
            out = child_cnmf(where, _ranks(ranks), int(n_rep))
        else:
            stop, check = json.loads(extra[0]), bool(int(extra[1]))
            out = child_jaxnmf(where, _ranks(ranks), int(n_rep), stop, check)
        print(json.dumps(out))
        return
    rec = run(
        _ranks(args.ranks),
        args.replicates,
        args.skip_cnmf,
        args.dir,
        tol=args.tol,
        pg_tol=args.pg_tol,
        matrix=args.matrix,
        check=not args.no_check,
        save_matrix=args.save_matrix,
        solvers=args.solver,
    )
    print_machine(rec.machine)
    r = rec
    print(
        f"ranks {r.ranks[0]}..{r.ranks[-1]} × {r.n_replicates} replicates, V {r.shape} ({r.data})"
        f"; jaxnmf tol {r.jaxnmf_tol:g}, pg_tol {r.jaxnmf_pg_tol:g}:"
    )
    print(
        f"  jaxnmf {r.jaxnmf_solver}: {r.jaxnmf_seconds:.1f} s (compile "
        f"{r.jaxnmf_compile_seconds:.1f} s, mean {r.jaxnmf_mean_iter:.0f} it.), peak RSS "
        f"{r.jaxnmf_peak_rss_gib:.2f} GiB"
    )
    for name, o in r.other_solvers.items():
        print(
            f"  jaxnmf {name}: {o['seconds']:.1f} s (compile {o['compile_seconds']:.1f} s, mean "
            f"{o['mean_iter']:.0f} it.), peak RSS {o['peak_rss_gib']:.2f} GiB; speedup "
            f"{o['speedup']:.1f}×; stability {np.round(o['stability'], 3).tolist()}"
        )
    if np.isfinite(r.cnmf_seconds):
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in r.cnmf_stage_seconds.items())
        print(
            f"  cnmf   {r.cnmf_seconds:.1f} s ({stages}), peak RSS "
            f"{r.cnmf_peak_rss_gib:.2f} GiB; speedup {r.speedup:.1f}×"
        )
        print(
            f"  stability (no filter) jaxnmf {np.round(r.jaxnmf_stability, 3).tolist()}\n"
            f"                        cnmf   {np.round(r.cnmf_stability, 3).tolist()}"
        )
    print(f"wrote {write_json('consensus_vs_cnmf', _run.to_json(rec), args.out)}")


if __name__ == "__main__":
    main()
