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

from . import _style

EXPERIMENT = "topics"
STEM = "fig_05_topics"
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


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 5 from saved results; ``None`` when the results are missing or skipped."""
    run_dir = _style.find_results(results_root, EXPERIMENT, variant)
    if run_dir is None:
        return None
    arrays, meta = _style.load(run_dir, needed_by=STEM)
    models = [str(m) for m in arrays["parts"]]
    if not models:
        return None
    _style.apply()
    import matplotlib.pyplot as plt

    cfg = meta["config"]
    shown = cfg["display"] if cfg["display"] in models else models[0]
    names = [str(n) for n in arrays["label_names"]]
    terms = arrays["terms"]
    H = arrays[f"{shown}_H"].astype(np.float64)
    top = arrays[f"{shown}_top_terms"]
    cont = arrays[f"{shown}_contingency"]  # (k, n_labels)
    k = H.shape[0]
    order = _topic_order(cont)
    style = MODEL_STYLE.get(shown, {"color": "#0072B2", "label": shown})

    fig = plt.figure(figsize=(_style.WIDTH_IN, 10.2))
    outer = fig.add_gridspec(2, 1, height_ratios=(1.25, 1), hspace=0.22)
    # ---- (a) top words, 2 rows of k/2 topics
    cols = int(np.ceil(k / 2))
    gs_a = outer[0].subgridspec(2, cols, hspace=0.42, wspace=1.25)
    n_words = min(N_WORDS_SHOWN, top.shape[1])
    xmax = max(100 * H[t, top[t, 0]] for t in range(k)) * 1.05
    for pos, t in enumerate(order):
        ax = fig.add_subplot(gs_a[pos // cols, pos % cols])
        idx = top[t, :n_words]
        w = 100 * H[t, idx]
        ax.barh(np.arange(n_words), w, color=style["color"], alpha=0.85, height=0.75)
        ax.set_yticks(np.arange(n_words), [str(terms[i]) for i in idx], fontsize=8.5)
        ax.invert_yaxis()
        ax.set_xlim(0, xmax)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.grid(axis="y", visible=False)
        n_docs = int(cont[t].sum())
        dom = int(cont[t].argmax())
        share = 100 * cont[t, dom] / max(n_docs, 1)
        ax.set_title(
            f"T{pos + 1}: {names[dom]}\n{share:.0f}% of {n_docs} docs", fontsize=8.5, pad=3
        )
        if pos // cols == 1:
            ax.set_xlabel("weight (%)", fontsize=8)
    fig.text(
        0.01,
        0.995,
        f"(a) Top {n_words} words of each topic ({style['label']}, k = {k}, nndsvda start); "
        "title: the topic's main subpackage",
        ha="left",
        va="top",
        fontsize=10.5,
    )

    # ---- (b) contingency, (c) scores
    gs_b = outer[1].subgridspec(1, 2, width_ratios=(1.35, 1), wspace=0.42)
    ax = fig.add_subplot(gs_b[0])
    per_label = cont[order] / np.maximum(cont.sum(axis=0, keepdims=True), 1)  # column shares
    im = ax.imshow(100 * per_label, cmap="Blues", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(names)), names, rotation=50, ha="right", fontsize=8.5)
    ax.set_yticks(range(k), [f"T{i + 1}" for i in range(k)], fontsize=8.5)
    ax.grid(False)
    for i in range(k):
        for j in range(len(names)):
            n = int(cont[order][i, j])
            if n:
                ax.text(
                    j,
                    i,
                    str(n),
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if per_label[i, j] > 0.55 else "black",
                )
    ax.set_xlabel("subpackage (label)")
    ax.set_ylabel("topic (argmax of W row)")
    ax.set_title("(b) Documents per topic and subpackage", loc="left", fontsize=10)
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cb.set_label("% of the subpackage's documents", fontsize=8.5)
    cb.ax.tick_params(labelsize=8)

    ax = fig.add_subplot(gs_b[1])
    entries = [*models, "kmeans"]
    for e_i, m in enumerate(entries):
        st = MODEL_STYLE.get(m, {"color": "0.4", "label": m})
        for s_i, metric in enumerate(("nmi", "ari")):
            x = s_i + (e_i - (len(entries) - 1) / 2) * 0.25
            val = float(arrays[f"{m}_{metric}"])
            ax.bar(
                x, val, 0.22, color=st["color"], alpha=0.85, label=st["label"] if s_i == 0 else None
            )
            seeds = arrays.get(f"{m}_seed_{metric}")
            if seeds is not None and len(seeds):
                ax.scatter(
                    np.full(len(seeds), x),
                    seeds,
                    s=14,
                    facecolors="white",
                    edgecolors="black",
                    linewidths=0.7,
                    zorder=3,
                    label="random starts" if (e_i == 0 and s_i == 0) else None,
                )
    ax.set_xticks([0, 1], ["NMI", "ARI"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("agreement with subpackage labels")
    ax.set_title("(c) Clustering vs labels (bars: nndsvda)", loc="left", fontsize=10)
    ax.legend(loc="upper right", fontsize=7.5, framealpha=0.9)
    fig.subplots_adjust(left=0.12, right=0.97, top=0.935, bottom=0.07)

    # ---- caption
    m_docs, n_terms = (int(v) for v in arrays["shape"])
    counts = arrays["label_counts"]
    lines = [
        "Figure 5. Topics of the SciPy docstrings by NMF (k = 10) and how they relate to the "
        "subpackage each docstring comes from.",
        f"Data: {m_docs} docstrings of public callables of "
        + ", ".join(f"scipy.{n} ({int(c)})" for n, c in zip(names, counts, strict=True))
        + " (jaxnmf.datasets.load_scipy_docstrings: Examples/References sections and "
        "paragraphs shared by 3+ docstrings dropped); TF-IDF (scikit-learn, English stop "
        f"words, terms in ≥ {cfg['min_df']} documents, the {n_terms} most frequent, rows "
        "l2-normalised).",
        f"Models: jaxnmf.fit(loss, solver, init='nndsvda', max_iter={cfg['max_iter']}, "
        f"tol={cfg['tol']:g}) and jaxnmf.sweep(ranks=[{k}], {len(arrays[f'{shown}_seed_nmi'])} "
        "random starts). Each document is assigned to its largest topic weight (rows of H "
        "rescaled to sum 1, the scale moved into W); NMI and ARI: scikit-learn. k-means: "
        f"scikit-learn KMeans(k = {k}, n_init = {cfg['kmeans_n_init']}) on the same TF-IDF rows.",
        "",
        f"{'model':<22} {'NMI':>6} {'ARI':>6}  {'random starts NMI':>19} {'ARI':>15}  "
        "rel. error  status",
    ]
    for m in models:
        sn, sa = arrays[f"{m}_seed_nmi"], arrays[f"{m}_seed_ari"]
        lines.append(
            f"{MODEL_STYLE.get(m, {}).get('label', m):<22} {float(arrays[f'{m}_nmi']):>6.3f} "
            f"{float(arrays[f'{m}_ari']):>6.3f}  {sn.mean():>11.3f} ± {sn.std():.3f} "
            f"{sa.mean():>7.3f} ± {sa.std():.3f}  {float(arrays[f'{m}_rel_error']):>10.4f}  "
            f"{arrays[f'{m}_status']} ({int(arrays[f'{m}_n_iter'])} it)"
        )
    lines.append(
        f"{'k-means':<22} {float(arrays['kmeans_nmi']):>6.3f} {float(arrays['kmeans_ari']):>6.3f}"
    )
    lines += ["", f"Topics of {style['label']} (T1..T{k} as drawn; top words, weight %):"]
    for pos, t in enumerate(order):
        dom = int(cont[t].argmax())
        words = ", ".join(f"{terms[i]} {100 * H[t, i]:.1f}" for i in top[t])
        lines.append(
            f"  T{pos + 1} ({int(cont[t].sum())} docs, {names[dom]} "
            f"{100 * cont[t, dom] / max(cont[t].sum(), 1):.0f}%): {words}"
        )
    lines += ["", _style.provenance(meta)]
    return _style.save(fig, out_dir, STEM, "\n".join(lines))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
