"""Figure 2: convergence of MU, HALS, Lin's PG and projected Adam from the same starts.

Loads ``results/convergence_digits/<variant>/`` (never fits). (a) relative objective gap
``(f(t) - f*) / f*`` per iteration, where ``f*`` is the lowest objective any solver reached
from that seed's start; thin lines are seeds, thick lines their median. (b) KKT residual at the
end relative to the start. (c) wall time per fit after a warm-up call, and the first call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _style

EXPERIMENT = "convergence_digits"
STEM = "fig_02_convergence"
GAP_FLOOR = 1e-6  # float32 objectives carry ~1e-7 relative round-off


def _curves(arrays: dict):
    """Objective per iteration with the initial value first: (n_solvers, n_seeds, 1 + max_iter)."""
    losses = arrays["losses"].astype(np.float64)
    init = np.broadcast_to(arrays["initial_loss"][None, :, None], (*losses.shape[:2], 1))
    f = np.concatenate([init, losses], axis=2)
    # f*: the lowest objective seen from this start, by any solver or the long reference run.
    f_star = np.minimum(np.nanmin(f, axis=(0, 2)), arrays["reference_loss"])
    gap = (f - f_star[None, :, None]) / f_star[None, :, None]
    return f, f_star, gap


def _timings(arrays: dict, meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(wall_seconds (n_solvers, n_seeds), compile_seconds (n_solvers,))``: from meta.json
    (timings are kept out of the hashed array files), or from arrays of older results."""
    t = meta.get("timings")
    if t is not None:
        return np.asarray(t["wall_seconds"], float), np.asarray(t["compile_seconds"], float)
    return arrays["wall_seconds"], arrays["compile_seconds"]


