"""Figure 7: speed against scikit-learn, from the benchmark records of the ``speed`` experiment.

Loads ``results/speed/<variant>/`` (never fits, never times anything). (a) The rank survey:
per dtype, scikit-learn's ``cd`` fitting the (rank, seed) grid in a loop against one
``jaxnmf.sweep`` per solver, its compilation and its run stacked, with the ideal time (the
grid's floating-point work over the measured matmul throughput) and the ratio to scikit-learn.
(b) The time to reach an objective within 1e-3 relative of the best any solver reached, per
data set, log seconds; solvers that never reached it are hatched bars marked "not reached".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from experiments.benchmarks.solvers_vs_sklearn import SolverBenchmark
from experiments.benchmarks.sweep_vs_sklearn import SweepBenchmark

from . import _style

EXPERIMENT = "speed"
STEM = "fig_07_speed"

SKLEARN_COLOR = "#E69F00"  # orange
JAXNMF_COLOR = "#0072B2"  # blue
JAXNMF_LIGHT = "#A6CBE3"  # the compile part of a jaxnmf bar
BEST_COLOR = "#004B75"  # the fastest jaxnmf solver to the target
MISS_COLOR = "0.55"
BAR = {"edgecolor": "black", "linewidth": 0.6}
MISSED = {"facecolor": "none", "edgecolor": MISS_COLOR, "hatch": "///", "lw": 0.6}
COMPILE = {"facecolor": JAXNMF_LIGHT, "hatch": "///", "edgecolor": "black", "lw": 0.5}
IDEAL = {"linewidth": 1.4, "zorder": 4}
ABOVE = {"xytext": (0, 2), "textcoords": "offset points", "ha": "center", "va": "bottom"}
RIGHT_OF = {"xytext": (3, 0), "textcoords": "offset points", "va": "center"}  # bar labels


def load(run) -> tuple[SweepBenchmark | None, SolverBenchmark | None]:
    """The loader of this experiment's records: each benchmark's, ``None`` when not run."""
    sweep = run.part("sweep", SweepBenchmark) if "sweep" in run.parts else None
    ttt = run.part("time_to_target", SolverBenchmark) if "time_to_target" in run.parts else None
    return sweep, ttt


def _ok(x) -> bool:
    return x is not None and math.isfinite(x) and x > 0


def ratio_text(ours: float, theirs: float) -> str:
    """``"4.1× faster"`` / ``"1.3× slower"`` for our time against theirs (two decimals within
    10 %: ``"1.04× faster"``); ``""`` when either is missing."""
    if not (_ok(ours) and _ok(theirs)):
        return ""
    r = theirs / ours
    x = r if r >= 1 else 1 / r
    return (f"{x:.2f}×" if x < 1.1 else f"{x:.1f}×") + (" faster" if r >= 1 else " slower")


def _s(x) -> str:
    return f"{x:.3g}" if _ok(x) else "—"  # three significant digits: "0.013", "9.48", "12.1"


def _label(key: str) -> str:
    lib, _, solver = key.partition("_")
    return f"{'scikit-learn' if lib == 'sklearn' else lib} {solver}"


def _tol0(sw: SweepBenchmark) -> dict[str, list[int]]:
    """Row indices of the tol = 0 runs, per dtype in file order."""
    rows: dict[str, list[int]] = {}
    for i, (d, t) in enumerate(zip(sw.dtype, sw.tol, strict=True)):
        if t == 0:
            rows.setdefault(str(d), []).append(i)
    return rows


def _bar_text(total: float, run: float, sk: float) -> str:
    """The label over a jaxnmf bar: its seconds, and the ratios to scikit-learn."""
    lines = (
        f"{_s(total)} s",
        ratio_text(total, sk),
        "run: " + ratio_text(run, sk) if _ok(sk) else "",
    )
    return "\n".join(t for t in lines if t)


def _dtype_bars(ax, sw: SweepBenchmark, rows: list[int], x: float, once, notes, ticks) -> float:
    """One dtype's bars (scikit-learn, then each jaxnmf solver) and ideal line from ``x``;
    returns the next free position. ``notes`` and ``ticks`` collect labels to draw."""
    x0, sk = x, sw.sklearn_s[rows[0]]
    if _ok(sk):
        ax.bar(x, sk, 0.7, color=SKLEARN_COLOR, label=once("scikit-learn cd loop"), **BAR)
        notes.append((x, sk, f"{_s(sk)} s"))
        ticks.append((x, "scikit-learn\ncd loop"))
        x += 1
    for i in rows:
        run, comp = sw.run_s[i], sw.compile_s[i]
        ax.bar(x, run, 0.7, color=JAXNMF_COLOR, label=once("jaxnmf sweep: run"), **BAR)
        label = once("jaxnmf sweep: compilation")
        ax.bar(x, comp, 0.7, bottom=run, color=JAXNMF_LIGHT, hatch="///", label=label, **BAR)
        notes.append((x, run + comp, _bar_text(run + comp, run, sk)))
        ticks.append((x, f"jaxnmf\n{sw.solver[i]}"))
        x += 1
    ideal = sw.ideal_s[rows[0]]
    label = once("ideal: GFLOP of the grid / measured matmul GFLOP/s")
    ax.hlines(ideal, x0 - 0.45, x - 0.55, colors="black", linestyles="--", label=label, **IDEAL)
    where = dict(
        xy=((x0 + x - 1) / 2, 0),
        xycoords=("data", "axes fraction"),
        textcoords="offset points",
        ha="center",
        va="top",
    )
    ax.annotate(str(sw.dtype[rows[0]]), xytext=(0, -36), fontsize=9.5, fontweight="bold", **where)
    note = f"matmul {sw.gflops_machine[rows[0]]:.0f} GFLOP/s, ideal {_s(ideal)} s"
    ax.annotate(note, xytext=(0, -49), fontsize=8, **where)
    return x + 0.6  # gap between dtypes


def _panel_sweep(ax, sw: SweepBenchmark) -> None:
    """(a) per dtype: scikit-learn's loop, then each jaxnmf sweep (run + compilation)."""
    ax.set_title(
        f"(a) Rank survey, digits {sw.m}×{sw.n}: ranks {sw.ranks[0]}..{sw.ranks[-1]} × "
        f"{len(sw.seeds)} seed(s) × {sw.max_iter} it., tol = 0",
        loc="left",
    )
    x, ticks, notes, seen = 0.0, [], [], set()

    def once(label):  # a legend entry the first time only
        return None if label in seen or seen.add(label) else label

    for rows in _tol0(sw).values():
        x = _dtype_bars(ax, sw, rows, x, once, notes, ticks)
    ax.set_ylim(0, 1.75 * max(top for _, top, _ in notes))
    for xx, top, text in notes:
        ax.annotate(text, xy=(xx, top), fontsize=7.5, linespacing=1.05, **ABOVE)
    ax.set_xticks([t for t, _ in ticks], [label for _, label in ticks])
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="x", visible=False)
    ax.set_xlim(-0.6, x - 0.65)
    ax.set_ylabel("wall time (s)")
    ax.legend(loc="upper left", ncols=2, fontsize=8, frameon=True, framealpha=0.9)


