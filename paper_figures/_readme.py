"""The README's result tables, written from the result files (never by hand).

``README.md`` marks each generated section::

    <!-- results:figures -->
    ... (rewritten by `python -m paper_figures --readme`) ...
    <!-- /results:figures -->

:func:`update` replaces what lies between the markers of :data:`SECTIONS` and nothing else;
each section starts with a line saying when, from which files and on which machine (BLAS
kernel included) its numbers were made, and names every result file it read in backticks.
:func:`check` (CI's smoke run) verifies that the markers are well formed and that every
result file a section names exists. A number edited by hand between the markers is
overwritten on the next run.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from experiments._common import REPO_ROOT

from . import (
    _style,
    fig_01_parts,
    fig_02_convergence,
    fig_03_rank_selection,
    fig_04_audio,
    fig_05_topics,
    fig_06_movielens,
    fig_07_speed,
    fig_08_consensus,
)

SECTIONS = ("figures", "benchmarks")
FIGURES = (fig_01_parts, fig_02_convergence, fig_03_rank_selection, fig_04_audio, fig_05_topics,
           fig_06_movielens, fig_07_speed, fig_08_consensus)  # fmt: skip
_BLOCK = re.compile(r"<!-- results:(\w+) -->\n(.*?)<!-- /results:(\w+) -->\n", re.S)
_MARK = re.compile(r"<!-- (/?)results:(\w+) -->")
# A result file named in a section: `results/<experiment>/<variant>/meta.json` and the like.
_FILE = re.compile(r"`([^`\s]+/(?:arrays\.npz|meta\.json))`")


def _where(run) -> str:
    """A run folder as the README names it: relative to the repository when inside it."""
    path = Path(run.dir).resolve()
    return (path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path).as_posix()


def _machine(meta: dict, blas) -> str:
    """``"x86_64, 2 CPU cores, BLAS openblas 0.3.30, 0.3.31 (SkylakeX kernels, 2 threads)"``:
    every BLAS loaded (numpy's and scipy's), in a fixed order (threadpoolctl's varies)."""
    dev = meta["device"]
    libs = [b for b in blas if isinstance(b, dict) and b.get("user_api", "blas") == "blas"]
    libs = sorted(libs, key=lambda b: str(b.get("filepath")))
    kernel = "not recorded"
    if libs:
        versions = ", ".join(dict.fromkeys(str(b.get("version")) for b in libs))
        kernels = "/".join(dict.fromkeys(str(b.get("architecture")) for b in libs))
        threads = "/".join(dict.fromkeys(str(b.get("num_threads")) for b in libs))
        kernel = f"{libs[0].get('internal_api')} {versions} ({kernels} kernels, {threads} threads)"
    return f"{dev.get('processor') or dev['host']}, {dev['cpu_count']} CPU cores, BLAS {kernel}"


def _span(values) -> str:
    lo, hi = float(np.min(values)), float(np.max(values))
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}"


