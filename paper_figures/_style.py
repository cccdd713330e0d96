"""Shared figure style, result loading and saving for every ``fig_<nn>_<slug>.py``.

Figures are 8 inches wide and saved at 150 dpi (1200 px): at 800 px wide the text is still
≥ 9 px. Colours are Okabe–Ito (colour-blind safe), one fixed colour per solver.

Results are read only through :func:`load_run` (each figure's ``load`` turns the run into its
experiment's records), which checks ``arrays.npz`` against the sha256 that ``meta.json``
recorded when it was written; a field a record needs and the file lacks is an error naming
the file, the field and the figure (:class:`MissingResultError`).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display needed, deterministic output

import matplotlib.pyplot as plt

from experiments import _run

# Re-exported: paper_figures.__main__ and the tests catch these.
from experiments._common import ResultFileError  # noqa: F401
from experiments._run import MissingResultError  # noqa: F401

WIDTH_IN = 8.0
DPI = 150

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442"]
SOLVER_COLORS = {"mu": "#0072B2", "hals": "#D55E00", "pg": "#009E73", "adam": "#CC79A7"}
SOLVER_LABELS = {
    "mu": "MU (Lee–Seung)",
    "hals": "HALS",
    "pg": "PG (Lin 2007)",
    "adam": "Adam + projection",
}

RC = {
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "image.interpolation": "nearest",
    "pdf.fonttype": 42,  # embed TrueType: text stays editable/searchable in the PDF
    "svg.hashsalt": "jaxnmf",
}


def apply() -> None:
    """Set the shared rcParams."""
    plt.rcParams.update(RC)


def find_results(results_root, name: str, variant: str = "auto") -> Path | None:
    """``<results_root>/<name>/<variant>`` if it holds a complete run, else ``None``.

    ``variant="auto"`` prefers ``full`` and falls back to ``smoke``.
    """
    root = Path(results_root) / name
    for v in ("full", "smoke") if variant == "auto" else (variant,):
        d = root / v
        if (d / "arrays.npz").is_file() and (d / "meta.json").is_file():
            return d
    return None


def load_run(
    results_root, name: str, variant: str = "auto", needed_by: str | None = None
) -> _run.RunRecords | None:
    """The records of experiment ``name``'s run (:func:`find_results`), verified; ``None``
    when there is none. Figures read their records through it (one loader per experiment)."""
    run_dir = find_results(results_root, name, variant)
    return None if run_dir is None else _run.load(run_dir, needed_by)


def skip_reason(results_root, name: str, variant: str = "auto") -> str | None:
    """Why a run that exists has nothing to draw (every part skipped), else ``None``."""
    run_dir = find_results(results_root, name, variant)
    if run_dir is None:
        return None
    try:
        meta = json.loads((run_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    skipped = meta.get("skipped") or {}
    if not skipped:
        return None
    return "; ".join(f"{part}: {why}" for part, why in skipped.items()) + f" ({run_dir}/meta.json)"


def mark(ax, x, y, color, label=None, size=160, zorder=5):
    """A star marking a chosen value (e.g. a suggested rank)."""
    star = dict(marker="*", s=size, color=color, edgecolors="black", linewidths=0.6)
    ax.scatter([x], [y], zorder=zorder, label=label, **star)


def provenance(meta: dict) -> str:
    """One line: where the numbers come from (variant, git revision, device, versions)."""
    git = meta.get("git", {})
    rev = (git.get("revision") or "unknown")[:10] + ("+dirty" if git.get("dirty") else "")
    v, d = meta.get("versions", {}), meta.get("device", {})
    return (
        f"Source: results of '{meta['experiment']}' (variant {meta['config']['variant']}, "
        f"root seed {meta['config']['root_seed']}), git {rev}, device {d.get('device_kind')} "
        f"({d.get('platform')}, {d.get('cpu_count')} CPU cores), jax {v.get('jax')}, "
        f"jaxnmf {v.get('jaxnmf')}, finished {meta.get('finished_utc')}."
    )


def _atomic_save(path: Path, write) -> None:
    # Same folder (atomic os.replace), umask permissions (unlike tempfile.mkstemp).
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(fig, out_dir, stem: str, caption: str) -> list[Path]:
    """Write ``<stem>.png``, ``<stem>.pdf`` and ``<stem>.txt`` (the caption) to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = out_dir / f"{stem}.{ext}"
        # PDF metadata without a creation date, so re-drawing the same results gives the same file.
        kw = (
            {"metadata": {"CreationDate": None}}
            if ext == "pdf"
            else {"metadata": {"Software": None}}
        )
        _atomic_save(p, lambda tmp, ext=ext, kw=kw: fig.savefig(tmp, format=ext, **kw))
        paths.append(p)
    p = out_dir / f"{stem}.txt"
    _atomic_save(p, lambda tmp: Path(tmp).write_text(caption.rstrip() + "\n"))
    paths.append(p)
    plt.close(fig)
    return paths