def _best(tt: SolverBenchmark, p: int) -> tuple[int | None, float]:
    """The fastest jaxnmf solver to the target on problem ``p`` (column) and its seconds."""
    cols = [j for j, lbl in enumerate(tt.ttt_labels) if lbl.startswith("jaxnmf")]
    found = [(tt.ttt_seconds[p, j], j) for j in cols if _ok(tt.ttt_seconds[p, j])]
    return (min(found)[1], min(found)[0]) if found else (None, math.nan)


def _panel_ttt(ax, tt: SolverBenchmark, p: int, limits, first: bool) -> None:
    """(b) one problem: seconds to the target per solver, compile time under each jaxnmf bar."""
    lo, hi = limits
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    best, best_s = _best(tt, p)
    for i, key in enumerate(str(lbl) for lbl in tt.ttt_labels):
        s, sk = tt.ttt_seconds[p, i], key.startswith("sklearn")
        y = i if sk else i - 0.14
        if _ok(s):
            color = SKLEARN_COLOR if sk else (BEST_COLOR if i == best else JAXNMF_COLOR)
            ax.barh(y, s - lo, left=lo, height=0.46, color=color, **BAR)
            text = f"{_s(s)} s ({tt.ttt_iterations[p, i]:.0f} it.)"
            ax.annotate(text, xy=(s, y), fontsize=7.5, **RIGHT_OF)
        else:
            ax.barh(y, hi - lo, left=lo, height=0.46, **MISSED)
            text = f"not reached in {tt.max_iter_sklearn if sk else tt.max_iter_jaxnmf} it."
            box = dict(fc="white", ec="none", alpha=0.9)
            ax.text(math.sqrt(lo * hi), y, text, ha="center", va="center", fontsize=7, bbox=box)
        comp = tt.ttt_compile_s[p, i]
        if _ok(comp):
            ax.barh(y + 0.38, comp - lo, left=lo, height=0.18, **COMPILE)
            text = f"compile {_s(comp)} s"
            ax.annotate(text, xy=(comp, y + 0.38), fontsize=6.2, color="0.25", **RIGHT_OF)
    n = len(tt.ttt_labels)
    ax.set_yticks(range(n), [_label(str(k)) for k in tt.ttt_labels] if first else [""] * n)
    ax.set_ylim(n - 0.4, -0.6)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("seconds to the target (log scale)")
    cd = tt.ttt_seconds[p, list(tt.ttt_labels).index("sklearn_cd")]
    title = f"{tt.ttt_data[p]} {tt.ttt_shape[p][0]}×{tt.ttt_shape[p][1]}, k = {tt.ttt_k[p]}"
    if best is not None:
        title += f"\nbest jaxnmf: {ratio_text(best_s, cd) or 'cd did not reach'} than cd"
    ax.set_title(title, loc="left", fontsize=10)