def _figure_rows(root, variant) -> tuple[list[str], list]:
    """The figure table: what each figure shows, with its numbers from its records."""

    def fig01(run):
        fits = fig_01_parts.load(run)
        ks = ", ".join(f"{t} k = {f.H.shape[0]}" for t, f in fits.items())
        hoyer = "; ".join(
            f"{t} {f.hoyer_nmf.mean():.2f} vs {f.hoyer_pca.mean():.2f}" for t, f in fits.items()
        )
        return f"NMF basis images vs PCA components ({ks}); Hoyer sparseness NMF vs PCA: {hoyer}"

    def fig02(run):
        rec = run.result(fig_02_convergence.Convergence)
        final = np.sqrt(np.median(rec.losses[:, :, -1], axis=1) / rec.norm_sq)
        errors = ", ".join(f"{s} {e:.4f}" for s, e in zip(rec.solvers, final, strict=True))
        return (
            f"objective gap, KKT residual and time of {', '.join(rec.solvers)} from the same "
            f"starts (digits, k = {run.meta['config']['rank']}); median final rel. error {errors}"
        )

    def fig03(run):
        picks = [
            f"{t}: " + ", ".join(f"{c} {r}" for c, r in fig_03_rank_selection._suggested(s).items())
            for t, s in fig_03_rank_selection.load(run).items()
        ]
        return "suggested rank by cophenetic, dispersion and held-out RMSE from one sweep; " + (
            "; ".join(picks)
        )

    def fig04(run):
        _, patterns = fig_04_audio.load(run)
        corr = [
            f"{loss} {_span(rec.matched_corr[i].mean(axis=0))}"
            for rec in patterns.values()
            for i, loss in enumerate(rec.losses)
        ]
        return (
            "KL- and IS-NMF of a real drum mixture; matched activation correlations per drum: "
            + (", ".join(corr))
        )

    def fig05(run):
        _, models, km = fig_05_topics.load(run)
        scores = ", ".join(f"{m} {r.nmi:.2f} / {r.ari:.2f}" for m, r in models.items())
        return (
            f"topics of the scipy docstrings; NMI / ARI against the subpackages: {scores} "
            f"(k-means {km.nmi:.2f} / {km.ari:.2f})"
        )

    def fig06(run):
        rec = fig_06_movielens.load(run)
        d = fig_06_movielens._derived(rec)
        return (
            f"held-out RMSE on MovieLens small: plain masked NMF best {d['mean'][d['best']]:.3f} "
            f"(rank {rec.ranks[d['best']]}), bias baseline {rec.baseline_heldout_rmse:.3f}, "
            f"NMF of the baseline's residual {rec.residual_heldout_rmse[d['sel']]:.3f} (rank "
            f"{rec.residual_selected_rank}, chosen on a validation split)"
        )

    def fig07(run):
        return "rank survey and time to target against scikit-learn: the benchmark table below"

    def fig08(run):
        recs, out = fig_08_consensus.load(run), []
        if "pbmc" in recs:
            p = recs["pbmc"]
            out.append(
                f"consensus NMF of PBMC ({p.shape[0]} cells × {p.shape[1]} genes, ranks "
                f"{p.rank[0]}..{p.rank[-1]} × {p.n_replicates} replicates): stability peak "
                f"k = {p.stability_pick} ({p.stability[list(p.rank).index(p.k)]:.2f})"
            )
        if "bfi" in recs:
            picks = fig_08_consensus.picks(recs["bfi"])
            out.append(
                f"Big Five inventory (5 traits): held-out 1-SE rule k = "
                f"{picks.get('heldout_rmse_1se')}, bi-cross-validation "
                + (f"k = {picks['bcv']}" if "bcv" in picks else "not run")
            )
        return "; ".join(out)

    rows, runs = [], []
    figs = (fig01, fig02, fig03, fig04, fig05, fig06, fig07, fig08)
    summaries = dict(zip(FIGURES, figs, strict=True))
    for module, row in summaries.items():
        run = _style.load_run(root, module.EXPERIMENT, variant, module.STEM)
        # Skipped as a whole (its data absent): the reason under the experiment's own name.
        if run is None or module.EXPERIMENT in run.meta["skipped"]:
            why = run.meta["skipped"][module.EXPERIMENT] if run else "not run"
            rows.append(f"| `{module.STEM}` | not drawn: {why} | — |")
            continue
        runs.append(run)
        rows.append(f"| `{module.STEM}` | {row(run)} | `{_where(run)}/arrays.npz` |")
    return rows, runs


def figures(root, variant: str) -> str:
    """The ``figures`` section."""
    rows, runs = _figure_rows(root, variant)
    head = (
        f"_Generated by `python -m paper_figures --readme` on {time.strftime('%Y-%m-%d')} from "
        f"the {'/'.join(sorted({r.meta['config']['variant'] for r in runs})) or '(no)'} results "
        f"on {_machine(runs[0].meta, runs[0].meta['blas']) if runs else 'no machine'}; numbers "
        "in each figure's caption `.txt`._"
    )
    table = ["| figure | what it shows | from |", "|---|---|---|", *rows]
    return "\n".join([head, "", *table]) + "\n"


def _benchmark_rows(sw, tt) -> list[str]:
    """One row per timing: jaxnmf, scikit-learn and their ratio (below 1: jaxnmf faster)."""
    s, rows = fig_07_speed._s, []
    if sw is not None:
        grid = f"digits, ranks {sw.ranks[0]}..{sw.ranks[-1]} × {len(sw.seeds)} seed(s), "
        grid += f"{sw.max_iter} it."
        for i in range(len(sw.dtype)):
            total, sk, tol = sw.total_s[i], sw.sklearn_s[i], sw.tol[i]
            what = f"rank survey, {grid}, {sw.dtype[i]}, {sw.solver[i]}"
            if tol > 0:
                what += f", `tol = {tol:g}`, each member stopping on its own"
                ours = f"{s(total)} s (mean {sw.jaxnmf_mean_iter[i]:.0f} it.)"
                theirs = f"{s(sk)} s (mean {sw.sklearn_mean_iter[i]:.0f} it.)"
            else:
                what += f", compile included (ideal {s(sw.ideal_s[i])} s)"
                ours = f"{s(total)} s ({s(sw.compile_s[i])} s of it compiling)"
                theirs = f"{s(sk)} s (`cd` loop)"
            rows.append(f"| {what} | {ours} | {theirs} | {total / sk:.2f} |")
    if tt is not None:
        pairs = {
            ("frobenius", "jaxnmf_mu"): "sklearn_mu",
            ("frobenius", "jaxnmf_hals"): "sklearn_cd",
        }
        pairs.update({(loss, "jaxnmf_mu"): "sklearn_mu" for loss in ("kl", "is", "beta=1.5")})
        per = {
            (str(a), str(b)): t
            for a, b, t in zip(tt.per_iter_loss, tt.per_iter_label, tt.per_iter_s, strict=True)
        }
        m, n = tt.shape
        for (loss, ours), theirs in pairs.items():
            if (loss, ours) in per and (loss, theirs) in per:
                a, b = per[(loss, ours)], per[(loss, theirs)]
                what = f"{loss}, {ours.partition('_')[2]} vs {theirs}, {m}×{n} float32, "
                what += f"k = {tt.k}, per iteration"
                rows.append(f"| {what} | {1e3 * a:.3g} ms | {1e3 * b:.3g} ms | {a / b:.2f} |")
        for p in range(len(tt.ttt_data)):
            best, best_s = fig_07_speed._best(tt, p)
            cd = tt.ttt_seconds[p, list(tt.ttt_labels).index("sklearn_cd")]
            if best is None:
                continue
            shape = f"{tt.ttt_shape[p][0]}×{tt.ttt_shape[p][1]}"
            what = (
                f"time to 1e-3 of the best objective, {tt.ttt_data[p]} {shape}, k = {tt.ttt_k[p]} "
                f"({tt.ttt_labels[best].partition('_')[2]} vs `cd`)"
            )
            ratio = f"{best_s / cd:.2f}" if fig_07_speed._ok(cd) else "cd did not reach it"
            rows.append(f"| {what} | {s(best_s)} s | {s(cd)} s | {ratio} |")
    return rows


