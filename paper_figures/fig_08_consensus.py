"""Figure 8: consensus NMF of single cells (PBMC) and the rank of the Big Five inventory.

Loads ``results/consensus/<variant>/`` (never fits). Top row, PBMC (700 cells × 765 genes):
(a) cNMF's k-selection plot, stability (silhouette of the replicate components' clustering)
and the consensus fit's error against the rank, the chosen k starred; (b) at that k, each
consensus program's mean usage (normalized per cell) per annotated cell type, programs
labelled by their top genes. Bottom row, Big Five inventory (25 items, missing answers
masked): (c) held-out RMSE (mean ± paired SE over seeds) and (d) bi-cross-validation MSE
(mean ± sd over folds) against the rank, each criterion's pick starred, the five traits
dotted.
"""

from __future__ import annotations

from pathlib import Path

from experiments.consensus import Programs, RankChoice

from . import _style

EXPERIMENT = "consensus"
STEM = "fig_08_consensus"
BLUE, RED, GREEN = "#0072B2", "#D55E00", "#009E73"
TRAITS = 5


def load(run) -> dict:
    """The records of the parts that ran: ``{"pbmc": Programs, "bfi": RankChoice}``."""
    kinds = {"pbmc": Programs, "bfi": RankChoice}
    return {tag: run.part(tag, cls) for tag, cls in kinds.items() if tag in run.parts}


def picks(rec: RankChoice) -> dict[str, int]:
    return dict(zip((str(c) for c in rec.criteria), (int(p) for p in rec.picks), strict=True))


def _star(ax, ranks, y, k, color):
    _style.mark(ax, k, y[list(ranks).index(k)], color)


def draw_kselection(ax, rec: Programs) -> None:
    """(a) stability (left axis) and error (right axis) against the rank."""
    ax.plot(rec.rank, rec.stability, "o-", color=BLUE, ms=3.5)
    _star(ax, rec.rank, rec.stability, rec.k, BLUE)
    ax.set(xlabel="rank k", xticks=rec.rank, title=f"(a) PBMC k-selection, k = {rec.k}")
    ax.set_ylabel("stability (silhouette)", color=BLUE)
    twin = ax.twinx()
    twin.plot(rec.rank, rec.error / 1e3, "s--", color=RED, ms=3)
    twin.set_ylabel("error ‖V − WH‖² (×10³)", color=RED)
    twin.grid(False)


def draw_usage(ax, rec: Programs) -> None:
    """(b) mean usage of each program per cell type, a heatmap."""
    im = ax.imshow(rec.usage_by_type, aspect="auto", cmap="viridis", vmin=0)
    labels = [f"{i + 1}: " + ", ".join(g) for i, g in enumerate(rec.top_genes.tolist())]
    ax.set_xticks(range(rec.k), labels, rotation=60, ha="right", fontsize=7)
    types = [f"{t} ({n})" for t, n in zip(rec.cell_types, rec.n_cells, strict=True)]
    ax.set_yticks(range(len(types)), types, fontsize=7)
    ax.grid(False)
    ax.set_title("(b) mean program usage per cell type")
    ax.figure.colorbar(im, ax=ax, fraction=0.05, pad=0.02, label="mean usage")


