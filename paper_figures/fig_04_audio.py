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

from experiments.audio_drums import Audio, Pattern

from . import _style

EXPERIMENT = "audio_drums"
STEM = "fig_04_audio"
LOSS_STYLE = {
    "kl": {"color": "#0072B2", "ls": "-", "label": "KL-NMF"},
    "is": {"color": "#D55E00", "ls": "--", "label": "IS-NMF"},
}
SOURCE_LABELS = {"kick": "kick", "snare": "snare", "hihat": "closed hi-hat"}
SOURCE_COLORS = {"kick": "#CC79A7", "snare": "#009E73", "hihat": "#E69F00"}


def load(run) -> tuple[Audio, dict[str, Pattern]]:
    """The loader of this experiment's records: the shared axes and ``{pattern: Pattern}``."""
    return run.result(Audio), {p: run.part(p, Pattern) for p in run.parts}


def _style_of(loss: str) -> dict:
    return LOSS_STYLE.get(loss, {"color": "0.2", "ls": "-", "label": loss})


def _spectrogram(fig, ax, cax, audio: Audio, tag: str, rec: Pattern, cfg: dict) -> None:
    """(a) the mixture's |STFT| in dB, log frequency."""
    V = rec.V.astype(np.float64)
    t, freqs = np.arange(V.shape[1]) * audio.frame_seconds, audio.freqs_hz
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
        f"(a) Mixture '{tag}': |STFT|, {V.shape[0]} frequencies × {V.shape[1]} frames "
        f"(n_fft {cfg['n_fft']}, hop {cfg['hop']}, {audio.sample_rate} Hz)",
        loc="left",
    )
    ax.set_xticklabels([])
    fig.colorbar(mesh, cax=cax).set_label("dB re max", fontsize=9)


def _activation(ax, audio: Audio, rec: Pattern, s: int, cfg: dict, last: bool) -> None:
    """(b–d) one drum: its true activation and the matched rows of H (seed 0, each loss)."""
    src = str(audio.sources[s])
    t = np.arange(rec.V.shape[1]) * audio.frame_seconds
    truth = rec.envelopes[s] / rec.envelopes[s].max()
    ax.fill_between(t, 0, truth, color="0.75", linewidth=0, label="true activation")
    parts = []
    for li, loss in enumerate(str(x) for x in rec.losses):
        h = rec.H[li, 0, int(rec.assignment[li, 0, s])]
        st = _style_of(loss)
        line = dict(color=st["color"], ls=st["ls"], lw=1.1, label=st["label"])
        ax.plot(t, h / max(h.max(), np.finfo(float).tiny), **line)
        parts.append(f"{st['label']} r = {rec.matched_corr[li, 0, s]:.3f}")
    ts = rec.onset_time[rec.onset_source == s]
    ax.plot(ts, np.full(ts.shape, -0.08), "|", color=SOURCE_COLORS[src], ms=7, mew=1.5)
    ax.set_ylim(-0.16, 1.5)  # room for the legend above the peaks
    ax.set_yticks([0, 0.5, 1])
    ax.set_xlim(t[0], t[-1])
    ax.set_ylabel("activation\n(/ max)")
    title = f"({'bcd'[s]}) {SOURCE_LABELS[src]} ({cfg['samples'][src]}): " + ", ".join(parts)
    ax.set_title(title, loc="left", fontsize=10)
    if s == 0:
        ax.legend(loc="upper right", ncols=3, fontsize=8, framealpha=0.9)
    if last:
        ax.set_xlabel("time (s)")
    else:
        ax.set_xticklabels([])


def _correlations(ax, audio: Audio, patterns: dict[str, Pattern]) -> None:
    """(e) matched correlation of every pattern and loss: mean over seeds, min–max whiskers."""
    n_src = len(audio.sources)
    groups = [(p, li, str(x)) for p, rec in patterns.items() for li, x in enumerate(rec.losses)]
    width = 0.8 / len(groups)
    hatches = dict(zip(patterns, ("", "//", "xx", ".."), strict=False))
    for g, (p, li, loss) in enumerate(groups):
        mc = patterns[p].matched_corr[li]  # (n_seeds, n_sources)
        mean, lo, hi = mc.mean(axis=0), mc.min(axis=0), mc.max(axis=0)
        x = np.arange(n_src) + (g - (len(groups) - 1) / 2) * width
        st = _style_of(loss)
        bars = dict(color=st["color"], alpha=0.85, hatch=hatches[p], edgecolor="white")
        ax.bar(x, mean, width * 0.92, label=f"{st['label']}, {p}", **bars)
        ax.errorbar(
            x, mean, yerr=(mean - lo, hi - mean), fmt="none", ecolor="black", lw=1, capsize=2
        )
    ax.axhline(0.9, color="0.3", ls=":", lw=1.2)
    ax.text(n_src - 0.5, 0.9, " 0.9", va="center", ha="left", fontsize=8, color="0.3")
    ax.set_xticks(range(n_src), [SOURCE_LABELS[str(s)] for s in audio.sources])
    ax.set_xlim(-0.5, n_src - 0.5)
    lowest = min(float(rec.matched_corr.min()) for rec in patterns.values())
    ax.set_ylim(min(0.0, lowest - 0.05), 1.05)
    ax.set_ylabel("correlation with\ntrue activation")
    title = f"(e) Matched correlation, mean over {len(audio.seeds)} random starts "
    ax.set_title(title + "(whiskers: min–max)", loc="left", fontsize=10)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)


