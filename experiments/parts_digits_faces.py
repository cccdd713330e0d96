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
from pathlib import Path

import numpy as np

from . import _common

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


def _fit_one(tag: str, V: np.ndarray, image_shape, k: int, config: dict, seed: int):
    import jaxnmf as jn

    kwargs = dict(
        loss=config["loss"],
        solver=config["solver"],
        init=config["init"],
        max_iter=config["max_iter"],
        tol=config["tol"],
        seed=seed,
    )
    t0 = time.perf_counter()
    res = jn.fit(V, k, **kwargs)
    fit_s = time.perf_counter() - t0
    rel_err = float(jn.metrics.relative_error(V, res.W, res.H))
    pca = _pca(V, k)
    hoyer_nmf = _hoyer_rows(res.H)
    hoyer_pca = _hoyer_rows(pca["components"])
    max_cos = _max_cosine(res.H, V)
    print(
        f"  {tag}: V {V.shape}, k={k}: {res.status} ({res.n_iter} it, {fit_s:.2f} s); "
        f"rel. error NMF {rel_err:.4f} vs best rank-{k} (SVD) {pca['svd_rel_error']:.4f}; "
        f"Hoyer sparseness of basis images NMF {hoyer_nmf.mean():.2f} vs PCA "
        f"{hoyer_pca.mean():.2f}; median max. cosine of a basis image to one data image "
        f"{np.median(max_cos):.2f}",
        flush=True,
    )
    arrays = {
        f"{tag}_W": res.W,
        f"{tag}_H": res.H,
        f"{tag}_losses": res.losses,
        f"{tag}_rel_error": np.float64(rel_err),
        f"{tag}_rel_error_history": np.sqrt(
            res.losses.astype(np.float64) / np.sum(V.astype(np.float64) ** 2)
        ),
        f"{tag}_kkt_residual": np.float64(res.kkt_residual),
        f"{tag}_n_iter": np.int64(res.n_iter),
        f"{tag}_status": np.str_(str(res.status)),
        f"{tag}_image_shape": np.asarray(image_shape, np.int64),
        f"{tag}_shape": np.asarray(V.shape, np.int64),
        f"{tag}_hoyer_nmf": hoyer_nmf,
        f"{tag}_hoyer_pca": hoyer_pca,
        f"{tag}_basis_max_cosine": max_cos,
        f"{tag}_pca_components": pca["components"],
        f"{tag}_pca_mean": pca["mean"],
        f"{tag}_pca_explained_variance_ratio": pca["explained_variance_ratio"],
        f"{tag}_svd_rel_error": pca["svd_rel_error"],
    }
    summary = {
        "shape": list(V.shape),
        "rank": k,
        "seed": seed,
        "status": str(res.status),
        "n_iter": res.n_iter,
        "fit_seconds_including_compile": fit_s,
        "rel_error": rel_err,
        "svd_rel_error": float(pca["svd_rel_error"]),
        "pca_explained_variance": float(pca["explained_variance_ratio"].sum()),
        "hoyer_nmf_mean": float(hoyer_nmf.mean()),
        "hoyer_pca_mean": float(hoyer_pca.mean()),
        "basis_max_cosine_median": float(np.median(max_cos)),
        "kkt_residual": res.kkt_residual,
    }
    return arrays, summary


def main(config: dict, out_dir: Path) -> dict:
    """Fit NMF and PCA on digits and faces; write ``arrays.npz`` and ``meta.json``."""
    t0 = time.perf_counter()
    root = int(config["root_seed"])
    arrays, summaries, skipped = {}, {}, {}
    seeds = {"digits": _common.derive_seed(root, 0), "faces": _common.derive_seed(root, 1)}

    # Each data set is a part: written to parts/<tag>.npz when done, reused on a restart.
    parts = _common.Parts(out_dir, config)

    def digits():
        V, shape, _ = _common.load_digits()
        return _fit_one("digits", V, shape, int(config["digits"]["rank"]), config, seeds["digits"])

    a, s = parts.run("digits", digits)
    arrays.update(a)
    summaries["digits"] = s

    fc = config["faces"]
    if not fc.get("enabled", True):
        skipped["faces"] = "disabled in the config (faces.enabled=false)"
    else:
        V, shape, reason = _common.load_faces(int(fc["n_images"]))
        if reason is not None:
            skipped["faces"] = reason
        else:
            a, s = parts.run(
                "faces",
                lambda: _fit_one("faces", V, shape, int(fc["rank"]), config, seeds["faces"]),
            )
            arrays.update(a)
            summaries["faces"] = s
    for part, reason in skipped.items():
        print(f"  skipped {part}: {reason}", flush=True)

    arrays["parts"] = np.asarray(sorted(summaries), dtype=np.str_)
    meta = {
        "experiment": NAME,
        "config": config,
        "seeds": {
            "root_seed": root,
            "derivation": "SeedSequence(root_seed, spawn_key=(i,)); digits i=0, faces i=1 "
            "(nndsvda is deterministic, so the seed does not change the result)",
            "fit_seed": seeds,
        },
        "skipped": skipped,
        "results": summaries,
        "parts": parts.record,
        "wall_seconds": time.perf_counter() - t0,
        **_common.environment(),
    }
    _common.write_results(out_dir, arrays, meta)
    return meta