def draw_bfi(ax, rec: RankChoice, which: str) -> None:
    """(c) held-out RMSE or (d) BCV MSE against the rank, the picks starred."""
    if which == "heldout":
        y, err, color = rec.heldout_rmse_mean, rec.heldout_rmse_se, RED
        ks = {picks(rec).get("heldout_rmse_1se"), picks(rec).get("heldout_rmse")} - {None}
        title, label = "(c) BFI held-out RMSE (± paired SE)", "held-out RMSE (Likert points)"
    elif rec.bcv_pick == 0:  # not run (bicv_folds=0)
        ax.text(0.5, 0.5, "bi-cross-validation not run\n(bicv_folds = 0)", ha="center",
                va="center", transform=ax.transAxes, color="0.4")  # fmt: skip
        ax.set(title="(d) BFI bi-cross-validation", xticks=[], yticks=[])
        return
    else:
        y, err, color = rec.bcv_mse_mean, rec.bcv_mse_std, GREEN
        ks, title, label = {rec.bcv_pick}, "(d) BFI bi-cross-validation (± sd)", "BCV MSE"
    ax.errorbar(rec.rank, y, yerr=err, color=color, marker="o", ms=3.5, capsize=2.5)
    for k in ks:
        _star(ax, rec.rank, y, k, color)
        ax.annotate(
            f"k = {k}",
            (k, y[list(rec.rank).index(k)]),
            xytext=(6, 8),
            textcoords="offset points",
            color=color,
            fontsize=9,
            fontweight="bold",
        )
    ax.axvline(TRAITS, color="0.35", linestyle=":", linewidth=1.4, zorder=1)
    ax.set(xlabel="rank k", xticks=rec.rank, ylabel=label, title=title)


def caption(recs: dict, meta: dict) -> str:
    cfg, lines = meta["config"], ["Figure 8. Consensus NMF and rank selection."]
    if "pbmc" in recs:
        r, c = recs["pbmc"], cfg["pbmc"]
        lines.append(
            f"(a, b) jaxnmf.consensus of scanpy's pbmc68k_reduced .raw.X ({r.shape[0]} cells × "
            f"{r.shape[1]} genes), ranks {r.rank[0]}..{r.rank[-1]} × {r.n_replicates} "
            f"replicates, {c['solver']}, max_iter {c['max_iter']}, tol {c['tol']:g}, pg_tol "
            f"{c.get('pg_tol', 0.0):g}, density threshold "
            f"{c['density_threshold']:g}; stability peak k = {r.stability_pick}, shown k = {r.k}."
        )
        lines.append(f"{'rank':>4} {'stability':>9} {'error':>10} {'rel.err':>7} {'outliers':>8}")
        lines += [
            f"{int(k):>4} {s:>9.4f} {e:>10.1f} {q:>7.4f} {int(o):>8}"
            for k, s, e, q, o in zip(
                r.rank, r.stability, r.error, r.rel_error, r.n_outliers, strict=True
            )
        ]
    if "bfi" in recs:
        r = recs["bfi"]
        lines.append(
            f"(c, d) Big Five inventory, {r.shape[0]} people × {r.shape[1]} items "
            f"({100 * r.observed_fraction:.1f} % answered; missing answers masked), "
            f"{r.n_seeds} seeds, 10 % of the answers held out per seed; BCV on the "
            f"{r.n_complete} complete rows. Picks: "
            + ", ".join(f"{c} {k}" for c, k in picks(r).items())
            + f"; suggest() -> {r.recommended} ({r.reason})."
        )
    lines += [f"{part}: not shown ({why})." for part, why in meta["skipped"].items()]
    return "\n".join([*lines, _style.provenance(meta)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 8 from saved results; ``None`` when the results are missing."""
    run = _style.load_run(results_root, EXPERIMENT, variant, STEM)
    recs = {} if run is None else load(run)
    if not recs:
        return None
    _style.apply()
    import matplotlib.pyplot as plt

    rows = [t for t in ("pbmc", "bfi") if t in recs]
    fig, axes = plt.subplots(
        len(rows),
        2,
        figsize=(_style.WIDTH_IN, 3.6 * len(rows)),
        squeeze=False,
        layout="constrained",
    )
    for row, tag in zip(axes, rows, strict=True):
        if tag == "pbmc":
            draw_kselection(row[0], recs[tag])
            draw_usage(row[1], recs[tag])
        else:
            draw_bfi(row[0], recs[tag], "heldout")
            draw_bfi(row[1], recs[tag], "bcv")
    return _style.save(fig, out_dir, STEM, caption(recs, run.meta))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