def caption(audio: Audio, patterns: dict[str, Pattern], meta: dict) -> str:
    """The caption: the mixture, the fits, and every correlation behind panels (b–e)."""
    cfg, sources = meta["config"], [str(s) for s in audio.sources]
    shown, first = next(iter(patterns.items()))
    lines = [
        "Figure 4. Drum transcription by NMF (k = 3) of a magnitude spectrogram: "
        "Kullback–Leibler (KL) versus Itakura–Saito (IS) divergence, jaxnmf.sweep(solver='mu', "
        f"init='random', max_iter={cfg['max_iter']}, tol={cfg['tol']:g}) over "
        f"{len(audio.seeds)} seeds.",
        "Mixture: real CC0 hits from Debian's sonic-pi-samples ("
        + ", ".join(f"{SOURCE_LABELS[s]}: {cfg['samples'][s]}.flac" for s in sources)
        + f"; {audio.sample_rate} Hz, not resampled) placed on a 16th-note grid at "
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
    for p, rec in patterns.items():
        for li, loss in enumerate(str(x) for x in rec.losses):
            mc, st, it = rec.matched_corr[li], rec.status[li], rec.n_iter[li]
            corr = "  ".join(
                f"{SOURCE_LABELS[s]} {mc[:, i].mean():.3f} [{mc[:, i].min():.3f}, "
                f"{mc[:, i].max():.3f}]"
                for i, s in enumerate(sources)
            )
            counts = ", ".join(f"{k} {int(np.sum(st == k))}" for k in sorted(set(st.tolist())))
            lines.append(
                f"  {p:<11} {_style_of(loss)['label']:<7} {corr}  (iterations "
                f"{int(it.min())}–{int(it.max())}; {counts})"
            )
    lines += ["", f"Pearson correlations, seed 0 of '{shown}' (rows: drums; columns: components):"]
    for li, loss in enumerate(str(x) for x in first.losses):
        C, a = first.corr[li, 0], first.assignment[li, 0]
        rows = "; ".join(
            f"{SOURCE_LABELS[s]} [" + ", ".join(f"{c:+.2f}" for c in C[i]) + f"] → {a[i]}"
            for i, s in enumerate(sources)
        )
        lines.append(f"  {_style_of(loss)['label']}: {rows}")
    return "\n".join([*lines, "", _style.provenance(meta)])


def draw(results_root, out_dir, variant: str = "auto") -> list[Path] | None:
    """Draw Figure 4 from saved results; ``None`` when the results are missing or skipped."""
    run = _style.load_run(results_root, EXPERIMENT, variant, STEM)
    if run is None or not run.parts:
        return None
    audio, patterns = load(run)
    _style.apply()
    import matplotlib.pyplot as plt

    cfg = run.meta["config"]
    shown, first = next(iter(patterns.items()))
    fig = plt.figure(figsize=(_style.WIDTH_IN, 9.6))
    # Rows: (a) with its colour bar, (b–d), a gap, (e).
    heights = (1.7, 0.95, 0.95, 0.95, 0.12, 1.35)
    gs = fig.add_gridspec(
        6, 2, height_ratios=heights, width_ratios=(1, 0.025), hspace=0.5, wspace=0.03
    )
    axes = fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])
    _spectrogram(fig, *axes, audio, shown, first, cfg)
    n = len(audio.sources)
    for s in range(n):
        _activation(fig.add_subplot(gs[1 + s, 0]), audio, first, s, cfg, last=s == n - 1)
    _correlations(fig.add_subplot(gs[5, 0]), audio, patterns)
    return _style.save(fig, out_dir, STEM, caption(audio, patterns, run.meta))


if __name__ == "__main__":
    import sys

    paths = draw(*(sys.argv[1:3] or ["results", "paper_figures/output"]))
    print(paths or "no results found")