def _limits(tt: SolverBenchmark) -> tuple[float, float]:
    """One log-seconds range for every data set, around every time drawn and its label."""
    times = np.concatenate([tt.ttt_seconds.ravel(), tt.ttt_compile_s.ravel()])
    finite = [t for t in times if _ok(t)] or [1e-3, 1.0]
    return 10 ** math.floor(math.log10(min(finite)) - 0.3), max(finite) * 10**1.35


def _machine(meta: dict, rec) -> str:
    """The machine, its BLAS kernels (scikit-learn's side) and what was removed for fairness."""
    blas = [b for b in rec.machine.get("blas") or [] if b.get("user_api") == "blas"]
    kern = "BLAS not recorded"
    if blas:
        b = blas[0]
        kern = f"{b['internal_api']} {b['version']}, {b['architecture']} kernels, "
        kern += f"{b['num_threads']} threads"
    fair = rec.machine.get("fair_env", {})
    removed = "/".join(fair.get("removed") or [])
    removed = f"{removed} removed before numpy loaded" if removed else "no OpenBLAS override set"
    gemm = rec.machine.get("gemm_gflops", {}).get("numpy", {})
    rates = ", ".join(f"{d} {v:.0f}" for d, v in gemm.items())
    return (
        f"Machine: {rec.machine.get('platform')}, {meta['device']['cpu_count']} CPU cores; "
        f"scikit-learn's BLAS (threadpoolctl, in the benchmark process): {kern}; numpy GEMM "
        f"GFLOP/s {rates}; {'fair' if fair.get('fair') else 'NOT fair'} ({removed}); "
        f"1-minute load {rec.load_average[0]:.1f} → "
        f"{rec.load_average[1]:.1f}."
    )


def _caption_sweep(sw: SweepBenchmark) -> list[str]:
    lines = [
        f"(a) Rank survey on digits {sw.m}×{sw.n}: ranks {sw.ranks[0]}..{sw.ranks[-1]} × "
        f"{len(sw.seeds)} seed(s), {sw.max_iter} iterations each, init 'random' "
        f"({sw.gflop:.1f} GFLOP of updates). scikit-learn: NMF(solver='cd') member by member in "
        "a Python loop; jaxnmf: one jaxnmf.sweep call, its compilation stacked on its run.",
        f"{'dtype':<8} {'solver':<6} {'tol':>6} {'sklearn s':>9} {'jaxnmf s':>9} "
        f"{'compile s':>9} {'run s':>7} {'ideal s':>8}  vs scikit-learn (total; run)",
    ]
    for i in range(len(sw.dtype)):
        total, sk, run = sw.total_s[i], sw.sklearn_s[i], sw.run_s[i]
        iters = f" (mean it. {sw.sklearn_mean_iter[i]:.0f} vs {sw.jaxnmf_mean_iter[i]:.0f})"
        lines.append(
            f"{sw.dtype[i]:<8} {sw.solver[i]:<6} {sw.tol[i]:>6g} {_s(sk):>9} {_s(total):>9} "
            f"{_s(sw.compile_s[i]):>9} {_s(run):>7} {_s(sw.ideal_s[i]):>8}  "
            f"{ratio_text(total, sk) or '—'}; {ratio_text(run, sk) or '—'}"
            + (iters if sw.tol[i] > 0 else "")
        )
    return lines


