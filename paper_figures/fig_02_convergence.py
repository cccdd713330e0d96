"""Figure 2: convergence of MU, HALS, Lin's PG and projected Adam from the same starts.

Loads ``results/convergence_digits/<variant>/`` (never fits). (a) relative objective gap
``(f(t) - f*) / f*`` per iteration, where ``f*`` is the lowest objective any solver reached
from that seed's start; thin lines are seeds, thick lines their median. (b) KKT residual at the
end relative to the start. (c) run time per fit, and each solver's compilation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.convergence_digits import Convergence

from . import _style

EXPERIMENT = "convergence_digits"
STEM = "fig_02_convergence"
GAP_FLOOR = 1e-6  # float32 objectives carry ~1e-7 relative round-off
OPEN = {"linewidths": 1.2, "zorder": 3}  # the dots and diamonds of panels (b) and (c)


def _curves(rec: Convergence):
    """Objective per iteration with the initial value first: (n_solvers, n_seeds, 1 + max_iter)."""
    losses = rec.losses.astype(np.float64)
    init = np.broadcast_to(rec.initial_loss[None, :, None], (*losses.shape[:2], 1))
    f = np.concatenate([init, losses], axis=2)
    # f*: the lowest objective seen from this start, by any solver or the long reference run.
    f_star = np.minimum(np.nanmin(f, axis=(0, 2)), rec.reference_loss)
    gap = (f - f_star[None, :, None]) / f_star[None, :, None]
    return f, f_star, gap


def _strip(ax, values: np.ndarray, names, colors, x0=0.0, marker="o", filled=True, label=None):
    """Dots per seed (slightly spread) and a horizontal bar at the median, per solver."""
    n_seeds = values.shape[1]
    spread = np.linspace(-0.12, 0.12, n_seeds) if n_seeds > 1 else np.zeros(1)
    for j in range(len(names)):
        c, x = colors[j], j + x0
        dots = dict(s=22, marker=marker, facecolors=c if filled else "white", edgecolors=c)
        ax.scatter(x + spread, values[j], label=label if j == 0 else None, **dots, **OPEN)
        ax.hlines(np.median(values[j]), x - 0.22, x + 0.22, colors=c, linewidth=2.2, zorder=2)


def _panel_gap(ax, gap, names, colors, cfg) -> None:
    """(a) the relative objective gap per iteration: seeds thin, medians thick."""
    n_seeds, n_pts = gap.shape[1:]
    it = np.arange(n_pts)
    for j, name in enumerate(names):
        g = np.maximum(gap[j], GAP_FLOOR)
        for i in range(n_seeds):
            ax.plot(it, g[i], color=colors[j], alpha=0.3, linewidth=0.8)
        label = _style.SOLVER_LABELS.get(name, name)
        ax.plot(it, np.median(g, axis=0), color=colors[j], linewidth=2.0, label=label)
    ax.set_yscale("log")
    ax.set_ylim(bottom=10 ** np.floor(np.log10(np.min(np.maximum(gap, GAP_FLOOR))) - 0.3))
    ax.set_xlim(0, n_pts - 1)
    ax.set_xlabel("iteration (one update of W and of H)")
    ax.set_ylabel("relative objective gap\n(f − f*) / f*")
    ax.set_title(
        f"(a) Digits 1797×64, k = {cfg['rank']}: same {n_seeds} random starts for every solver, "
        "tol = 0",
        loc="left",
    )
    ax.legend(ncols=2, loc="lower left", frameon=True, framealpha=0.9)


def _panel_times(ax, rec: Convergence, names, colors, cfg) -> None:
    """(c) run time per fit (compilation excluded), and each solver's compilation."""
    n = len(names)
    _strip(ax, rec.wall_seconds, names, colors, label="per fit, compilation excluded")
    diamonds = dict(marker="D", s=26, facecolors="white", edgecolors=colors)
    ax.scatter(np.arange(n) + 0.32, rec.compile_seconds, label="compilation", **diamonds, **OPEN)
    ax.set_yscale("log")
    ax.set_xticks(range(n), names)
    ax.set_xlim(-0.6, n - 0.2)
    ax.set_ylabel("wall time (s)")
    ax.set_title(f"(c) Time for {cfg['max_iter']} iterations", loc="left")
    leg = ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, fontsize=8, frameon=False
    )
    for h in leg.legend_handles:
        h.set_edgecolor("0.3")
        if h.get_label().startswith("per fit"):
            h.set_facecolor("0.3")


