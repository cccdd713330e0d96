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

from experiments.parts_digits_faces import Fit

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


def load(run) -> dict[str, Fit]:
    """The loader of this experiment's records: ``{data set: Fit}`` of the parts that ran."""
    return {tag: run.part(tag, Fit) for tag in run.parts}


def _part(rec: Fit) -> dict:
    """What a row of the figure shows: the scaled basis images and their summary numbers."""
    W, H = rec.W.astype(np.float64), rec.H.astype(np.float64)
    # Order NMF components by their share of the reconstruction ‖w_j‖·‖h_j‖ (display only).
    order = np.argsort(-(np.linalg.norm(W, axis=0) * np.linalg.norm(H, axis=1)), kind="stable")
    nmf = H[order] / np.maximum(H[order].max(axis=1, keepdims=True), np.finfo(float).tiny)
    pca = rec.pca_components.astype(np.float64)
    pca = pca / np.maximum(np.abs(pca).max(axis=1, keepdims=True), np.finfo(float).tiny)
    return {
        "nmf": nmf,
        "pca": pca,
        "shape": tuple(int(s) for s in rec.image_shape),
        "k": H.shape[0],
        "zero_nmf": _near_zero_fraction(nmf),
        "zero_pca": _near_zero_fraction(pca),
    }


def _row(axes, tag: str, rec: Fit, cmaps) -> dict:
    """One data set: NMF basis images left, PCA components right; the images drawn."""
    p, images = _part(rec), {}
    cols = math.ceil(math.sqrt(p["k"]))
    for ax, (kind, lo) in zip(axes, (("nmf", 0.0), ("pca", -1.0)), strict=True):
        images[kind] = ax.imshow(
            _montage(p[kind], p["shape"], cols), cmap=cmaps[kind], vmin=lo, vmax=1
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for s in ax.spines.values():
            s.set_visible(False)
        name = TITLES.get(tag, tag)
        if kind == "nmf":
            title = (
                f"{name}: NMF, k = {p['k']}\nrel. error {rec.rel_error:.3f}, sparseness "
                f"{rec.hoyer_nmf.mean():.2f}"
            )
        else:
            title = (
                f"{name}: PCA, first {p['k']}\nrel. error (rank {p['k']} SVD) "
                f"{rec.svd_rel_error:.3f}, sparseness {rec.hoyer_pca.mean():.2f}"
            )
        ax.set_title(title, fontsize=10)
    return images


def caption(fits: dict[str, Fit], meta: dict) -> str:
    """The caption: the method, then each data set's numbers."""
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
    for tag, rec in fits.items():
        p, (m, n) = _part(rec), (int(v) for v in rec.shape)
        lines.append(
            f"{TITLES.get(tag, tag)}: V {m}×{n}, k = {p['k']}; NMF {rec.status} after "
            f"{rec.n_iter} iterations (max_iter {cfg['max_iter']}, tol {cfg['tol']:g}); rel. "
            f"error NMF {rec.rel_error:.4f} vs rank-{p['k']} SVD {rec.svd_rel_error:.4f}; PCA "
            f"explains {100 * rec.pca_explained_variance_ratio.sum():.1f}% of the centred "
            f"variance; mean Hoyer sparseness NMF {rec.hoyer_nmf.mean():.3f} vs PCA "
            f"{rec.hoyer_pca.mean():.3f}; pixels below 5% of the image max: NMF "
            f"{100 * p['zero_nmf']:.1f}% vs PCA {100 * p['zero_pca']:.1f}%; median (over NMF "
            "basis images) of the highest cosine similarity to a single data image "
            f"{np.median(rec.basis_max_cosine):.2f} (near 1 = a copy of one image, i.e. "
            "holistic)."
        )
    lines += [f"{part}: not shown ({why})." for part, why in meta["skipped"].items()]
    return "\n".join([*lines, "", _style.provenance(meta)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 1 from saved results; ``None`` when the results are missing."""
    run = _style.load_run(results_root, EXPERIMENT, variant, STEM)
    if run is None:
        return None
    fits = load(run)
    _style.apply()
    import matplotlib.pyplot as plt
    from matplotlib.colors import LinearSegmentedColormap

    cmaps = {
        "nmf": plt.get_cmap("gray_r").with_extremes(bad="#9ecae1"),
        "pca": LinearSegmentedColormap.from_list(
            "red_white_black", ["#c0392b", "#ffffff", "#000000"]
        ).with_extremes(bad="#9ecae1"),
    }
    n = len(fits)
    fig, axes = plt.subplots(n, 2, figsize=(_style.WIDTH_IN, 3.7 * n + 0.7), squeeze=False)
    images = [_row(axes[r], tag, rec, cmaps) for r, (tag, rec) in enumerate(fits.items())][-1]
    fig.tight_layout(rect=(0, 0.09 / n, 1, 1))
    for c, kind in enumerate(("nmf", "pca")):
        box = axes[-1, c].get_position()
        cax = fig.add_axes((box.x0 + 0.15 * box.width, 0.035, 0.7 * box.width, 0.018))
        cb = fig.colorbar(images[kind], cax=cax, orientation="horizontal")
        label = "NMF weight / image max (≥ 0)" if kind == "nmf" else "PCA loading / image max |·|"
        cb.set_label(label, fontsize=9)
        cb.ax.tick_params(labelsize=8)
    return _style.save(fig, out_dir, STEM, caption(fits, run.meta))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
