"""Figure 5: topics of the SciPy docstrings (NMF, k = 10) against their subpackages.

Loads ``results/topics/<variant>/`` (never fits). (a) the top words of each topic of the
displayed model (a row of H, normalised to sum 1), titled with the subpackage most of the
topic's documents come from; (b) where each subpackage's documents go (documents clustered by
their largest topic weight); (c) NMI and ARI of that clustering against the subpackage labels
for each model (nndsvda start and random starts) and for k-means.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.topics import Corpus, KMeans, Model

from . import _style

EXPERIMENT = "topics"
STEM = "fig_05_topics"
# The random starts' scores, over the nndsvda bars of panel (c).
DOTS = {"s": 14, "facecolors": "white", "edgecolors": "black", "linewidths": 0.7, "zorder": 3}
MODEL_STYLE = {
    "kl": {"color": "#0072B2", "label": "KL-NMF (MU)"},
    "frobenius": {"color": "#D55E00", "label": "Frobenius-NMF (HALS)"},
    "kmeans": {"color": "#009E73", "label": "k-means"},
}
N_WORDS_SHOWN = 8


def _topic_order(cont: np.ndarray) -> np.ndarray:
    """Topics sorted by their dominant label, then by size (largest first)."""
    dominant = cont.argmax(axis=1)
    return np.lexsort((-cont.sum(axis=1), dominant))


def load(run) -> tuple[Corpus, dict[str, Model], KMeans]:
    """The loader of this experiment's records: the corpus, ``{model: Model}``, k-means."""
    models = [m for m in run.meta["config"]["models"] if m in run.parts]
    return run.result(Corpus), {m: run.part(m, Model) for m in models}, run.part("kmeans", KMeans)