def _caption_ttt(tt: SolverBenchmark) -> list[str]:
    lines = [
        "(b) Time to reach (1 + 1e-3) × the best objective any solver reached, same initial "
        f"factors, tol = 0: jaxnmf (max {tt.max_iter_jaxnmf} it.) reads the iterations off one "
        "jaxnmf.compare trace, then times a compiled jaxnmf.fit of that length; scikit-learn "
        f"(max {tt.max_iter_sklearn} it.) searches the count (doubling, then bisection) and "
        f"times one fit of it. jaxnmf solvers: {', '.join(tt.solvers)}.",
    ]
    for p in range(len(tt.ttt_data)):
        lines.append(
            f"{tt.ttt_data[p]} {tt.ttt_shape[p][0]}×{tt.ttt_shape[p][1]}, k = {tt.ttt_k[p]}: "
            f"target {tt.ttt_target[p]:.6g}"
        )
        for i, key in enumerate(tt.ttt_labels):
            s, its = tt.ttt_seconds[p, i], tt.ttt_iterations[p, i]
            reached = f"{_s(s)} s, {its:.0f} it." if _ok(s) else "not reached"
            lines.append(
                f"  {_label(str(key)):<28} {reached:>22}  compile {_s(tt.ttt_compile_s[p, i])}"
            )
        best, best_s = _best(tt, p)
        cd = tt.ttt_seconds[p, list(tt.ttt_labels).index("sklearn_cd")]
        if best is not None:
            versus = ratio_text(best_s, cd) or "scikit-learn cd did not reach the target"
            lines.append(f"  best jaxnmf ({_label(str(tt.ttt_labels[best]))}) vs cd: {versus}")
    for loss, label, s, ideal in zip(
        tt.per_iter_loss, tt.per_iter_label, tt.per_iter_s, tt.per_iter_ideal_s, strict=True
    ):
        lines.append(
            f"Per iteration, {loss}, {_label(str(label))}: {1e3 * s:.2f} ms "
            f"(ideal {1e3 * ideal:.2f} ms)."
        )
    return lines


def caption(sw, tt, meta: dict) -> str:
    """The caption: the machine, then every number behind both panels."""
    gemm = [f"{d} {sw.gflops_machine[r[0]]:.0f}" for d, r in _tol0(sw).items()] if sw else []
    gemm += [f"float32 {tt.matmul_gflops_float32:.0f} (time-to-target run)"] if tt else []
    lines = [
        "Figure 7. Speed of jaxnmf against scikit-learn (NMF, Frobenius loss), both timed in the "
        "same process on the same machine; wall-clock seconds on a shared machine, indicative.",
        _machine(meta, sw or tt),
        f"Measured matmul throughput (a jitted square GEMM, GFLOP/s): {', '.join(gemm)}.",
        "",
    ]
    lines += [*_caption_sweep(sw), ""] if sw else []
    lines += [*_caption_ttt(tt), ""] if tt else []
    lines += [f"Not run: {k}: {v}." for k, v in meta["skipped"].items()]
    return "\n".join([*lines, _style.provenance(meta)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 7 from saved results; ``None`` when the results are missing."""
    run = _style.load_run(results_root, EXPERIMENT, variant, STEM)
    sw, tt = (None, None) if run is None else load(run)
    if sw is None and tt is None:
        return None  # both parts skipped: __main__ reports meta["skipped"]
    _style.apply()
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    n_rows = len(tt.ttt_labels) if tt else 4
    b_in = 0.38 * max(n_rows, 4) + 0.4
    fig = plt.figure(figsize=(_style.WIDTH_IN, 0.35 + 2.9 + 1.75 + b_in + 1.1))
    gs = fig.add_gridspec(
        2, 2, height_ratios=(2.9, b_in), hspace=1.75 / ((2.9 + b_in) / 2), wspace=0.16
    )
    ax = fig.add_subplot(gs[0, :])
    if sw:
        _panel_sweep(ax, sw)
    else:
        ax.set_axis_off()
    for p in range(2):
        ax = fig.add_subplot(gs[1, p])
        if tt and p < len(tt.ttt_data):
            _panel_ttt(ax, tt, p, _limits(tt), p == 0)
        else:
            ax.set_axis_off()
    handles = [
        Patch(facecolor=JAXNMF_COLOR, edgecolor="black", label="jaxnmf (compiled beforehand)"),
        Patch(facecolor=BEST_COLOR, edgecolor="black", label="fastest jaxnmf solver"),
        Patch(facecolor=SKLEARN_COLOR, edgecolor="black", label="scikit-learn"),
        Patch(label="target not reached", **MISSED),
        Patch(label="jaxnmf compilation", **COMPILE),
    ]
    if tt:
        where = dict(loc="lower center", bbox_to_anchor=(0.5, -0.06), ncols=3, fontsize=8)
        fig.legend(handles=handles, frameon=False, **where)
    return _style.save(fig, out_dir, STEM, caption(sw, tt, run.meta))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