def caption(rec: Convergence, meta: dict) -> str:
    """The caption: what was run, and the medians behind every panel."""
    cfg, dev = meta["config"], meta["device"]
    names = [str(s) for s in rec.solvers]
    f, f_star, gap = _curves(rec)
    kkt_rel = rec.kkt_residual / rec.initial_kkt_residual
    lines = [
        "Figure 2. Convergence of NMF solvers from identical starting points under one driver "
        "(jaxnmf.compare, Frobenius loss f = ||V - WH||_F², tol = 0, fixed max_iter).",
        f"Data: scikit-learn digits, V 1797×64 (float32), k = {cfg['rank']}; {len(rec.seeds)} "
        "seeds, each a random start (init='random', jaxnmf seeds "
        f"{', '.join(map(str, rec.seeds))}) shared by every solver; Adam learning rate "
        f"{cfg['adam_lr']}.",
        "(a) f* is the lowest objective reached from that seed's start by any solver or by a "
        f"{cfg['reference_max_iter']}-iteration {cfg['reference_solver']} reference run; gaps "
        f"below {GAP_FLOOR:g} (float32 round-off) are drawn at {GAP_FLOOR:g}. (b) "
        "projected-gradient norm (KKT residual) at the result over its value at the start. (c) "
        "run time of each solver's loop (jaxnmf.compare's clock, compilation excluded); "
        f"diamonds: its compilation. Timed on {dev['device_kind']} ({dev['cpu_count']} CPU "
        "cores, shared machine: times are indicative).",
        "",
        "Medians over seeds:",
        f"{'solver':<6} {'rel.err@10':>10} {'rel.err@end':>11} {'gap@end':>9} "
        f"{'KKT end/start':>13} {'run s':>7} {'ms/iter':>8} {'compile s':>9}  status",
    ]
    rel = np.sqrt(f / rec.norm_sq)
    wall = rec.wall_seconds
    for j, name in enumerate(names):
        lines.append(
            f"{name:<6} {np.median(rel[j, :, min(10, f.shape[2] - 1)]):>10.4f} "
            f"{np.median(rel[j, :, -1]):>11.5f} {np.median(gap[j, :, -1]):>9.2e} "
            f"{np.median(kkt_rel[j]):>13.2e} {np.median(wall[j]):>7.3f} "
            f"{1e3 * np.median(wall[j] / rec.n_iter[j]):>8.3f} {rec.compile_seconds[j]:>9.2f}  "
            f"{','.join(sorted(set(rec.status[j].tolist())))}"
        )
    best = [names[int(np.argmin(np.nanmin(f[:, i], axis=1)))] for i in range(f.shape[1])]
    lines.append(
        "Lowest objective per seed among the compared runs reached by: "
        + ", ".join(f"seed {i}: {b}" for i, b in enumerate(best))
        + "; relative error sqrt(f*/||V||²) per seed: "
        + ", ".join(f"{np.sqrt(v / rec.norm_sq):.5f}" for v in f_star)
        + "."
    )
    return "\n".join([*lines, "", _style.provenance(meta)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 2 from saved results; ``None`` when the results are missing."""
    run = _style.load_run(results_root, EXPERIMENT, variant, STEM)
    if run is None:
        return None
    rec, cfg = run.result(Convergence), run.meta["config"]
    _style.apply()
    import matplotlib.pyplot as plt

    names = [str(s) for s in rec.solvers]
    colors = [_style.SOLVER_COLORS.get(n, _style.OKABE_ITO[i % 7]) for i, n in enumerate(names)]
    fig = plt.figure(figsize=(_style.WIDTH_IN, 6.4))
    gs = fig.add_gridspec(2, 2, height_ratios=(1.25, 1), hspace=0.45, wspace=0.32)
    _panel_gap(fig.add_subplot(gs[0, :]), _curves(rec)[2], names, colors, cfg)
    ax = fig.add_subplot(gs[1, 0])
    _strip(ax, rec.kkt_residual / rec.initial_kkt_residual, names, colors)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel("‖∇ᴾf‖ at end / at start")
    ax.set_title(f"(b) KKT residual after {cfg['max_iter']} it.", loc="left")
    _panel_times(fig.add_subplot(gs[1, 1]), rec, names, colors, cfg)
    return _style.save(fig, out_dir, STEM, caption(rec, run.meta))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
