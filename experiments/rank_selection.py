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
from pathlib import Path

import numpy as np

from . import _common

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


def _survey(tag: str, V: np.ndarray, cfg: dict, seeds: list[int], heldout: float, truth=None):
    """One sweep with held-out entries, then the rank table; arrays and a summary."""
    import jaxnmf as jn

    ranks = [int(r) for r in cfg["ranks"]]
    t0 = time.perf_counter()
    sw = jn.sweep(
        V,
        ranks=ranks,
        seeds=seeds,
        loss=cfg["loss"],
        solver=cfg["solver"],
        init=cfg["init"],
        max_iter=int(cfg["max_iter"]),
        tol=float(cfg["tol"]),
        heldout=heldout,
    )
    sweep_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    table = jn.rank_selection(sw, samples=cfg["samples"])
    table_s = time.perf_counter() - t1
    suggested = {c: table.suggest(c) for c in ("cophenetic", "dispersion", "heldout_rmse")}

    arrays = {f"{tag}_{k}": np.asarray(v) for k, v in table.columns.items()}
    arrays.update(
        {
            f"{tag}_seeds": np.asarray(seeds, np.int64),
            f"{tag}_heldout_rmse": sw.heldout_rmse,  # (n_ranks, n_seeds)
            f"{tag}_final_loss": sw.final_loss,
            f"{tag}_n_iter": sw.n_iter,
            f"{tag}_status": sw.status().astype(np.str_),
            f"{tag}_shape": np.asarray(V.shape, np.int64),
            f"{tag}_suggested_criteria": np.asarray(list(suggested), np.str_),
            f"{tag}_suggested_ranks": np.asarray(list(suggested.values()), np.int64),
        }
    )
    summary = {
        "shape": list(V.shape),
        "ranks": ranks,
        "seeds": seeds,
        "suggested": suggested,
        "status_counts": {
            s: int(n) for s, n in zip(*np.unique(sw.status(), return_counts=True), strict=True)
        },
        "sweep_seconds_including_compile": sweep_s,
        "compile_seconds": sw.compile_time,
        "rank_table_seconds": table_s,
    }
    if truth is not None:
        # Agreement of each seed's clustering (argmax of the sample's coefficients) with the
        # planted groups, per rank: mean over seeds.
        ari = np.zeros((len(ranks), len(seeds)))
        for i, r in enumerate(ranks):
            for s in range(len(seeds)):
                if cfg["samples"] == "columns":
                    lab = np.argmax(sw.H[i, s][:r], axis=0)
                else:
                    lab = np.argmax(sw.W[i, s][:, :r], axis=1)
                ari[i, s] = _cluster_agreement(lab, truth)
        arrays[f"{tag}_ari"] = ari
        arrays[f"{tag}_truth"] = np.asarray(truth, np.int64)
        summary["ari_mean_by_rank"] = dict(zip(ranks, ari.mean(axis=1).tolist(), strict=True))
    print(
        f"  {tag}: V {V.shape}, ranks {ranks[0]}..{ranks[-1]} × {len(seeds)} seeds in "
        f"{sweep_s:.1f} s (compile {sw.compile_time:.1f} s); suggested "
        + ", ".join(f"{c} {r}" for c, r in suggested.items())
        + f"; status {summary['status_counts']}",
        flush=True,
    )
    print("    " + repr(table).replace("\n", "\n    "), flush=True)
    return arrays, summary


def main(config: dict, out_dir: Path) -> dict:
    """Run the rank survey of each data set; write ``arrays.npz`` and ``meta.json``."""
    t0 = time.perf_counter()
    root = int(config["root_seed"])
    heldout = float(config["heldout"])
    parts = _common.Parts(out_dir, config)
    arrays, summaries, skipped, seeds = {}, {}, {}, {}

    for index, tag in enumerate(PARTS):
        cfg = config[tag]
        seeds[tag] = [_common.derive_seed(root, index, s) for s in range(int(cfg["n_seeds"]))]
        if not cfg.get("enabled", True):
            skipped[tag] = f"disabled in the config ({tag}.enabled=false)"
            continue
        if tag == "docstrings":
            X, _, _, _, reason = _common.load_scipy_docstrings_tfidf(
                int(cfg["max_features"]), int(cfg["min_df"])
            )
            if reason is not None:
                skipped[tag] = reason
                continue

            def compute(X=X, cfg=cfg, tag=tag):
                return _survey(tag, X, cfg, seeds[tag], heldout)

        else:

            def compute(cfg=cfg, tag=tag, index=index):
                V, groups, _, _ = planted_expression(cfg, _common.numpy_rng(root, index, 999))
                return _survey(tag, V, cfg, seeds[tag], heldout, truth=groups)

        a, s = parts.run(tag, compute)
        arrays.update(a)
        summaries[tag] = s
    for part, reason in skipped.items():
        print(f"  skipped {part}: {reason}", flush=True)

    arrays["parts"] = np.asarray(sorted(summaries), dtype=np.str_)
    meta = {
        "experiment": NAME,
        "config": config,
        "seeds": {
            "root_seed": root,
            "derivation": "sweep seed s of part i (docstrings 0, planted 1): "
            "SeedSequence(root_seed, spawn_key=(i, s)).generate_state(1)[0] >> 1; it sets "
            "the initial factors and the held-out split; the planted matrix is drawn from "
            "numpy.random.default_rng(SeedSequence(root_seed, spawn_key=(1, 999)))",
            "sweep_seeds": seeds,
        },
        "skipped": skipped,
        "results": summaries,
        "parts": parts.record,
        "wall_seconds": time.perf_counter() - t0,
        **_common.environment(),
    }
    _common.write_results(out_dir, arrays, meta)
    return meta
