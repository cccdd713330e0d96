"""Figure 3: choosing the rank from one sweep: cophenetic, dispersion, held-out RMSE.

Loads ``results/rank_selection/<variant>/`` (never fits). One row per data set (SciPy
docstrings TF-IDF; planted gene-expression-like data), three panels per row: the cophenetic
correlation and the dispersion of the consensus matrix over seeds (one value per rank), and
the held-out RMSE (mean ± sd over seeds, a different 10 % split per seed). Stars: the rank
``RankTable.suggest`` picks for each criterion; dotted line: the planted rank.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.rank_selection import Survey

from . import _style

EXPERIMENT = "rank_selection"
STEM = "fig_03_rank_selection"
CRITERIA = (
    ("cophenetic", "cophenetic correlation", "#0072B2"),
    ("dispersion", "dispersion", "#009E73"),
    ("heldout_rmse", "held-out RMSE", "#D55E00"),
)


UNITS = {"docstrings": "TF-IDF units", "planted": "expression units"}


def load(run) -> dict[str, Survey]:
    """The loader of this experiment's records: ``{part: Survey}`` of the parts that ran."""
    return {tag: run.part(tag, Survey) for tag in ("docstrings", "planted") if tag in run.parts}


def _title(tag: str, rec: Survey, cfg: dict) -> str:
    m, n = (int(v) for v in rec.shape)
    if tag == "docstrings":
        return (
            f"(a) SciPy docstrings, TF-IDF {m} documents × {n} terms; samples = documents; "
            f"{len(rec.seeds)} seeds"
        )
    return (
        f"(b) Planted expression data, {m} genes × {n} samples in {cfg['n_groups']} groups; "
        f"samples = columns; {len(rec.seeds)} seeds"
    )


def _suggested(rec: Survey) -> dict[str, int]:
    crit = (str(c) for c in rec.suggested_criteria)
    return dict(zip(crit, (int(v) for v in rec.suggested_ranks), strict=True))


