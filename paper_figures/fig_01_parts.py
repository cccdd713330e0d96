"""Figure 1: NMF basis images vs PCA components (Lee & Seung 1999, Fig. 1 style).

Loads ``results/parts_digits_faces/<variant>/`` (never fits). One row per data set (digits;
faces when present): NMF basis images (rows of H, each scaled to its maximum, black = large,
white = 0), sorted by their share of the reconstruction, beside the first PCA components
(each scaled to its largest magnitude; black positive, red negative).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import _style

EXPERIMENT = "parts_digits_faces"
STEM = "fig_01_parts"
TITLES = {"digits": "Digits (8×8)", "faces": "Faces (25×25)"}


def _montage(tiles: np.ndarray, shape, cols: int, pad: int = 1) -> np.ndarray:
    """(n, h·w) → one image of ``cols`` columns, tiles separated by NaN (drawn as the border).

    Small tiles are repeated to about 24 pixels a side first, so the 1-pixel border stays thin.
    """
    h, w = shape
    n = tiles.shape[0]
    rep = max(1, round(24 / h))
    tiles = tiles.reshape(n, h, w).repeat(rep, axis=1).repeat(rep, axis=2)
    h, w = h * rep, w * rep
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), np.nan)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = tiles[i].reshape(h, w)
    return out


def _near_zero_fraction(tiles: np.ndarray, rel: float = 0.05) -> float:
    """Mean fraction of a tile's pixels below ``rel`` × its largest magnitude."""
    a = np.abs(tiles)
    return float(np.mean(a < rel * a.max(axis=1, keepdims=True)))