def _top_words(fig, gs, rec: Model, corpus: Corpus, order, label: str) -> None:
    """(a) the top words of each topic, 2 rows of k/2 topics, titled by the main label."""
    H, top, cont = rec.H.astype(np.float64), rec.top_terms, rec.contingency
    k, names = H.shape[0], [str(n) for n in corpus.label_names]
    cols = int(np.ceil(k / 2))
    grid = gs.subgridspec(2, cols, hspace=0.42, wspace=1.25)
    n_words = min(N_WORDS_SHOWN, top.shape[1])
    xmax = max(100 * H[t, top[t, 0]] for t in range(k)) * 1.05
    for pos, t in enumerate(order):
        ax = fig.add_subplot(grid[pos // cols, pos % cols])
        idx = top[t, :n_words]
        color = MODEL_STYLE.get(label, {"color": "#0072B2"})["color"]
        ax.barh(np.arange(n_words), 100 * H[t, idx], color=color, alpha=0.85, height=0.75)
        ax.set_yticks(np.arange(n_words), [str(corpus.terms[i]) for i in idx], fontsize=8.5)
        ax.invert_yaxis()
        ax.set_xlim(0, xmax)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.grid(axis="y", visible=False)
        n_docs, dom = int(cont[t].sum()), int(cont[t].argmax())
        share = 100 * cont[t, dom] / max(n_docs, 1)
        ax.set_title(
            f"T{pos + 1}: {names[dom]}\n{share:.0f}% of {n_docs} docs", fontsize=8.5, pad=3
        )
        if pos // cols == 1:
            ax.set_xlabel("weight (%)", fontsize=8)


def _contingency(fig, ax, rec: Model, corpus: Corpus, order) -> None:
    """(b) documents per topic and label, shaded by the label's share."""
    cont, names = rec.contingency[order], [str(n) for n in corpus.label_names]
    per_label = cont / np.maximum(rec.contingency.sum(axis=0, keepdims=True), 1)
    im = ax.imshow(100 * per_label, cmap="Blues", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=50, ha="right", fontsize=8.5)
    ax.set_yticks(range(len(order)), [f"T{i + 1}" for i in range(len(order))], fontsize=8.5)
    ax.grid(False)
    for (i, j), n in np.ndenumerate(cont):
        if n:
            color = "white" if per_label[i, j] > 0.55 else "black"
            ax.text(j, i, str(n), ha="center", va="center", fontsize=6.5, color=color)
    ax.set_xlabel("subpackage (label)")
    ax.set_ylabel("topic (argmax of W row)")
    ax.set_title("(b) Documents per topic and subpackage", loc="left", fontsize=10)
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cb.set_label("% of the subpackage's documents", fontsize=8.5)
    cb.ax.tick_params(labelsize=8)


def _scores(ax, models: dict[str, Model], kmeans: KMeans) -> None:
    """(c) NMI and ARI of every model (bars: nndsvda; dots: random starts) and k-means."""
    entries = [*models.items(), ("kmeans", kmeans)]
    for e_i, (m, rec) in enumerate(entries):
        st = MODEL_STYLE.get(m, {"color": "0.4", "label": m})
        for s_i, metric in enumerate(("nmi", "ari")):
            x = s_i + (e_i - (len(entries) - 1) / 2) * 0.25
            label = st["label"] if s_i == 0 else None
            ax.bar(x, getattr(rec, metric), 0.22, color=st["color"], alpha=0.85, label=label)
            seeds = getattr(rec, f"seed_{metric}", np.zeros(0))
            label = "random starts" if (e_i == 0 and s_i == 0) else None
            ax.scatter(np.full(len(seeds), x), seeds, label=label, **DOTS)
    ax.set_xticks([0, 1], ["NMI", "ARI"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("agreement with subpackage labels")
    ax.set_title("(c) Clustering vs labels (bars: nndsvda)", loc="left", fontsize=10)
    ax.legend(loc="upper right", fontsize=7.5, framealpha=0.9)


def caption(corpus: Corpus, models: dict[str, Model], kmeans: KMeans, shown, meta) -> str:
    """The caption: the corpus, the models, every score and the topics' words."""
    cfg, names = meta["config"], [str(n) for n in corpus.label_names]
    rec = models[shown]
    k, (m_docs, n_terms) = rec.H.shape[0], (int(v) for v in corpus.shape)
    label = MODEL_STYLE.get(shown, {}).get("label", shown)
    lines = [
        "Figure 5. Topics of the SciPy docstrings by NMF (k = 10) and how they relate to the "
        "subpackage each docstring comes from.",
        f"Data: {m_docs} docstrings of public callables of "
        + ", ".join(
            f"scipy.{n} ({int(c)})" for n, c in zip(names, corpus.label_counts, strict=True)
        )
        + " (jaxnmf.datasets.load_scipy_docstrings: Examples/References sections and "
        "paragraphs shared by 3+ docstrings dropped); TF-IDF (scikit-learn, English stop "
        f"words, terms in ≥ {cfg['min_df']} documents, the {n_terms} most frequent, rows "
        "l2-normalised).",
        f"Models: jaxnmf.fit(loss, solver, init='nndsvda', max_iter={cfg['max_iter']}, "
        f"tol={cfg['tol']:g}) and jaxnmf.sweep(ranks=[{k}], {len(rec.seed_nmi)} random starts). "
        "Each document is assigned to its largest topic weight (rows of H rescaled to sum 1, "
        "the scale moved into W); NMI and ARI: scikit-learn. k-means: scikit-learn "
        f"KMeans(k = {k}, n_init = {cfg['kmeans_n_init']}) on the same TF-IDF rows.",
        "",
        f"{'model':<22} {'NMI':>6} {'ARI':>6}  {'random starts NMI':>19} {'ARI':>15}  "
        "rel. error  status",
    ]
    for m, r in models.items():
        sn, sa = r.seed_nmi, r.seed_ari
        lines.append(
            f"{MODEL_STYLE.get(m, {}).get('label', m):<22} {r.nmi:>6.3f} {r.ari:>6.3f}  "
            f"{sn.mean():>11.3f} ± {sn.std():.3f} {sa.mean():>7.3f} ± {sa.std():.3f}  "
            f"{r.rel_error:>10.4f}  {r.status} ({r.n_iter} it)"
        )
    lines += [f"{'k-means':<22} {kmeans.nmi:>6.3f} {kmeans.ari:>6.3f}", ""]
    lines.append(f"Topics of {label} (T1..T{k} as drawn; top words, weight %):")
    cont = rec.contingency
    for pos, t in enumerate(_topic_order(cont)):
        dom, n = int(cont[t].argmax()), max(int(cont[t].sum()), 1)
        words = ", ".join(f"{corpus.terms[i]} {100 * rec.H[t, i]:.1f}" for i in rec.top_terms[t])
        lines.append(
            f"  T{pos + 1} ({int(cont[t].sum())} docs, {names[dom]} "
            f"{100 * cont[t, dom] / n:.0f}%): {words}"
        )
    return "\n".join([*lines, "", _style.provenance(meta)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 5 from saved results; ``None`` when the results are missing or skipped."""
    run = _style.load_run(results_root, EXPERIMENT, variant, STEM)
    if run is None or not run.parts:
        return None
    corpus, models, kmeans = load(run)
    _style.apply()
    import matplotlib.pyplot as plt

    cfg = run.meta["config"]
    shown = cfg["display"] if cfg["display"] in models else next(iter(models))
    rec, label = models[shown], MODEL_STYLE.get(shown, {"label": shown})["label"]
    order = _topic_order(rec.contingency)
    fig = plt.figure(figsize=(_style.WIDTH_IN, 10.2))
    outer = fig.add_gridspec(2, 1, height_ratios=(1.25, 1), hspace=0.22)
    _top_words(fig, outer[0], rec, corpus, order, shown)
    title = (
        f"(a) Top {min(N_WORDS_SHOWN, rec.top_terms.shape[1])} words of each topic ({label}, "
        f"k = {rec.H.shape[0]}, nndsvda start); title: the topic's main subpackage"
    )
    fig.text(0.01, 0.995, title, ha="left", va="top", fontsize=10.5)
    gs_b = outer[1].subgridspec(1, 2, width_ratios=(1.35, 1), wspace=0.42)
    _contingency(fig, fig.add_subplot(gs_b[0]), rec, corpus, order)
    _scores(fig.add_subplot(gs_b[1]), models, kmeans)
    fig.subplots_adjust(left=0.12, right=0.97, top=0.935, bottom=0.07)
    return _style.save(fig, out_dir, STEM, caption(corpus, models, kmeans, shown, run.meta))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
