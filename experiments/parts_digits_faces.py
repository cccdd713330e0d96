"""Parts-based representations: NMF basis images vs PCA components on real images.

Question: on real image collections, does NMF learn localized, additive parts (strokes of a
digit; eyes, nose, mouth, cheeks of a face) where PCA learns holistic, signed "eigenimages",
as Lee & Seung (1999, Nature 401, Fig. 1) showed? And what reconstruction error does that
cost against the best possible rank-k approximation (truncated SVD)?

Data: scikit-learn's ``load_digits()`` (1797 × 64, 8×8 images, values 0–16) and the 100
faces of scikit-image's ``lfw_subset()`` (100 × 625, 25×25 images, values in [0, 1]); rows are
images, so the basis images are the rows of H. The faces part is skipped (and the skip recorded
in meta.json) when scikit-image is not installed.

Fits: ``jaxnmf.fit(V, k, solver="hals", init="nndsvda")`` (Frobenius loss); PCA from NumPy's
SVD of the mean-centred data.

Feeds: ``paper_figures/fig_01_parts.py`` (Figure 1).

Expected runtime (2-core CPU, including compilation and imports): smoke ≈ 12 s, full ≈ 12 s.
GPU: dominated by compilation; a few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _run

NAME = "parts_digits_faces"


def get_config(variant: str) -> dict:
    """The full config of a run as a plain dict. ``variant``: ``"smoke"`` or ``"full"``."""
    smoke = variant == "smoke"
    return {
        "name": NAME,
        "variant": variant,
        "root_seed": 0,
        "loss": "frobenius",
        "solver": "hals",
        "init": "nndsvda",
        "max_iter": 300 if smoke else 2000,
        "tol": 1e-4 if smoke else 1e-6,
        "digits": {"dataset": "sklearn.datasets.load_digits", "rank": 16},
        "faces": {
            "dataset": "skimage.data.lfw_subset (first n_images = faces)",
            "enabled": True,
            "n_images": 100,
            "rank": 25 if smoke else 49,
        },
    }


def _pca(V: np.ndarray, k: int) -> dict:
    """PCA (mean-centred SVD) components and the uncentred truncated-SVD error bound."""
    V64 = V.astype(np.float64)
    mean = V64.mean(axis=0)
    _, S, Vt = np.linalg.svd(V64 - mean, full_matrices=False)
    var = S**2
    # Eckart–Young: the best rank-k approximation of V itself (no centring, no sign
    # constraint) has relative error sqrt(Σ_{i>k} σ_i² / Σ σ_i²); NMF cannot do better.
    s_unc = np.linalg.svd(V64, compute_uv=False)
    svd_err = np.sqrt(np.sum(s_unc[k:] ** 2) / np.sum(s_unc**2))
    return {
        "components": Vt[:k].astype(np.float32),
        "mean": mean.astype(np.float32),
        "explained_variance_ratio": (var[:k] / var.sum()).astype(np.float64),
        "svd_rel_error": np.float64(svd_err),
    }


def _hoyer_rows(X: np.ndarray) -> np.ndarray:
    """Hoyer (2004) sparseness of each row of |X|: 0 = flat, 1 = a single pixel."""
    X = np.abs(X.astype(np.float64))
    d = X.shape[1]
    l1, l2 = X.sum(axis=1), np.sqrt((X**2).sum(axis=1))
    return np.where(l2 > 0, (np.sqrt(d) - l1 / np.where(l2 > 0, l2, 1)) / (np.sqrt(d) - 1), 0)


def _max_cosine(B: np.ndarray, V: np.ndarray) -> np.ndarray:
    """For each row of ``B``, its highest cosine similarity to a row of ``V`` (a data image).

    Near 1: the basis image is close to one particular image (holistic), not a part.
    """
    B, V = B.astype(np.float64), V.astype(np.float64)
    nb = np.linalg.norm(B, axis=1, keepdims=True)
    nv = np.linalg.norm(V, axis=1, keepdims=True)
    cos = (B / np.where(nb > 0, nb, 1)) @ (V / np.where(nv > 0, nv, 1)).T
    return cos.max(axis=1)


@dataclass(frozen=True)
class Fit:
    """One data set: the NMF fit, PCA on the same data, and what tells parts from wholes."""

    W: np.ndarray  # (n_images, k)
    H: np.ndarray  # (k, n_pixels): the basis images
    losses: np.ndarray  # objective per iteration
    rel_error: float  # ‖V - WH‖ / ‖V‖
    rel_error_history: np.ndarray
    kkt_residual: float
    n_iter: int
    status: str
    image_shape: np.ndarray  # (2,)
    shape: np.ndarray  # (2,) of V
    hoyer_nmf: np.ndarray  # (k,) Hoyer sparseness of each basis image
    hoyer_pca: np.ndarray
    basis_max_cosine: np.ndarray  # (k,) highest cosine of a basis image to one data image
    pca_components: np.ndarray
    pca_mean: np.ndarray
    pca_explained_variance_ratio: np.ndarray
    svd_rel_error: float  # the best rank-k error (Eckart–Young): NMF cannot do better
    fit_seconds: float = field(metadata=_run.META)  # including compilation


def _fit_one(tag: str, V: np.ndarray, image_shape, k: int, config: dict, seed: int) -> Fit:
    import jaxnmf as jn

    keys = ("loss", "solver", "init", "max_iter", "tol")
    t0 = time.perf_counter()
    res = jn.fit(V, k, seed=seed, **{key: config[key] for key in keys})
    fit_s = time.perf_counter() - t0
    pca = _pca(V, k)
    fit = Fit(
        W=res.W,
        H=res.H,
        losses=res.losses,
        rel_error=float(jn.metrics.relative_error(V, res.W, res.H)),
        rel_error_history=np.sqrt(res.losses / np.sum(V.astype(np.float64) ** 2)),
        kkt_residual=float(res.kkt_residual),
        n_iter=int(res.n_iter),
        status=str(res.status),
        image_shape=np.asarray(image_shape, np.int64),
        shape=np.asarray(V.shape, np.int64),
        hoyer_nmf=_hoyer_rows(res.H),
        hoyer_pca=_hoyer_rows(pca["components"]),
        basis_max_cosine=_max_cosine(res.H, V),
        pca_components=pca["components"],
        pca_mean=pca["mean"],
        pca_explained_variance_ratio=pca["explained_variance_ratio"],
        svd_rel_error=float(pca["svd_rel_error"]),
        fit_seconds=fit_s,
    )
    print(
        f"  {tag}: V {V.shape}, k={k}: {fit.status} ({fit.n_iter} it, {fit_s:.2f} s); "
        f"rel. error NMF {fit.rel_error:.4f} vs best rank-{k} (SVD) {fit.svd_rel_error:.4f}; "
        f"Hoyer sparseness NMF {fit.hoyer_nmf.mean():.2f} vs PCA {fit.hoyer_pca.mean():.2f}; "
        f"median max. cosine to one image {np.median(fit.basis_max_cosine):.2f}",
        flush=True,
    )
    return fit


def parts(config: dict, run: _run.Run):
    """Digits (seed path 0), then faces (seed path 1; skipped without scikit-image)."""
    from jaxnmf import datasets

    def digits(seed):
        V = datasets.load_digits(np.float32)[0]
        return _fit_one("digits", V, (8, 8), int(config["digits"]["rank"]), config, seed)

    def faces(seed):
        V, shape = datasets.load_faces(int(config["faces"]["n_images"]))
        return _fit_one("faces", V, shape, int(config["faces"]["rank"]), config, seed)

    # nndsvda is deterministic: the seeds are drawn (and recorded) but do not change a fit.
    seeds = run.seed(0), run.seed(1)
    yield _run.Part("digits", Fit, lambda: digits(seeds[0]))
    yield _run.Part("faces", Fit, lambda: faces(seeds[1]))


def main(config: dict, out_dir: Path) -> dict:
    """Fit NMF and PCA on digits and faces; write ``arrays.npz`` and ``meta.json``."""
    return _run.run(config, out_dir, parts)
