"""Topics of the SciPy docstrings: NMF of TF-IDF, judged against the subpackage labels.

Question: a rank-10 NMF of the TF-IDF matrix of SciPy's docstrings (Frobenius loss by HALS,
generalized KL by MU) gives 10 topics, each a weighted set of words (a row of H); clustering
each document by its largest topic weight (argmax of its row of W), how well do the clusters
recover the 10 subpackages the documents came from (NMI and ARI, scikit-learn)? DATA.md: a
plain NMF reaches NMI ≈ 0.5–0.6. Reference: k-means (scikit-learn, k = 10) on the same rows.

Data: the SciPy docstrings corpus (DATA.md; ``jaxnmf.datasets.load_scipy_docstrings``:
public callables of special, stats, signal, linalg, ndimage, optimize, interpolate, sparse,
fft, integrate; Examples/References sections and boilerplate paragraphs dropped), TF-IDF by
scikit-learn (English stop words, terms in ≥ ``min_df`` documents, the ``max_features`` most
frequent, rows l2-normalised), documents × terms.

Fits, one part per model (``parts/<model>.npz``, reused on a restart): ``jaxnmf.fit`` from the
deterministic ``nndsvda`` start (the topics shown), and ``jaxnmf.sweep(ranks=[k], seeds=...)``
from ``n_seeds`` random starts (the spread of NMI/ARI over starts), in one compiled call.

Feeds: ``paper_figures/fig_05_topics.py`` (Figure 5).

Expected runtime (2-core CPU, including compilation): smoke ≈ 8 s, full ≈ 40 s. GPU: a few
seconds after compilation.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import _common

NAME = "topics"


def get_config(variant: str) -> dict:
    """The full config of a run as a plain dict. ``variant``: ``"smoke"`` or ``"full"``."""
    smoke = variant == "smoke"
    return {
        "name": NAME,
        "variant": variant,
        "root_seed": 0,
        "dataset": "jaxnmf.datasets.load_scipy_docstrings + sklearn TfidfVectorizer",
        "max_features": 1000 if smoke else 2000,
        "min_df": 3,
        "rank": 10,
        "models": {
            "frobenius": {"loss": "frobenius", "solver": "hals"},
            "kl": {"loss": "kl", "solver": "mu"},
        },
        "display": "kl",
        "max_iter": 150 if smoke else 1000,
        "tol": 1e-5,
        "n_seeds": 2 if smoke else 10,
        "top_words": 10,
        "kmeans_n_init": 10,
    }


def contingency(labels: np.ndarray, clusters: np.ndarray, n_labels: int, k: int) -> np.ndarray:
    """``(k, n_labels)`` counts: documents of topic (cluster) i with label j."""
    table = np.zeros((k, n_labels), np.int64)
    np.add.at(table, (clusters, labels), 1)
    return table


def scores(labels: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """``(NMI, ARI)`` of a clustering against the labels (scikit-learn)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return (
        float(normalized_mutual_info_score(labels, clusters)),
        float(adjusted_rand_score(labels, clusters)),
    )


