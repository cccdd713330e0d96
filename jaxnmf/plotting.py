"""Plots of jaxnmf results (needs matplotlib: ``pip install jaxnmf[figures]``)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_compare"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("plotting needs matplotlib: pip install 'jaxnmf[figures]'") from e
    return plt


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
    plt = _pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    else:
        fig = axes[0].figure
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