def benchmarks(root, variant: str) -> str:
    """The ``benchmarks`` section, from the speed experiment's records."""
    run = _style.load_run(root, fig_07_speed.EXPERIMENT, variant, "README")
    sw, tt = (None, None) if run is None else fig_07_speed.load(run)
    if sw is None and tt is None:
        return "_No speed results yet: `python -m experiments run speed`._\n"
    rec = sw or tt
    gemm = rec.machine.get("gemm_gflops", {})
    rates = "; ".join(
        f"{lib} " + ", ".join(f"{d} {v:.0f}" for d, v in gemm.get(lib, {}).items())
        for lib in ("numpy", "jax")
    )
    fair = "removed" if rec.machine.get("fair_env", {}).get("fair") else "NOT removed"
    head = (
        f"_Generated by `python -m paper_figures --readme` on {time.strftime('%Y-%m-%d')} from "
        f"`{_where(run)}/meta.json` (variant {run.meta['config']['variant']}, run "
        f"{run.meta['finished_utc'][:10]}) on {_machine(run.meta, rec.machine.get('blas') or [])}"
        f"; GEMM 2048² GFLOP/s: {rates}; OpenBLAS overrides {fair} before numpy loaded; "
        f"1-minute load {rec.load_average[0]:.1f}–{rec.load_average[1]:.1f}. Ratio = jaxnmf / "
        "scikit-learn (below 1: jaxnmf faster)._"
    )
    table = ["| benchmark | jaxnmf | scikit-learn | ratio |", "|---|---|---|---|"]
    return "\n".join([head, "", *table, *_benchmark_rows(sw, tt)]) + "\n"


def update(readme, root, variant: str = "auto") -> list[str]:
    """Rewrite the marked sections of ``readme`` from the results under ``root``; returns the
    names of the sections rewritten. Text outside the markers is left as it is."""
    readme = Path(readme)
    text = readme.read_text()
    made = {"figures": figures, "benchmarks": benchmarks}
    done = []

    def body(m: re.Match) -> str:
        name = m.group(1)
        if name not in made:
            return m.group(0)
        done.append(name)
        return f"<!-- results:{name} -->\n{made[name](root, variant)}<!-- /results:{name} -->\n"

    new = _BLOCK.sub(body, text)
    if new != text:
        readme.write_text(new)
    return done


def check(readme) -> list[str]:
    """Problems with the marked sections: unpaired or unknown markers, a missing section, a
    named result file that does not exist (paths relative to the repository). ``[]``: fine."""
    text, problems, open_ = Path(readme).read_text(), [], None
    for m in _MARK.finditer(text):
        closing, name = m.group(1) == "/", m.group(2)
        if name not in SECTIONS:
            problems.append(f"unknown section {name!r} at offset {m.start()}")
        if closing != (open_ is not None) or (closing and name != open_):
            problems.append(f"marker {m.group(0)} out of order at offset {m.start()}")
        open_ = None if closing else name
    if open_ is not None:
        problems.append(f"section {open_!r} is not closed")
    blocks = {m.group(1): m.group(2) for m in _BLOCK.finditer(text)}
    problems += [f"section {name!r} missing" for name in SECTIONS if name not in blocks]
    for name, block in blocks.items():
        for path in _FILE.findall(block):
            if not (REPO_ROOT / path).is_file():
                problems.append(f"section {name!r} names {path}, which does not exist")
    return problems