def _model_part(tag, X, labels, n_labels, cfg, config, seeds):
    import jaxnmf as jn

    k = int(config["rank"])
    common = dict(
        loss=cfg["loss"],
        solver=cfg["solver"],
        max_iter=int(config["max_iter"]),
        tol=float(config["tol"]),
    )
    t0 = time.perf_counter()
    res = jn.fit(X, k, init="nndsvda", **common)
    fit_s = time.perf_counter() - t0
    # Each topic's scale is arbitrary (W D, D⁻¹ H): normalise the rows of H to sum 1 and move
    # the scale into W, so topic weights of different documents compare.
    scale = res.H.astype(np.float64).sum(axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    W = res.W.astype(np.float64) * scale
    H = res.H.astype(np.float64) / scale[:, None]
    clusters = np.argmax(W, axis=1)
    nmi, ari = scores(labels, clusters)
    top = np.argsort(-H, axis=1, kind="stable")[:, : int(config["top_words"])]

    t1 = time.perf_counter()
    sw = jn.sweep(X, ranks=[k], seeds=seeds, init="random", **common)
    sweep_s = time.perf_counter() - t1
    seed_scores = np.array(
        [scores(labels, np.argmax(sw.W[0, s], axis=1)) for s in range(len(seeds))]
    )
    rel_err = float(jn.metrics.relative_error(X, res.W, res.H))
    arrays = {
        f"{tag}_W": W.astype(np.float32),  # (n_docs, k), rows of H scaled to sum 1
        f"{tag}_H": H.astype(np.float32),  # (k, n_terms), each row sums to 1
        f"{tag}_clusters": clusters,
        f"{tag}_contingency": contingency(labels, clusters, n_labels, k),
        f"{tag}_top_terms": top,  # (k, top_words) term indices, largest weight first
        f"{tag}_nmi": np.float64(nmi),
        f"{tag}_ari": np.float64(ari),
        f"{tag}_rel_error": np.float64(rel_err),
        f"{tag}_losses": res.losses,
        f"{tag}_n_iter": np.int64(res.n_iter),
        f"{tag}_status": np.str_(str(res.status)),
        f"{tag}_seed_nmi": seed_scores[:, 0],
        f"{tag}_seed_ari": seed_scores[:, 1],
        f"{tag}_seed_n_iter": sw.n_iter[0],
        f"{tag}_seed_status": sw.status()[0].astype(np.str_),
    }
    summary = {
        "loss": cfg["loss"],
        "solver": cfg["solver"],
        "nndsvda": {
            "nmi": nmi,
            "ari": ari,
            "rel_error": rel_err,
            "status": str(res.status),
            "n_iter": res.n_iter,
        },
        "random_starts": {
            "nmi_mean": float(seed_scores[:, 0].mean()),
            "nmi_sd": float(seed_scores[:, 0].std()),
            "ari_mean": float(seed_scores[:, 1].mean()),
            "ari_sd": float(seed_scores[:, 1].std()),
            "status": sorted(set(sw.status()[0].tolist())),
        },
        "fit_seconds_including_compile": fit_s,
        "sweep_seconds_including_compile": sweep_s,
    }
    print(
        f"  {tag} ({cfg['loss']}, {cfg['solver']}): nndsvda {res.status} after {res.n_iter} it "
        f"({fit_s:.1f} s): NMI {nmi:.3f}, ARI {ari:.3f}; {len(seeds)} random starts "
        f"({sweep_s:.1f} s): NMI {seed_scores[:, 0].mean():.3f} ± {seed_scores[:, 0].std():.3f}, "
        f"ARI {seed_scores[:, 1].mean():.3f} ± {seed_scores[:, 1].std():.3f}",
        flush=True,
    )
    return arrays, summary


def _kmeans_part(X, labels, config, seed):
    from sklearn.cluster import KMeans

    t0 = time.perf_counter()
    km = KMeans(
        n_clusters=int(config["rank"]), n_init=int(config["kmeans_n_init"]), random_state=seed
    )
    clusters = km.fit_predict(X.astype(np.float64))
    nmi, ari = scores(labels, clusters)
    print(f"  k-means (k = {config['rank']}): NMI {nmi:.3f}, ARI {ari:.3f}", flush=True)
    arrays = {
        "kmeans_clusters": clusters,
        "kmeans_nmi": np.float64(nmi),
        "kmeans_ari": np.float64(ari),
    }
    return arrays, {"nmi": nmi, "ari": ari, "seconds": time.perf_counter() - t0}


def main(config: dict, out_dir: Path) -> dict:
    """Fit every model and k-means; write ``arrays.npz`` and ``meta.json``."""
    t0 = time.perf_counter()
    root = int(config["root_seed"])
    seeds = [_common.derive_seed(root, 1, s) for s in range(int(config["n_seeds"]))]
    kmeans_seed = _common.derive_seed(root, 2)
    meta = {
        "experiment": NAME,
        "config": config,
        "seeds": {
            "root_seed": root,
            "derivation": "random starts s: SeedSequence(root_seed, spawn_key=(1, s))"
            ".generate_state(1)[0] >> 1; k-means random_state: spawn_key=(2,)",
            "sweep_seeds": seeds,
            "kmeans_seed": kmeans_seed,
        },
    }
    X, labels, names, terms, reason = _common.load_scipy_docstrings_tfidf(
        int(config["max_features"]), int(config["min_df"])
    )
    if X is None:
        print(f"  skipped topics: {reason}", flush=True)
        meta.update(skipped={"topics": reason}, results={}, wall_seconds=time.perf_counter() - t0)
        meta.update(_common.environment())
        _common.write_results(out_dir, {"parts": np.zeros(0, np.str_)}, meta)
        return meta
    print(f"  TF-IDF: {X.shape[0]} documents × {X.shape[1]} terms", flush=True)

    parts = _common.Parts(out_dir, config)
    arrays, summaries = {}, {}
    for tag, cfg in config["models"].items():
        a, s = parts.run(
            tag,
            lambda tag=tag, cfg=cfg: _model_part(tag, X, labels, len(names), cfg, config, seeds),
        )
        arrays.update(a)
        summaries[tag] = s
    a, s = parts.run("kmeans", lambda: _kmeans_part(X, labels, config, kmeans_seed))
    arrays.update(a)
    summaries["kmeans"] = s
    arrays.update(
        {
            "parts": np.asarray(list(config["models"]), np.str_),
            "labels": labels,
            "label_names": np.asarray(names, np.str_),
            "terms": terms,
            "label_counts": np.bincount(labels, minlength=len(names)),
            "shape": np.asarray(X.shape, np.int64),
        }
    )
    meta.update(
        skipped={},
        results=summaries,
        parts=parts.record,
        wall_seconds=time.perf_counter() - t0,
        **_common.environment(),
    )
    _common.write_results(out_dir, arrays, meta)
    return meta
