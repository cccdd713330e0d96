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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _run

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


@dataclass(frozen=True)
class Model:
    """One NMF model of the corpus: the nndsvda fit (topics, clusters, scores) and the scores
    of the random starts."""

    W: np.ndarray  # (n_docs, k), the scale of H's rows moved in
    H: np.ndarray  # (k, n_terms), each row sums to 1
    clusters: np.ndarray  # (n_docs,) argmax of each row of W
    contingency: np.ndarray  # (k, n_labels) documents per topic and label
    top_terms: np.ndarray  # (k, top_words) term indices, largest weight first
    nmi: float
    ari: float
    rel_error: float
    losses: np.ndarray
    n_iter: int
    status: str
    seed_nmi: np.ndarray  # (n_seeds,) random starts
    seed_ari: np.ndarray
    seed_n_iter: np.ndarray
    seed_status: np.ndarray
    seconds: list = field(metadata=_run.META)  # the fit, the sweep (compilation included)


@dataclass(frozen=True)
class KMeans:
    """scikit-learn's k-means on the same TF-IDF rows: the baseline clustering."""

    clusters: np.ndarray
    nmi: float
    ari: float


@dataclass(frozen=True)
class Corpus:
    """The corpus as fitted: labels, their names, the terms of the columns."""

    labels: np.ndarray
    label_names: np.ndarray
    terms: np.ndarray
    label_counts: np.ndarray
    shape: np.ndarray


def _model(X, labels, n_labels, cfg, config, seeds) -> Model:
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
    t1 = time.perf_counter()
    sw = jn.sweep(X, ranks=[k], seeds=seeds, init="random", **common)
    t2 = time.perf_counter()
    # Each topic's scale is arbitrary (W D, D⁻¹ H): normalise the rows of H to sum 1 and move
    # the scale into W, so topic weights of different documents compare.
    scale = res.H.astype(np.float64).sum(axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    W = res.W.astype(np.float64) * scale
    H = res.H.astype(np.float64) / scale[:, None]
    clusters = np.argmax(W, axis=1)
    nmi, ari = scores(labels, clusters)
    seed_scores = np.array(
        [scores(labels, np.argmax(sw.W[0, s], axis=1)) for s in range(len(seeds))]
    )
    print(
        f"  {cfg['loss']}, {cfg['solver']}: nndsvda {res.status} after {res.n_iter} it: NMI "
        f"{nmi:.3f}, ARI {ari:.3f}; {len(seeds)} random starts: NMI "
        f"{seed_scores[:, 0].mean():.3f}, ARI {seed_scores[:, 1].mean():.3f}",
        flush=True,
    )
    return Model(
        W=W.astype(np.float32),
        H=H.astype(np.float32),
        clusters=clusters,
        contingency=contingency(labels, clusters, n_labels, k),
        top_terms=np.argsort(-H, axis=1, kind="stable")[:, : int(config["top_words"])],
        nmi=nmi,
        ari=ari,
        rel_error=float(jn.metrics.relative_error(X, res.W, res.H)),
        losses=res.losses,
        n_iter=int(res.n_iter),
        status=str(res.status),
        seed_nmi=seed_scores[:, 0],
        seed_ari=seed_scores[:, 1],
        seed_n_iter=sw.n_iter[0],
        seed_status=sw.status()[0].astype(np.str_),
        seconds=[t1 - t0, t2 - t1],
    )


def _kmeans(X, labels, config, seed) -> KMeans:
    from sklearn.cluster import KMeans as SKKMeans

    km = SKKMeans(
        n_clusters=int(config["rank"]), n_init=int(config["kmeans_n_init"]), random_state=seed
    )
    clusters = km.fit_predict(X.astype(np.float64))
    nmi, ari = scores(labels, clusters)
    print(f"  k-means (k = {config['rank']}): NMI {nmi:.3f}, ARI {ari:.3f}", flush=True)
    return KMeans(clusters, nmi, ari)


def parts(config: dict, run: _run.Run):
    """One part per model (random starts: seed path (1, s)), then k-means (path (2,))."""
    from jaxnmf import datasets

    seeds = [run.seed(1, s) for s in range(int(config["n_seeds"]))]
    kmeans_seed = run.seed(2)
    X, labels, names, terms = datasets.load_scipy_tfidf(
        int(config["max_features"]), int(config["min_df"])
    )  # DataUnavailableError: the run is skipped
    print(f"  TF-IDF: {X.shape[0]} documents × {X.shape[1]} terms", flush=True)
    for tag, cfg in config["models"].items():
        yield _run.Part(tag, Model, lambda c=cfg: _model(X, labels, len(names), c, config, seeds))
    yield _run.Part("kmeans", KMeans, lambda: _kmeans(X, labels, config, kmeans_seed))
    return Corpus(
        labels,
        np.asarray(names, np.str_),
        terms,
        np.bincount(labels, minlength=len(names)),
        np.asarray(X.shape, np.int64),
    )


def main(config: dict, out_dir: Path) -> dict:
    """Fit every model and k-means; write ``arrays.npz`` and ``meta.json``."""
    return _run.run(config, out_dir, parts)
