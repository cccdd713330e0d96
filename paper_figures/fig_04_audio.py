"""Figure 4: drum transcription by KL- and IS-NMF (k = 3) of a magnitude spectrogram.

Loads ``results/audio_drums/<variant>/`` (never fits). (a) the mixture's magnitude
spectrogram (dB, log-frequency axis); (b–d) for each drum
the true activation (Σ_f |STFT| of its own track) and the activations (rows of H) that KL- and
IS-NMF matched to it (first seed; each curve scaled to its maximum); (e) the correlation of
matched activations for every pattern and loss (mean over seeds, whiskers: min–max).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _style

EXPERIMENT = "audio_drums"
STEM = "fig_04_audio"
LOSS_STYLE = {
    "kl": {"color": "#0072B2", "ls": "-", "label": "KL-NMF"},
    "is": {"color": "#D55E00", "ls": "--", "label": "IS-NMF"},
}
SOURCE_LABELS = {"kick": "kick", "snare": "snare", "hihat": "closed hi-hat"}
SOURCE_COLORS = {"kick": "#CC79A7", "snare": "#009E73", "hihat": "#E69F00"}


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 4 from saved results; ``None`` when the results are missing or skipped."""
    run_dir = _style.find_results(results_root, EXPERIMENT, variant)
    if run_dir is None:
        return None
    arrays, meta = _style.load(run_dir, needed_by=STEM)
    patterns = [str(p) for p in arrays["parts"]]
    if not patterns:
        return None
    _style.apply()
    import matplotlib.pyplot as plt

    cfg = meta["config"]
    sources = [str(s) for s in arrays["sources"]]
    losses = [str(x) for x in cfg["losses"]]
    shown = patterns[0]
    V = arrays[f"{shown}_V"].astype(np.float64)
    env = arrays[f"{shown}_envelopes"]
    dt = float(arrays["frame_seconds"])
    t = np.arange(V.shape[1]) * dt
    freqs = arrays["freqs_hz"]
    on_src, on_t = arrays[f"{shown}_onset_source"], arrays[f"{shown}_onset_time"]

    fig = plt.figure(figsize=(_style.WIDTH_IN, 9.6))
    gs = fig.add_gridspec(
        6,
        2,
        height_ratios=(1.7, 0.95, 0.95, 0.95, 0.12, 1.35),
        width_ratios=(1, 0.025),
        hspace=0.5,
        wspace=0.03,
    )
    # ---- (a) spectrogram
    ax = fig.add_subplot(gs[0, 0])
    db = 20 * np.log10(np.maximum(V / V.max(), 1e-6))
    mesh = ax.pcolormesh(
        t, freqs[1:], db[1:], shading="nearest", cmap="magma", vmin=-80, vmax=0, rasterized=True
    )
    ax.set_yscale("log")
    ax.set_ylim(30, freqs[-1])
    ax.set_ylabel("frequency (Hz)")
    ax.set_xlim(t[0], t[-1])
    ax.grid(False)
    ax.set_title(
        f"(a) Mixture '{shown}': |STFT|, {V.shape[0]} frequencies × {V.shape[1]} frames "
        f"(n_fft {cfg['n_fft']}, hop {cfg['hop']}, {int(arrays['sample_rate'])} Hz)",
        loc="left",
    )
    ax.set_xticklabels([])
    cax = fig.add_subplot(gs[0, 1])
    cb = fig.colorbar(mesh, cax=cax)
    cb.set_label("dB re max", fontsize=9)

    # ---- (b–d) activations of the first seed
    corr_text = {}
    for s, src in enumerate(sources):
        ax = fig.add_subplot(gs[1 + s, 0])
        e = env[s] / env[s].max()
        ax.fill_between(t, 0, e, color="0.75", linewidth=0, label="true activation")
        parts = []
        for loss in losses:
            H = arrays[f"{shown}_{loss}_H"][0]
            j = int(arrays[f"{shown}_{loss}_assignment"][0, s])
            h = H[j] / max(H[j].max(), np.finfo(float).tiny)
            st = LOSS_STYLE.get(loss, {"color": "0.2", "ls": "-", "label": loss})
            r = float(arrays[f"{shown}_{loss}_matched_corr"][0, s])
            ax.plot(t, h, color=st["color"], ls=st["ls"], lw=1.1, label=f"{st['label']}")
            parts.append(f"{st['label']} r = {r:.3f}")
        corr_text[src] = parts
        ts = on_t[on_src == s]
        ax.plot(ts, np.full(ts.shape, -0.08), "|", color=SOURCE_COLORS[src], ms=7, mew=1.5)
        ax.set_ylim(-0.16, 1.5)  # room for the legend above the peaks
        ax.set_yticks([0, 0.5, 1])
        ax.set_xlim(t[0], t[-1])
        ax.set_ylabel("activation\n(/ max)")
        ax.set_title(
            f"({'bcd'[s]}) {SOURCE_LABELS[src]} ({cfg['samples'][src]}): " + ", ".join(parts),
            loc="left",
            fontsize=10,
        )
        if s == 0:
            ax.legend(loc="upper right", ncols=3, fontsize=8, framealpha=0.9)
        if s < len(sources) - 1:
            ax.set_xticklabels([])
        else:
            ax.set_xlabel("time (s)")

    # ---- (e) correlations, every pattern and loss
    ax = fig.add_subplot(gs[5, 0])
    groups = [(p, loss) for p in patterns for loss in losses]
    width = 0.8 / len(groups)
    hatches = {p: h for p, h in zip(patterns, ("", "//", "xx", ".."), strict=False)}
    for g, (p, loss) in enumerate(groups):
        mc = arrays[f"{p}_{loss}_matched_corr"]  # (n_seeds, n_sources)
        mean, lo, hi = mc.mean(axis=0), mc.min(axis=0), mc.max(axis=0)
        x = np.arange(len(sources)) + (g - (len(groups) - 1) / 2) * width
        st = LOSS_STYLE.get(loss, {"color": "0.4", "label": loss})
        ax.bar(
            x,
            mean,
            width * 0.92,
            color=st["color"],
            alpha=0.85,
            hatch=hatches[p],
            edgecolor="white",
            label=f"{st['label']}, {p}",
        )
        ax.errorbar(
            x, mean, yerr=(mean - lo, hi - mean), fmt="none", ecolor="black", lw=1, capsize=2
        )
    ax.axhline(0.9, color="0.3", ls=":", lw=1.2)
    ax.text(len(sources) - 0.5, 0.9, " 0.9", va="center", ha="left", fontsize=8, color="0.3")
    ax.set_xticks(range(len(sources)), [SOURCE_LABELS[s] for s in sources])
    ax.set_xlim(-0.5, len(sources) - 0.5)
    ax.set_ylim(
        min(0.0, float(np.min([arrays[f"{p}_{x}_matched_corr"].min() for p, x in groups])) - 0.05),
        1.05,
    )
    ax.set_ylabel("correlation with\ntrue activation")
    ax.set_title(
        f"(e) Matched correlation, mean over {len(cfg_seeds(meta))} random starts "
        "(whiskers: min–max)",
        loc="left",
        fontsize=10,
    )
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)

    # ---- caption
    n_seeds = len(cfg_seeds(meta))
    lines = [
        "Figure 4. Drum transcription by NMF (k = 3) of a magnitude spectrogram: "
        "Kullback–Leibler (KL) versus Itakura–Saito (IS) divergence, jaxnmf.sweep(solver='mu', "
        f"init='random', max_iter={cfg['max_iter']}, tol={cfg['tol']:g}) over {n_seeds} seeds.",
        "Mixture: real CC0 hits from Debian's sonic-pi-samples ("
        + ", ".join(f"{SOURCE_LABELS[s]}: {cfg['samples'][s]}.flac" for s in sources)
        + f"; {int(arrays['sample_rate'])} Hz, not resampled) placed on a 16th-note grid at "
        f"{cfg['bpm']} bpm for {cfg['bars']} bars with random gains in "
        f"[{cfg['gain_range'][0]}, {cfg['gain_range'][1]}]. Patterns (16th steps per bar): "
        + "; ".join(
            f"{p}: " + ", ".join(f"{s} {cfg['patterns'][p][s]}" for s in sources) for p in patterns
        )
        + ".",
        "True activation of a drum: Σ_f |STFT| of its own track per frame. Components are "
        "matched to drums by the Hungarian method on the Pearson correlations; IS-NMF is fitted "
        f"to V + {cfg['is_floor']:g}·max(V) (IS needs V > 0). Panels (b–d) show seed 0 of "
        f"pattern '{shown}'.",
        "",
        "Correlation of matched activations with the true ones, mean [min, max] over seeds:",
    ]
    for p in patterns:
        for loss in losses:
            mc = arrays[f"{p}_{loss}_matched_corr"]
            st = arrays[f"{p}_{loss}_status"]
            it = arrays[f"{p}_{loss}_n_iter"]
            lines.append(
                f"  {p:<11} {LOSS_STYLE.get(loss, {}).get('label', loss):<7} "
                + "  ".join(
                    f"{SOURCE_LABELS[s]} {mc[:, i].mean():.3f} [{mc[:, i].min():.3f}, "
                    f"{mc[:, i].max():.3f}]"
                    for i, s in enumerate(sources)
                )
                + f"  (iterations {int(it.min())}–{int(it.max())}; "
                + ", ".join(f"{k} {int(np.sum(st == k))}" for k in sorted(set(st.tolist())))
                + ")"
            )
    lines += ["", f"Pearson correlations, seed 0 of '{shown}' (rows: drums; columns: components):"]
    for loss in losses:
        C = arrays[f"{shown}_{loss}_corr"][0]
        a = arrays[f"{shown}_{loss}_assignment"][0]
        lines.append(
            f"  {LOSS_STYLE.get(loss, {}).get('label', loss)}: "
            + "; ".join(
                f"{SOURCE_LABELS[s]} [" + ", ".join(f"{c:+.2f}" for c in C[i]) + f"] → {a[i]}"
                for i, s in enumerate(sources)
            )
        )
    lines += ["", _style.provenance(meta)]
    return _style.save(fig, out_dir, STEM, "\n".join(lines))


def cfg_seeds(meta: dict) -> list:
    return meta.get("seeds", {}).get("sweep_seeds", [])


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
