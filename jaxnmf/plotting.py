"""Plots of jaxnmf results (needs matplotlib: ``pip install jaxnmf[figures]``)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_compare", "plot_rank_selection"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'jaxnmf[figures]'") from e
    return plt


def _figure_and_axes(axes, n_panels: int, figsize):
    """``(figure, axes)``: the caller's axes and their figure, or a new row of ``n_panels``."""
    if axes is not None:
        return axes[0].figure, axes
    return _pyplot().subplots(1, n_panels, figsize=figsize, constrained_layout=True)


def plot_compare(result, *, relative_to_best: bool = True, axes=None):
    """Objective vs iteration and vs seconds, one line per solver (median over seeds) with a
    band from the lowest to the highest seed.

    Args:
      result: a :class:`jaxnmf.compare.CompareResult`.
      relative_to_best: plot ``(f - f*) / f*`` with ``f*`` the best objective any solver
        reached (log scale), else the objective itself.
      axes: two matplotlib axes to draw on; new ones otherwise.

    Returns:
      The matplotlib figure.
    """
    fig, axes = _figure_and_axes(axes, 2, (10, 4))
    best = result.best_loss()
    for name, trace in result.traces.items():
        f = np.concatenate([result.initial_loss[:, None], trace.losses], axis=1)
        y = (f - best) / abs(best) if relative_to_best else f
        if relative_to_best:
            y = np.where(y > 0, y, np.nan)  # the best point itself has no place on a log axis
        secs = np.concatenate(
            [np.zeros((len(result.seeds), 1)), trace.seconds_per_iteration()], axis=1
        )
        iters = np.arange(f.shape[1])
        with np.errstate(all="ignore"):
            med, lo, hi = np.nanmedian(y, 0), np.nanmin(y, 0), np.nanmax(y, 0)
        (line,) = axes[0].plot(iters, med, label=name)
        axes[0].fill_between(iters, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        for s in range(len(result.seeds)):
            axes[1].plot(
                secs[s], y[s], color=line.get_color(), alpha=0.7, label=name if s == 0 else None
            )
    ylabel = "relative objective gap (f − f*) / f*" if relative_to_best else "objective f"
    for ax, xlabel in zip(axes, ["iteration", "run time (s, compilation excluded)"], strict=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if relative_to_best:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(title=f"rank {result.rank}, {len(result.seeds)} seeds")
    return fig


def plot_rank_selection(table, *, axes=None):
    """The rank-selection criteria against the rank, three panels (Brunet et al. 2004 style).

    1. cophenetic correlation and dispersion of the consensus matrix (higher is more stable);
    2. held-out RMSE, mean ± standard deviation over seeds (only when the sweep hid entries);
    3. relative reconstruction error on the fitted entries, mean ± standard deviation.

    A dotted vertical line marks the rank each criterion suggests (:meth:`RankTable.suggest`).

    Args:
      table: a :class:`jaxnmf.rank_selection.RankTable`.
      axes: three matplotlib axes to draw on; new ones otherwise.

    Returns:
      The matplotlib figure.
    """
    fig, axes = _figure_and_axes(axes, 3, (13, 3.8))
    ranks = np.asarray(table["rank"])

    def mark(ax, criterion, color):
        ax.axvline(table.suggest(criterion), color=color, linestyle=":", linewidth=1.2)

    for name, color in (("cophenetic", "C0"), ("dispersion", "C1")):
        axes[0].plot(ranks, table[name], "o-", color=color, label=name)
        mark(axes[0], name, color)
    axes[0].set_ylabel("consensus stability (1 = perfect)")
    axes[0].legend(title="dotted: suggested rank")

    heldout = np.asarray(table["heldout_rmse_mean"])
    if np.all(np.isnan(heldout)):
        axes[1].text(
            0.5,
            0.5,
            "no held-out entries\n(sweep with heldout > 0)",
            ha="center",
            va="center",
            transform=axes[1].transAxes,
        )
    else:
        axes[1].errorbar(ranks, heldout, yerr=table["heldout_rmse_std"], fmt="o-", capsize=3)
        mark(axes[1], "heldout_rmse", "C0")
    axes[1].set_ylabel("held-out RMSE (mean ± sd over seeds)")

    axes[2].errorbar(
        ranks, table["rel_error_mean"], yerr=table["rel_error_std"], fmt="o-", capsize=3
    )
    axes[2].set_ylabel("relative error ‖V − WH‖ / ‖V‖")
    for ax in axes:
        ax.set_xlabel("rank k")
        ax.set_xticks(ranks)
        ax.grid(alpha=0.3)
    return fig
