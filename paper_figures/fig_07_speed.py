"""Figure 7: speed against scikit-learn, from the benchmarks saved by the ``speed`` experiment.

Loads ``results/speed/<variant>/meta.json`` (never fits, never times anything). (a) The rank
survey: per dtype, scikit-learn's ``cd`` fitting the (rank, seed) grid in a loop against one
``jaxnmf.sweep`` per solver, its compilation and its run stacked, with the ideal time (the
grid's floating-point work over the measured matmul throughput) and the ratio to scikit-learn.
(b) The time to reach an objective within 1e-3 relative of the best any solver reached, per
data set, log seconds; solvers that never reached it are hatched bars marked "not reached".
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from . import _style

EXPERIMENT = "speed"
STEM = "fig_07_speed"

SKLEARN_COLOR = "#E69F00"  # orange
JAXNMF_COLOR = "#0072B2"  # blue
JAXNMF_LIGHT = "#A6CBE3"  # the compile part of a jaxnmf bar
BEST_COLOR = "#004B75"  # the fastest jaxnmf solver to the target
MISS_COLOR = "0.55"


def _num(x) -> float:
    """A timing from JSON as a float: ``None`` (a NaN written out) and junk become NaN."""
    if isinstance(x, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(x, math.nan)
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _ok(x) -> bool:
    return math.isfinite(_num(x)) and _num(x) > 0


def ratio_text(ours: float, theirs: float) -> str:
    """``"4.1× faster"`` / ``"1.3× slower"`` for our time against theirs (two decimals within
    10 %: ``"1.04× faster"``); ``""`` when either is missing."""
    if not (_ok(ours) and _ok(theirs)):
        return ""
    r = theirs / ours
    x = r if r >= 1 else 1 / r
    return (f"{x:.2f}×" if x < 1.1 else f"{x:.1f}×") + (" faster" if r >= 1 else " slower")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _fmt_s(x) -> str:
    x = _num(x)
    if not math.isfinite(x):
        return "—"
    return f"{x:.3g}"  # three significant digits: "0.013", "9.48", "12.1"


def _sweep_rows(sweep: dict) -> tuple[list[str], dict, list[dict]]:
    """``(dtypes, {dtype: [tol=0 rows]}, tol rows)`` of the sweep benchmark, in file order."""
    rows = [r for r in sweep.get("runs", []) if isinstance(r, dict)]
    main = [r for r in rows if not _num(r.get("tol", 0.0))]
    tol = [r for r in rows if _num(r.get("tol", 0.0))]
    dtypes = list(dict.fromkeys(str(r.get("dtype")) for r in main))
    return dtypes, {d: [r for r in main if str(r.get("dtype")) == d] for d in dtypes}, tol


def _panel_sweep(ax, sweep: dict) -> None:
    dtypes, by_dtype, _ = _sweep_rows(sweep)
    grid = sweep.get("grid", {})
    ranks, seeds = grid.get("ranks") or [], grid.get("seeds") or []
    m, n = grid.get("m"), grid.get("n")
    span = f"ranks {ranks[0]}..{ranks[-1]}" if ranks else "ranks ?"
    ax.set_title(
        f"(a) Rank survey, digits {m}×{n}: {span} × {_count(len(seeds), 'seed')} × "
        f"{grid.get('max_iter')} it., tol = 0",
        loc="left",
    )
    if not dtypes:
        ax.text(0.5, 0.5, "no sweep results", transform=ax.transAxes, ha="center")
        return
    x, ticks, labels, tops = 0.0, [], [], []
    seen = set()

    def once(label):  # a legend entry the first time only
        if label in seen:
            return None
        seen.add(label)
        return label

    annotations = []  # (x, top, text): drawn once the y range is known
    for dtype in dtypes:
        rows = by_dtype[dtype]
        x0 = x
        sk = _num(rows[0].get("sklearn_cd_s"))
        if _ok(sk):
            ax.bar(
                x,
                sk,
                width=0.7,
                color=SKLEARN_COLOR,
                edgecolor="black",
                linewidth=0.6,
                label=once("scikit-learn cd, one fit per (rank, seed)"),
            )
            annotations.append((x, sk, f"{_fmt_s(sk)} s"))
            ticks.append(x)
            labels.append("scikit-learn\ncd loop")
            tops.append(sk)
            x += 1
        for r in rows:
            total = _num(r.get("jaxnmf_total_s"))
            comp = _num(r.get("jaxnmf_compile_s"))
            run = _num(r.get("jaxnmf_run_s"))
            if not math.isfinite(run) and math.isfinite(total) and math.isfinite(comp):
                run = total - comp
            if not math.isfinite(comp):
                comp = total - run if math.isfinite(total) and math.isfinite(run) else 0.0
            if not math.isfinite(run):
                run = total if math.isfinite(total) else 0.0
            ax.bar(
                x,
                run,
                width=0.7,
                color=JAXNMF_COLOR,
                edgecolor="black",
                linewidth=0.6,
                label=once("jaxnmf sweep: run"),
            )
            ax.bar(
                x,
                comp,
                bottom=run,
                width=0.7,
                color=JAXNMF_LIGHT,
                hatch="///",
                edgecolor="black",
                linewidth=0.6,
                label=once("jaxnmf sweep: compilation"),
            )
            top = run + comp
            text = f"{_fmt_s(top)} s"
            rt = ratio_text(top, sk)
            if rt:
                text += f"\n{rt}"
                rr = ratio_text(run, sk)
                if rr:
                    text += f"\nrun: {rr}"
            annotations.append((x, top, text))
            ticks.append(x)
            labels.append(f"jaxnmf\n{r.get('solver')}")
            tops.append(top)
            x += 1
        ideal = _num(rows[0].get("ideal_s"))
        if _ok(ideal):
            ax.annotate(
                "ideal",
                xy=(x - 0.55, ideal),
                xytext=(2, 1),
                textcoords="offset points",
                ha="left",
                va="bottom",
                fontsize=7.5,
            )
            ax.hlines(
                ideal,
                x0 - 0.45,
                x - 0.55,
                colors="black",
                linestyles="--",
                linewidth=1.4,
                zorder=4,
                label=once("ideal: GFLOP of the grid / measured matmul GFLOP/s"),
            )
        gf = _num(rows[0].get("gflops_machine"))
        where = dict(
            xy=((x0 + x - 1) / 2, 0),
            xycoords=("data", "axes fraction"),
            textcoords="offset points",
            ha="center",
            va="top",
        )
        ax.annotate(dtype, xytext=(0, -36), fontsize=9.5, fontweight="bold", **where)
        if _ok(gf):
            note = f"matmul {gf:.0f} GFLOP/s, ideal {_fmt_s(ideal)} s"
            ax.annotate(note, xytext=(0, -49), fontsize=8, **where)
        x += 0.6  # gap between dtypes
    ymax = max(tops) if tops else 1.0
    ax.set_ylim(0, 1.75 * ymax)
    for xx, top, text in annotations:
        ax.annotate(
            text,
            xy=(xx, top),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7.5,
            linespacing=1.05,
        )
    ax.set_xticks(ticks, labels)
    ax.tick_params(axis="x", length=0)
    ax.grid(axis="x", visible=False)
    ax.set_xlim(-0.6, x - 0.6 - 0.05)  # room for the last "ideal" label
    ax.set_ylabel("wall time (s)")
    ax.legend(loc="upper left", ncols=2, fontsize=8, frameon=True, framealpha=0.9)


def _label(key: str) -> str:
    lib, _, solver = key.partition("_")
    return f"{'scikit-learn' if lib == 'sklearn' else lib} {solver}"


def _ttt_summary(problem: dict) -> tuple[str | None, float, float]:
    """``(best jaxnmf label, its seconds, scikit-learn cd seconds)`` of one problem."""
    rows = problem.get("solvers", {})
    ours = {k: _num(v.get("seconds")) for k, v in rows.items() if k.startswith("jaxnmf")}
    ours = {k: v for k, v in ours.items() if _ok(v)}
    best = min(ours, key=ours.get) if ours else None
    cd = _num(rows.get("sklearn_cd", {}).get("seconds"))
    return best, (ours[best] if best else math.nan), cd


def _ttt_limits(problems: list[dict]) -> tuple[float, float]:
    """One log-seconds range for every data set, around every time drawn and its label."""
    finite = [
        _num(row.get(key))
        for p in problems
        for row in p.get("solvers", {}).values()
        for key in ("seconds", "compile_s")
        if _ok(row.get(key))
    ]
    if not finite:
        return 1e-3, 10.0
    lo = 10 ** math.floor(math.log10(min(finite)) - 0.3)
    hi = max(finite) * 10**1.35  # room for the label right of the longest bar
    return lo, hi


def _panel_ttt(ax, problem: dict, order: list[str], limits, max_iter: dict | None, first: bool):
    rows = problem.get("solvers", {})
    best, best_s, cd = _ttt_summary(problem)
    secs = [_num(rows.get(k, {}).get("seconds")) for k in order]
    comps = [_num(rows.get(k, {}).get("compile_s")) for k in order]
    lo, hi = limits
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    y = np.arange(len(order))
    best_obj = _num(problem.get("best_objective"))
    main_h, comp_h = 0.46, 0.18  # a row: the time to the target, under it the compile time
    for i, key in enumerate(order):
        if key not in rows:
            continue
        row, s = rows[key], secs[i]
        sk = key.startswith("sklearn")
        y_main = i - 0.14 if not sk else i
        if _ok(s):
            color = SKLEARN_COLOR if sk else (BEST_COLOR if key == best else JAXNMF_COLOR)
            ax.barh(y_main, s - lo, left=lo, height=main_h, color=color, edgecolor="black", lw=0.6)
            its = row.get("iterations")
            ax.annotate(
                f"{_fmt_s(s)} s" + (f" ({its} it.)" if its else ""),
                xy=(s, y_main),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7.5,
            )
        else:
            ax.barh(
                y_main,
                hi - lo,
                left=lo,
                height=main_h,
                facecolor="none",
                edgecolor=MISS_COLOR,
                hatch="///",
                lw=0.6,
            )
            final = _num(row.get("final"))
            if _ok(final) and _ok(best_obj):
                why = f"not reached: ended {100 * (final / best_obj - 1):.2g} % above best"
            elif max_iter and max_iter.get("sklearn" if sk else "jaxnmf"):
                why = f"not reached in {max_iter['sklearn' if sk else 'jaxnmf']} it."
            else:
                why = "not reached"
            ax.text(
                math.sqrt(lo * hi),
                y_main,
                why,
                ha="center",
                va="center",
                fontsize=7,
                bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.9),
            )
        if _ok(comps[i]):
            y_comp = y_main + (main_h + comp_h) / 2 + 0.06
            ax.barh(
                y_comp,
                comps[i] - lo,
                left=lo,
                height=comp_h,
                color=JAXNMF_LIGHT,
                hatch="///",
                edgecolor="black",
                lw=0.5,
            )
            ax.annotate(
                f"compile {_fmt_s(comps[i])} s",
                xy=(comps[i], y_comp),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=6.2,
                color="0.25",
            )
    ax.set_yticks(y, [_label(k) for k in order] if first else [""] * len(order))
    ax.set_ylim(len(order) - 0.4, -0.6)
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("seconds to the target (log scale)")
    shape = problem.get("shape") or ["?", "?"]
    title = f"{problem.get('data')} {shape[0]}×{shape[1]}, k = {problem.get('k')}"
    if best is not None and _ok(cd):
        title += f"\nbest jaxnmf: {ratio_text(best_s, cd)} than cd"
    elif best is not None:
        title += "\nscikit-learn cd did not reach the target"
    ax.set_title(title, loc="left", fontsize=10)


def _ttt_order(problems: list[dict]) -> list[str]:
    keys = list(dict.fromkeys(k for p in problems for k in p.get("solvers", {})))
    return [k for k in keys if not k.startswith("sklearn")] + [
        k for k in keys if k.startswith("sklearn")
    ]


def _load_text(sweep: dict | None, solvers: dict | None) -> str:
    parts = []
    for name, payload in (("sweep", sweep), ("time to target", solvers)):
        la = (payload or {}).get("load_average_1min")
        if isinstance(la, list) and la and all(_ok(v) for v in la):
            parts.append(f"{name} " + "/".join(f"{_num(v):.1f}" for v in la))
    return ", ".join(parts)


def _blas_text(mach: dict) -> str | None:
    """scikit-learn's side of the machine: numpy's BLAS kernel and threads, numpy's GEMM rate,
    and whether the benchmark removed the OpenBLAS variables that slow it (fair_env)."""
    blas = [b for b in mach.get("blas") or [] if b.get("user_api") == "blas"]
    if not blas:
        return None
    first = blas[0]
    text = (
        f"{first.get('internal_api')} {first.get('version')}, {first.get('architecture')} "
        f"kernels, {first.get('num_threads')} threads"
    )
    gemm = (mach.get("gemm_gflops") or {}).get("numpy") or {}
    if gemm:
        rates = ", ".join(f"{d} {_num(v):.0f}" for d, v in gemm.items() if _ok(_num(v)))
        text += f"; numpy GEMM {rates} GFLOP/s"
    fair = mach.get("fair_env") or {}
    if "fair" in fair and not fair["fair"]:
        text += "; NOT fair: numpy was loaded before the OpenBLAS variables could be removed"
    elif fair.get("removed"):
        text += f"; {'/'.join(fair['removed'])} removed before numpy loaded"
    elif "fair" in fair:
        text += "; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE not set"
    return text


def _footnote(meta: dict, sweep: dict | None, solvers: dict | None) -> str:
    """One line under the figure: the machine, its measured throughput and its load."""
    dev = meta.get("device", {})
    mach = (sweep or solvers or {}).get("machine", {})
    bits = [f"{dev.get('cpu_count') or mach.get('cpu_count')} CPU cores"]
    if dev.get("platform") and dev.get("platform") != "cpu":
        bits[0] = f"{dev.get('device_kind')} ({dev.get('platform')}), " + bits[0]
    gf = [_num(r.get("gflops_machine")) for r in (sweep or {}).get("runs", [])]
    gf += [_num((solvers or {}).get("matmul_gflops_float32"))]
    gf = [g for g in gf if _ok(g)]
    if gf:
        lo, hi = round(min(gf)), round(max(gf))
        bits[0] += f" (matmul {lo} GFLOP/s)" if lo == hi else f" (matmul {lo}–{hi} GFLOP/s)"
    loads = [
        _num(v)
        for p in (sweep, solvers)
        for v in ((p or {}).get("load_average_1min") or [])
        if _ok(v)
    ]
    if loads:
        bits.append(f"1-min load average {min(loads):.1f}–{max(loads):.1f}")
    blas = [b for b in mach.get("blas") or [] if b.get("user_api") == "blas"]
    if blas:
        bits.append(f"scikit-learn on OpenBLAS {blas[0].get('architecture')} kernels")
    return "Timed on " + ", ".join(bits) + ": single runs on a shared machine, indicative."


def _caption(meta: dict, sweep: dict | None, solvers: dict | None, max_iter) -> str:
    dev = meta.get("device", {})
    cfg = meta.get("config", {})
    lines = [
        "Figure 7. Speed of jaxnmf against scikit-learn (NMF, Frobenius loss), both timed in "
        "the same process on the same machine; wall-clock seconds on a shared machine, so "
        "indicative only.",
    ]
    gflops = []
    if sweep:
        for d, rows in _sweep_rows(sweep)[1].items():
            if rows and _ok(rows[0].get("gflops_machine")):
                gflops.append(f"{d} {_num(rows[0]['gflops_machine']):.0f}")
    if solvers and _ok(solvers.get("matmul_gflops_float32")):
        gflops.append(f"float32 {_num(solvers['matmul_gflops_float32']):.0f} (time-to-target run)")
    mach = (sweep or solvers or {}).get("machine", {})
    lines.append(
        f"Machine: {mach.get('platform') or mach.get('processor')}, "
        f"{dev.get('cpu_count') or mach.get('cpu_count')} CPU cores, jax device "
        f"{dev.get('device_kind') or mach.get('device')}; measured matmul throughput "
        f"(GFLOP/s, a jitted square GEMM): {', '.join(gflops) or 'not recorded'}."
    )
    blas = _blas_text(mach)
    if blas:
        lines.append(f"scikit-learn's BLAS (threadpoolctl, in the benchmark process): {blas}.")
    load = _load_text(sweep, solvers)
    if load:
        lines.append(
            f"1-minute load average before/after each benchmark: {load} (other processes on "
            "the machine slow both libraries; scikit-learn's multi-threaded calls most)."
        )
    if sweep:
        dtypes, by_dtype, tol_rows = _sweep_rows(sweep)
        g = sweep.get("grid", {})
        ranks = g.get("ranks") or [0]
        lines += [
            "",
            f"(a) Rank survey on digits {g.get('m')}×{g.get('n')}: ranks {ranks[0]}..{ranks[-1]}"
            f" × {_count(len(g.get('seeds') or []), 'seed')}, {g.get('max_iter')} iterations each, "
            f"tol = 0, init 'random' ({_num(g.get('gflop')):.1f} GFLOP of updates). "
            "scikit-learn: NMF(solver='cd') fitted member by member in a Python loop; jaxnmf: "
            "one jaxnmf.sweep call (all members in one compiled program); its first call "
            "compiles, shown stacked on the run. Ideal = the grid's floating-point work / the "
            "measured matmul throughput.",
            f"{'dtype':<8} {'solver':<6} {'sklearn cd s':>12} {'jaxnmf s':>9} {'compile s':>9} "
            f"{'run s':>7} {'ideal s':>8} {'total/ideal':>11}  vs scikit-learn (total; run)",
        ]
        for d in dtypes:
            for r in by_dtype[d]:
                total, sk = _num(r.get("jaxnmf_total_s")), _num(r.get("sklearn_cd_s"))
                ideal, run = _num(r.get("ideal_s")), _num(r.get("jaxnmf_run_s"))
                over = f"{total / ideal:.1f}" if _ok(ideal) and _ok(total) else "—"
                lines.append(
                    f"{d:<8} {r.get('solver')!s:<6} {_fmt_s(sk):>12} {_fmt_s(total):>9} "
                    f"{_fmt_s(r.get('jaxnmf_compile_s')):>9} {_fmt_s(run):>7} "
                    f"{_fmt_s(ideal):>8} {over:>11}  "
                    f"{ratio_text(total, sk) or '—'}; {ratio_text(run, sk) or '—'}"
                )
        for r in tol_rows:
            lines.append(
                f"At tol = {_num(r.get('tol')):g} (each member stops on its own), {r.get('dtype')}:"
                f" scikit-learn cd {_fmt_s(r.get('sklearn_cd_s'))} s (mean "
                f"{_num(r.get('sklearn_mean_iter')):.0f} it.), jaxnmf {r.get('solver')} "
                f"{_fmt_s(r.get('jaxnmf_total_s'))} s (mean {_num(r.get('jaxnmf_mean_iter')):.0f}"
                f" it.; a second sweep call, any compilation included): "
                f"{ratio_text(_num(r.get('jaxnmf_total_s')), _num(r.get('sklearn_cd_s'))) or '—'}."
            )
    if solvers:
        problems = solvers.get("time_to_target", [])
        subset = solvers.get("solvers_subset")
        lines += [
            "",
            "(b) Time to reach the target objective = (1 + 1e-3) × the best objective any "
            "solver reached, from the same initial factors (tol = 0). jaxnmf: the iterations "
            "needed are read off one jaxnmf.compare trace"
            + (f" (max {max_iter.get('jaxnmf')} it.)" if max_iter else "")
            + ", then a jaxnmf.fit of that length is timed after it was compiled (median); the"
            " thin hatched bars are the compile times (first call), paid once per shape. "
            "scikit-learn: the smallest iteration count reaching the target (doubling, then "
            "bisection"
            + (f", max {max_iter.get('sklearn')} it." if max_iter else "")
            + "), one fit of that length timed (median of 3)."
            + (f" Solvers run (smoke subset): {', '.join(subset)}." if subset else ""),
        ]
        for p in problems:
            best, best_s, cd = _ttt_summary(p)
            shape = p.get("shape") or ["?", "?"]
            lines.append(
                f"{p.get('data')} {shape[0]}×{shape[1]}, k = {p.get('k')}: target "
                f"{_num(p.get('target')):.6g} (best {_num(p.get('best_objective')):.6g})"
            )
            lines.append(
                f"  {'solver':<28} {'seconds':>8} {'iterations':>10} {'compile s':>9} "
                f"{'final objective':>15}"
            )
            for key, row in p.get("solvers", {}).items():
                its = row.get("iterations")
                final = f"{_num(row['final']):.6g}" if _ok(row.get("final")) else "—"
                lines.append(
                    f"  {_label(key):<28} {_fmt_s(row.get('seconds')):>8} "
                    f"{str(its) if its else 'not reached':>10} "
                    f"{_fmt_s(row.get('compile_s')):>9} {final:>15}"
                )
            if best:
                lines.append(
                    f"  best jaxnmf ({best.partition('_')[2]}) / scikit-learn cd: "
                    f"{best_s / cd:.2f} ({ratio_text(best_s, cd)})"
                    if _ok(cd)
                    else f"  best jaxnmf: {best.partition('_')[2]}; scikit-learn cd did not reach"
                )
        per = solvers.get("per_iteration") or {}
        for loss, block in per.items():
            shape = block.get("shape") or ["?", "?"]
            parts = [
                f"{_label(k)} {1e3 * _num(v.get('s_per_iter')):.2f} ms"
                for k, v in block.items()
                if isinstance(v, dict) and _ok(v.get("s_per_iter"))
            ]
            if parts:
                lines.append(
                    f"Per iteration, {loss}, {shape[0]}×{shape[1]}, k = {block.get('k')} (ideal "
                    f"{1e3 * _num(block.get('ideal_s')):.2f} ms): " + ", ".join(parts) + "."
                )
    skipped = meta.get("skipped") or {}
    if skipped:
        lines.append("Not run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()) + ".")
    lines += [
        "",
        f"Benchmarks: experiments/benchmarks/sweep_vs_sklearn.py and solvers_vs_sklearn.py, run "
        f"by `python -m experiments run speed --variant {cfg.get('variant')}`.",
        _style.provenance(meta),
    ]
    return "\n".join(lines)


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 7 from saved results; ``None`` when the results are missing."""
    run_dir = _style.find_results(results_root, EXPERIMENT, variant)
    if run_dir is None:
        return None
    _, meta = _style.load(run_dir)
    sweep, solvers = meta.get("sweep"), meta.get("time_to_target")
    if not sweep and not solvers:
        return None  # both parts skipped: __main__ reports meta["skipped"]
    _style.apply()
    import matplotlib.pyplot as plt

    cfg = meta.get("config", {})
    ttt_cfg = cfg.get("time_to_target", {})
    max_iter = (solvers or {}).get("max_iter")  # {"jaxnmf": .., "sklearn": ..} when recorded
    if not isinstance(max_iter, dict):
        max_iter = None
        if "quick" in ttt_cfg:  # solvers_vs_sklearn.main: 300 or 1000, scikit-learn 4 × that
            it = 300 if ttt_cfg["quick"] else 1000
            max_iter = {"jaxnmf": it, "sklearn": 4 * it}
    problems = (solvers or {}).get("time_to_target", [])

    order = _ttt_order(problems)
    # Heights in inches: panel (a), the gap (its x labels, the header and titles of (b)),
    # panel (b) growing with its number of rows, the legend below.
    top_in, a_in, gap_in, bottom_in = 0.35, 2.9, 1.75, 1.1
    b_in = 0.38 * max(len(order), 4) + 0.4
    height = top_in + a_in + gap_in + b_in + bottom_in
    fig = plt.figure(figsize=(_style.WIDTH_IN, height))
    gs = fig.add_gridspec(
        2,
        2,
        height_ratios=(a_in, b_in),
        hspace=gap_in / ((a_in + b_in) / 2),
        wspace=0.16,
        top=1 - top_in / height,
        bottom=bottom_in / height,
    )
    ax = fig.add_subplot(gs[0, :])
    if sweep:
        _panel_sweep(ax, sweep)
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "(a) sweep benchmark not run", transform=ax.transAxes, ha="center")

    limits = _ttt_limits(problems)
    axes = [fig.add_subplot(gs[1, j]) for j in range(2)]
    for j, a in enumerate(axes):
        if j < len(problems):
            _panel_ttt(a, problems[j], order, limits, max_iter, first=j == 0)
        else:
            a.set_axis_off()
    if problems:
        axes[0].annotate(
            "(b) Time to reach (1 + 1e-3) × the best objective, same initial factors",
            xy=(0, 1),
            xycoords="axes fraction",
            xytext=(0, 36),
            textcoords="offset points",
            fontsize=11,
            va="bottom",
        )
        from matplotlib.patches import Patch

        handles = [
            Patch(facecolor=JAXNMF_COLOR, edgecolor="black", label="jaxnmf (compiled beforehand)"),
            Patch(facecolor=BEST_COLOR, edgecolor="black", label="fastest jaxnmf solver"),
            Patch(facecolor=SKLEARN_COLOR, edgecolor="black", label="scikit-learn"),
            Patch(facecolor="none", edgecolor=MISS_COLOR, hatch="///", label="target not reached"),
            Patch(
                facecolor=JAXNMF_LIGHT,
                edgecolor="black",
                hatch="///",
                label="jaxnmf compilation (first call)",
            ),
        ]
        fig.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, 0.0),
            ncols=3,
            fontsize=8,
            frameon=False,
        )
    elif solvers is None:
        axes[0].text(0.5, 0.5, "(b) time-to-target benchmark not run", ha="center")

    fig.text(
        0.5,
        0.0,
        _footnote(meta, sweep, solvers),
        ha="center",
        va="top",
        fontsize=7.5,
        color="0.3",
    )
    caption = _caption(meta, sweep, solvers, max_iter)
    return _style.save(fig, out_dir, STEM, caption)


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
