"""Choosing the rank: consensus clustering and held-out error from one sweep per data set.

Question: when each (rank, seed) of a rank survey is fitted with 10 % of the entries hidden,
do the cophenetic correlation (Brunet et al. 2004), the dispersion (Kim & Park 2007) and the
held-out RMSE (speckled cross-validation) point to the same rank, and to the right one where
the answer is known?

Data, one part each (written to ``parts/<part>.npz`` when done, reused on a restart):

* ``docstrings``: the SciPy docstrings corpus (DATA.md; ``jaxnmf.datasets``), TF-IDF with the
  ``max_features`` most frequent terms (scikit-learn), documents × terms. Samples are the
  documents (rows, ``samples="rows"``); 10 subpackage labels exist, but nothing says that 10
  topics is the right rank.
* ``planted``: a gene-expression-like matrix, genes × samples (Brunet et al. layout: samples are
  columns), with ``n_groups`` planted sample groups. Each group's metagene is a common
  baseline profile (log-normal) plus ``markers_per_group`` up-regulated marker genes; each
  sample is its group's metagene times a log-normal activity, plus a little of the others,
  times log-normal noise (σ = ``noise``). The true rank is ``n_groups``.

Fits: per data set one ``jaxnmf.sweep(V, ranks, seeds, heldout=0.1)`` (every (rank, seed) in
one compiled call; a different random 10 % split of the entries per seed), then
``jaxnmf.rank_selection(sweep, samples=...)``.

Feeds: ``paper_figures/fig_03_rank_selection.py`` (Figure 3).

Expected runtime (2-core CPU, including compilation): smoke ≈ 8 s, full ≈ 1.5 min (70 s of
it the docstrings sweep: 19 ranks × 6 seeds × 200 iterations of masked MU on a 1227 × 1000
matrix). GPU: under a minute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from . import _run

NAME = "rank_selection"
PARTS = ("docstrings", "planted")


def get_config(variant: str) -> dict:
    """The full config of a run as a plain dict. ``variant``: ``"smoke"`` or ``"full"``."""
    smoke = variant == "smoke"
    return {
        "name": NAME,
        "variant": variant,
        "root_seed": 0,
        "heldout": 0.1,
        "docstrings": {
            "enabled": True,
            "dataset": "jaxnmf.datasets.load_scipy_docstrings + sklearn TfidfVectorizer",
            "max_features": 400 if smoke else 1000,
            "min_df": 3,
            "samples": "rows",
            "ranks": [2, 4, 6, 8] if smoke else list(range(2, 21)),
            "n_seeds": 3 if smoke else 6,
            "loss": "frobenius",
            "solver": "mu",
            "init": "random",
            "max_iter": 60 if smoke else 200,
            "tol": 1e-4,
        },
        "planted": {
            "enabled": True,
            "n_genes": 600,
            "n_groups": 4,
            "samples_per_group": 12,
            "markers_per_group": 60,
            "marker_fold": 4.0,
            "mixing": 0.1,
            "noise": 0.5,
            "samples": "columns",
            "ranks": [2, 3, 4, 5, 6] if smoke else list(range(2, 11)),
            "n_seeds": 4 if smoke else 20,
            "loss": "frobenius",
            "solver": "mu",
            "init": "random",
            "max_iter": 150 if smoke else 500,
            "tol": 1e-5,
        },
    }


def planted_expression(cfg: dict, rng: np.random.Generator):
    """A genes × samples matrix with ``n_groups`` planted sample groups (Brunet et al. style).

    Returns ``(V, groups, W_true, H_true)``: ``V`` ``(n_genes, n_samples)`` float32 > 0,
    ``groups`` ``(n_samples,)`` the planted group of each sample (samples ordered by group).
    """
    m, g = int(cfg["n_genes"]), int(cfg["n_groups"])
    per, markers = int(cfg["samples_per_group"]), int(cfg["markers_per_group"])
    if g * markers > m:
        raise ValueError(f"n_groups × markers_per_group = {g * markers} > n_genes = {m}")
    baseline = rng.lognormal(0.0, 0.5, size=m)  # expression level of each gene
    W = np.tile(baseline[:, None], (1, g))
    genes = rng.permutation(m)
    for j in range(g):  # disjoint marker sets, up-regulated marker_fold-fold on average
        idx = genes[j * markers : (j + 1) * markers]
        W[idx, j] *= float(cfg["marker_fold"]) * rng.lognormal(0.0, 0.25, size=markers)
    groups = np.repeat(np.arange(g), per)
    n = g * per
    H = float(cfg["mixing"]) * rng.random((g, n))  # a little of every program
    H[groups, np.arange(n)] = rng.lognormal(0.0, 0.2, size=n)  # the sample's own program
    V = (W @ H) * rng.lognormal(0.0, float(cfg["noise"]), size=(m, n))
    return V.astype(np.float32), groups, W, H


def _cluster_agreement(labels: np.ndarray, truth: np.ndarray) -> float:
    """Adjusted Rand index of two labelings (scikit-learn), NaN without scikit-learn."""
    try:
        from sklearn.metrics import adjusted_rand_score
    except ImportError:
        return float("nan")
    return float(adjusted_rand_score(truth, labels))


@dataclass(frozen=True)
class Survey:
    """One data set's rank survey: the rank table (one entry per rank), the sweep's members
    (rank × seed), the ranks each criterion suggests."""

    rank: np.ndarray
    cophenetic: np.ndarray
    dispersion: np.ndarray
    heldout_rmse_mean: np.ndarray
    heldout_rmse_std: np.ndarray
    rel_error_mean: np.ndarray
    rel_error_std: np.ndarray
    n_converged: np.ndarray
    seeds: np.ndarray
    heldout_rmse: np.ndarray  # (n_ranks, n_seeds)
    final_loss: np.ndarray  # (n_ranks, n_seeds)
    n_iter: np.ndarray
    status: np.ndarray
    shape: np.ndarray  # (2,) of V
    suggested_criteria: np.ndarray  # ("cophenetic", "dispersion", "heldout_rmse")
    suggested_ranks: np.ndarray
    ari: np.ndarray  # (n_ranks, n_seeds) agreement with the planted groups; (0,) without
    truth: np.ndarray  # the planted group of each sample; (0,) without
    sweep_seconds: float = field(metadata=_run.META)  # including compilation
    compile_seconds: float = field(metadata=_run.META)


def _labels(sw, i: int, s: int, r: int, samples: str) -> np.ndarray:
    """The cluster of each sample in member (rank i, seed s): its largest coefficient."""
    return (
        np.argmax(sw.H[i, s][:r], axis=0)
        if samples == "columns"
        else np.argmax(sw.W[i, s][:, :r], axis=1)
    )


def _survey(tag: str, V: np.ndarray, cfg: dict, seeds: list[int], heldout: float, truth=None):
    """One sweep with held-out entries, then the rank table."""
    import jaxnmf as jn

    ranks = [int(r) for r in cfg["ranks"]]
    keys = ("loss", "solver", "init", "max_iter", "tol")
    t0 = time.perf_counter()
    sw = jn.sweep(V, ranks=ranks, seeds=seeds, heldout=heldout, **{k: cfg[k] for k in keys})
    sweep_s = time.perf_counter() - t0
    table = jn.rank_selection(sw, samples=cfg["samples"])
    suggested = {c: table.suggest(c) for c in ("cophenetic", "dispersion", "heldout_rmse")}
    ari = np.zeros((0,))
    if truth is not None:
        ari = np.array(
            [
                [
                    _cluster_agreement(_labels(sw, i, s, r, cfg["samples"]), truth)
                    for s in range(len(seeds))
                ]
                for i, r in enumerate(ranks)
            ]
        )
    # The record's fields that are columns of the rank table (one entry per rank).
    columns = {
        f.name: np.asarray(table.columns[f.name]) for f in fields(Survey) if f.name in table.columns
    }
    survey = Survey(
        **columns,
        seeds=np.asarray(seeds, np.int64),
        heldout_rmse=sw.heldout_rmse,
        final_loss=sw.final_loss,
        n_iter=sw.n_iter,
        status=sw.status().astype(np.str_),
        shape=np.asarray(V.shape, np.int64),
        suggested_criteria=np.asarray(list(suggested), np.str_),
        suggested_ranks=np.asarray(list(suggested.values()), np.int64),
        ari=ari,
        truth=np.asarray([] if truth is None else truth, np.int64),
        sweep_seconds=sweep_s,
        compile_seconds=float(sw.compile_time),
    )
    print(
        f"  {tag}: V {V.shape}, ranks {ranks[0]}..{ranks[-1]} × {len(seeds)} seeds in "
        f"{sweep_s:.1f} s (compile {sw.compile_time:.1f} s); suggested "
        + ", ".join(f"{c} {r}" for c, r in suggested.items()),
        flush=True,
    )
    print("    " + repr(table).replace("\n", "\n    "), flush=True)
    return survey


def parts(config: dict, run: _run.Run):
    """The docstrings survey (seed path 0), then the planted one (seed path 1)."""
    from jaxnmf import datasets

    heldout = float(config["heldout"])
    doc, planted = config["docstrings"], config["planted"]
    # Seed s of part i: it sets the initial factors and the held-out split of that member.
    doc_seeds = [run.seed(0, s) for s in range(int(doc["n_seeds"]))]
    planted_seeds = [run.seed(1, s) for s in range(int(planted["n_seeds"]))]
    planted_rng = run.rng(1, 999)

    def docstrings():
        X = datasets.load_scipy_tfidf(int(doc["max_features"]), int(doc["min_df"]))[0]
        return _survey("docstrings", X, doc, doc_seeds, heldout)

    def planted_part():
        V, groups, _, _ = planted_expression(planted, planted_rng)
        return _survey("planted", V, planted, planted_seeds, heldout, truth=groups)

    yield _run.Part("docstrings", Survey, docstrings)
    yield _run.Part("planted", Survey, planted_part)


def main(config: dict, out_dir: Path) -> dict:
    """Run the rank survey of each data set; write ``arrays.npz`` and ``meta.json``."""
    return _run.run(config, out_dir, parts)