def _strip(ax, values: np.ndarray, names, colors, x0=0.0, marker="o", filled=True, label=None):
    """Dots per seed (slightly spread) and a horizontal bar at the median, per solver."""
    n_seeds = values.shape[1]
    spread = np.linspace(-0.12, 0.12, n_seeds) if n_seeds > 1 else np.zeros(1)
    for j in range(len(names)):
        c = colors[j]
        x = j + x0
        ax.scatter(
            x + spread,
            values[j],
            s=22,
            marker=marker,
            facecolors=c if filled else "white",
            edgecolors=c,
            linewidths=1.2,
            zorder=3,
            label=label if j == 0 else None,
        )
        ax.hlines(np.median(values[j]), x - 0.22, x + 0.22, colors=c, linewidth=2.2, zorder=2)


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 2 from saved results; ``None`` when the results are missing."""
    run_dir = _style.find_results(results_root, EXPERIMENT, variant)
    if run_dir is None:
        return None
    arrays, meta = _style.load(run_dir, needed_by=STEM)
    _style.apply()
    import matplotlib.pyplot as plt

    names = [str(s) for s in arrays["solvers"]]
    colors = [_style.SOLVER_COLORS.get(n, _style.OKABE_ITO[i % 7]) for i, n in enumerate(names)]
    labels = [_style.SOLVER_LABELS.get(n, n) for n in names]
    f, f_star, gap = _curves(arrays)
    n_solvers, n_seeds, n_pts = f.shape
    it = np.arange(n_pts)
    kkt_rel = arrays["kkt_residual"] / arrays["initial_kkt_residual"]
    wall, compile_s = _timings(arrays, meta)
    cfg = meta["config"]

    fig = plt.figure(figsize=(_style.WIDTH_IN, 6.4))
    gs = fig.add_gridspec(2, 2, height_ratios=(1.25, 1), hspace=0.45, wspace=0.32)
    ax = fig.add_subplot(gs[0, :])
    for j in range(n_solvers):
        g = np.maximum(gap[j], GAP_FLOOR)
        for i in range(n_seeds):
            ax.plot(it, g[i], color=colors[j], alpha=0.3, linewidth=0.8)
        ax.plot(it, np.median(g, axis=0), color=colors[j], linewidth=2.0, label=labels[j])
    ax.set_yscale("log")
    lowest = np.min(np.maximum(gap, GAP_FLOOR))
    ax.set_ylim(bottom=10 ** np.floor(np.log10(lowest) - 0.3))
    ax.set_xlim(0, n_pts - 1)
    ax.set_xlabel("iteration (one update of W and of H)")
    ax.set_ylabel("relative objective gap\n(f − f*) / f*")
    ax.set_title(
        f"(a) Digits 1797×64, k = {cfg['rank']}: same {n_seeds} random starts for every solver, "
        f"tol = 0",
        loc="left",
    )
    ax.legend(ncols=2, loc="lower left", frameon=True, framealpha=0.9)

    ax = fig.add_subplot(gs[1, 0])
    _strip(ax, kkt_rel, names, colors)
    ax.set_yscale("log")
    ax.set_xticks(range(n_solvers), names)
    ax.set_xlim(-0.6, n_solvers - 0.4)
    ax.set_ylabel("‖∇ᴾf‖ at end / at start")
    ax.set_title(f"(b) KKT residual after {cfg['max_iter']} it.", loc="left")

    ax = fig.add_subplot(gs[1, 1])
    _strip(ax, wall, names, colors, label="per fit, after warm-up")
    ax.scatter(
        np.arange(n_solvers) + 0.32,
        compile_s,
        marker="D",
        s=26,
        facecolors="white",
        edgecolors=colors,
        linewidths=1.2,
        zorder=3,
        label="first call (compile)",
    )
    ax.set_yscale("log")
    ax.set_xticks(range(n_solvers), names)
    ax.set_xlim(-0.6, n_solvers - 0.2)
    ax.set_ylabel("wall time (s)")
    ax.set_title(f"(c) Time for {cfg['max_iter']} iterations", loc="left")
    leg = ax.legend(
        loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, fontsize=8, frameon=False
    )
    for h in leg.legend_handles:
        h.set_edgecolor("0.3")
        if h.get_label().startswith("per fit"):
            h.set_facecolor("0.3")

    # ---- caption with the numbers behind the figure
    norm = float(arrays["norm_V_sq"])
    dev = meta.get("device", {})
    lines = [
        "Figure 2. Convergence of NMF solvers from identical starting points under one driver "
        "(jaxnmf.fit, Frobenius loss f = ||V - WH||_F², tol = 0, fixed max_iter).",
        f"Data: scikit-learn digits, V 1797×64 (float32), k = {cfg['rank']}; {n_seeds} seeds, "
        "each a start (W0, H0) = sqrt(mean(V)/k)·|N(0,1)| drawn with NumPy from root seed "
        f"{cfg['root_seed']} and given to every solver; Adam learning rate {cfg['adam_lr']}.",
        "(a) f* is the lowest objective reached from that seed's start by any solver or by a "
        f"{cfg['reference_max_iter']}-iteration {cfg['reference_solver']} reference run; gaps "
        "below "
        f"{GAP_FLOOR:g} (float32 round-off) are drawn at {GAP_FLOOR:g}. (b) projected-gradient "
        "norm (KKT residual) at the result over its value at the start. (c) wall time of one fit "
        "after a warm-up call with the same shapes (includes input checks and the transfer of "
        "the result); diamonds: the first call (compile + 1 iteration). "
        f"Timed on {dev.get('device_kind')} ({dev.get('cpu_count')} CPU cores, shared machine: "
        "times are indicative).",
        "",
        "Medians over seeds:",
        f"{'solver':<6} {'rel.err@10':>10} {'rel.err@end':>11} {'gap@end':>9} "
        f"{'KKT end/start':>13} {'fit s':>7} {'ms/iter':>8} {'compile s':>9}  status",
    ]
    rel = np.sqrt(f / norm)
    for j, name in enumerate(names):
        n_it = arrays["n_iter"][j]
        lines.append(
            f"{name:<6} {np.median(rel[j, :, min(10, n_pts - 1)]):>10.4f} "
            f"{np.median(rel[j, :, -1]):>11.5f} {np.median(gap[j, :, -1]):>9.2e} "
            f"{np.median(kkt_rel[j]):>13.2e} {np.median(wall[j]):>7.3f} "
            f"{1e3 * np.median(wall[j] / n_it):>8.3f} {compile_s[j]:>9.2f}  "
            f"{','.join(sorted(set(arrays['status'][j].tolist())))}"
        )
    best = [names[int(np.argmin(np.nanmin(f[:, i], axis=1)))] for i in range(n_seeds)]
    lines.append(
        "Lowest objective per seed among the compared runs reached by: "
        + ", ".join(f"seed {i}: {b}" for i, b in enumerate(best))
        + "; relative error sqrt(f*/||V||²) per seed: "
        + ", ".join(f"{np.sqrt(v / norm):.5f}" for v in f_star)
        + "."
    )
    lines += ["", _style.provenance(meta)]
    return _style.save(fig, out_dir, STEM, "\n".join(lines))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