def _heldout(ax, rec: Survey, color: str, unit: str) -> bool:
    """Held-out RMSE, mean ± sd over seeds; a log axis when a few seeds explode (returned)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    mean, sd = rec.heldout_rmse_mean, rec.heldout_rmse_std
    log = bool(np.max(mean + sd) / np.min(mean) > 5)
    lower = np.minimum(sd, 0.5 * mean) if log else sd
    bars = dict(color=color, marker="o", ms=3.5, capsize=2.5, elinewidth=1.0)
    ax.errorbar(rec.rank, mean, yerr=(lower, sd), **bars)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(f"held-out RMSE ({unit})")
    return log


def _row(sub, tag: str, rec: Survey, cfg: dict) -> bool:
    """One data set: three panels, the suggested rank starred; whether RMSE is on a log axis."""
    axes = sub.subplots(1, 3, gridspec_kw={"wspace": 0.42})
    sub.suptitle(_title(tag, rec, cfg), x=0.01, ha="left", fontsize=10.5)
    sub.subplots_adjust(left=0.09, right=0.99, bottom=0.2, top=0.83)
    ranks, sugg, log = rec.rank, _suggested(rec), False
    for ax, (crit, label, color) in zip(axes, CRITERIA, strict=True):
        if crit == "heldout_rmse":
            log, y = _heldout(ax, rec, color, UNITS[tag]), rec.heldout_rmse_mean
        else:
            y = getattr(rec, crit)
            ax.plot(ranks, y, color=color, marker="o", ms=3.5)
            ax.set_ylabel(label)
            ax.margins(y=0.12)
        k = sugg[crit]
        yk = y[list(ranks).index(k)]
        _style.mark(ax, k, yk, color)
        right = k > ranks[0] + 0.6 * (ranks[-1] - ranks[0])  # label inside the axes
        where = dict(xytext=(-7, 7), ha="right") if right else dict(xytext=(7, 7), ha="left")
        label_style = dict(textcoords="offset points", fontsize=9, fontweight="bold")
        ax.annotate(f"k = {k}", (k, yk), color=color, **where, **label_style)
        if tag == "planted":
            ax.axvline(int(cfg["n_groups"]), color="0.35", linestyle=":", linewidth=1.4, zorder=1)
        ax.set_xlabel("rank k")
        ax.set_xticks(ranks[:: 2 if len(ranks) > 10 else 1])
        ax.set_title(label, fontsize=10, color=color)
    return log


def _caption_part(tag: str, rec: Survey, c: dict) -> list[str]:
    """The caption lines of one data set: its settings and its rank table."""
    m, n = (int(v) for v in rec.shape)
    sugg, n_seeds = _suggested(rec), len(rec.seeds)
    head = (
        f"{'(a) SciPy docstrings' if tag == 'docstrings' else '(b) Planted data'}: V {m}×{n}, "
        f"loss {c['loss']}, solver {c['solver']}, init {c['init']}, max_iter {c['max_iter']}, "
        f"tol {c['tol']:g}, {n_seeds} seeds; suggested ranks: "
        + ", ".join(f"{k} {v}" for k, v in sugg.items())
    )
    if tag == "docstrings":
        head += (
            f"; TF-IDF of the {c['max_features']} most frequent terms (scikit-learn), "
            "10 subpackage labels (not a ground-truth rank)."
        )
    else:
        head += (
            f"; planted rank {c['n_groups']}: {c['n_groups']} groups × {c['samples_per_group']} "
            f"samples, {c['markers_per_group']} marker genes per group up "
            f"{c['marker_fold']:g}-fold over a shared log-normal baseline, mixing "
            f"{c['mixing']:g}, multiplicative log-normal noise σ = {c['noise']:g}."
        )
    has_ari = rec.ari.size > 0
    lines = [
        head,
        f"{'rank':>4} {'cophenetic':>10} {'dispersion':>10} {'held-out RMSE':>19} {'rel.err':>7}"
        + (f" {'ARI vs groups':>13}" if has_ari else "")
        + f" {'status (converged/seeds)':>24}",
    ]
    for i, rk in enumerate(rec.rank):
        lines.append(
            f"{int(rk):>4} {rec.cophenetic[i]:>10.4f} {rec.dispersion[i]:>10.4f} "
            f"{rec.heldout_rmse_mean[i]:>9.4g} ± {rec.heldout_rmse_std[i]:<7.3g} "
            f"{rec.rel_error_mean[i]:>7.4f}"
            + (f" {rec.ari[i].mean():>13.3f}" if has_ari else "")
            + f" {int(rec.n_converged[i]):>21}/{n_seeds}"
        )
    if tag == "planted":
        best = {
            crit: ", ".join(str(int(k)) for k in rec.rank[v >= v.max() - 1e-4])
            for crit, v in (("cophenetic", rec.cophenetic), ("dispersion", rec.dispersion))
        }
        lines.append(
            f"Highest cophenetic correlation at k = {best['cophenetic']}; highest dispersion at "
            f"k = {best['dispersion']} (planted: {c['n_groups']}). Held-out RMSE is lowest at "
            f"k = {sugg['heldout_rmse']}; past the planted rank unpenalised NMF overfits the "
            "observed entries and a few hidden entries get very large predictions (hence the "
            "wide sd)."
        )
    return [*lines, ""]


def caption(surveys: dict[str, Survey], meta: dict, logged: list[str]) -> str:
    cfg = meta["config"]
    lines = [
        "Figure 3. Rank selection from one jaxnmf.sweep per data set (every rank × seed in one "
        f"compiled call, {100 * cfg['heldout']:.0f}% of the entries hidden per seed, a "
        "different split per seed) and jaxnmf.rank_selection.",
        "Cophenetic correlation (Brunet et al. 2004) and dispersion (Kim & Park 2007) are "
        "properties of the consensus matrix over all seeds, so there is one value per rank; "
        "held-out RMSE is the root mean squared error on the hidden entries, mean ± sd over "
        "seeds. Stars: the rank RankTable.suggest picks (cophenetic/dispersion: the last rank "
        "of the first peak, before the coefficient falls; held-out RMSE: the lowest mean).",
    ]
    if logged:
        lines.append(
            f"Held-out RMSE of {', '.join(logged)} is drawn on a log axis (a few seeds have very "
            "large errors), with the lower whisker cut at half the mean."
        )
    lines.append("")
    for tag, rec in surveys.items():
        lines += _caption_part(tag, rec, cfg[tag])
    lines += [f"{part}: not shown ({why})." for part, why in meta["skipped"].items()]
    return "\n".join([*lines, _style.provenance(meta)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 3 from saved results; ``None`` when the results are missing."""
    run = _style.load_run(results_root, EXPERIMENT, variant, STEM)
    surveys = {} if run is None else load(run)
    if not surveys:
        return None
    _style.apply()
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    cfg = run.meta["config"]
    fig = plt.figure(figsize=(_style.WIDTH_IN, 2.75 * len(surveys) + 0.35))
    subfigs = fig.subfigures(len(surveys) + 1, 1, height_ratios=[1] * len(surveys) + [0.12])
    logged = [
        tag
        for sub, (tag, rec) in zip(subfigs[:-1], surveys.items(), strict=True)
        if _row(sub, tag, rec, cfg[tag])
    ]
    handles = [
        Line2D([], [], marker="*", ms=12, color="0.5", mec="black", mew=0.6, ls="none"),
        Line2D([], [], color="#D55E00", marker="o", ms=3.5, label="x"),
    ]
    labels = ["rank suggested by RankTable.suggest", "held-out RMSE: mean ± sd over seeds"]
    if "planted" in surveys:
        handles.append(Line2D([], [], color="0.35", linestyle=":", linewidth=1.4))
        labels.append(f"planted rank ({cfg['planted']['n_groups']})")
    subfigs[-1].legend(
        handles, labels, loc="center", ncols=len(labels), fontsize=8.5, frameon=False
    )
    return _style.save(fig, out_dir, STEM, caption(surveys, run.meta, logged))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
