"""Config-driven experiments that write ``results/<name>/<variant>/{arrays.npz, meta.json}``.

Each experiment is a module ``experiments/<name>.py`` with a docstring (question, figure it
feeds, expected runtime), ``get_config(variant) -> dict``, a ``parts(config, run)`` generator
of checkpointed parts that compute typed records, and ``main(config, out_dir)``, which hands
them to the run helper (:mod:`experiments._run`: metadata, seeds, resumption, hashes).
Run them with ``python -m experiments`` (see ``python -m experiments --help``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

# In the order `python -m experiments all` runs them.
EXPERIMENTS = (
    "parts_digits_faces",
    "convergence_digits",
    "rank_selection",
    "audio_drums",
    "topics",
    "movielens",
    "speed",
    "consensus",
)
VARIANTS = ("smoke", "full")


def load(name: str) -> ModuleType:
    """The module of experiment ``name``; ``ValueError`` naming the known ones otherwise."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{name}")