def _part(arrays: dict, tag: str) -> dict:
    W, H = arrays[f"{tag}_W"].astype(np.float64), arrays[f"{tag}_H"].astype(np.float64)
    # Order NMF components by their share of the reconstruction ‖w_j‖·‖h_j‖ (display only).
    order = np.argsort(-(np.linalg.norm(W, axis=0) * np.linalg.norm(H, axis=1)), kind="stable")
    nmf = H[order]
    nmf = nmf / np.maximum(nmf.max(axis=1, keepdims=True), np.finfo(float).tiny)
    pca = arrays[f"{tag}_pca_components"].astype(np.float64)
    pca = pca / np.maximum(np.abs(pca).max(axis=1, keepdims=True), np.finfo(float).tiny)
    return {
        "nmf": nmf,
        "pca": pca,
        "shape": tuple(int(s) for s in arrays[f"{tag}_image_shape"]),
        "k": H.shape[0],
        "data_shape": tuple(int(s) for s in arrays[f"{tag}_shape"]),
        "rel_error": float(arrays[f"{tag}_rel_error"]),
        "svd_rel_error": float(arrays[f"{tag}_svd_rel_error"]),
        "pca_evr": float(arrays[f"{tag}_pca_explained_variance_ratio"].sum()),
        "hoyer_nmf": float(arrays[f"{tag}_hoyer_nmf"].mean()),
        "hoyer_pca": float(arrays[f"{tag}_hoyer_pca"].mean()),
        "zero_nmf": _near_zero_fraction(nmf),
        "zero_pca": _near_zero_fraction(pca),
        "max_cos": float(np.median(arrays[f"{tag}_basis_max_cosine"]))
        if f"{tag}_basis_max_cosine" in arrays
        else float("nan"),
        "status": str(arrays[f"{tag}_status"]),
        "n_iter": int(arrays[f"{tag}_n_iter"]),
    }


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 1 from saved results; ``None`` when the results are missing."""
    run_dir = _style.find_results(results_root, EXPERIMENT, variant)
    if run_dir is None:
        return None
    arrays, meta = _style.load(run_dir, needed_by=STEM)
    _style.apply()
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    tags = [str(t) for t in arrays["parts"]]
    parts = {t: _part(arrays, t) for t in tags}

    nmf_cmap = plt.get_cmap("gray_r").with_extremes(bad="#9ecae1")
    pca_cmap = LinearSegmentedColormap.from_list(
        "red_white_black", ["#c0392b", "#ffffff", "#000000"]
    ).with_extremes(bad="#9ecae1")

    row_h = 3.7
    fig, axes = plt.subplots(
        len(tags), 2, figsize=(_style.WIDTH_IN, row_h * len(tags) + 0.7), squeeze=False
    )
    images = {}
    for r, tag in enumerate(tags):
        p = parts[tag]
        cols = math.ceil(math.sqrt(p["k"]))
        for c, (kind, cmap, lo) in enumerate((("nmf", nmf_cmap, 0.0), ("pca", pca_cmap, -1.0))):
            ax = axes[r, c]
            images[kind] = ax.imshow(
                _montage(p[kind], p["shape"], cols), cmap=cmap, vmin=lo, vmax=1
            )
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for s in ax.spines.values():
                s.set_visible(False)
            if kind == "nmf":
                title = (
                    f"{TITLES.get(tag, tag)}: NMF, k = {p['k']}\n"
                    f"rel. error {p['rel_error']:.3f}, sparseness {p['hoyer_nmf']:.2f}"
                )
            else:
                title = (
                    f"{TITLES.get(tag, tag)}: PCA, first {p['k']}\n"
                    f"rel. error (rank {p['k']} SVD) {p['svd_rel_error']:.3f}, "
                    f"sparseness {p['hoyer_pca']:.2f}"
                )
            ax.set_title(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.09 / (len(tags)), 1, 1))
    for c, kind in enumerate(("nmf", "pca")):
        box = axes[-1, c].get_position()
        cax = fig.add_axes((box.x0 + 0.15 * box.width, 0.035, 0.7 * box.width, 0.018))
        cb = fig.colorbar(images[kind], cax=cax, orientation="horizontal")
        cb.set_label(
            "NMF weight / image max (≥ 0)" if kind == "nmf" else "PCA loading / image max |·|",
            fontsize=9,
        )
        cb.ax.tick_params(labelsize=8)

    cfg = meta["config"]
    lines = [
        "Figure 1. Parts-based (NMF) versus holistic (PCA) representations of real images.",
        "Left: NMF basis images (rows of H, from jaxnmf.fit(solver='hals', init='nndsvda', "
        "Frobenius loss); each scaled to its maximum, sorted by ||w_j||·||h_j||). Right: the "
        "first PCA components of the mean-centred data (NumPy SVD), each scaled to its "
        "largest magnitude; red = negative. Blue lines separate the images.",
        "'sparseness' is Hoyer's (2004) measure of each basis image (0 = flat, 1 = one pixel), "
        "averaged; 'rel. error' is ||V - WH||_F / ||V||_F; the rank-k truncated SVD of V is the "
        "best any rank-k factorization can do.",
        "",
    ]
    for tag in tags:
        p = parts[tag]
        lines.append(
            f"{TITLES.get(tag, tag)}: V {p['data_shape'][0]}×{p['data_shape'][1]}, k = {p['k']}; "
            f"NMF {p['status']} after {p['n_iter']} iterations (max_iter {cfg['max_iter']}, "
            f"tol {cfg['tol']:g}); rel. error NMF {p['rel_error']:.4f} vs rank-{p['k']} SVD "
            f"{p['svd_rel_error']:.4f}; PCA explains {100 * p['pca_evr']:.1f}% of the centred "
            f"variance; mean Hoyer sparseness NMF {p['hoyer_nmf']:.3f} vs PCA "
            f"{p['hoyer_pca']:.3f}; pixels below 5% of the image max: NMF "
            f"{100 * p['zero_nmf']:.1f}% vs PCA {100 * p['zero_pca']:.1f}%; median (over NMF "
            f"basis images) of the highest cosine similarity to a single data image "
            f"{p['max_cos']:.2f} (near 1 = a copy of one image, i.e. holistic)."
        )
    for part, reason in meta.get("skipped", {}).items():
        lines.append(f"{part}: not shown ({reason}).")
    lines += ["", _style.provenance(meta)]
    return _style.save(fig, out_dir, STEM, "\n".join(lines))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
